//! Liveness checks, the run loop's side of recycling: once a tick (only when
//! `--heartbeat-timeout` or `--max-rss` is on), each ready worker's last heartbeat and
//! resident memory are looked at, and one that is silent too long or stays too big is
//! handed to the core as [`Input::Recycle`] (a new worker first, then it stops).

use crate::master::core::{Input, Phase};
use crate::master::lifecycle::{Cluster, Event};
use crate::master::worker::WorkerId;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// How many samples in a row over `--max-rss` make a worker "stay" above it.
const OVER_RSS_SAMPLES: u32 = 3;

/// The tick's period for these settings, if any check is on.
pub fn period(heartbeat: Option<Duration>, max_rss: Option<u64>) -> Option<Duration> {
    let rss = max_rss.map(|_| Duration::from_secs(1));
    let beat = heartbeat.map(|t| (t / 4).max(Duration::from_millis(10)));
    match (beat, rss) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Sends [`Event::LivenessTick`] every `period` while the run loop listens.
pub async fn tick(period: Duration, events: UnboundedSender<Event>) {
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if events.send(Event::LivenessTick).is_err() {
            return;
        }
    }
}

/// What the checks remember between ticks.
#[derive(Default)]
pub struct Liveness {
    /// The tick task and its period, while a check is on.
    ticking: Option<(Duration, tokio::task::AbortHandle)>,
    /// Samples in a row over `--max-rss`, per worker.
    over_rss: HashMap<WorkerId, u32>,
    /// When each worker was first seen ready: heartbeats are counted from then on.
    ready_since: HashMap<WorkerId, Instant>,
}

impl Cluster {
    /// Starts, changes or stops the tick to match the settings (at start, after a reload).
    pub(super) fn arm_liveness(&mut self) {
        let s = self.core.settings();
        let want = period(s.heartbeat_timeout, s.max_rss);
        if self.liveness.ticking.as_ref().map(|t| t.0) == want {
            return;
        }
        if let Some((_, task)) = self.liveness.ticking.take() {
            task.abort();
        }
        if let Some(p) = want {
            let task = tokio::task::spawn_local(tick(p, self.events.clone()));
            self.liveness.ticking = Some((p, task.abort_handle()));
        }
    }

    /// One round of checks.
    pub(super) fn liveness_tick(&mut self) {
        let now = Instant::now();
        let settings = self.core.settings();
        let (heartbeat, max_rss) = (settings.heartbeat_timeout, settings.max_rss);
        let ready: Vec<(WorkerId, u32)> = self
            .core
            .workers()
            .filter(|w| w.phase == Phase::Ready && w.intent.is_none())
            .filter_map(|w| Some((w.id, w.pid?)))
            .collect();
        let live = &mut self.liveness;
        live.ready_since
            .retain(|w, _| ready.iter().any(|(r, _)| r == w));
        live.over_rss
            .retain(|w, _| ready.iter().any(|(r, _)| r == w));
        let mut recycle = Vec::new();
        for (worker, pid) in ready {
            let since = *live.ready_since.entry(worker).or_insert(now);
            if let Some(timeout) = heartbeat {
                let heard = self
                    .messenger
                    .registry()
                    .last_heard(worker)
                    .map_or(since, |h| h.max(since));
                let silent = now.duration_since(heard);
                if silent > timeout {
                    recycle.push((
                        worker,
                        format!(
                            "no heartbeat for {} ms (--heartbeat-timeout {})",
                            silent.as_millis(),
                            timeout.as_millis()
                        ),
                    ));
                    continue;
                }
            }
            if let Some(limit) = max_rss
                && let Some(rss) = resident_bytes(pid)
            {
                let over = live.over_rss.entry(worker).or_default();
                *over = if rss > limit { *over + 1 } else { 0 };
                if *over >= OVER_RSS_SAMPLES {
                    *over = 0;
                    recycle.push((
                        worker,
                        format!(
                            "resident memory {} MiB above --max-rss {} MiB",
                            rss >> 20,
                            limit >> 20
                        ),
                    ));
                }
            }
        }
        for (worker, reason) in recycle {
            self.input(Input::Recycle { worker, reason });
        }
    }
}

/// A process's resident memory, from `/proc/PID/statm`.
fn resident_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf with a constant name.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    Some(pages * page)
}
