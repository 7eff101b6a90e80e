//! The master: [`Master`] runs a cluster from Rust (in a test, or behind the CLI).
//!
//! The master runs on one thread of its own, on a current-thread tokio runtime: every
//! channel, child and timer is a task there, and the run loop in [`lifecycle`] owns every
//! decision. The thread lives exactly as long as the cluster, which matters because a
//! child's parent-death signal fires when the *thread* that forked it exits.

pub mod builder;
mod control_handler;
pub(crate) mod core;
pub(crate) mod launch;
pub(crate) mod lifecycle;
pub(crate) mod liveness;
pub(crate) mod messenger;
pub mod metrics;
pub mod monitor;
pub mod names;
pub(crate) mod orphans;
pub mod output;
pub(crate) mod owner;
pub(crate) mod readiness;
pub(crate) mod registry;
pub(crate) mod requests;
pub(crate) mod restart;
pub(crate) mod signals;
pub(crate) mod spawn;
pub(crate) mod systemd;
pub(crate) mod tasks;
pub(crate) mod watchdog;
pub mod worker;

use crate::config::Settings;
use crate::error::Error;
use crate::protocol::Message;
use crate::protocol::message::RequestError;
pub use builder::MasterBuilder;
pub use core::{ReloadEvent, reload_json};
use lifecycle::Event;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
pub use worker::{Role, WorkerInfo, WorkerName};

/// What `cluster-ready` carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterInfo {
    /// The public port (the bound one when `0` was asked), if any.
    pub port: Option<u16>,
    /// The address the port is bound on.
    pub address: String,
    /// How many app workers.
    pub workers: usize,
    /// Whether sessions are sticky (the same client, the same worker).
    pub sticky: bool,
    /// How sticky sessions are steered: `"kernel-steered"` or `"master handoff"`.
    pub sticky_mode: Option<&'static str>,
}

/// Where a cluster stands.
#[derive(Debug, Clone)]
pub enum State {
    /// Starting the agent or the apps.
    Starting,
    /// Every worker said it is ready.
    Ready(ClusterInfo),
    /// It could not start; everything was stopped.
    Failed(Error),
    /// It was stopped on request.
    Stopped,
}

/// A running cluster, as seen by whoever started it (the `parent`).
///
/// Dropping it kills every worker (SIGKILL to each process group) and waits for the master
/// thread; [`shutdown`](Self::shutdown) stops them gracefully instead.
pub struct Master {
    events: mpsc::UnboundedSender<Event>,
    messages: mpsc::Receiver<Message>,
    state: watch::Receiver<State>,
    workers: Arc<Mutex<Vec<WorkerInfo>>>,
    thread: Option<std::thread::JoinHandle<Result<(), Error>>>,
}

impl Master {
    /// A builder with default settings (and no control socket: see
    /// [`MasterBuilder::control_socket`]).
    pub fn builder() -> MasterBuilder {
        MasterBuilder::from_settings(Settings {
            control: crate::config::ControlSocket::Off,
            ..Settings::default()
        })
    }

    /// Waits until every worker is ready, or the start failed.
    pub async fn ready(&mut self) -> Result<ClusterInfo, Error> {
        loop {
            match &*self.state.borrow_and_update() {
                State::Ready(info) => return Ok(info.clone()),
                State::Failed(e) => return Err(e.clone()),
                State::Stopped => {
                    return Err(Error::io(
                        "the cluster stopped before it was ready",
                        std::io::ErrorKind::Interrupted.into(),
                    ));
                }
                State::Starting => {}
            }
            if self.state.changed().await.is_err() {
                // The thread ended with no verdict published (it failed before its run
                // loop could say so): its result says why. It has let go of the state, so
                // it is at its end and the join is short.
                return match self.thread.take().map(|t| t.join()) {
                    Some(Ok(Err(e))) => Err(e),
                    Some(Err(_)) => Err(Error::io(
                        "the master thread panicked",
                        std::io::ErrorKind::Other.into(),
                    )),
                    _ => Err(Error::io(
                        "the master thread ended",
                        std::io::ErrorKind::BrokenPipe.into(),
                    )),
                };
            }
        }
    }

    /// The cluster's state now.
    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    /// Sends a message as the parent (`to` defaults to `master`).
    pub fn send(&self, msg: &Message) {
        let mut line = Vec::new();
        msg.write_line(&mut line);
        line.pop();
        let _ = self.events.send(Event::FromHandle(line));
    }

    /// The next message addressed to the parent or the master; `None` once the master ended.
    pub async fn recv(&mut self) -> Option<Message> {
        self.messages.recv().await
    }

    /// Waits for the next message with `action`, skipping others, up to `timeout`.
    pub async fn recv_action(&mut self, action: &str, timeout: Duration) -> Option<Message> {
        tokio::time::timeout(timeout, async {
            while let Some(m) = self.recv().await {
                if m.action == action {
                    return Some(m);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }

    /// Restarts slot `slot` gracefully (the agent's is 0): a new worker first, then the old
    /// one stopped once the new one is ready. Not counted as a crash. Refused (with the
    /// reason) while the cluster starts or stops, or while the slot is already being
    /// replaced.
    pub async fn restart(&self, slot: u32) -> Result<(), String> {
        self.command(core::Command::Restart { slot }).await
    }

    /// Stops the worker of slot `slot`; the slot stays empty until [`start`](Self::start_slot).
    pub async fn stop_slot(&self, slot: u32) -> Result<(), String> {
        self.command(core::Command::Stop { slot }).await
    }

    /// Starts a stopped or parked slot.
    pub async fn start_slot(&self, slot: u32) -> Result<(), String> {
        self.command(core::Command::Start { slot }).await
    }

    /// Runs `workers` app workers: new slots get the next ids, the newest slots are retired
    /// first (their workers stop gracefully).
    pub async fn scale(&self, workers: usize) -> Result<(), String> {
        self.command(core::Command::Scale { workers }).await
    }

    /// Rolling reload: every worker replaced by one of a new generation, `batch` slots at a
    /// time (a new worker first; the old one stopped once the new one is ready), at most
    /// [`Settings::surge`] workers beyond one per slot alive; with
    /// [`MasterBuilder::reread_on_reload`], with the settings it returns. Returns
    /// what happened, slot by slot, once every slot is on the new generation; `Err` with the
    /// reason when it was refused or aborted (a new worker failed: the slots not reached keep
    /// their old workers).
    pub async fn reload(&self, batch: usize) -> Result<Vec<ReloadEvent>, String> {
        let (progress, mut events) = tokio::sync::mpsc::unbounded_channel();
        let (reply, taken) = tokio::sync::oneshot::channel();
        self.events
            .send(Event::Reload {
                batch,
                surge: None,
                progress,
                reply,
            })
            .map_err(|_| "the master has stopped".to_string())?;
        taken
            .await
            .unwrap_or_else(|_| Err("the master has stopped".to_string()))?;
        let mut seen = Vec::new();
        while let Some(event) = events.recv().await {
            match &event {
                ReloadEvent::Completed { .. } => {
                    seen.push(event);
                    return Ok(seen);
                }
                ReloadEvent::Aborted { reason, .. } => return Err(reason.clone()),
                _ => seen.push(event),
            }
        }
        Err("the master stopped during the reload".to_string())
    }

    async fn command(&self, cmd: core::Command) -> Result<(), String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.events
            .send(Event::Command(cmd, tx))
            .map_err(|_| "the master has stopped".to_string())?;
        rx.await
            .unwrap_or_else(|_| Err("the master has stopped".to_string()))
    }

    /// Sends `msg` as the parent, as a request, and waits up to `timeout` for the reply.
    /// `msg` must name its receiver (`to` and/or `receiverPid`); a `requestId` is added
    /// when it has none. The master answers at once with an error (`RequestError::Failed`)
    /// when there is no such receiver, and when it exits before answering.
    pub async fn request(
        &self,
        mut msg: Message,
        timeout: Duration,
    ) -> Result<Message, RequestError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        if msg.request_id.is_none() {
            let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            msg.request_id = Some(id.into());
        }
        let mut line = Vec::new();
        msg.write_line(&mut line);
        line.pop();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.events
            .send(Event::Request(line, tx))
            .map_err(|_| RequestError::Closed)?;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(RequestError::Timeout(timeout)),
            Ok(Err(_)) => Err(RequestError::Closed),
            Ok(Ok(reply)) => match &reply.error {
                Some(e) => Err(RequestError::Failed(e.clone())),
                None => Ok(reply),
            },
        }
    }

    /// Every live worker with its latest monitor sample (from /proc every
    /// `--monitor-interval`, and what it pushed with `clutch:monitor`).
    pub async fn worker_stats(&self) -> Vec<monitor::WorkerStats> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.events.send(Event::Stats(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// The live workers now.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.workers.lock().expect("workers lock").clone()
    }

    /// Stops the apps, then the agent (SIGTERM, SIGKILL after the kill timeout), and
    /// returns once every worker is gone.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        let _ = self.events.send(Event::Shutdown);
        loop {
            if matches!(
                &*self.state.borrow_and_update(),
                State::Stopped | State::Failed(_)
            ) {
                break;
            }
            if self.state.changed().await.is_err() {
                break;
            }
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::io(
                "the master thread panicked",
                std::io::ErrorKind::Other.into(),
            )),
            None => Ok(()),
        }
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.events.send(Event::Kill);
            let _ = t.join();
        }
    }
}
