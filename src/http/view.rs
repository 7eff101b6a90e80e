//! What the run loop answers an HTTP request with: the core's state at one moment, copied
//! into a few small rows (no strings, no /proc reads), so that answering costs the run
//! loop microseconds.

use crate::master::core::{ClusterPhase, Core, Phase};
use crate::master::worker::{Role, WorkerId};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The cluster as the run loop saw it when it answered.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) phase: ClusterPhase,
    /// App slots that should run.
    pub(crate) desired: usize,
    /// `--ready-minimum`, if given.
    pub(crate) ready_minimum: Option<usize>,
    /// Every slot, by id (the agent's is 0).
    pub(crate) slots: Vec<SlotView>,
    /// Live workers by role ([`ROLES`]) and phase ([`PHASES`]).
    pub(crate) workers: [[u64; 3]; 2],
}

/// One slot and the worker that serves it.
#[derive(Debug, Clone)]
pub(crate) struct SlotView {
    pub(crate) role: Role,
    pub(crate) id: u32,
    /// Workers started in the slot after the first (crash, operator, recycle).
    pub(crate) restarts: u32,
    pub(crate) current: Option<CurrentWorker>,
}

/// A slot's current worker.
#[derive(Debug, Clone)]
pub(crate) struct CurrentWorker {
    pub(crate) id: WorkerId,
    pub(crate) ready: bool,
    /// When it was spawned, in seconds since the Unix epoch.
    pub(crate) start_time: f64,
}

/// The roles in the order of [`View::workers`], with their label values.
pub(crate) const ROLES: [(Role, &str); 2] = [(Role::App, "app"), (Role::Agent, "agent")];
/// The worker phases in the order of [`View::workers`], with their label values.
pub(crate) const PHASES: [(Phase, &str); 3] = [
    (Phase::Starting, "starting"),
    (Phase::Ready, "ready"),
    (Phase::Stopping, "stopping"),
];

/// Why `/readyz` says no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotReady {
    Starting,
    Stopping,
    /// Fewer ready app workers than needed.
    Short { ready: usize, needed: usize },
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Starting => write!(f, "the cluster is starting"),
            NotReady::Stopping => write!(f, "the cluster is stopping"),
            NotReady::Short { ready, needed } => write!(
                f,
                "{ready} app worker(s) ready, {needed} needed"
            ),
        }
    }
}

fn label<T: PartialEq + Copy>(table: &[(T, &str)], v: T) -> usize {
    table.iter().position(|(t, _)| *t == v).expect("every value is in its table")
}

impl View {
    /// The view of `core` now.
    pub(crate) fn of(core: &Core) -> View {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let epoch = |spawned: Instant| {
            let at = wall
                .checked_sub(now.saturating_duration_since(spawned))
                .unwrap_or(wall);
            at.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
        };
        let mut workers = [[0; 3]; 2];
        for w in core.workers() {
            workers[label(&ROLES, w.role)][label(&PHASES, w.phase)] += 1;
        }
        let slots = core
            .slots()
            .map(|s| SlotView {
                role: s.role,
                id: s.id,
                restarts: s.restarts,
                current: s.current.and_then(|id| core.worker(id)).map(|w| CurrentWorker {
                    id: w.id,
                    ready: w.phase == Phase::Ready,
                    start_time: epoch(w.spawned),
                }),
            })
            .collect();
        View {
            phase: core.phase(),
            desired: core.desired_workers(),
            ready_minimum: core.settings().ready_minimum,
            slots,
            workers,
        }
    }

    /// App slots whose current worker is ready.
    pub(crate) fn ready_apps(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.role == Role::App && s.current.as_ref().is_some_and(|w| w.ready))
            .count()
    }

    /// `/readyz`: the cluster was ready once and is not stopping, and at least the ready
    /// minimum of app workers (`--ready-minimum`, at most the desired number; by default
    /// every desired app worker) is ready now.
    pub(crate) fn readiness(&self) -> Result<(), NotReady> {
        match self.phase {
            ClusterPhase::Starting => return Err(NotReady::Starting),
            ClusterPhase::Stopping { .. } => return Err(NotReady::Stopping),
            ClusterPhase::Ready => {}
        }
        let needed = self.ready_minimum.map_or(self.desired, |n| n.min(self.desired));
        let ready = self.ready_apps();
        if ready < needed {
            return Err(NotReady::Short { ready, needed });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(phase: ClusterPhase, ready: &[bool], minimum: Option<usize>) -> View {
        View {
            phase,
            desired: ready.len(),
            ready_minimum: minimum,
            slots: ready
                .iter()
                .enumerate()
                .map(|(i, r)| SlotView {
                    role: Role::App,
                    id: i as u32 + 1,
                    restarts: 0,
                    current: Some(CurrentWorker {
                        id: WorkerId(i as u64),
                        ready: *r,
                        start_time: 0.0,
                    }),
                })
                .collect(),
            workers: [[0; 3]; 2],
        }
    }

    #[test]
    fn ready_needs_every_app_worker_by_default() {
        assert_eq!(view(ClusterPhase::Ready, &[true, true], None).readiness(), Ok(()));
        assert_eq!(
            view(ClusterPhase::Ready, &[true, false], None).readiness(),
            Err(NotReady::Short {
                ready: 1,
                needed: 2
            })
        );
    }

    #[test]
    fn the_minimum_lowers_the_bar_but_never_above_the_desired_number() {
        assert_eq!(
            view(ClusterPhase::Ready, &[true, false], Some(1)).readiness(),
            Ok(())
        );
        assert_eq!(
            view(ClusterPhase::Ready, &[true, true], Some(5)).readiness(),
            Ok(())
        );
    }

    #[test]
    fn starting_and_stopping_are_not_ready() {
        assert_eq!(
            view(ClusterPhase::Starting, &[true], None).readiness(),
            Err(NotReady::Starting)
        );
        assert_eq!(
            view(ClusterPhase::Stopping { stage: 1 }, &[true], None).readiness(),
            Err(NotReady::Stopping)
        );
    }
}
