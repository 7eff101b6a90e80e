//! The master's run loop: starting → ready → stopping, driven by [`Event`]s.
//!
//! One thread, one task per channel side and per child (see [`super::tasks`]), and this
//! loop owning every decision: when to start the apps, when the cluster is ready, what a
//! death means (failure before ready, restart or park after), and how to stop.

use crate::channel::Outbox;
use crate::config::{ReadyMode, RestartPolicy, Settings};
use crate::error::Error;
use crate::listen::PortPlan;
use crate::master::messenger::{Messenger, Source};
use crate::master::restart::{Decision, RestartTracker};
use crate::master::tasks::Closed;
use crate::master::worker::{Role, WorkerInfo, WorkerName};
use crate::master::{ClusterInfo, State};
use crate::protocol::{Endpoint, Message};
use crate::sticky::handoff::Handoff;
use crate::sticky::listener::accept_loop;
use crate::sys::guard::Guard;
use crate::sys::process::{Exit, Signal, signal_group};
use serde_json::json;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tokio::task::{AbortHandle, spawn_local};

/// Something the run loop must act on.
#[derive(Debug)]
pub enum Event {
    /// The worker with this pid is ready (message, delay or spawn).
    Ready { pid: u32 },
    /// A child was reaped: from now on its process group is not signalled.
    Reaped { pid: u32 },
    /// A reaped child's channel was read to the end: its death can be announced.
    Exited { pid: u32, exit: Exit },
    /// A channel's reader stopped (pid 0: the parent channel).
    ChannelClosed { pid: u32, closed: Closed },
    /// The ready timeout of this worker passed.
    ReadyTimeout { pid: u32 },
    /// A worker told to stop (SIGTERM) had the kill timeout to do so.
    KillDue { pid: u32 },
    /// A slot's restart delay passed.
    RestartDue { role: Role, id: u32 },
    /// The kill timeout of a stop stage passed.
    KillTimeout { stage: u32 },
    /// A message addressed to the master.
    ToMaster(Message),
    /// SIGINT, SIGTERM or SIGQUIT arrived.
    Signal(&'static str),
    /// A line from the in-process parent (the [`crate::Master`] handle).
    FromHandle(Vec<u8>),
    /// The handle asks for a graceful stop.
    Shutdown,
    /// The handle was dropped: kill everything now.
    Kill,
}

/// What the loop was given to run.
pub struct Plan {
    pub settings: Settings,
    pub app: Vec<String>,
    pub agent: Option<Vec<String>>,
    /// The public port and who listens on it.
    pub port: PortPlan,
    pub handle_signals: bool,
}

/// Where the loop publishes its state for the handle.
pub struct Published {
    pub state: watch::Sender<State>,
    pub workers: Arc<Mutex<Vec<WorkerInfo>>>,
}

pub(super) struct Live {
    pub(super) pid: u32,
    pub(super) started: Instant,
    pub(super) ready: bool,
    pub(super) outbox: Rc<Outbox>,
    /// Reaped, its exit not yet announced: its group must not be signalled any more.
    pub(super) reaped: bool,
    /// Timers and readiness probes that concern this worker only.
    pub(super) timers: Vec<AbortHandle>,
}

pub(super) struct Slot {
    pub(super) role: Role,
    pub(super) id: u32,
    pub(super) live: Option<Live>,
    pub(super) tracker: RestartTracker,
    pub(super) parked: bool,
    pub(super) restart_pending: bool,
}

impl Slot {
    pub(super) fn name(&self) -> Option<WorkerName> {
        self.live.as_ref().map(|l| WorkerName {
            role: self.role,
            id: self.id,
            pid: l.pid,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Starting,
    Ready,
    /// Stopping; `stage` 1 stops the apps, 2 the agent.
    Stopping {
        stage: u32,
    },
}

pub(super) struct Cluster {
    pub(super) plan: Plan,
    pub(super) messenger: Rc<Messenger>,
    pub(super) events: UnboundedSender<Event>,
    pub(super) guard: Guard,
    pub(super) agent: Option<Slot>,
    pub(super) apps: Vec<Slot>,
    pub(super) phase: Phase,
    pub(super) started: Instant,
    pub(super) failure: Option<Error>,
    pub(super) published: Published,
    /// Sticky mode: the connection router and the accept task.
    pub(super) handoff: Option<Rc<Handoff>>,
    pub(super) accept_task: Option<tokio::task::JoinHandle<()>>,
}

/// Runs a cluster until it has stopped. `Ok` after a requested stop, `Err` when it could not
/// start. Must run inside a `LocalSet` on a current-thread runtime, on a thread that lives
/// as long as the cluster (children's death signal is tied to it).
pub async fn run(
    mut plan: Plan,
    messenger: Rc<Messenger>,
    events: UnboundedSender<Event>,
    mut inbox: UnboundedReceiver<Event>,
    published: Published,
) -> Result<(), Error> {
    let guard = Guard::start().map_err(|e| Error::io("cannot start the guard process", e))?;
    let s = &plan.settings;
    let tracker = |floor| RestartTracker::new(s.restart_limit, s.restart_window, floor);
    let agent = plan.agent.as_ref().map(|_| Slot {
        role: Role::Agent,
        id: 0,
        live: None,
        tracker: tracker(Duration::from_millis(200)),
        parked: false,
        restart_pending: false,
    });
    let apps = (1..=s.workers as u32)
        .map(|id| Slot {
            role: Role::App,
            id,
            live: None,
            tracker: tracker(Duration::ZERO),
            parked: false,
            restart_pending: false,
        })
        .collect();
    if plan.handle_signals {
        crate::master::signals::listen_for_signals(&events)?;
    }
    let (handoff, accept_task) = match &mut plan.port {
        PortPlan::Sticky { listener, .. } => {
            let dialect = plan.settings.app_dialect.resolve(&plan.app);
            let handoff = Rc::new(
                Handoff::new(plan.settings.workers, dialect)
                    .with_node_message(plan.settings.node_sticky_message.as_deref()),
            );
            let proxy = plan
                .settings
                .proxy_protocol
                .then_some(plan.settings.proxy_timeout);
            let listener = listener.take().expect("the sticky listener is taken once");
            let task = spawn_local(accept_loop(listener, handoff.clone(), proxy));
            (Some(handoff), Some(task))
        }
        _ => (None, None),
    };
    let mut c = Cluster {
        plan,
        messenger,
        events,
        guard,
        agent,
        apps,
        phase: Phase::Starting,
        started: Instant::now(),
        failure: None,
        published,
        handoff,
        accept_task,
    };
    if c.agent.is_some() {
        c.start(Role::Agent, 0);
    } else {
        c.start_apps();
    }
    while !c.done() {
        let Some(ev) = inbox.recv().await else { break };
        c.handle(ev);
    }
    let result = match c.failure.take() {
        Some(e) => {
            let _ = c.published.state.send(State::Failed(e.clone()));
            Err(e)
        }
        None => {
            let _ = c.published.state.send(State::Stopped);
            Ok(())
        }
    };
    c.publish_workers();
    result
}

impl Cluster {
    pub(super) fn slot_mut(&mut self, role: Role, id: u32) -> Option<&mut Slot> {
        match role {
            Role::Agent => self.agent.as_mut(),
            Role::App => self.apps.get_mut(id as usize - 1),
        }
    }

    pub(super) fn slot_of(&mut self, pid: u32) -> Option<&mut Slot> {
        self.agent
            .iter_mut()
            .chain(self.apps.iter_mut())
            .find(|s| s.live.as_ref().is_some_and(|l| l.pid == pid))
    }

    fn agent_pid(&self) -> Option<u32> {
        self.agent
            .as_ref()
            .and_then(|a| a.live.as_ref())
            .filter(|l| l.ready)
            .map(|l| l.pid)
    }

    fn ready_app_pids(&self) -> Vec<u32> {
        self.apps
            .iter()
            .filter_map(|s| s.live.as_ref())
            .filter(|l| l.ready)
            .map(|l| l.pid)
            .collect()
    }

    pub(super) fn info(&self) -> ClusterInfo {
        ClusterInfo {
            port: self.plan.port.port(),
            address: self.plan.settings.host.clone(),
            workers: self.plan.settings.workers,
            sticky: self.handoff.is_some(),
        }
    }

    fn done(&self) -> bool {
        matches!(self.phase, Phase::Stopping { .. })
            && self
                .agent
                .iter()
                .chain(&self.apps)
                .all(|s| s.live.is_none())
    }

    pub(super) fn publish_workers(&self) {
        let list = self
            .agent
            .iter()
            .chain(&self.apps)
            .filter_map(|s| {
                s.live.as_ref().map(|l| WorkerInfo {
                    role: s.role,
                    id: s.id,
                    pid: l.pid,
                    ready: l.ready,
                })
            })
            .collect();
        *self.published.workers.lock().expect("workers lock") = list;
    }

    /// Sends `event` to the run loop after `delay`; abort the handle to cancel it.
    pub(super) fn after(&self, delay: Duration, event: Event) -> AbortHandle {
        let events = self.events.clone();
        spawn_local(async move {
            tokio::time::sleep(delay).await;
            let _ = events.send(event);
        })
        .abort_handle()
    }

    /// Signals a worker's process group, unless the worker is gone or already reaped (its
    /// group number may be free for another process by then).
    pub(super) fn signal_worker(&self, pid: u32, sig: Signal) {
        let live = self
            .agent
            .iter()
            .chain(&self.apps)
            .filter_map(|s| s.live.as_ref())
            .find(|l| l.pid == pid);
        if live.is_some_and(|l| !l.reaped) {
            let _ = signal_group(pid, sig);
        }
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Ready { pid } => self.on_ready(pid),
            Event::Reaped { pid } => {
                self.guard.forget(pid);
                if let Some(live) = self.slot_of(pid).and_then(|s| s.live.as_mut()) {
                    live.reaped = true;
                }
            }
            Event::Exited { pid, exit } => self.on_exit(pid, exit),
            Event::ChannelClosed { pid, closed } => self.on_channel_closed(pid, closed),
            Event::ReadyTimeout { pid } => self.on_ready_timeout(pid),
            Event::KillDue { pid } => {
                if let Some(name) = self.slot_of(pid).and_then(|s| s.name()) {
                    tracing::warn!(
                        "{name} still running {} ms after SIGTERM; sending SIGKILL",
                        self.plan.settings.kill_timeout.as_millis()
                    );
                    self.signal_worker(pid, Signal::SIGKILL);
                }
            }
            Event::RestartDue { role, id } => {
                let due = self.phase == Phase::Ready
                    && self
                        .slot_mut(role, id)
                        .is_some_and(|s| s.live.is_none() && !s.parked && s.restart_pending);
                if due {
                    self.start(role, id);
                }
            }
            Event::KillTimeout { stage } => {
                self.on_kill_timeout(stage);
            }
            Event::ToMaster(msg) => {
                tracing::debug!("message to the master: {}", msg.action);
                self.messenger.deliver_to_handle(msg);
            }
            Event::Signal(name) => match self.phase {
                Phase::Stopping { .. } => {
                    tracing::warn!("{name} again: killing every worker now");
                    self.kill_all();
                }
                _ => {
                    tracing::info!("{name} received; stopping");
                    self.stop();
                }
            },
            Event::FromHandle(line) => {
                let src = Source {
                    endpoint: Endpoint::Parent,
                    worker: None,
                    outbox: None,
                };
                if let crate::master::messenger::Outcome::ToMaster(msg) =
                    self.messenger.route(&src, &line)
                {
                    self.messenger.deliver_to_handle(msg);
                }
            }
            Event::Shutdown => self.stop(),
            Event::Kill => {
                self.kill_all();
                if !matches!(self.phase, Phase::Stopping { .. }) {
                    self.phase = Phase::Stopping { stage: 2 };
                }
            }
        }
    }

    fn on_ready(&mut self, pid: u32) {
        let started = self.started;
        let Some(slot) = self.slot_of(pid) else {
            return;
        };
        let name = slot.name().expect("slot_of finds live slots");
        let live = slot.live.as_mut().expect("slot_of finds live slots");
        // A dead worker is not ready, whatever it said or a probe saw before it died.
        if live.ready || live.reaped {
            return;
        }
        live.ready = true;
        let took = live.started.elapsed();
        tracing::info!("{name} started in {} ms", took.as_millis());
        self.publish_workers();
        match name.role {
            Role::Agent => {
                let pids = Message::new("cluster-pids", json!([pid])).to(Endpoint::App);
                self.messenger.send_from_master(&pids);
                match self.phase {
                    Phase::Starting => self.start_apps(),
                    Phase::Ready => {
                        let apps = Message::new("cluster-pids", json!(self.ready_app_pids()))
                            .to(Endpoint::Agent);
                        self.messenger.send_from_master(&apps);
                        let ready =
                            Message::new("cluster-ready", json!(self.info())).to(Endpoint::Agent);
                        self.messenger.send_from_master(&ready);
                    }
                    Phase::Stopping { .. } => {}
                }
            }
            Role::App => {
                if let (Some(h), Some(outbox)) = (&self.handoff, self.outbox_of(pid)) {
                    h.attach(name.id, outbox);
                }
                let agent: Vec<u32> = self.agent_pid().into_iter().collect();
                let pids = Message::new("cluster-pids", json!(agent)).to_pid(pid);
                self.messenger.send_from_master(&pids);
                match self.phase {
                    Phase::Starting => {
                        // The agent hears of every change of the set, during the start too.
                        self.send_app_pids_to_agent();
                        if self
                            .apps
                            .iter()
                            .all(|s| s.live.as_ref().is_some_and(|l| l.ready))
                        {
                            self.cluster_ready(started);
                        }
                    }
                    Phase::Ready => {
                        let ready = Message::new("cluster-ready", json!(self.info())).to_pid(pid);
                        self.messenger.send_from_master(&ready);
                        self.send_app_pids_to_agent();
                    }
                    Phase::Stopping { .. } => {}
                }
            }
        }
    }

    fn cluster_ready(&mut self, started: Instant) {
        self.phase = Phase::Ready;
        let info = self.info();
        let at = match info.port {
            Some(p) => format!(" at {}:{p}", info.address),
            None => String::new(),
        };
        tracing::info!(
            "{} ready{at} with {} app worker(s){} in {} ms",
            self.plan.settings.name,
            info.workers,
            if self.agent.is_some() {
                " and an agent"
            } else {
                ""
            },
            started.elapsed().as_millis()
        );
        let data = json!(info);
        for to in [Endpoint::Agent, Endpoint::App, Endpoint::Parent] {
            self.messenger
                .send_from_master(&Message::new("cluster-ready", data.clone()).to(to));
        }
        let _ = self.published.state.send(State::Ready(info));
    }

    fn send_app_pids_to_agent(&self) {
        if self.agent_pid().is_some() {
            let msg =
                Message::new("cluster-pids", json!(self.ready_app_pids())).to(Endpoint::Agent);
            self.messenger.send_from_master(&msg);
        }
    }

    fn on_exit(&mut self, pid: u32, exit: Exit) {
        let phase = self.phase;
        let Some(slot) = self.slot_of(pid) else {
            return;
        };
        let name = slot.name().expect("live");
        let live = slot.live.take().expect("live");
        let uptime = live.started.elapsed();
        for timer in &live.timers {
            timer.abort();
        }
        live.outbox.close();
        self.messenger.remove(pid);
        if let (Some(h), Role::App) = (&self.handoff, name.role) {
            h.detach(name.id);
        }
        self.publish_workers();
        match phase {
            Phase::Stopping { .. } => tracing::info!("{name} exited with {exit}"),
            _ => tracing::warn!("{name} exited with {exit}"),
        }
        let died = match name.role {
            Role::Agent => Message::new(
                "agent-worker-died",
                json!({"pid": pid, "code": exit.code, "signal": exit.signal_name()}),
            ),
            Role::App => Message::new(
                "app-worker-died",
                json!({"pid": pid, "id": name.id, "code": exit.code, "signal": exit.signal_name()}),
            ),
        };
        self.messenger.send_from_master(&died.to(Endpoint::Parent));
        match phase {
            Phase::Starting => self.fail(Error::ExitedEarly { worker: name, exit }),
            Phase::Ready => {
                match name.role {
                    Role::Agent => {
                        if live.ready {
                            let none = Message::new("cluster-pids", json!([])).to(Endpoint::App);
                            self.messenger.send_from_master(&none);
                        }
                    }
                    Role::App => self.send_app_pids_to_agent(),
                }
                self.after_death(name.role, name.id, uptime, exit.success());
            }
            Phase::Stopping { stage } => {
                if self.stage_workers(stage).is_empty() {
                    self.next_stop_stage(stage);
                }
            }
        }
    }

    /// Restart, park or leave a slot whose worker died after the cluster was ready.
    pub(super) fn after_death(&mut self, role: Role, id: u32, uptime: Duration, success: bool) {
        // --restart is about app workers; the agent always comes back (within the limit).
        let policy = match role {
            Role::Agent => RestartPolicy::Always,
            Role::App => self.plan.settings.restart,
        };
        let window = self.plan.settings.restart_window;
        let events = self.events.clone();
        let Some(slot) = self.slot_mut(role, id) else {
            return;
        };
        let what = match role {
            Role::Agent => "the agent".to_string(),
            Role::App => format!("app worker {id}"),
        };
        match slot
            .tracker
            .on_exit(policy, Instant::now(), uptime, success)
        {
            Decision::Restart(delay) => {
                slot.restart_pending = true;
                tracing::info!("restarting {what} in {} ms", delay.as_millis());
                spawn_local(async move {
                    tokio::time::sleep(delay).await;
                    let _ = events.send(Event::RestartDue { role, id });
                });
            }
            Decision::Park => {
                slot.parked = true;
                let restarts = slot.tracker.recent();
                tracing::error!(
                    "{what} restarted {restarts} times in {} s; parking it (the others keep serving)",
                    window.as_secs()
                );
                let action = match role {
                    Role::Agent => "agent-worker-parked",
                    Role::App => "app-worker-parked",
                };
                let msg = Message::new(
                    action,
                    json!({"id": id, "restarts": restarts, "window": window.as_millis() as u64}),
                );
                self.messenger.send_from_master(&msg.to(Endpoint::Parent));
            }
            Decision::Stay => tracing::info!("not restarting {what} (--restart {policy:?})"),
        }
    }

    fn on_channel_closed(&mut self, pid: u32, closed: Closed) {
        if pid == 0 {
            if !matches!(self.phase, Phase::Stopping { .. }) {
                tracing::info!("the parent channel closed; stopping");
                self.stop();
            }
            return;
        }
        let Some(slot) = self.slot_of(pid) else {
            return;
        };
        let name = slot.name().expect("live");
        self.messenger.remove(pid);
        if let (Some(h), Role::App) = (&self.handoff, name.role) {
            h.detach(name.id);
        }
        match closed {
            Closed::Eof => tracing::debug!("{name} closed its channel"),
            Closed::Abuse(_) => {
                if !matches!(self.phase, Phase::Stopping { .. }) {
                    tracing::warn!(
                        "stopping {name}; it will be restarted under the restart policy"
                    );
                    self.signal_worker(pid, Signal::SIGTERM);
                    let timer = self.after(self.plan.settings.kill_timeout, Event::KillDue { pid });
                    if let Some(live) = self.slot_of(pid).and_then(|s| s.live.as_mut()) {
                        live.timers.push(timer);
                    }
                }
            }
        }
    }

    fn on_ready_timeout(&mut self, pid: u32) {
        let ms = self.plan.settings.ready_timeout.as_millis();
        let phase = self.phase;
        let Some(slot) = self.slot_of(pid) else {
            return;
        };
        let live = slot.live.as_ref().expect("live");
        let name = slot.name().expect("live");
        if live.ready {
            return;
        }
        let mode = match name.role {
            Role::Agent => self.plan.settings.agent_ready_mode(),
            Role::App => self.plan.settings.ready,
        };
        let waiting_for = match mode {
            ReadyMode::Notify => "sends READY=1 to its NOTIFY_SOCKET".to_string(),
            ReadyMode::Tcp(port) => format!("accepts connections on 127.0.0.1:{port}"),
            _ => format!("sends {} on its channel", name.role.ready_action()),
        };
        match phase {
            Phase::Starting => self.fail(Error::NotReady {
                worker: name,
                ms,
                waiting_for,
            }),
            Phase::Ready => {
                tracing::warn!(
                    "{name} not ready after {ms} ms (check that it {waiting_for}); killing it"
                );
                self.signal_worker(pid, Signal::SIGKILL);
            }
            Phase::Stopping { .. } => {}
        }
    }

    pub(super) fn fail(&mut self, err: Error) {
        if self.failure.is_none() {
            tracing::error!("the cluster failed to start: {err}");
            self.failure = Some(err);
        }
        self.stop();
    }

    pub(super) fn outbox_of(&self, pid: u32) -> Option<Rc<Outbox>> {
        self.apps
            .iter()
            .filter_map(|s| s.live.as_ref())
            .find(|l| l.pid == pid)
            .map(|l| l.outbox.clone())
    }
}
