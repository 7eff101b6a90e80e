//! `Master::restart` replaces a slot's worker (new one first, old one stopped once the new
//! one is ready) and never counts toward the crash limit: with a limit of 1 restart per
//! minute, three operator restarts in a row all go through and the slot is never parked.

mod common;
use clutch::{Master, Role};
use common::*;

/// Waits until slot 1 has exactly one worker, ready, other than `old`; returns its pid.
async fn replaced(m: &Master, old: u32) -> u32 {
    let mut new = None;
    let ok = wait_until_async(DEADLINE, || {
        let slot: Vec<_> = m
            .workers()
            .into_iter()
            .filter(|w| w.role == Role::App && w.id == 1)
            .collect();
        new = match slot[..] {
            [w] if w.pid != old && w.ready => Some(w.pid),
            _ => None,
        };
        new.is_some()
    })
    .await;
    assert!(ok, "slot 1 was not replaced: {:?}", m.workers());
    new.unwrap()
}

#[tokio::test]
async fn operator_restart_does_not_count_as_a_crash() {
    let mut m =
        start_ready(cluster(2, None, &[]).restart_limit(1, std::time::Duration::from_secs(60)))
            .await;
    let other = live_pid(&m, Role::App, 2).unwrap();
    let mut pid = live_pid(&m, Role::App, 1).unwrap();
    for _ in 0..3 {
        m.restart(1).await.expect("the restart is taken");
        let new = replaced(&m, pid).await;
        assert!(!alive(pid), "the old worker {pid} is gone");
        pid = new;
    }
    assert_eq!(live_pid(&m, Role::App, 2), Some(other), "slot 2 untouched");
    // Everything the parent was told so far (already queued for the handle).
    let mut seen = Vec::new();
    while let Ok(Some(x)) =
        tokio::time::timeout(std::time::Duration::from_millis(300), m.recv()).await
    {
        seen.push(x);
    }
    assert!(
        !seen.iter().any(|x| x.action == "app-worker-parked"),
        "{}",
        summary(&seen)
    );
    m.shutdown().await.unwrap();
}
