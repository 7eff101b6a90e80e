//! Restart policy for one slot: which exits restart, how soon, and when to give up.
//!
//! At most `limit` restarts per sliding `window` (cfork's 60 per 60 s by default). A worker
//! that dies within [`MIN_UPTIME`] of starting is crash-looping: each such death doubles
//! the delay before the next start, from [`BACKOFF_BASE`] up to [`BACKOFF_CAP`]. A worker
//! that lived longer restarts at once and resets the backoff. Past the limit the slot is
//! parked, so a crash loop never becomes a fork storm.

use crate::config::RestartPolicy;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A worker that dies sooner than this after starting counts as crash-looping.
pub const MIN_UPTIME: Duration = Duration::from_secs(1);
/// The first backoff delay.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// The longest backoff delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(15);

/// What to do about a worker that exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after this delay.
    Restart(Duration),
    /// Too many restarts in the window: leave the slot empty.
    Park,
    /// The policy says this exit is final.
    Stay,
}

/// The restart history of one slot.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    limit: u32,
    window: Duration,
    recent: VecDeque<Instant>,
    quick_deaths: u32,
    floor: Duration,
}

impl RestartTracker {
    /// A tracker allowing `limit` restarts per `window`; no restart comes sooner than `floor`.
    pub fn new(limit: u32, window: Duration, floor: Duration) -> RestartTracker {
        RestartTracker {
            limit,
            window,
            recent: VecDeque::new(),
            quick_deaths: 0,
            floor,
        }
    }

    /// New limits (a reload re-read them); the history stays.
    pub fn set_limits(&mut self, limit: u32, window: Duration) {
        self.limit = limit;
        self.window = window;
    }

    /// Decides, at `now`, about a worker that ran for `uptime` and exited cleanly or not.
    pub fn on_exit(
        &mut self,
        policy: RestartPolicy,
        now: Instant,
        uptime: Duration,
        success: bool,
    ) -> Decision {
        match policy {
            RestartPolicy::Never => return Decision::Stay,
            RestartPolicy::OnFailure if success => return Decision::Stay,
            _ => {}
        }
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.limit as usize {
            return Decision::Park;
        }
        self.recent.push_back(now);
        let delay = if uptime < MIN_UPTIME {
            self.quick_deaths += 1;
            let shift = (self.quick_deaths - 1).min(16);
            (BACKOFF_BASE * (1u32 << shift)).min(BACKOFF_CAP)
        } else {
            self.quick_deaths = 0;
            Duration::ZERO
        };
        Decision::Restart(delay.max(self.floor))
    }

    /// Restarts counted in the current window.
    pub fn recent(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(limit: u32) -> RestartTracker {
        RestartTracker::new(limit, Duration::from_secs(60), Duration::ZERO)
    }

    #[test]
    fn long_lived_worker_restarts_at_once() {
        let mut t = tracker(60);
        let d = t.on_exit(
            RestartPolicy::Always,
            Instant::now(),
            Duration::from_secs(30),
            false,
        );
        assert_eq!(d, Decision::Restart(Duration::ZERO));
    }

    #[test]
    fn crash_loop_backs_off_exponentially_up_to_the_cap() {
        let mut t = tracker(1000);
        let now = Instant::now();
        let delays: Vec<_> = (0..12)
            .map(
                |_| match t.on_exit(RestartPolicy::Always, now, Duration::from_millis(5), false) {
                    Decision::Restart(d) => d,
                    other => panic!("{other:?}"),
                },
            )
            .collect();
        assert_eq!(delays[0], BACKOFF_BASE);
        assert_eq!(delays[1], BACKOFF_BASE * 2);
        assert_eq!(delays[2], BACKOFF_BASE * 4);
        assert_eq!(*delays.last().unwrap(), BACKOFF_CAP);
    }

    #[test]
    fn past_the_limit_the_slot_is_parked() {
        let mut t = tracker(3);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(matches!(
                t.on_exit(RestartPolicy::Always, now, Duration::ZERO, false),
                Decision::Restart(_)
            ));
        }
        assert_eq!(
            t.on_exit(RestartPolicy::Always, now, Duration::ZERO, false),
            Decision::Park
        );
    }

    #[test]
    fn old_restarts_leave_the_window() {
        let mut t = tracker(2);
        let start = Instant::now();
        t.on_exit(RestartPolicy::Always, start, Duration::from_secs(5), false);
        t.on_exit(RestartPolicy::Always, start, Duration::from_secs(5), false);
        let later = start + Duration::from_secs(61);
        assert_eq!(
            t.on_exit(RestartPolicy::Always, later, Duration::from_secs(5), false),
            Decision::Restart(Duration::ZERO)
        );
    }

    #[test]
    fn policy_decides_which_exits_restart() {
        let mut t = tracker(60);
        let now = Instant::now();
        assert_eq!(
            t.on_exit(RestartPolicy::Never, now, Duration::ZERO, false),
            Decision::Stay
        );
        assert_eq!(
            t.on_exit(RestartPolicy::OnFailure, now, Duration::ZERO, true),
            Decision::Stay
        );
        assert!(matches!(
            t.on_exit(RestartPolicy::OnFailure, now, Duration::ZERO, false),
            Decision::Restart(_)
        ));
    }
}
