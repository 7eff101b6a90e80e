//! Rolling reloads as metrics: how many ended, and how, and how long each took. The run
//! loop hands every [`ReloadEvent`] here as it carries it out; kept whether or not
//! `--http` is on (a few atomics per reload).

use crate::master::ReloadEvent;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use std::cell::Cell;
use std::time::Instant;

/// Reload durations' bucket bounds, in seconds: a reload replaces every worker a batch at a
/// time, so it takes from about a second to many minutes.
const BUCKETS: [f64; 10] = [0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// What ended reloads left.
#[derive(Debug)]
pub struct Reloads {
    pub(crate) completed: Counter,
    pub(crate) aborted: Counter,
    /// Seconds from start to completion or abort.
    pub(crate) duration: Histogram,
    /// When the reload in progress started (an abort carries no duration).
    started: Cell<Option<Instant>>,
}

impl Default for Reloads {
    fn default() -> Reloads {
        Reloads {
            completed: Counter::default(),
            aborted: Counter::default(),
            duration: Histogram::new(BUCKETS),
            started: Cell::new(None),
        }
    }
}

impl Reloads {
    /// Takes note of a reload's progress.
    pub fn observe(&self, event: &ReloadEvent) {
        match event {
            ReloadEvent::Started { .. } => self.started.set(Some(Instant::now())),
            ReloadEvent::Slot { .. } => {}
            ReloadEvent::Completed { took, .. } => {
                self.completed.inc();
                self.duration.observe(took.as_secs_f64());
                self.started.set(None);
            }
            ReloadEvent::Aborted { .. } => {
                self.aborted.inc();
                if let Some(at) = self.started.take() {
                    self.duration.observe(at.elapsed().as_secs_f64());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn completed_and_aborted_reloads_are_counted_and_timed() {
        let r = Reloads::default();
        r.observe(&ReloadEvent::Started {
            generation: 2,
            slots: 1,
            changes: Vec::new(),
        });
        r.observe(&ReloadEvent::Completed {
            generation: 2,
            took: Duration::from_secs(3),
        });
        r.observe(&ReloadEvent::Started {
            generation: 3,
            slots: 1,
            changes: Vec::new(),
        });
        r.observe(&ReloadEvent::Aborted {
            generation: 3,
            reason: "x".into(),
        });
        assert_eq!((r.completed.get(), r.aborted.get()), (1, 1));
        let mut text = String::new();
        let mut reg = prometheus_client::registry::Registry::default();
        reg.register("d", "d", r.duration.clone());
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        assert!(text.contains("d_count 2"), "{text}");
        assert!(text.contains("d_sum 3."), "{text}");
    }
}
