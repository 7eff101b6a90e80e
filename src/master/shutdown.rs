//! Stopping a cluster: the app workers first, then the agent. Each stage SIGTERMs its
//! workers' process groups, SIGKILLs what is left after the kill timeout, and moves on as
//! soon as its workers are gone (not after a fixed wait).

use crate::master::lifecycle::{Cluster, Event, Phase, Slot};
use crate::master::worker::WorkerName;
use crate::sys::process::Signal;

impl Cluster {
    pub(super) fn stage_workers(&self, stage: u32) -> Vec<WorkerName> {
        let slots: Vec<&Slot> = match stage {
            1 => self.apps.iter().collect(),
            _ => self.agent.iter().collect(),
        };
        slots.into_iter().filter_map(|s| s.name()).collect()
    }

    /// Stops the apps, then the agent: SIGTERM to each process group, SIGKILL after the
    /// kill timeout, and on as soon as they are gone.
    pub(super) fn stop(&mut self) {
        if matches!(self.phase, Phase::Stopping { .. }) {
            return;
        }
        self.next_stop_stage(0);
    }

    pub(super) fn next_stop_stage(&mut self, from: u32) {
        if let Some(task) = self.accept_task.take() {
            // New connections are refused from now on rather than handed to stopping workers.
            task.abort();
        }
        let mut stage = from + 1;
        while stage <= 2 && self.stage_workers(stage).is_empty() {
            stage += 1;
        }
        self.phase = Phase::Stopping { stage };
        if stage > 2 {
            return;
        }
        for name in self.stage_workers(stage) {
            tracing::debug!("sending SIGTERM to {name}");
            self.signal_worker(name.pid, Signal::SIGTERM);
        }
        self.after(
            self.plan.settings.kill_timeout,
            Event::KillTimeout { stage },
        );
    }

    pub(super) fn kill_all(&mut self) {
        for name in self
            .stage_workers(1)
            .into_iter()
            .chain(self.stage_workers(2))
        {
            self.signal_worker(name.pid, Signal::SIGKILL);
        }
    }

    /// The kill timeout of `stage` passed: SIGKILL what is left of it.
    pub(super) fn on_kill_timeout(&mut self, stage: u32) {
        if self.phase != (Phase::Stopping { stage }) {
            return;
        }
        for name in self.stage_workers(stage) {
            tracing::warn!(
                "{name} still running {} ms after SIGTERM; sending SIGKILL",
                self.plan.settings.kill_timeout.as_millis()
            );
            self.signal_worker(name.pid, Signal::SIGKILL);
        }
    }
}
