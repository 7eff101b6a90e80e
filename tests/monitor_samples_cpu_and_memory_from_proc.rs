//! The monitor's pull side: every `--monitor-interval` the master reads each worker's
//! CPU time, RSS, threads and open fds from /proc, and a busy worker shows CPU use.
mod common;
use clutch::{Master, MasterBuilder, Settings};
use common::*;
use std::time::Duration;

#[tokio::test]
async fn a_busy_worker_shows_cpu_and_memory() {
    let settings = Settings {
        monitor_interval: Duration::from_millis(200),
        ..Settings::default()
    };
    let builder = MasterBuilder::from_settings(settings)
        .workers(2)
        .app(fixture_cmd(&["busy"]))
        .ready_timeout(Duration::from_secs(20));
    let m: Master = start_ready(builder).await;
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    let stats = loop {
        let stats = m.worker_stats().await;
        if stats.len() == 2
            && stats
                .iter()
                .all(|s| s.sample.cpu_percent.is_some_and(|c| c > 2.0))
        {
            break stats;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "no CPU figure for the busy workers: {stats:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for s in stats {
        assert!(s.sample.rss_bytes > 0, "{s:?}");
        assert!(s.sample.cpu_seconds > 0.0, "{s:?}");
        // The runtime's thread and the spinning one, at least.
        assert!(s.sample.threads >= 2, "{s:?}");
        // stdin, stdout, stderr and the channel, at least.
        assert!(s.sample.fds >= 4, "{s:?}");
        assert_eq!(s.sample.pid, s.pid);
    }
}
