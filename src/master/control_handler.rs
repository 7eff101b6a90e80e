//! The run loop's side of the control plane: answers a [`Call`] from the core's state,
//! carries out commands through the core (and kills and signals through each child's
//! owner), holds a command's answer until it is done, and turns what the loop handles into
//! `watch` events.
//!
//! Events cost nothing when nobody watches: none is built while the broadcast channel has
//! no receiver.

use super::core::{AGENT_SLOT, ClusterPhase, Command, Effect, Goal, Input, Intent, Phase, Slot};
use super::lifecycle::Cluster;
use super::owner::Order;
use super::worker::{Role, WorkerId};
use crate::control::procinfo::{self, ms};
use crate::control::{Answer, Call, Caller, Cmd, Scale, Target};
use crate::sys::process::{Exit, Signal};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, oneshot};

/// Events a slow watcher may fall behind by before it is told it missed some.
const WATCH_BACKLOG: usize = 1024;

/// The control plane's state in the run loop.
pub(crate) struct ControlState {
    events: broadcast::Sender<Arc<str>>,
    seq: u64,
    started: Instant,
    /// Commands taken whose answer waits until they are done.
    pending: Vec<Pending>,
    /// Each slot's restart count when last seen, to tell a restart from a first start.
    restarts_seen: HashMap<u32, u32>,
}

impl Default for ControlState {
    fn default() -> ControlState {
        ControlState {
            events: broadcast::channel(WATCH_BACKLOG).0,
            seq: 0,
            started: Instant::now(),
            pending: Vec::new(),
            restarts_seen: HashMap::new(),
        }
    }
}

/// A command in progress: what it waits for, and whom to answer.
struct Pending {
    what: String,
    caller: Caller,
    since: Instant,
    /// New workers that must be ready (and their slot's old workers gone).
    ready: Vec<(u32, WorkerId)>,
    /// Slots that must be left with no worker.
    empty: Vec<u32>,
    /// Whether it is a scale (only one at a time).
    scale: bool,
    /// Parts refused when it was taken.
    refused: Vec<String>,
    reply: oneshot::Sender<Answer>,
}

/// What an input was about, noted before the core handles it.
pub(super) enum Seen {
    Exited { slot: u32, parked: bool },
}

impl Cluster {
    /// Answers `call` now, or holds the answer until the command is done.
    pub(super) fn control(&mut self, call: Call, reply: oneshot::Sender<Answer>) {
        let Call { cmd, caller } = call;
        let result = match &cmd {
            Cmd::List => Ok(self.list()),
            Cmd::Inspect(t) => self.inspect(*t),
            Cmd::Stats { top } => Ok(self.stats(*top)),
            Cmd::Logs {
                target,
                lines,
                follow,
            } => match &self.output {
                None => Err(NOT_CAPTURED.to_string()),
                Some(output) => {
                    let target = *target;
                    let lines = output.last(*lines, |l| l.is_of(target));
                    let follow = follow.then(|| (target, output.subscribe()));
                    let _ = reply.send(Answer::Logs { lines, follow });
                    return;
                }
            },
            Cmd::Request { line, timeout } => {
                let (tx, rx) = oneshot::channel();
                self.audit(&caller, &describe(&cmd), &Ok(Value::Null));
                self.messenger.request_from_handle(line, tx);
                let _ = reply.send(Answer::Reply {
                    reply: rx,
                    timeout: *timeout,
                });
                return;
            }
            Cmd::Watch => {
                let _ = reply.send(Answer::Watch {
                    snapshot: self.list(),
                    events: self.control.events.subscribe(),
                });
                return;
            }
            Cmd::Kill(t, sig) => self.signal_workers(*t, *sig, true),
            Cmd::Signal(sig, t) => self.signal_workers(*t, *sig, false),
            Cmd::Send(line) => Ok(self.send_as_parent(line)),
            Cmd::Shutdown => {
                self.input(Input::Shutdown);
                Ok(json!("stopping"))
            }
            Cmd::Reload { batch, surge } => {
                let batch = batch.of(self.core.desired_workers());
                let (progress, events) = tokio::sync::mpsc::unbounded_channel();
                self.reload_progress.push(progress);
                match self.reload(batch, *surge) {
                    Ok(()) => {
                        self.audit(&caller, &describe(&cmd), &Ok(json!(batch)));
                        let _ = reply.send(Answer::Reload(events));
                        return;
                    }
                    Err(e) => {
                        self.reload_progress.pop();
                        Err(e)
                    }
                }
            }
            Cmd::Restart(_) | Cmd::Stop(_) | Cmd::Start(_) | Cmd::Scale(_) => {
                match self.take(&cmd, &caller) {
                    Ok(p) => {
                        self.control.pending.push(Pending { reply, ..p });
                        self.settle();
                        return;
                    }
                    Err(e) => Err(e),
                }
            }
        };
        if cmd.changes_state() {
            self.audit(&caller, &describe(&cmd), &result);
        }
        let _ = reply.send(Answer::Done(result));
    }

    fn audit(&mut self, caller: &Caller, what: &str, result: &Result<Value, String>) {
        let outcome = match result {
            Ok(_) => "done".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        tracing::info!(target: "clutch::audit", "audit: {caller} {what}: {outcome}");
        self.emit(|| {
            json!({"event": "ctl.command", "uid": caller.uid, "user": caller.name, "web": caller.web,
                   "command": what, "ok": result.is_ok(), "result": outcome})
        });
    }

    /// The slots a target names, for restart, stop and start.
    fn slots_of(&self, target: Target) -> Result<Vec<u32>, String> {
        let live = |s: &&Slot| s.goal != Goal::Removed;
        let ids: Vec<u32> = match target {
            Target::All => self.core.slots().filter(live).map(|s| s.id).collect(),
            Target::App => self
                .core
                .slots()
                .filter(live)
                .filter(|s| s.role == Role::App)
                .map(|s| s.id)
                .collect(),
            Target::Agent => {
                if !self.core.slots().any(|s| s.id == AGENT_SLOT) {
                    return Err("this cluster has no agent".into());
                }
                vec![AGENT_SLOT]
            }
            Target::Slot(id) => vec![id],
            Target::Pid(pid) => vec![
                self.core
                    .workers()
                    .find(|w| w.pid == Some(pid))
                    .ok_or_else(|| format!("no live worker has pid {pid}"))?
                    .slot,
            ],
        };
        Ok(ids)
    }

    /// Takes a restart, stop, start or scale: refused when it conflicts with one in
    /// progress, else carried out, with what it must wait for.
    fn take(&mut self, cmd: &Cmd, caller: &Caller) -> Result<Pending, String> {
        let what = describe(cmd);
        let (dummy, _) = oneshot::channel();
        let mut p = Pending {
            what: what.clone(),
            caller: caller.clone(),
            since: Instant::now(),
            ready: Vec::new(),
            empty: Vec::new(),
            scale: matches!(cmd, Cmd::Scale(_)),
            refused: Vec::new(),
            reply: dummy,
        };
        let refuse = |this: &mut Cluster, e: String| {
            this.audit(caller, &what, &Err(e.clone()));
            e
        };
        if let Cmd::Scale(by) = cmd {
            if let Some(busy) = self.control.pending.iter().find(|q| q.scale) {
                return Err(refuse(self, in_progress(busy)));
            }
            let now = self.core.desired_workers();
            let to = match *by {
                Scale::To(n) => n,
                Scale::Up(k) => now + k,
                Scale::Down(k) => now.saturating_sub(k),
            };
            let before: Vec<u32> = self.app_slots();
            if let Err(e) = self.command(Command::Scale { workers: to }) {
                return Err(refuse(self, e));
            }
            let after: Vec<u32> = self.app_slots();
            for id in after.iter().filter(|id| !before.contains(id)) {
                if let Some(w) = self
                    .core
                    .slots()
                    .find(|s| s.id == *id)
                    .and_then(|s| s.current)
                {
                    p.ready.push((*id, w));
                }
            }
            p.empty = before
                .into_iter()
                .filter(|id| !after.contains(id))
                .collect();
            self.emit(|| json!({"event": "cluster.scaled", "from": now, "to": to}));
            return Ok(p);
        }
        let target = match cmd {
            Cmd::Restart(t) | Cmd::Stop(t) | Cmd::Start(t) => *t,
            _ => unreachable!("take is for restart, stop, start and scale"),
        };
        let slots = self.slots_of(target).map_err(|e| refuse(self, e))?;
        for &slot in &slots {
            if let Some(busy) = self
                .control
                .pending
                .iter()
                .find(|q| q.ready.iter().any(|(s, _)| *s == slot) || q.empty.contains(&slot))
            {
                return Err(refuse(self, format!("slot {slot}: {}", in_progress(busy))));
            }
        }
        for slot in slots {
            let command = match cmd {
                Cmd::Restart(_) => Command::Restart { slot },
                Cmd::Stop(_) => Command::Stop { slot },
                _ => Command::Start { slot },
            };
            match self.command(command) {
                Err(e) => p.refused.push(e),
                Ok(()) => {
                    let s = self.core.slots().find(|s| s.id == slot);
                    match (cmd, s) {
                        (Cmd::Stop(_), _) => p.empty.push(slot),
                        (_, Some(s)) => {
                            if let Some(w) = s.incoming.or(s.current) {
                                p.ready.push((slot, w));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        if p.ready.is_empty() && p.empty.is_empty() {
            let e = p.refused.join("; ");
            return Err(refuse(self, e));
        }
        Ok(p)
    }

    fn app_slots(&self) -> Vec<u32> {
        self.core
            .slots()
            .filter(|s| s.role == Role::App && s.goal != Goal::Removed)
            .map(|s| s.id)
            .collect()
    }

    /// Answers the commands that are done (or can no longer be).
    fn settle(&mut self) {
        if self.control.pending.is_empty() {
            return;
        }
        let stopping = matches!(self.core.phase(), ClusterPhase::Stopping { .. });
        let pending = std::mem::take(&mut self.control.pending);
        for p in pending {
            let result = if stopping {
                Some(Err("the cluster is stopping".to_string()))
            } else {
                self.outcome(&p)
            };
            match result {
                None => self.control.pending.push(p),
                Some(mut result) => {
                    if result.is_ok() && !p.refused.is_empty() {
                        result = Err(p.refused.join("; "));
                    }
                    self.audit(&p.caller, &p.what, &result);
                    let _ = p.reply.send(Answer::Done(result));
                }
            }
        }
    }

    /// `None` while the command is still under way.
    fn outcome(&self, p: &Pending) -> Option<Result<Value, String>> {
        for &(slot, w) in &p.ready {
            let Some(worker) = self.core.worker(w) else {
                return Some(Err(format!(
                    "the new worker in slot {slot} exited before it was ready (see the \
                     master's log; `clutch ctl list` shows its exit)"
                )));
            };
            let s = self.core.slots().find(|s| s.id == slot);
            let old_gone = s.is_none_or(|s| s.draining.is_empty() && s.incoming.is_none());
            if worker.phase != Phase::Ready || !old_gone {
                return None;
            }
        }
        for &slot in &p.empty {
            if let Some(s) = self.core.slots().find(|s| s.id == slot)
                && (s.current.is_some() || s.incoming.is_some() || !s.draining.is_empty())
            {
                return None;
            }
        }
        let slots: Vec<u32> = p
            .ready
            .iter()
            .map(|(s, _)| *s)
            .chain(p.empty.iter().copied())
            .collect();
        Some(Ok(json!({"command": p.what, "slots": slots,
                       "took_ms": ms(p.since.elapsed())})))
    }

    /// Carries out a core command and what it leads to.
    fn signal_workers(
        &mut self,
        target: Target,
        sig: Signal,
        group: bool,
    ) -> Result<Value, String> {
        let workers: Vec<(WorkerId, u32)> = self
            .core
            .workers()
            .filter(|w| match target {
                Target::All => true,
                Target::App => w.role == Role::App,
                Target::Agent => w.role == Role::Agent,
                Target::Slot(id) => w.slot == id,
                Target::Pid(pid) => w.pid == Some(pid),
            })
            .filter_map(|w| Some((w.id, w.pid?)))
            .collect();
        if workers.is_empty() {
            return Err(format!("no live worker matches `{target}`"));
        }
        let mut pids = Vec::new();
        for (w, pid) in workers {
            if let Some(owned) = self.owned.get(&w) {
                let _ = owned.orders.send(Order::Signal { signal: sig, group });
                pids.push(pid);
            }
        }
        Ok(json!({"signal": sig.as_str(), "pids": pids}))
    }

    fn send_as_parent(&mut self, line: &[u8]) -> Value {
        use super::messenger::{Outcome, Source};
        let src = Source {
            endpoint: crate::protocol::Endpoint::Parent,
            worker: None,
            outbox: None,
        };
        match self.messenger.route(&src, line) {
            Outcome::Routed(n) => json!({"delivered": n}),
            Outcome::ToMaster(msg) => {
                self.messenger.deliver_to_handle(msg);
                json!({"delivered": 1})
            }
            Outcome::Bad(why) => json!({"delivered": 0, "dropped": why}),
            _ => json!({"delivered": 0}),
        }
    }

    fn list(&self) -> Value {
        let info = self.core.info();
        let state = match self.core.phase() {
            ClusterPhase::Starting => "starting",
            ClusterPhase::Ready => "ready",
            ClusterPhase::Stopping { .. } => "stopping",
        };
        let mut rows = Vec::new();
        let uptime = procinfo::system_uptime().unwrap_or(0.0);
        for s in self.core.slots() {
            let ids: Vec<WorkerId> = s
                .current
                .iter()
                .chain(&s.incoming)
                .chain(&s.draining)
                .copied()
                .collect();
            for id in &ids {
                if let Some(w) = self.core.worker(*id) {
                    let usage = w.pid.and_then(|p| procinfo::usage(p, uptime));
                    rows.push(json!({
                        "id": s.id,
                        "role": w.role.as_str(),
                        "pid": w.pid,
                        "state": match w.phase {
                            Phase::Starting => "starting",
                            Phase::Ready => "ready",
                            Phase::Stopping => "stopping",
                        },
                        "generation": w.generation,
                        "ready": w.phase == Phase::Ready,
                        "uptime_ms": ms(w.spawned.elapsed()),
                        "restarts": s.restarts,
                        "cpu_percent": usage.map(|u| u.cpu_percent),
                        "rss_bytes": usage.map(|u| u.rss_bytes),
                        "last_exit": s.last_exit.map(exit_json),
                    }));
                }
            }
            if ids.is_empty() {
                let state = if s.parked {
                    "parked"
                } else if s.restart_token.is_some() {
                    "starting"
                } else {
                    "stopped"
                };
                rows.push(json!({
                    "id": s.id, "role": s.role.as_str(), "pid": null, "state": state,
                    "generation": null, "ready": false, "uptime_ms": null,
                    "restarts": s.restarts, "cpu_percent": null, "rss_bytes": null,
                    "last_exit": s.last_exit.map(exit_json),
                }));
            }
        }
        json!({
            "cluster": {
                "name": self.core.settings().name,
                "pid": std::process::id(),
                "state": state,
                "generation": self.core.generation(),
                "workers": info.workers,
                "port": info.port,
                "sticky": info.sticky,
                "sticky_mode": info.sticky_mode,
                "uptime_ms": ms(self.control.started.elapsed()),
            },
            "workers": rows,
        })
    }

    fn inspect(&self, target: Target) -> Result<Value, String> {
        let slots = self.slots_of(target)?;
        let [slot_id] = slots[..] else {
            return Err(format!(
                "`inspect {target}` names {} slots; name one (a slot id or pid:PID)",
                slots.len()
            ));
        };
        let s = self
            .core
            .slots()
            .find(|s| s.id == slot_id)
            .ok_or_else(|| format!("there is no slot {slot_id}"))?;
        let command = match s.role {
            Role::Agent => self.core.settings().agent.clone().unwrap_or_default(),
            Role::App => self.core.settings().app.clone().unwrap_or_default(),
        };
        let workers: Vec<Value> = s
            .current
            .iter()
            .chain(&s.incoming)
            .chain(&s.draining)
            .filter_map(|id| self.core.worker(*id))
            .map(|w| {
                let pid = w.pid;
                let usage = pid.and_then(|p| procinfo::usage(p, procinfo::system_uptime()?));
                let env = pid.and_then(procinfo::environment).map(|env| {
                    env.into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect::<serde_json::Map<_, _>>()
                });
                json!({
                    "worker": w.id.0,
                    "pid": pid,
                    "generation": w.generation,
                    "state": format!("{:?}", w.phase).to_lowercase(),
                    "intent": w.intent.map(intent_str),
                    "uptime_ms": ms(w.spawned.elapsed()),
                    "channel_closed": w.channel_closed,
                    "is": if s.current == Some(w.id) { "current" }
                          else if s.incoming == Some(w.id) { "incoming" } else { "draining" },
                    "command": command,
                    "env": env,
                    "fds": pid.and_then(procinfo::open_fds),
                    "cpu_percent": usage.map(|u| u.cpu_percent),
                    "rss_bytes": usage.map(|u| u.rss_bytes),
                    "monitor": self.monitor_data(w.id),
                })
            })
            .collect();
        Ok(json!({
            "slot": {
                "id": s.id,
                "role": s.role.as_str(),
                "goal": format!("{:?}", s.goal).to_lowercase(),
                "parked": s.parked,
                "restart_pending": s.restart_token.is_some(),
                "restarts": s.restarts,
                "last_exit": s.last_exit.map(exit_json),
                "sticky": self.sticky_json(s.id, s.role),
            },
            "command": command,
            "workers": workers,
        }))
    }

    /// The monitor's latest sample of the worker, with what it pushed (`clutch:monitor`).
    pub(super) fn monitor_data(&self, worker: WorkerId) -> Option<Value> {
        let sample = self.messenger.monitor().sample(worker)?;
        serde_json::to_value(sample).ok()
    }

    fn stats(&self, top: usize) -> Value {
        use super::metrics::{DropReason, ExitReason, RestartReason};
        let m = self.messenger.metrics().snapshot();
        let actions = self.messenger.metrics().actions(top);
        let by = |names: &mut dyn Iterator<Item = &'static str>, counts: &[u64]| {
            names
                .zip(counts)
                .map(|(n, c)| (n.to_string(), json!(c)))
                .collect::<serde_json::Map<_, _>>()
        };
        json!({
            "messages_routed": m.routed,
            "messages_dropped": by(&mut DropReason::ALL.iter().map(|r| r.as_str()), &m.dropped),
            "connections_handed_off": m.handed_off,
            "restarts": by(&mut RestartReason::ALL.iter().map(|r| r.as_str()), &m.restarts),
            "exits": by(&mut ExitReason::ALL.iter().map(|r| r.as_str()), &m.exits),
            "messages_by_action": {
                "top": actions.top.iter().map(|(a, n)| json!({"action": a, "count": n}))
                    .collect::<Vec<_>>(),
                "distinct": actions.distinct,
                "other": actions.other,
            },
            "log_lines_dropped": crate::log::dropped_lines(),
            "output_chunks_dropped": self.output.as_ref()
                .map(|_| crate::master::output::dropped_chunks()),
            "requests_in_flight": self.messenger.requests_in_flight(),
        })
    }

    /// Sends one watch event (built only when somebody watches).
    fn emit(&mut self, event: impl FnOnce() -> Value) {
        if self.control.events.receiver_count() == 0 {
            return;
        }
        self.control.seq += 1;
        let mut ev = event();
        let time_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, ms);
        ev["seq"] = json!(self.control.seq);
        ev["time_ms"] = json!(time_ms);
        let _ = self.control.events.send(Arc::from(ev.to_string()));
    }

    fn worker_json(&self, id: WorkerId) -> Value {
        match self.core.worker(id) {
            Some(w) => json!({"slot": w.slot, "role": w.role.as_str(), "pid": w.pid,
                              "generation": w.generation}),
            None => json!({}),
        }
    }

    /// Before the core handles `input`: what to compare after it.
    pub(super) fn control_before(&mut self, input: &Input) -> Option<Seen> {
        if self.control.events.receiver_count() == 0 {
            return None;
        }
        match input {
            Input::Spawned { worker, pid } => {
                let mut ev = self.worker_json(*worker);
                ev["event"] = json!("worker.spawned");
                ev["pid"] = json!(pid);
                self.emit(|| ev);
                None
            }
            // The core takes a readiness only from a live worker that is starting; the
            // event goes before the effects it leads to (the old worker's stop).
            Input::Ready { worker } | Input::Timer(super::core::Timer::ReadyDelay(worker)) => {
                if self
                    .core
                    .worker(*worker)
                    .is_some_and(|w| w.phase == Phase::Starting)
                {
                    let mut ev = self.worker_json(*worker);
                    ev["event"] = json!("worker.ready");
                    self.emit(|| ev);
                }
                None
            }
            Input::Exited { worker, exit } => {
                let w = self.core.worker(*worker)?.clone();
                let parked = self.core.slots().find(|s| s.id == w.slot)?.parked;
                self.emit(|| {
                    json!({"event": "worker.exited", "slot": w.slot, "role": w.role.as_str(),
                           "pid": w.pid, "generation": w.generation, "code": exit.code,
                           "signal": exit.signal_name(),
                           "reason": w.intent.map_or("unexpected", intent_str)})
                });
                Some(Seen::Exited {
                    slot: w.slot,
                    parked,
                })
            }
            _ => None,
        }
    }

    /// After the core handled an input: the events it led to, and the commands it finished.
    pub(super) fn control_after(&mut self, seen: Option<Seen>) {
        if let Some(Seen::Exited {
            slot,
            parked: false,
        }) = seen
            && self.core.slots().any(|s| s.id == slot && s.parked)
        {
            self.emit(|| json!({"event": "worker.parked", "slot": slot}));
        }
        self.settle();
    }

    /// Before an effect is carried out: the event it is.
    pub(super) fn control_effect(&mut self, effect: &Effect) {
        match effect {
            Effect::Spawn { slot, .. } => {
                let restarts = self
                    .core
                    .slots()
                    .find(|s| s.id == *slot)
                    .map_or(0, |s| s.restarts);
                let seen = self
                    .control
                    .restarts_seen
                    .insert(*slot, restarts)
                    .unwrap_or(0);
                if restarts > seen {
                    self.emit(|| {
                        json!({"event": "worker.restarted", "slot": slot,
                                        "restarts": restarts})
                    });
                }
            }
            Effect::Stop { worker, .. } | Effect::Kill { worker }
                if self.control.events.receiver_count() > 0 =>
            {
                let mut ev = self.worker_json(*worker);
                ev["event"] = json!("worker.stopping");
                ev["intent"] = json!(
                    self.core
                        .worker(*worker)
                        .and_then(|w| w.intent)
                        .map(intent_str)
                );
                ev["kill"] = json!(matches!(effect, Effect::Kill { .. }));
                self.emit(|| ev);
            }
            Effect::ClusterReady(info) => {
                let workers = info.workers;
                self.emit(|| json!({"event": "cluster.ready", "workers": workers}));
            }
            Effect::Reload(event) => self.emit(|| super::reload_json(event)),
            _ => {}
        }
    }
}

/// What `ctl logs` says when the master does not read its workers' output.
pub(crate) const NOT_CAPTURED: &str = "logs are not captured: this master's workers write \
     to its own stdout and stderr (--output inherit); start it with `--output prefix` (or \
     \"output\": \"prefix\" in its config file) for `clutch ctl logs`";

fn in_progress(p: &Pending) -> String {
    format!(
        "`{}` asked by {} is still in progress ({} ms); wait for it, or watch it with \
         `clutch ctl watch`",
        p.what,
        p.caller,
        p.since.elapsed().as_millis()
    )
}

fn describe(cmd: &Cmd) -> String {
    match cmd {
        Cmd::Inspect(t) | Cmd::Restart(t) | Cmd::Stop(t) | Cmd::Start(t) => {
            format!("{} {t}", cmd.name())
        }
        Cmd::Scale(Scale::To(n)) => format!("scale {n}"),
        Cmd::Scale(Scale::Up(k)) => format!("scale +{k}"),
        Cmd::Scale(Scale::Down(k)) => format!("scale -{k}"),
        Cmd::Kill(t, s) => format!("kill {t} --signal {}", s.as_str()),
        Cmd::Signal(s, t) => format!("signal {} {t}", s.as_str()),
        Cmd::Reload { batch, surge } => {
            let batch = match batch {
                super::super::control::Batch::Count(n) => n.to_string(),
                super::super::control::Batch::Percent(p) => format!("{p}%"),
            };
            match surge {
                Some(s) => format!("reload --batch {batch} --surge {s}"),
                None => format!("reload --batch {batch}"),
            }
        }
        Cmd::Send(line) | Cmd::Request { line, .. } => format!(
            "{} {}",
            cmd.name(),
            String::from_utf8_lossy(&line[..line.len().min(200)])
        ),
        other => other.name().to_string(),
    }
}

fn intent_str(i: Intent) -> &'static str {
    match i {
        Intent::Stop => "stop",
        Intent::Replace => "replace",
        Intent::Retire => "retire",
        Intent::Recover => "recover",
        Intent::Abandon => "abandon",
    }
}

fn exit_json(e: Exit) -> Value {
    json!({"code": e.code, "signal": e.signal_name()})
}

impl Cluster {
    /// How the slot's sticky clients reach it (`null` for the agent or without `--sticky`).
    fn sticky_json(&self, slot: u32, role: Role) -> Value {
        let mode = self.core.info().sticky_mode;
        match (&self.steered, mode, role) {
            (Some(steered), Some(mode), Role::App) => {
                let (live, position, buckets) = steered.slot_view(slot);
                json!({"mode": mode, "live": live, "position": position, "buckets": buckets})
            }
            (None, Some(mode), Role::App) => json!({"mode": mode}),
            _ => Value::Null,
        }
    }
}
