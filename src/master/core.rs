//! The master's decisions, as a state machine that performs no I/O (as quinn-proto does
//! for QUIC): [`Core::handle`] takes an [`Input`] and the time, and returns the
//! [`Effect`]s to carry out: spawn a worker, stop or kill one, arm a timer, send a
//! lifecycle message. The run loop ([`super::lifecycle`]) carries them out and feeds back
//! what happened (spawned, ready, exited, a timer fired).
//!
//! The state is explicit:
//! - each worker is keyed by a monotonic [`WorkerId`] and carries the **intent** the master
//!   recorded when it asked it to go ([`Intent`]): an exit is judged by that intent first
//!   and only then, for an exit nobody asked for, by the restart policy;
//! - each slot holds what it should be ([`Goal`]), its current worker, a replacement that
//!   is starting (`incoming`), the workers it is draining, and its restart bookkeeping;
//! - the number of app slots is desired state ([`Core::desired_workers`]), not a setting:
//!   [`Command::Scale`] changes it while running.
//!
//! Timers are never cancelled: a timer that fires for a worker or a restart that is no
//! longer current is ignored, so nothing needs an abort handle to be correct.

use crate::config::{ReadyMode, RestartPolicy, Settings};
use crate::error::Error;
use crate::master::ClusterInfo;
use crate::master::metrics::{ExitReason, Metrics, RestartReason};
use crate::master::names::Names;
use crate::master::restart::{Decision, RestartTracker};
use crate::master::worker::{Role, WorkerId, WorkerInfo, WorkerName};
use crate::protocol::{Endpoint, Message};
use crate::sys::process::Exit;
use serde_json::json;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[path = "recycle.rs"]
mod recycle;
#[path = "reload.rs"]
mod reload;
pub use reload::{ReloadEvent, reload_json};

/// The agent's slot id; app slots count from 1.
pub const AGENT_SLOT: u32 = 0;

/// What happened, as the run loop tells it.
#[derive(Debug)]
pub enum Input {
    /// Begin: the agent, or the apps when there is none.
    Start,
    /// The worker's process exists.
    Spawned { worker: WorkerId, pid: u32 },
    /// The worker's process could not be started.
    SpawnFailed { worker: WorkerId, error: Error },
    /// The worker said it is ready (message, notify, tcp probe).
    Ready { worker: WorkerId },
    /// The worker's channel closed; `abuse` when the master closed it for what was sent.
    ChannelClosed { worker: WorkerId, abuse: bool },
    /// The worker was reaped; reported once per worker, by the task that owns it.
    Exited { worker: WorkerId, exit: Exit },
    /// A timer armed by an [`Effect::Arm`] fired.
    Timer(Timer),
    /// The worker is alive but should be replaced (no heartbeat, too much memory): a new
    /// worker first, then it stops.
    Recycle { worker: WorkerId, reason: String },
    /// A stop signal (SIGTERM, SIGINT, SIGQUIT) by name; a second one kills.
    Signal(&'static str),
    /// A graceful stop (the handle, the parent channel closing).
    Shutdown,
    /// Kill every worker now (the handle was dropped).
    Kill,
}

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The worker's ready timeout.
    ReadyTimeout(WorkerId),
    /// `--ready delay:MS` passed: the worker counts as ready.
    ReadyDelay(WorkerId),
    /// The slot's restart delay passed; `token` tells a stale timer from the current one.
    RestartDue { slot: u32, token: u64 },
    /// The worker reached `--max-age`.
    MaxAge(WorkerId),
}

/// What the run loop must do.
#[derive(Debug)]
pub enum Effect {
    /// Start a worker in `slot` and report [`Input::Spawned`] or [`Input::SpawnFailed`].
    Spawn {
        worker: WorkerId,
        role: Role,
        slot: u32,
        generation: u64,
    },
    /// Ask the worker's owner to stop it: SIGTERM to its group, SIGKILL after `grace`.
    Stop { worker: WorkerId, grace: Duration },
    /// Ask the worker's owner to SIGKILL its group now.
    Kill { worker: WorkerId },
    /// Feed `timer` back after `after`.
    Arm { after: Duration, timer: Timer },
    /// The worker takes its slot's new connections (sticky mode).
    Accepting { worker: WorkerId, slot: u32 },
    /// The worker takes no new connections: it is stopping or its channel is gone.
    NotAccepting { worker: WorkerId },
    /// The worker is gone: forget its channel; what it did not take goes elsewhere.
    Gone { worker: WorkerId },
    /// Send a lifecycle message from the master (routed by its `to` / `receiverPid`).
    Send(Message),
    /// Stop taking new connections on the public port: the cluster is stopping.
    CloseListener,
    /// The cluster is ready: publish it.
    ClusterReady(ClusterInfo),
    /// The set of workers or their state changed: publish it.
    Publish,
    /// A rolling reload moved on.
    Reload(ReloadEvent),
}

/// Why the master asked a worker to go; judged before the restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Stop and stay stopped (shutdown, `stop`).
    Stop,
    /// A new worker took over the slot (restart, reload).
    Replace,
    /// The slot is scaled away.
    Retire,
    /// Stopped for cause (not ready, channel abuse): the slot's restart policy applies.
    Recover,
    /// A replacement that failed: the slot keeps its current worker.
    Abandon,
}

impl Intent {
    fn reason(intent: Option<Intent>) -> ExitReason {
        match intent {
            None => ExitReason::Unexpected,
            Some(Intent::Stop) => ExitReason::Stopped,
            Some(Intent::Replace) => ExitReason::Replaced,
            Some(Intent::Retire) => ExitReason::Retired,
            Some(Intent::Recover) => ExitReason::Recovered,
            Some(Intent::Abandon) => ExitReason::Abandoned,
        }
    }
}

/// What a slot should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// A worker of the current generation runs in it.
    Running,
    /// Stopped by an operator; stays empty until started.
    Stopped,
    /// Scaled away; removed once its workers are gone.
    Removed,
}

/// Where a worker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Spawned, not ready yet.
    Starting,
    /// Said it is ready.
    Ready,
    /// Asked to go.
    Stopping,
}

/// One worker, from spawn to exit.
#[derive(Debug, Clone)]
pub struct Worker {
    pub id: WorkerId,
    pub role: Role,
    pub slot: u32,
    pub generation: u64,
    /// Known once spawned.
    pub pid: Option<u32>,
    pub spawned: Instant,
    pub phase: Phase,
    pub intent: Option<Intent>,
    /// Its channel closed: no connection can be handed to it.
    pub channel_closed: bool,
}

impl Worker {
    /// The worker named for people (pid 0 before it is spawned).
    pub fn name(&self) -> WorkerName {
        WorkerName {
            role: self.role,
            id: self.slot,
            pid: self.pid.unwrap_or(0),
        }
    }
}

/// One slot: the agent's (id 0) or an app slot (1..).
#[derive(Debug, Clone)]
pub struct Slot {
    pub role: Role,
    pub id: u32,
    pub goal: Goal,
    /// The worker serving the slot (or starting to, when the slot had none).
    pub current: Option<WorkerId>,
    /// A replacement starting while `current` still serves.
    pub incoming: Option<WorkerId>,
    /// Old workers asked to stop, not yet gone.
    pub draining: Vec<WorkerId>,
    pub tracker: RestartTracker,
    /// Past the restart limit: left empty until started.
    pub parked: bool,
    /// A restart is armed with this token.
    pub restart_token: Option<u64>,
    /// Workers started in the slot after the first.
    pub restarts: u32,
    /// `restarts` by why, in the order of [`RestartReason::ALL`].
    pub restarts_by: [u32; 3],
    pub last_exit: Option<Exit>,
}

impl Slot {
    /// Counts a new worker started in the slot after the first.
    pub(crate) fn restarted(&mut self, why: RestartReason) {
        self.restarts += 1;
        self.restarts_by[why as usize] += 1;
    }

    fn workers(&self) -> impl Iterator<Item = WorkerId> + '_ {
        self.current
            .iter()
            .chain(self.incoming.iter())
            .chain(self.draining.iter())
            .copied()
    }

    fn forget(&mut self, id: WorkerId) {
        if self.current == Some(id) {
            self.current = None;
        }
        if self.incoming == Some(id) {
            self.incoming = None;
        }
        self.draining.retain(|w| *w != id);
    }
}

/// Where the cluster stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterPhase {
    Starting,
    Ready,
    /// Stage 1 stops the apps, stage 2 the agent; past 2 nothing is left to stop.
    Stopping {
        stage: u32,
    },
}

/// What an operator (or the handle) can ask of a running cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// A new worker in the slot, then the old one stopped. Not a crash.
    Restart { slot: u32 },
    /// Stop the slot's worker; the slot stays empty.
    Stop { slot: u32 },
    /// Start a stopped or parked slot.
    Start { slot: u32 },
    /// Run this many app slots.
    Scale { workers: usize },
    /// Replace every worker with one of a new generation, `batch` slots at a time, at most
    /// `surge` workers beyond one per slot alive at once (`None`: the setting's).
    Reload { batch: usize, surge: Option<usize> },
}

/// The master's state and decisions.
pub struct Core {
    settings: Settings,
    has_agent: bool,
    info: ClusterInfo,
    generation: u64,
    slots: BTreeMap<u32, Slot>,
    workers: BTreeMap<WorkerId, Worker>,
    next_worker: u64,
    next_token: u64,
    phase: ClusterPhase,
    started: Option<Instant>,
    failure: Option<Error>,
    metrics: Rc<Metrics>,
    reload: Option<reload::Reload>,
    /// The lifecycle messages' names: clutch's or egg-cluster's.
    names: Names,
    fx: Vec<Effect>,
}

impl Core {
    /// A cluster of `settings.workers` app slots (and an agent slot when `has_agent`);
    /// `info` is what `cluster-ready` will carry.
    pub fn new(
        settings: Settings,
        has_agent: bool,
        info: ClusterInfo,
        metrics: Rc<Metrics>,
    ) -> Core {
        let tracker =
            |floor| RestartTracker::new(settings.restart_limit, settings.restart_window, floor);
        let mut slots = BTreeMap::new();
        if has_agent {
            // The agent restarts no sooner than 200 ms: it is what the apps talk to.
            slots.insert(
                AGENT_SLOT,
                slot(Role::Agent, AGENT_SLOT, tracker(Duration::from_millis(200))),
            );
        }
        for id in 1..=settings.workers as u32 {
            slots.insert(id, slot(Role::App, id, tracker(Duration::ZERO)));
        }
        Core {
            names: Names::from_settings(&settings),
            settings,
            has_agent,
            info,
            generation: 1,
            slots,
            workers: BTreeMap::new(),
            next_worker: 1,
            next_token: 1,
            phase: ClusterPhase::Starting,
            started: None,
            failure: None,
            metrics,
            reload: None,
            fx: Vec::new(),
        }
    }

    /// The settings the cluster runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How many app slots should run.
    pub fn desired_workers(&self) -> usize {
        self.slots
            .values()
            .filter(|s| s.role == Role::App && s.goal != Goal::Removed)
            .count()
    }

    /// The generation new workers are started at.
    #[allow(dead_code)] // read by the control plane
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Where the cluster stands.
    #[allow(dead_code)] // read by the control plane
    pub fn phase(&self) -> ClusterPhase {
        self.phase
    }

    /// A worker by id, while it lives.
    #[allow(dead_code)] // read by the control plane
    pub fn worker(&self, id: WorkerId) -> Option<&Worker> {
        self.workers.get(&id)
    }

    /// Every live worker, by id.
    #[allow(dead_code)] // read by the control plane
    pub fn workers(&self) -> impl Iterator<Item = &Worker> {
        self.workers.values()
    }

    /// Every slot, by id (the agent's is 0).
    #[allow(dead_code)] // read by the control plane
    pub fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.values()
    }

    /// What `cluster-ready` carries now.
    pub fn info(&self) -> ClusterInfo {
        ClusterInfo {
            workers: self.desired_workers(),
            ..self.info.clone()
        }
    }

    /// Stopping, and every worker is gone.
    pub fn done(&self) -> bool {
        matches!(self.phase, ClusterPhase::Stopping { .. }) && self.workers.is_empty()
    }

    /// Why the start failed, if it did.
    pub fn take_failure(&mut self) -> Option<Error> {
        self.failure.take()
    }

    /// The live workers, for the handle.
    pub fn snapshot(&self) -> Vec<WorkerInfo> {
        self.workers
            .values()
            .filter_map(|w| {
                Some(WorkerInfo {
                    role: w.role,
                    id: w.slot,
                    pid: w.pid?,
                    ready: w.phase == Phase::Ready,
                    generation: w.generation,
                })
            })
            .collect()
    }

    /// Takes `input` at `now`; returns what to do.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Effect> {
        match input {
            Input::Start => self.start(now),
            Input::Spawned { worker, pid } => self.on_spawned(now, worker, pid),
            Input::SpawnFailed { worker, error } => self.on_spawn_failed(now, worker, error),
            Input::Ready { worker } | Input::Timer(Timer::ReadyDelay(worker)) => {
                self.on_ready(now, worker)
            }
            Input::ChannelClosed { worker, abuse } => self.on_channel_closed(worker, abuse),
            Input::Exited { worker, exit } => self.on_exit(now, worker, exit),
            Input::Timer(Timer::ReadyTimeout(worker)) => self.on_ready_timeout(worker),
            Input::Timer(Timer::RestartDue { slot, token }) => {
                self.on_restart_due(now, slot, token)
            }
            Input::Timer(Timer::MaxAge(worker)) => self.recycle(now, worker, "reached --max-age"),
            Input::Recycle { worker, reason } => self.recycle(now, worker, &reason),
            Input::Signal(name) => match self.phase {
                ClusterPhase::Stopping { .. } => {
                    tracing::warn!("{name} again: killing every worker now");
                    self.kill_all();
                }
                _ => {
                    tracing::info!("{name} received; stopping");
                    self.stop();
                }
            },
            Input::Shutdown => self.stop(),
            Input::Kill => {
                self.abort_reload("every worker is being killed".into(), true);
                self.kill_all();
                if !matches!(self.phase, ClusterPhase::Stopping { .. }) {
                    self.phase = ClusterPhase::Stopping { stage: 2 };
                    self.fx.push(Effect::CloseListener);
                }
            }
        }
        std::mem::take(&mut self.fx)
    }

    /// Carries out an operator's command at `now`; refused with the reason when it cannot
    /// be done now.
    pub fn command(&mut self, now: Instant, cmd: Command) -> Result<Vec<Effect>, String> {
        self.can_take(&cmd)?;
        match cmd {
            Command::Reload { batch, surge } => self.start_reload(now, batch, surge, None)?,
            Command::Restart { slot } => self.restart_slot(now, slot)?,
            Command::Stop { slot } => self.stop_slot(slot)?,
            Command::Start { slot } => self.start_slot(now, slot)?,
            Command::Scale { workers } => self.scale(now, workers)?,
        }
        Ok(std::mem::take(&mut self.fx))
    }

    /// Whether a command can be taken now: the cluster runs and no reload is in progress.
    fn can_take(&self, cmd: &Command) -> Result<(), String> {
        if self.phase != ClusterPhase::Ready {
            return Err(match self.phase {
                ClusterPhase::Starting => "the cluster is still starting".into(),
                _ => "the cluster is stopping".into(),
            });
        }
        self.refuse_during_reload(cmd)
    }

    fn start(&mut self, now: Instant) {
        if self.started.is_some() {
            return;
        }
        self.started = Some(now);
        if self.has_agent {
            self.spawn(now, AGENT_SLOT, false);
        } else {
            self.start_apps(now);
        }
    }

    fn start_apps(&mut self, now: Instant) {
        let ids: Vec<u32> = self
            .slots
            .values()
            .filter(|s| s.role == Role::App && s.goal == Goal::Running && s.current.is_none())
            .map(|s| s.id)
            .collect();
        for id in ids {
            self.spawn(now, id, false);
        }
    }

    /// Starts a worker in `slot`: as its current worker, or as the replacement of a
    /// current one that keeps serving until the new one is ready.
    fn spawn(&mut self, now: Instant, slot_id: u32, replacement: bool) -> WorkerId {
        let id = WorkerId(self.next_worker);
        self.next_worker += 1;
        let slot = self.slots.get_mut(&slot_id).expect("spawn in a known slot");
        if replacement {
            slot.incoming = Some(id);
        } else {
            slot.current = Some(id);
        }
        slot.restart_token = None;
        let role = slot.role;
        self.workers.insert(
            id,
            Worker {
                id,
                role,
                slot: slot_id,
                generation: self.generation,
                pid: None,
                spawned: now,
                phase: Phase::Starting,
                intent: None,
                channel_closed: false,
            },
        );
        self.fx.push(Effect::Spawn {
            worker: id,
            role,
            slot: slot_id,
            generation: self.generation,
        });
        id
    }

    fn ready_mode(&self, role: Role) -> ReadyMode {
        match role {
            Role::Agent => self.settings.agent_ready_mode(),
            Role::App => self.settings.ready,
        }
    }

    fn on_spawned(&mut self, now: Instant, id: WorkerId, pid: u32) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        w.pid = Some(pid);
        let role = w.role;
        self.fx.push(Effect::Publish);
        self.arm_max_age(id);
        match self.ready_mode(role) {
            ReadyMode::Spawn => self.on_ready(now, id),
            ReadyMode::Delay(d) => self.fx.push(Effect::Arm {
                after: d,
                timer: Timer::ReadyDelay(id),
            }),
            ReadyMode::Message | ReadyMode::Notify | ReadyMode::Tcp(_) => {
                self.fx.push(Effect::Arm {
                    after: self.settings.ready_timeout,
                    timer: Timer::ReadyTimeout(id),
                })
            }
        }
    }

    fn on_spawn_failed(&mut self, now: Instant, id: WorkerId, error: Error) {
        let Some(w) = self.workers.remove(&id) else {
            return;
        };
        let slot = self.slots.get_mut(&w.slot).expect("a worker's slot exists");
        let was_incoming = slot.incoming == Some(id);
        slot.forget(id);
        tracing::error!("{error}");
        self.fx.push(Effect::Gone { worker: id });
        self.fx.push(Effect::Publish);
        match self.phase {
            ClusterPhase::Starting => self.fail(error),
            ClusterPhase::Ready if was_incoming => {
                tracing::warn!(
                    "the replacement of {} could not start; the current worker keeps serving",
                    slot_name(w.role, w.slot)
                );
                self.reload_failed(id, "could not start");
            }
            ClusterPhase::Ready => self.after_death(now, w.slot, Duration::ZERO, false),
            ClusterPhase::Stopping { stage } => self.stage_done_check(stage),
        }
    }

    fn on_ready(&mut self, now: Instant, id: WorkerId) {
        let Some(w) = self.workers.get_mut(&id) else {
            // A dead worker is not ready, whatever it said or a probe saw before it died.
            return;
        };
        if w.phase != Phase::Starting {
            return;
        }
        w.phase = Phase::Ready;
        let w = w.clone();
        let pid = w.pid.unwrap_or(0);
        tracing::info!(
            "{} started in {} ms",
            w.name(),
            now.duration_since(w.spawned).as_millis()
        );
        self.fx.push(Effect::Publish);
        if matches!(self.phase, ClusterPhase::Stopping { .. }) {
            return;
        }
        let slot = self.slots.get_mut(&w.slot).expect("a worker's slot exists");
        if slot.incoming == Some(id) {
            // The replacement is ready: it takes the slot, the old worker drains.
            slot.incoming = None;
            if let Some(old) = slot.current.replace(id) {
                slot.draining.push(old);
                self.ask_to_stop(old, Intent::Replace);
            }
        }
        match w.role {
            Role::Agent => {
                self.send(Message::new(self.names.pids, json!([pid])).to(Endpoint::App));
                match self.phase {
                    ClusterPhase::Starting => self.start_apps(now),
                    ClusterPhase::Ready => {
                        self.send(
                            Message::new(self.names.pids, json!(self.ready_app_pids()))
                                .to(Endpoint::Agent),
                        );
                        let data = self.ready_data();
                        self.send(Message::new(self.names.ready, data).to(Endpoint::Agent));
                    }
                    ClusterPhase::Stopping { .. } => {}
                }
                if self.names.agent_start_to_apps {
                    self.send(Message::new("agent-start", json!(null)).to(Endpoint::App));
                }
            }
            Role::App => {
                if !w.channel_closed {
                    self.fx.push(Effect::Accepting {
                        worker: id,
                        slot: w.slot,
                    });
                }
                let agent: Vec<u32> = self.ready_agent_pid().into_iter().collect();
                self.send(Message::new(self.names.pids, json!(agent)).to_pid(pid));
                match self.phase {
                    ClusterPhase::Starting => {
                        // The agent hears of every change of the set, during the start too.
                        self.send_app_pids_to_agent();
                        if self.all_apps_ready() {
                            self.cluster_ready(now);
                        }
                    }
                    ClusterPhase::Ready => {
                        let data = self.ready_data();
                        self.send(Message::new(self.names.ready, data).to_pid(pid));
                        self.send_app_pids_to_agent();
                    }
                    ClusterPhase::Stopping { .. } => {}
                }
            }
        }
        self.reload_ready(now, id);
    }

    fn all_apps_ready(&self) -> bool {
        self.slots
            .values()
            .filter(|s| s.role == Role::App && s.goal == Goal::Running)
            .all(|s| {
                s.current
                    .and_then(|id| self.workers.get(&id))
                    .is_some_and(|w| w.phase == Phase::Ready)
            })
    }

    fn cluster_ready(&mut self, now: Instant) {
        self.phase = ClusterPhase::Ready;
        let info = self.info();
        let at = match info.port {
            Some(p) => format!(" at {}:{p}", info.address),
            None => String::new(),
        };
        let took = self
            .started
            .map_or(0, |s| now.duration_since(s).as_millis());
        tracing::info!(
            "{} ready{at} with {} app worker(s){} in {took} ms",
            self.settings.name,
            info.workers,
            if self.has_agent { " and an agent" } else { "" },
        );
        let workers_data = self.ready_data();
        for to in [Endpoint::Agent, Endpoint::App, Endpoint::Parent] {
            let data = match to {
                Endpoint::Parent => json!(info),
                _ => workers_data.clone(),
            };
            self.send(Message::new(self.names.ready, data).to(to));
        }
        self.fx.push(Effect::ClusterReady(info));
    }

    /// What the ready message carries to workers: egg's options in the egg dialect, else
    /// the cluster info.
    fn ready_data(&self) -> serde_json::Value {
        match &self.names.ready_data {
            Some(options) => options.clone(),
            None => json!(self.info()),
        }
    }

    fn ready_agent_pid(&self) -> Option<u32> {
        let slot = self.slots.get(&AGENT_SLOT)?;
        let w = self.workers.get(&slot.current?)?;
        (w.phase == Phase::Ready).then_some(w.pid).flatten()
    }

    /// The pids of the app workers that are ready and not asked to go.
    fn ready_app_pids(&self) -> Vec<u32> {
        self.workers
            .values()
            .filter(|w| w.role == Role::App && w.phase == Phase::Ready)
            .filter_map(|w| w.pid)
            .collect()
    }

    fn send_app_pids_to_agent(&mut self) {
        if self.ready_agent_pid().is_some() {
            let msg =
                Message::new(self.names.pids, json!(self.ready_app_pids())).to(Endpoint::Agent);
            self.send(msg);
        }
    }

    fn send(&mut self, msg: Message) {
        self.fx.push(Effect::Send(msg));
    }

    /// Records why `id` must go and asks its owner to stop it gracefully.
    fn ask_to_stop(&mut self, id: WorkerId, intent: Intent) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        // The first reason stands: a worker replaced, then caught by a shutdown, was
        // still replaced.
        w.intent.get_or_insert(intent);
        if w.phase == Phase::Stopping {
            return;
        }
        let was_ready = w.phase == Phase::Ready;
        w.phase = Phase::Stopping;
        let role = w.role;
        self.fx.push(Effect::NotAccepting { worker: id });
        self.fx.push(Effect::Stop {
            worker: id,
            grace: self.settings.kill_timeout,
        });
        self.fx.push(Effect::Publish);
        if was_ready && role == Role::App && self.phase == ClusterPhase::Ready {
            self.send_app_pids_to_agent();
        }
    }

    fn kill(&mut self, id: WorkerId, intent: Intent) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        w.intent.get_or_insert(intent);
        w.phase = Phase::Stopping;
        self.fx.push(Effect::NotAccepting { worker: id });
        self.fx.push(Effect::Kill { worker: id });
    }

    fn on_channel_closed(&mut self, id: WorkerId, abuse: bool) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        w.channel_closed = true;
        let w = &*w;
        self.fx.push(Effect::NotAccepting { worker: id });
        if abuse && w.intent.is_none() && !matches!(self.phase, ClusterPhase::Stopping { .. }) {
            tracing::warn!(
                "stopping {}; it will be restarted under the restart policy",
                w.name()
            );
            self.ask_to_stop(id, Intent::Recover);
        }
    }

    fn on_ready_timeout(&mut self, id: WorkerId) {
        let Some(w) = self.workers.get(&id) else {
            return;
        };
        if w.phase != Phase::Starting {
            return;
        }
        let name = w.name();
        let ms = self.settings.ready_timeout.as_millis();
        let waiting_for = match self.ready_mode(w.role) {
            ReadyMode::Notify => "sends READY=1 to its NOTIFY_SOCKET".to_string(),
            ReadyMode::Tcp(port) => format!("accepts connections on 127.0.0.1:{port}"),
            _ => format!("sends {} on its channel", w.role.ready_action()),
        };
        let incoming = self
            .slots
            .get(&w.slot)
            .is_some_and(|s| s.incoming == Some(id));
        match self.phase {
            ClusterPhase::Starting => self.fail(Error::NotReady {
                worker: name,
                ms,
                waiting_for,
            }),
            ClusterPhase::Ready if incoming => {
                tracing::warn!(
                    "{name} not ready after {ms} ms (check that it {waiting_for}); the worker it \
                     was to replace keeps serving"
                );
                self.kill(id, Intent::Abandon);
                self.reload_failed(id, &format!("was not ready after {ms} ms"));
            }
            ClusterPhase::Ready => {
                tracing::warn!(
                    "{name} not ready after {ms} ms (check that it {waiting_for}); killing it"
                );
                self.kill(id, Intent::Recover);
            }
            ClusterPhase::Stopping { .. } => {}
        }
    }

    fn on_exit(&mut self, now: Instant, id: WorkerId, exit: Exit) {
        let Some(w) = self.workers.remove(&id) else {
            return;
        };
        let name = w.name();
        let pid = name.pid;
        let slot = self.slots.get_mut(&w.slot).expect("a worker's slot exists");
        let was_incoming = slot.incoming == Some(id);
        let was_current = slot.current == Some(id);
        slot.forget(id);
        slot.last_exit = Some(exit);
        self.metrics.exited(Intent::reason(w.intent));
        self.fx.push(Effect::Gone { worker: id });
        self.fx.push(Effect::Publish);
        let stopping = matches!(self.phase, ClusterPhase::Stopping { .. });
        if stopping || w.intent.is_some_and(|i| i != Intent::Recover) {
            tracing::info!("{name} exited with {exit}");
        } else {
            tracing::warn!("{name} exited with {exit}");
        }
        let died = match w.role {
            Role::Agent => Message::new(
                "agent-worker-died",
                json!({"pid": pid, "code": exit.code, "signal": exit.signal_name()}),
            ),
            Role::App => Message::new(
                "app-worker-died",
                json!({"pid": pid, "id": w.slot, "code": exit.code, "signal": exit.signal_name()}),
            ),
        };
        self.send(died.to(Endpoint::Parent));
        match self.phase {
            ClusterPhase::Starting => self.fail(Error::ExitedEarly { worker: name, exit }),
            ClusterPhase::Stopping { stage } => self.stage_done_check(stage),
            ClusterPhase::Ready => {
                match w.role {
                    Role::Agent if self.ready_agent_pid().is_none() => {
                        self.send(Message::new(self.names.pids, json!([])).to(Endpoint::App));
                    }
                    Role::Agent => {}
                    Role::App => self.send_app_pids_to_agent(),
                }
                match w.intent {
                    Some(Intent::Stop | Intent::Replace | Intent::Abandon) => {}
                    Some(Intent::Retire) => {}
                    None | Some(Intent::Recover) if was_incoming => {
                        tracing::warn!(
                            "the replacement of {} exited before it was ready; the current \
                             worker keeps serving",
                            slot_name(w.role, w.slot)
                        );
                        self.reload_failed(id, &format!("exited with {exit} before it was ready"));
                    }
                    None | Some(Intent::Recover) => {
                        let promote = self.slots[&w.slot]
                            .incoming
                            .filter(|i| self.workers.get(i).is_some_and(|n| n.intent.is_none()));
                        let slot = self.slots.get_mut(&w.slot).expect("a worker's slot exists");
                        if was_current && slot.current.is_none() && promote.is_some() {
                            slot.incoming = None;
                            slot.current = promote;
                        } else if was_current
                            && slot.current.is_none()
                            && slot.goal == Goal::Running
                        {
                            let uptime = now.duration_since(w.spawned);
                            self.after_death(now, w.slot, uptime, exit.success());
                        }
                    }
                }
            }
        }
        // Whatever the intent was: a worker retired after it was asked to go for another
        // reason still leaves its slot.
        self.remove_if_empty(w.slot);
        // One worker fewer: a reload held back by its surge may go on.
        self.reload_next(now);
    }

    /// Restart, park or leave a slot whose worker died after the cluster was ready.
    fn after_death(&mut self, now: Instant, slot_id: u32, uptime: Duration, success: bool) {
        let Some(slot) = self.slots.get_mut(&slot_id) else {
            return;
        };
        // --restart is about app workers; the agent always comes back (within the limit).
        let policy = match slot.role {
            Role::Agent => RestartPolicy::Always,
            Role::App => self.settings.restart,
        };
        let what = slot_name(slot.role, slot_id);
        match slot.tracker.on_exit(policy, now, uptime, success) {
            Decision::Restart(delay) => {
                let token = self.next_token;
                self.next_token += 1;
                slot.restart_token = Some(token);
                tracing::info!("restarting {what} in {} ms", delay.as_millis());
                self.fx.push(Effect::Arm {
                    after: delay,
                    timer: Timer::RestartDue {
                        slot: slot_id,
                        token,
                    },
                });
            }
            Decision::Park => {
                slot.parked = true;
                let restarts = slot.tracker.recent();
                let window = self.settings.restart_window;
                tracing::error!(
                    "{what} restarted {restarts} times in {} s; parking it (the others keep serving)",
                    window.as_secs()
                );
                let action = match slot.role {
                    Role::Agent => "agent-worker-parked",
                    Role::App => "app-worker-parked",
                };
                let msg = Message::new(
                    action,
                    json!({"id": slot_id, "restarts": restarts, "window": window.as_millis() as u64}),
                );
                self.send(msg.to(Endpoint::Parent));
                self.fx.push(Effect::Publish);
            }
            Decision::Stay => tracing::info!("not restarting {what} (--restart {policy:?})"),
        }
    }

    fn on_restart_due(&mut self, now: Instant, slot_id: u32, token: u64) {
        let due = self.phase == ClusterPhase::Ready
            && self.slots.get(&slot_id).is_some_and(|s| {
                s.restart_token == Some(token)
                    && s.current.is_none()
                    && !s.parked
                    && s.goal == Goal::Running
            });
        if due {
            self.metrics.restarted(RestartReason::Crash);
            self.slots
                .get_mut(&slot_id)
                .expect("checked")
                .restarted(RestartReason::Crash);
            self.spawn(now, slot_id, false);
        }
    }

    fn restart_slot(&mut self, now: Instant, slot_id: u32) -> Result<(), String> {
        let slot = self.slot_for_command(slot_id)?;
        if let Some(w) = slot.incoming {
            return Err(format!(
                "{} is already being replaced (by worker {w})",
                slot_name(slot.role, slot_id)
            ));
        }
        let replacement = slot.current.is_some();
        let slot = self.slots.get_mut(&slot_id).expect("checked");
        slot.goal = Goal::Running;
        slot.parked = false;
        slot.restarted(RestartReason::Operator);
        self.metrics.restarted(RestartReason::Operator);
        self.spawn(now, slot_id, replacement);
        Ok(())
    }

    fn stop_slot(&mut self, slot_id: u32) -> Result<(), String> {
        let slot = self.slot_for_command(slot_id)?;
        let workers: Vec<WorkerId> = slot.current.iter().chain(&slot.incoming).copied().collect();
        let slot = self.slots.get_mut(&slot_id).expect("checked");
        slot.goal = Goal::Stopped;
        slot.restart_token = None;
        // They drain: a `start` before they exit fills the slot anew.
        let (current, incoming) = (slot.current.take(), slot.incoming.take());
        slot.draining.extend(current.into_iter().chain(incoming));
        for id in workers {
            self.ask_to_stop(id, Intent::Stop);
        }
        self.fx.push(Effect::Publish);
        Ok(())
    }

    fn start_slot(&mut self, now: Instant, slot_id: u32) -> Result<(), String> {
        let slot = self.slot_for_command(slot_id)?;
        if slot.current.is_some() && slot.goal == Goal::Running {
            return Err(format!(
                "{} is already running",
                slot_name(slot.role, slot_id)
            ));
        }
        let slot = self.slots.get_mut(&slot_id).expect("checked");
        slot.goal = Goal::Running;
        slot.parked = false;
        if slot.current.is_none() {
            self.spawn(now, slot_id, false);
        }
        self.fx.push(Effect::Publish);
        Ok(())
    }

    fn slot_for_command(&self, slot_id: u32) -> Result<&Slot, String> {
        match self.slots.get(&slot_id) {
            Some(s) if s.goal != Goal::Removed => Ok(s),
            _ => Err(format!("there is no slot {slot_id}")),
        }
    }

    fn scale(&mut self, now: Instant, workers: usize) -> Result<(), String> {
        if workers == 0 {
            return Err("a cluster needs at least one app worker; use `stop` to stop them".into());
        }
        if workers > 1024 {
            return Err(format!(
                "{workers} is more than the 1024 app workers clutch supports"
            ));
        }
        let live: Vec<u32> = self
            .slots
            .values()
            .filter(|s| s.role == Role::App && s.goal != Goal::Removed)
            .map(|s| s.id)
            .collect();
        if workers > live.len() {
            let first = self.slots.keys().next_back().map_or(1, |k| k + 1).max(1);
            for next in first..first + (workers - live.len()) as u32 {
                let t = RestartTracker::new(
                    self.settings.restart_limit,
                    self.settings.restart_window,
                    Duration::ZERO,
                );
                self.slots.insert(next, slot(Role::App, next, t));
                self.spawn(now, next, false);
            }
        } else {
            // The newest slots go first, so the oldest ids (and their clients) stay.
            for &id in live.iter().rev().take(live.len() - workers) {
                let slot = self.slots.get_mut(&id).expect("listed");
                slot.goal = Goal::Removed;
                slot.restart_token = None;
                let ids: Vec<WorkerId> = slot.workers().collect();
                for w in ids {
                    self.ask_to_stop(w, Intent::Retire);
                }
                self.remove_if_empty(id);
            }
        }
        tracing::info!("scaled to {workers} app worker(s)");
        self.fx.push(Effect::Publish);
        Ok(())
    }

    fn remove_if_empty(&mut self, slot_id: u32) {
        if self
            .slots
            .get(&slot_id)
            .is_some_and(|s| s.goal == Goal::Removed && s.workers().next().is_none())
        {
            self.slots.remove(&slot_id);
        }
    }

    fn fail(&mut self, err: Error) {
        if self.failure.is_none() {
            tracing::error!("the cluster failed to start: {err}");
            self.failure = Some(err);
        }
        self.stop();
    }

    /// Stops the apps, then the agent; each worker's owner escalates to SIGKILL after the
    /// kill timeout itself.
    fn stop(&mut self) {
        if matches!(self.phase, ClusterPhase::Stopping { .. }) {
            return;
        }
        for slot in self.slots.values_mut() {
            slot.restart_token = None;
        }
        self.abort_reload("the cluster is stopping".into(), true);
        // New connections are refused from now on rather than handed to stopping workers.
        self.fx.push(Effect::CloseListener);
        self.next_stage(0);
    }

    fn stage_workers(&self, stage: u32) -> Vec<WorkerId> {
        let role = if stage == 1 { Role::App } else { Role::Agent };
        self.workers
            .values()
            .filter(|w| w.role == role)
            .map(|w| w.id)
            .collect()
    }

    fn next_stage(&mut self, from: u32) {
        let mut stage = from + 1;
        while stage <= 2 && self.stage_workers(stage).is_empty() {
            stage += 1;
        }
        self.phase = ClusterPhase::Stopping { stage };
        if stage > 2 {
            return;
        }
        for id in self.stage_workers(stage) {
            self.ask_to_stop(id, Intent::Stop);
        }
    }

    fn stage_done_check(&mut self, stage: u32) {
        if stage <= 2 && self.stage_workers(stage).is_empty() {
            self.next_stage(stage);
        }
    }

    fn kill_all(&mut self) {
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            self.kill(id, Intent::Stop);
        }
    }
}

fn slot(role: Role, id: u32, tracker: RestartTracker) -> Slot {
    Slot {
        role,
        id,
        goal: Goal::Running,
        current: None,
        incoming: None,
        draining: Vec::new(),
        tracker,
        parked: false,
        restart_token: None,
        restarts: 0,
        restarts_by: [0; 3],
        last_exit: None,
    }
}

fn slot_name(role: Role, id: u32) -> String {
    match role {
        Role::Agent => "the agent".to_string(),
        Role::App => format!("app worker {id}"),
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
