//! Telling a service manager how the cluster stands (systemd's `sd_notify` protocol, with
//! the `sd-notify` crate): `READY=1` once the cluster is ready, `RELOADING=1` with
//! `MONOTONIC_USEC` when a rolling reload starts and `READY=1` when it ends (completed or
//! aborted), `STOPPING=1` when the cluster starts stopping, `STATUS=` as it changes, and
//! `WATCHDOG=1` at half of `WATCHDOG_USEC`.
//!
//! Only the CLI's master speaks ([`crate::MasterBuilder::main_process`]), and only when its
//! own environment has `NOTIFY_SOCKET` at start. Workers never inherit the master's
//! `NOTIFY_SOCKET` (`master/spawn.rs` drops it; with `--ready notify` each gets one of
//! clutch's own instead).
//!
//! The run loop calls [`Notifier::effect`] for each effect it carries out, and sends the
//! watchdog's ping itself when [`watchdog_ticks`]' event reaches it: a loop that is stuck
//! sends none, and systemd restarts the service.
//!
//! `MAINPID=` is sent (with the first `READY=1`) only when clutch is not the process
//! systemd started: `SYSTEMD_EXEC_PID` names another (a wrapper that forked clutch rather
//! than `exec` it). systemd then takes clutch as the main process, which needs
//! `NotifyAccess=all` in the unit, as the wrapper's child is not the main process yet.

use crate::master::core::{ClusterPhase, Core, Effect, Phase, ReloadEvent};
use crate::master::lifecycle::Event;
use crate::master::worker::Role;
use sd_notify::NotifyState;
use std::cell::Cell;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// What the master tells the service manager; does nothing when it was started without
/// `NOTIFY_SOCKET`.
#[derive(Debug, Default)]
pub struct Notifier {
    on: bool,
    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`.
    watchdog: Option<Duration>,
    /// Sent with the first `READY=1`, then cleared.
    main_pid: Option<u32>,
    /// The last `STATUS=` sent, so an unchanged one is not sent again.
    status: String,
    reloading: bool,
    stopping: bool,
    /// A failure to send was logged as a warning already (later ones at debug level).
    warned: Cell<bool>,
}

impl Notifier {
    /// Silent.
    pub fn off() -> Notifier {
        Notifier::default()
    }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` / `WATCHDOG_PID` and `SYSTEMD_EXEC_PID` from
    /// the master's environment, once.
    pub fn from_env() -> Notifier {
        let on = std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty());
        if !on {
            return Notifier::off();
        }
        let me = std::process::id();
        let exec_pid = std::env::var("SYSTEMD_EXEC_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok());
        let main_pid = exec_pid.filter(|&p| p != me).map(|_| me);
        let watchdog = sd_notify::watchdog_enabled()
            .or_else(|| main_pid.and(watchdog_for(exec_pid)))
            .filter(|t| !t.is_zero())
            .map(|t| t / 2);
        Notifier {
            on,
            watchdog,
            main_pid,
            ..Notifier::default()
        }
    }

    /// How often the run loop should call [`Notifier::watchdog`], if at all.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog
    }

    /// The run loop is alive: `WATCHDOG=1`.
    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// Tells the service manager what `effect` changes; `core` has decided it already.
    pub fn effect(&mut self, effect: &Effect, core: &Core) {
        if !self.on {
            return;
        }
        match effect {
            Effect::ClusterReady(_) => {
                let status = ready_status(core);
                let mut states = vec![NotifyState::Ready, NotifyState::Status(&status)];
                let main_pid = self.main_pid.take();
                if let Some(pid) = main_pid {
                    states.push(NotifyState::MainPid(pid));
                }
                self.send(&states);
                self.status = status;
            }
            Effect::Reload(ReloadEvent::Started { slots, .. }) => {
                self.reloading = true;
                let status = format!("reloading slot 1/{slots}");
                // systemd orders a reload's end after its start by this clock.
                match NotifyState::monotonic_usec_now() {
                    Ok(now) => {
                        self.send(&[NotifyState::Reloading, now, NotifyState::Status(&status)])
                    }
                    Err(_) => self.send(&[NotifyState::Reloading, NotifyState::Status(&status)]),
                }
                self.status = status;
            }
            // The `index`-th slot is done: the next one is reloading.
            Effect::Reload(ReloadEvent::Slot { index, total, .. }) if index < total => {
                self.set_status(format!("reloading slot {}/{total}", index + 1));
            }
            Effect::Reload(ReloadEvent::Completed { .. } | ReloadEvent::Aborted { .. }) => {
                self.reloading = false;
                let status = match effect {
                    Effect::Reload(ReloadEvent::Aborted { reason, .. }) => {
                        format!("reload aborted ({reason}); {}", ready_status(core))
                    }
                    _ => ready_status(core),
                };
                // A reload aborted because the cluster stops: STOPPING=1 follows at once,
                // and READY=1 in between would tell systemd the opposite.
                let stopping = matches!(core.phase(), ClusterPhase::Stopping { .. });
                if !self.stopping && !stopping {
                    self.send(&[NotifyState::Ready, NotifyState::Status(&status)]);
                    self.status = status;
                }
            }
            Effect::CloseListener if !self.stopping => {
                self.stopping = true;
                self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
                self.status = "stopping".into();
            }
            Effect::Publish
                if !self.reloading
                    && !self.stopping
                    && !matches!(core.phase(), ClusterPhase::Stopping { .. }) =>
            {
                self.set_status(ready_status(core));
            }
            _ => {}
        }
    }

    fn set_status(&mut self, status: String) {
        if status != self.status {
            self.send(&[NotifyState::Status(&status)]);
            self.status = status;
        }
    }

    fn send(&self, states: &[NotifyState]) {
        if !self.on {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            let what = states.first().map(|s| s.to_string()).unwrap_or_default();
            if self.warned.replace(true) {
                tracing::debug!("cannot tell the service manager {what}: {e}");
            } else {
                tracing::warn!(
                    "cannot tell the service manager {what} through NOTIFY_SOCKET: {e} \
                     (further failures are logged at debug level)"
                );
            }
        }
    }
}

/// `WATCHDOG_USEC` when `WATCHDOG_PID` names the process systemd started (`exec_pid`): a
/// wrapper forked clutch, whose `MAINPID=` makes it the one systemd expects pings from.
fn watchdog_for(exec_pid: Option<u32>) -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok()?.parse::<u64>().ok()?;
    let pid = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok());
    (pid.is_none() || pid == exec_pid).then(|| Duration::from_micros(usec))
}

/// "3/4 app workers ready": slots that should run whose current worker is ready.
fn ready_status(core: &Core) -> String {
    let app_slots = || {
        core.slots()
            .filter(|s| s.role == Role::App && s.goal == crate::master::core::Goal::Running)
    };
    let ready = app_slots()
        .filter(|s| {
            s.current
                .and_then(|id| core.worker(id))
                .is_some_and(|w| w.phase == Phase::Ready)
        })
        .count();
    let starting = matches!(core.phase(), ClusterPhase::Starting);
    format!(
        "{ready}/{} app workers ready{}",
        app_slots().count(),
        if starting { " (starting)" } else { "" }
    )
}

/// Sends [`Event::Watchdog`] every `every`; the run loop answers each with `WATCHDOG=1`.
pub async fn watchdog_ticks(every: Duration, events: UnboundedSender<Event>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if events.send(Event::Watchdog).is_err() {
            return;
        }
    }
}
