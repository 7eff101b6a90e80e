//! The signals the CLI master handles: SIGINT, SIGTERM and SIGQUIT stop it (the run loop
//! decides what a second one means); SIGHUP reloads it; SIGTTIN and SIGTTOU scale the app
//! workers by +1 / -1, as gunicorn does.

use crate::control::{Call, Caller, Cmd, Scale};
use crate::error::Error;
use crate::master::lifecycle::Event;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::spawn_local;

/// Forwards SIGINT, SIGTERM and SIGQUIT to the run loop as [`Event::Signal`].
pub fn listen_for_signals(events: &UnboundedSender<Event>) -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    for (kind, name) in [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::quit(), "SIGQUIT"),
    ] {
        let mut sig = signal(kind).map_err(|e| Error::io("cannot handle signals", e))?;
        let events = events.clone();
        spawn_local(async move {
            while sig.recv().await.is_some() {
                if events.send(Event::Signal(name)).is_err() {
                    break;
                }
            }
        });
    }
    let mut hup =
        signal(SignalKind::hangup()).map_err(|e| Error::io("cannot handle signals", e))?;
    let hup_events = events.clone();
    spawn_local(async move {
        while hup.recv().await.is_some() {
            if hup_events.send(Event::Hangup).is_err() {
                break;
            }
        }
    });
    for (kind, name, by) in [
        (SignalKind::from_raw(libc::SIGTTIN), "SIGTTIN", Scale::Up(1)),
        (
            SignalKind::from_raw(libc::SIGTTOU),
            "SIGTTOU",
            Scale::Down(1),
        ),
    ] {
        let mut sig = signal(kind).map_err(|e| Error::io("cannot handle signals", e))?;
        let events = events.clone();
        spawn_local(async move {
            while sig.recv().await.is_some() {
                let call = Call {
                    cmd: Cmd::Scale(by),
                    caller: Caller::master(name),
                };
                // The answer goes to the audit log; nobody waits for it here.
                let (answer, _) = tokio::sync::oneshot::channel();
                if events.send(Event::Control(call, answer)).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}
