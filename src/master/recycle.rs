//! Recycling, as transitions of the [`Core`]: a worker that is alive but no longer
//! working (no heartbeat), too big (`--max-rss`) or too old (`--max-age`) is replaced the
//! way an operator's restart replaces it: a new worker first, the old one stopped once the
//! new one is ready. Nothing is recycled while a reload runs; a worker due then is looked
//! at again after it.

use super::{Core, Effect, Goal, Phase, Timer};
use crate::master::metrics::RestartReason;
use crate::master::worker::WorkerId;
use std::time::{Duration, Instant};

/// How soon a worker whose recycling had to wait (a reload ran) is looked at again.
const RETRY: Duration = Duration::from_secs(1);

impl Core {
    /// The `--max-age` timer of a worker just spawned: the age plus a part of up to a fifth
    /// of it, different for each worker, so that workers started together do not all go
    /// at once.
    pub(super) fn arm_max_age(&mut self, id: WorkerId) {
        if let Some(age) = self.settings.max_age {
            let spread = age / 5;
            let jitter = spread.mul_f64(unit_fraction(id.0 ^ u64::from(std::process::id())));
            self.fx.push(Effect::Arm {
                after: age + jitter,
                timer: Timer::MaxAge(id),
            });
        }
    }

    /// Replaces `id` for `reason`, if it is the ready, current worker of a running slot.
    pub(super) fn recycle(&mut self, now: Instant, id: WorkerId, reason: &str) {
        let Some(w) = self.workers.get(&id) else {
            return;
        };
        let slot = &self.slots[&w.slot];
        let serving = w.phase == Phase::Ready
            && w.intent.is_none()
            && slot.current == Some(id)
            && slot.incoming.is_none()
            && slot.goal == Goal::Running;
        if !serving || !matches!(self.phase, super::ClusterPhase::Ready) {
            return;
        }
        if self.reload.is_some() {
            if reason.contains("max-age") {
                self.fx.push(Effect::Arm {
                    after: RETRY,
                    timer: Timer::MaxAge(id),
                });
            }
            return;
        }
        tracing::warn!("recycling {}: {reason}; a new worker first", w.name());
        let slot = w.slot;
        self.metrics.restarted(RestartReason::Recycle);
        self.slots
            .get_mut(&slot)
            .expect("checked")
            .restarted(RestartReason::Recycle);
        self.spawn(now, slot, true);
    }
}

/// A number in [0, 1) from `x` (splitmix64's finalizer): spread without a random source,
/// so the core stays deterministic under test.
fn unit_fraction(x: u64) -> f64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}
