//! A dead app worker is replaced in its own slot: same id, new pid; the parent is told how
//! the old one died.
mod common;
use clutch::{Master, Message, Role};
use common::*;
use serde_json::{Value, json};

/// Waits for the `app-worker-died` of slot 2 and the `started` report of its replacement;
/// returns (the death's data, the new pid), after checking the replacement is routable and
/// got `cluster-ready`.
async fn death_and_replacement(m: &mut Master, old: u32) -> (Value, u32) {
    let mut new = None;
    let seen = collect_until(
        m,
        "app worker 2's death, replacement and its cluster-ready",
        DEADLINE,
        |seen| {
            new = seen
                .iter()
                .filter_map(started_report)
                .find(|s| s.role == Role::App && s.id == 2 && s.pid != old)
                .map(|s| s.pid);
            seen.iter().any(|x| x.action == "app-worker-died")
                && new.is_some_and(|new| seen.iter().any(|x| got_by(x, new, "cluster-ready")))
        },
    )
    .await;
    let died: Vec<&Message> = seen
        .iter()
        .filter(|x| x.action == "app-worker-died")
        .collect();
    assert_eq!(died.len(), 1, "{}", summary(&seen));
    let new = new.unwrap();
    assert_ne!(new, old);
    assert_eq!(live_pid(m, Role::App, 2), Some(new), "{:?}", m.workers());
    ping(m, To::App(new), new, "new").await;
    (died[0].data.clone(), new)
}

#[tokio::test]
async fn an_app_worker_that_exits_is_restarted_in_its_slot() {
    let mut m = start_ready(cluster(2, None, &[])).await;
    let [one, old] = live_app_pids(&m)[..] else {
        panic!("{:?}", m.workers())
    };
    m.send(&order(To::App(old), "do:exit", json!(5)));
    let (died, _) = death_and_replacement(&mut m, old).await;
    assert_eq!(
        died,
        json!({"pid": old, "id": 2, "code": 5, "signal": null})
    );
    assert_eq!(
        live_pid(&m, Role::App, 1),
        Some(one),
        "the other slot is untouched"
    );
    m.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_app_worker_killed_by_a_signal_is_restarted_in_its_slot() {
    let mut m = start_ready(cluster(2, None, &[])).await;
    let [one, old] = live_app_pids(&m)[..] else {
        panic!("{:?}", m.workers())
    };
    kill(old, libc::SIGKILL);
    let (died, _) = death_and_replacement(&mut m, old).await;
    assert_eq!(
        died,
        json!({"pid": old, "id": 2, "code": null, "signal": "SIGKILL"})
    );
    assert_eq!(
        live_pid(&m, Role::App, 1),
        Some(one),
        "the other slot is untouched"
    );
    m.shutdown().await.unwrap();
}
