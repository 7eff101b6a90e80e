//! Rolling reload, as transitions of the [`Core`]: the generation goes up, then slot by
//! slot (`batch` at a time) a new worker starts beside the old one, and only once it is
//! ready does it take the slot and the old one stop gracefully; capacity never drops
//! below the ready workers the cluster had. The app slots go first, in id order, then the
//! agent: the apps keep talking to the old agent until the new one is ready, and are told
//! `cluster-pids` of the new agent as on any agent restart.
//!
//! `batch` is how many new workers may be starting (not ready yet) at once; `surge`, when
//! set, is how many workers beyond one per slot may be alive at once, counting the old
//! ones still stopping: a new worker then waits for an old one to exit, so the master never
//! runs more than slots + surge workers (memory stays bounded while old ones drain).
//!
//! A reload may bring new settings (`--config` re-read by the shell): they are compared
//! with the running ones first ([`crate::config::diff`]), and a change only a restart of
//! the master can make refuses the reload with nothing changed. Otherwise the new
//! generation starts with them, and `reload.started` says what changed.
//!
//! A new worker that fails (spawn error, exit before ready, ready timeout) aborts the
//! reload: it is stopped, the slots not yet reached keep their old workers, the slots
//! already reloaded stay on the new generation, and nothing is retried.

use super::{Command, Core, Effect, Goal};
use crate::config::Settings;
use crate::config::diff::{self, Change};
use crate::master::worker::{Role, WorkerId};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A reload in progress.
#[derive(Debug, Clone)]
pub struct Reload {
    pub generation: u64,
    pub batch: usize,
    /// At most this many workers beyond one per slot alive at once.
    pub surge: Option<usize>,
    /// Slots still to reload, in order.
    pending: VecDeque<u32>,
    /// Slots whose new worker is starting, and when it was spawned.
    in_flight: Vec<(u32, WorkerId, Instant)>,
    /// The settings from before, when the reload brought new ones: back if it aborts.
    previous: Option<Box<Settings>>,
    /// Slots done so far.
    pub done: usize,
    /// Slots to reload in all.
    pub total: usize,
    started: Instant,
}

/// What a reload reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadEvent {
    /// The reload began: `slots` slots to `generation`, with these settings changed.
    Started {
        generation: u64,
        slots: usize,
        changes: Vec<Change>,
    },
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

    /// A reload whose new generation runs with `fresh` settings (the config re-read):
    /// refused with nothing changed when the cluster cannot take a command now, or when
    /// `fresh` changes what only a restart of the master can.
    pub fn reload_with(
        &mut self,
        now: Instant,
        batch: usize,
        surge: Option<usize>,
        fresh: Settings,
    ) -> Result<Vec<Effect>, String> {
        self.can_take(&Command::Reload { batch, surge })?;
        self.start_reload(now, batch, surge, Some(fresh))?;
        Ok(std::mem::take(&mut self.fx))
    }

    pub(super) fn start_reload(
        &mut self,
        now: Instant,
        batch: usize,
        surge: Option<usize>,
        fresh: Option<Settings>,
    ) -> Result<(), String> {
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
        let (changes, previous) = match fresh {
            Some(fresh) => self.adopt(fresh)?,
            None => (Vec::new(), None),
        };
        // Zero would never start a new worker beside an old one; 1 is the least.
        let surge = surge.or(self.settings.surge).map(|s| s.max(1));
        self.generation += 1;
        let total = pending.len();
        tracing::info!(
            "reloading {total} slot(s) to generation {}, {batch} at a time{}",
            self.generation,
            surge.map_or(String::new(), |s| format!(
                ", at most {s} extra worker(s) alive"
            ))
        );
        for change in &changes {
            tracing::info!("reload to generation {}: {change}", self.generation);
        }
        self.reload = Some(Reload {
            generation: self.generation,
            batch,
            surge,
            previous,
            pending,
            in_flight: Vec::new(),
            done: 0,
            total,
            started: now,
        });
        self.fx.push(Effect::Reload(ReloadEvent::Started {
            generation: self.generation,
            slots: total,
            changes,
        }));
        self.reload_next(now);
        Ok(())
    }

    /// Takes the settings a reload re-read, if a reload can: what changed and the settings
    /// they replace (when any changed), or why not. The number of app slots stays (`scale`
    /// changes it).
    fn adopt(&mut self, fresh: Settings) -> Result<(Vec<Change>, Option<Box<Settings>>), String> {
        let running = Settings {
            workers: self.desired_workers(),
            ..self.settings.clone()
        };
        let changes = diff::diff(&running, &fresh);
        if let Some(why) = diff::needs_restart(&changes) {
            return Err(why);
        }
        if changes.is_empty() {
            return Ok((changes, None));
        }
        let workers = self.settings.workers;
        let previous = self.replace_settings(Settings { workers, ..fresh });
        Ok((changes, Some(Box::new(previous))))
    }

    /// Runs with `settings` from now on; returns the ones they replace.
    fn replace_settings(&mut self, settings: Settings) -> Settings {
        let previous = std::mem::replace(&mut self.settings, settings);
        for slot in self.slots.values_mut() {
            slot.tracker
                .set_limits(self.settings.restart_limit, self.settings.restart_window);
        }
        previous
    }

    /// Workers alive beyond one per slot: replacements starting, old workers stopping.
    fn extra_workers(&self) -> usize {
        self.slots
            .values()
            .map(|s| usize::from(s.incoming.is_some()) + s.draining.len())
            .sum()
    }

    /// Starts new workers while fewer than `batch` are starting and, with a surge, fewer
    /// than `surge` workers beyond one per slot are alive; completes the reload when no
    /// slot is left.
    pub(super) fn reload_next(&mut self, now: Instant) {
        loop {
            let extra = self.extra_workers();
            let Some(r) = &mut self.reload else { return };
            if r.pending.is_empty() {
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
            }
            let room = r.in_flight.len() < r.batch && r.surge.is_none_or(|s| extra < s);
            if !room || self.phase != super::ClusterPhase::Ready {
                return;
            }
            let slot = r.pending.pop_front().expect("not empty");
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
    ///
    /// Settings the reload brought are dropped for the ones from before: the slots not
    /// reached keep running as they were, and a crash restart there does not spread what
    /// the reload failed with. The slots already reloaded keep their new workers.
    pub(super) fn abort_reload(&mut self, mut reason: String, shutdown: bool) {
        let Some(r) = self.reload.take() else { return };
        if let Some(previous) = r.previous.filter(|_| !shutdown) {
            self.replace_settings(*previous);
            reason.push_str("; the settings from before the reload are back (for restarts too)");
        }
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
        ReloadEvent::Started {
            generation,
            slots,
            changes,
        } => {
            let changes: Vec<serde_json::Value> = changes.iter().map(Change::to_json).collect();
            json!({"event": "reload.started", "generation": generation, "slots": slots,
                   "changes": changes})
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
