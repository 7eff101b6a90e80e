//! Rolling reload, as transitions of the [`Core`]: the generation goes up, then slot by
//! slot (`batch` at a time) a new worker starts beside the old one, and only once it is
//! ready does it take the slot and the old one stop gracefully; capacity never drops
//! below the ready workers the cluster had. The app slots go first, in id order, then the
//! agent: the apps keep talking to the old agent until the new one is ready, and are told
//! `cluster-pids` of the new agent as on any agent restart.
//!
//! A new worker that fails (spawn error, exit before ready, ready timeout) aborts the
//! reload: it is stopped, the slots not yet reached keep their old workers, the slots
//! already reloaded stay on the new generation, and nothing is retried.

use super::{Command, Core, Effect, Goal};
use crate::master::worker::{Role, WorkerId};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A reload in progress.
#[derive(Debug, Clone)]
pub struct Reload {
    pub generation: u64,
    pub batch: usize,
    /// Slots still to reload, in order.
    pending: VecDeque<u32>,
    /// Slots whose new worker is starting, and when it was spawned.
    in_flight: Vec<(u32, WorkerId, Instant)>,
    /// Slots done so far.
    pub done: usize,
    /// Slots to reload in all.
    pub total: usize,
    started: Instant,
}

/// What a reload reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadEvent {
    /// The reload began: `slots` slots to `generation`.
    Started { generation: u64, slots: usize },
    /// A slot's new worker is ready and took the slot: the `index`-th of `total`.
    Slot {
        slot: u32,
        role: Role,
        index: usize,
        total: usize,
        generation: u64,
        ready_in: Duration,
    },
    /// Every slot runs the new generation.
    Completed { generation: u64, took: Duration },
    /// Stopped half-way; `reason` says why and which slots were reloaded.
    Aborted { generation: u64, reason: String },
}

impl Core {
    /// The reload in progress, if any.
    #[cfg_attr(not(test), allow(dead_code))] // read by the control plane
    pub fn reload(&self) -> Option<&Reload> {
        self.reload.as_ref()
    }

    /// What a command must wait for: a reload in progress refuses the others.
    pub(super) fn refuse_during_reload(&self, cmd: &Command) -> Result<(), String> {
        match &self.reload {
            Some(r) => Err(format!(
                "a reload to generation {} is in progress ({} of {} slots done); {} after it",
                r.generation,
                r.done,
                r.total,
                match cmd {
                    Command::Reload { .. } => "reload again",
                    _ => "try again",
                }
            )),
            None => Ok(()),
        }
    }

    pub(super) fn start_reload(&mut self, now: Instant, batch: usize) -> Result<(), String> {
        let batch = batch.max(1);
        let mut pending: VecDeque<u32> = self
            .slots
            .values()
            .filter(|s| s.role == Role::App && s.goal == Goal::Running && s.current.is_some())
            .map(|s| s.id)
            .collect();
        if let Some(agent) = self.slots.get(&super::AGENT_SLOT)
            && agent.current.is_some()
        {
            pending.push_back(agent.id);
        }
        if pending.is_empty() {
            return Err("no slot has a worker to reload".into());
        }
        self.generation += 1;
        let total = pending.len();
        tracing::info!(
            "reloading {total} slot(s) to generation {}, {batch} at a time",
            self.generation
        );
        self.reload = Some(Reload {
            generation: self.generation,
            batch,
            pending,
            in_flight: Vec::new(),
            done: 0,
            total,
            started: now,
        });
        self.fx.push(Effect::Reload(ReloadEvent::Started {
            generation: self.generation,
            slots: total,
        }));
        self.reload_next(now);
        Ok(())
    }

    /// Starts new workers until `batch` are in flight.
    fn reload_next(&mut self, now: Instant) {
        loop {
            let Some(r) = &mut self.reload else { return };
            if r.in_flight.len() >= r.batch {
                return;
            }
            let Some(slot) = r.pending.pop_front() else {
                if r.in_flight.is_empty() {
                    let (generation, took) = (r.generation, now.duration_since(r.started));
                    tracing::info!(
                        "reload to generation {generation} completed in {} ms",
                        took.as_millis()
                    );
                    self.reload = None;
                    self.fx
                        .push(Effect::Reload(ReloadEvent::Completed { generation, took }));
                    self.fx.push(Effect::Publish);
                }
                return;
            };
            let runnable = self
                .slots
                .get(&slot)
                .is_some_and(|s| s.goal == Goal::Running && !s.parked && s.incoming.is_none());
            if !runnable {
                // Stopped or removed since the reload began: nothing to replace.
                let r = self.reload.as_mut().expect("checked");
                r.total -= 1;
                continue;
            }
            let replacement = self.slots[&slot].current.is_some();
            let id = self.spawn(now, slot, replacement);
            let r = self.reload.as_mut().expect("checked");
            r.in_flight.push((slot, id, now));
        }
    }

    /// `worker` took slot `slot` (it was ready): if the reload started it, the next goes.
    pub(super) fn reload_ready(&mut self, now: Instant, worker: WorkerId) {
        let Some(r) = &mut self.reload else { return };
        let Some(i) = r.in_flight.iter().position(|(_, w, _)| *w == worker) else {
            return;
        };
        let (slot, _, spawned) = r.in_flight.remove(i);
        r.done += 1;
        let role = self.slots.get(&slot).map_or(Role::App, |s| s.role);
        let event = ReloadEvent::Slot {
            slot,
            role,
            index: r.done,
            total: r.total,
            generation: r.generation,
            ready_in: now.duration_since(spawned),
        };
        tracing::info!(
            "reload: slot {slot} ({} of {}) on generation {} in {} ms",
            r.done,
            r.total,
            r.generation,
            now.duration_since(spawned).as_millis()
        );
        self.fx.push(Effect::Reload(event));
        self.reload_next(now);
    }

    /// A worker the reload started failed before it was ready: abort.
    pub(super) fn reload_failed(&mut self, worker: WorkerId, why: &str) {
        let Some(r) = &self.reload else { return };
        if !r.in_flight.iter().any(|(_, w, _)| *w == worker) {
            return;
        }
        let slot = r
            .in_flight
            .iter()
            .find(|(_, w, _)| *w == worker)
            .map(|(s, _, _)| *s)
            .expect("found above");
        let reason = format!(
            "the new worker of slot {slot} {why}; {} of {} slot(s) are on generation {}, the \
             others keep their old workers",
            r.done, r.total, r.generation
        );
        self.abort_reload(reason, false);
    }

    /// Stops the reload where it is: the new workers still starting are stopped, unless
    /// `shutdown` stops everything anyway (apps first, then the agent).
    pub(super) fn abort_reload(&mut self, reason: String, shutdown: bool) {
        let Some(r) = self.reload.take() else { return };
        tracing::error!("reload to generation {} aborted: {reason}", r.generation);
        for (slot, w, _) in r.in_flight.iter().filter(|_| !shutdown) {
            // A new worker that became its slot's only one (the old one died meanwhile)
            // stays: stopping it would leave the slot empty.
            let replacing = self.slots.get(slot).is_some_and(|s| s.incoming == Some(*w));
            if replacing {
                self.ask_to_stop(*w, super::Intent::Abandon);
            }
        }
        self.fx.push(Effect::Reload(ReloadEvent::Aborted {
            generation: r.generation,
            reason,
        }));
        self.fx.push(Effect::Publish);
    }
}

/// A reload event as `ctl reload` and `ctl watch` show it.
pub fn reload_json(e: &ReloadEvent) -> serde_json::Value {
    use serde_json::json;
    match e {
        ReloadEvent::Started { generation, slots } => {
            json!({"event": "reload.started", "generation": generation, "slots": slots})
        }
        ReloadEvent::Slot {
            slot,
            role,
            index,
            total,
            generation,
            ready_in,
        } => json!({"event": "reload.slot", "slot": slot, "role": role.as_str(),
                    "index": index, "total": total, "generation": generation,
                    "ready_ms": ready_in.as_millis() as u64}),
        ReloadEvent::Completed { generation, took } => json!({"event": "reload.completed",
                    "generation": generation, "took_ms": took.as_millis() as u64}),
        ReloadEvent::Aborted { generation, reason } => json!({"event": "reload.aborted",
                    "generation": generation, "reason": reason}),
    }
}
