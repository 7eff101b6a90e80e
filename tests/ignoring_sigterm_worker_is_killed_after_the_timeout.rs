mod common;
use common::*;
use std::time::{Duration, Instant};

/// An app worker that ignores SIGTERM, and the grandchild it started (which ignores it
/// too), are SIGKILLed once the kill timeout has passed.
#[tokio::test]
async fn ignoring_sigterm_worker_and_its_grandchild_are_killed_after_the_timeout() {
    const KILL_TIMEOUT: Duration = Duration::from_millis(500);
    let mut m =
        start_ready(cluster(1, None, &["ignore-term", "grandchild"]).kill_timeout(KILL_TIMEOUT))
            .await;
    let started = expect(&mut m, "the started report", DEADLINE, |x| {
        x.action == "started"
    })
    .await;
    let started = started_report(&started).unwrap();
    let pids = [started.pid, started.grandchild.expect("a grandchild")];
    assert!(pids.iter().all(|&p| alive(p)), "{pids:?}");

    let began = Instant::now();
    // A shutdown that never ends fails here; dropping its future kills the workers.
    tokio::time::timeout(DEADLINE, m.shutdown())
        .await
        .expect("shutdown within the deadline")
        .unwrap();
    let took = began.elapsed();
    assert!(
        took >= KILL_TIMEOUT,
        "shutdown took {took:?}, less than the kill timeout"
    );
    let left = || {
        pids.iter()
            .copied()
            .filter(|&p| alive(p))
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(DEADLINE, || left().is_empty()),
        "still alive: {:?}",
        left()
    );
}
