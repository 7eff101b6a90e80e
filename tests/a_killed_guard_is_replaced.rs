//! The guard process (which kills the workers' groups should the master be SIGKILLed) is
//! watched: killed, it is replaced at once, so protection never lapses silently.

mod common;
use common::*;

fn guards() -> Vec<u32> {
    children_of(std::process::id())
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "clutch-guard")
                && alive(*pid)
        })
        .collect()
}

#[tokio::test]
async fn a_killed_guard_is_replaced() {
    let m = start_ready(cluster(1, None, &[])).await;
    // Other tests of this binary would be other masters; this one runs alone.
    let first = guards();
    assert_eq!(first.len(), 1, "one guard: {first:?}");
    kill(first[0], libc::SIGKILL);
    assert!(
        wait_until(DEADLINE, || {
            let now = guards();
            now.len() == 1 && now[0] != first[0]
        }),
        "no new guard: {:?}",
        guards()
    );
    m.shutdown().await.unwrap();
    assert!(wait_until(DEADLINE, || guards().is_empty()));
}
