//! The signals the CLI master acts on: SIGINT, SIGTERM and SIGQUIT stop it (the run loop
//! decides what a second one means); SIGHUP reloads it.

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
    let events = events.clone();
    spawn_local(async move {
        while hup.recv().await.is_some() {
            if events.send(Event::Hangup).is_err() {
                break;
            }
        }
    });
    Ok(())
}
