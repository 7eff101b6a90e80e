mod common;
use common::*;

/// Dropping the handle (no `shutdown`) kills the agent, the app workers and what they
/// started themselves.
#[tokio::test]
async fn dropping_the_master_leaves_no_process() {
    let mut m = start_ready(cluster(2, Some(&["grandchild"]), &["grandchild"])).await;
    let seen = collect_until(&mut m, "3 started reports", DEADLINE, |seen| {
        seen.iter().filter_map(started_report).count() == 3
    })
    .await;
    let pids: Vec<u32> = seen
        .iter()
        .filter_map(started_report)
        .flat_map(|s| [Some(s.pid), s.grandchild])
        .flatten()
        .collect();
    assert_eq!(
        pids.len(),
        6,
        "3 workers and 3 grandchildren: {}",
        summary(&seen)
    );
    assert!(pids.iter().all(|&p| alive(p)), "{pids:?}");

    drop(m);
    let left = |pids: &[u32]| {
        pids.iter()
            .copied()
            .filter(|&p| alive(p))
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(DEADLINE, || left(&pids).is_empty()),
        "still alive: {:?}",
        left(&pids)
    );
}
