mod common;
use clutch::Role;
use common::*;
use std::time::Duration;

/// Slot 2 crashes right after every `cluster-ready`: with a limit of 2 restarts per minute
/// it dies 3 times, then the slot is parked and the parent told; slot 1 keeps serving.
#[tokio::test]
async fn restart_limit_parks_a_crash_looping_slot() {
    const LIMIT: u32 = 2;
    let mut m = start_ready(
        cluster(2, None, &["crash-after-if-id:2:20"]).restart_limit(LIMIT, Duration::from_secs(60)),
    )
    .await;
    let one = live_pid(&m, Role::App, 1).unwrap();
    // Backoff 100 ms then 200 ms between the crashes.
    let seen = collect_until(&mut m, "app-worker-parked", DEADLINE, |seen| {
        seen.iter().any(|x| x.action == "app-worker-parked")
    })
    .await;
    let parked = seen.last().unwrap();
    assert_eq!(parked.data["id"], 2, "{}", parked.data);
    assert_eq!(parked.data["restarts"], LIMIT, "{}", parked.data);
    assert_eq!(parked.data["window"], 60_000, "{}", parked.data);
    let deaths: Vec<_> = seen
        .iter()
        .filter(|x| x.action == "app-worker-died")
        .collect();
    assert_eq!(deaths.len(), LIMIT as usize + 1, "{}", summary(&seen));
    assert!(
        deaths
            .iter()
            .all(|d| d.data["id"] == 2 && d.data["code"] == 3),
        "{}",
        summary(&seen)
    );
    let starts = seen
        .iter()
        .filter_map(started_report)
        .filter(|s| s.id == 2)
        .count();
    assert_eq!(
        starts,
        LIMIT as usize + 1,
        "the first start and {LIMIT} restarts: {}",
        summary(&seen)
    );

    // The master stays responsive, slot 1 untouched, and slot 2 stays empty (the next
    // backoff would have been 400 ms).
    ping(&mut m, To::App(one), one, "still-there").await;
    assert_eq!(live_pid(&m, Role::App, 1), Some(one));
    let restarted = wait_until_async(Duration::from_millis(800), || {
        live_pid(&m, Role::App, 2).is_some()
    })
    .await;
    assert!(
        !restarted,
        "the parked slot was restarted: {:?}",
        m.workers()
    );
    m.shutdown().await.unwrap();
}
