//! A cluster that cannot start says which worker failed and how, and leaves no process.
mod common;
use common::*;
use std::time::Duration;

/// Starts `builder`, which must fail: the handle, the error's text, and the pid of the app
/// worker that died (its death says which pid it had, where a poll of `workers()` could
/// come too late).
async fn failed_start(builder: clutch::MasterBuilder) -> (clutch::Master, String, u32) {
    let mut m = builder.start().unwrap();
    let err = tokio::time::timeout(DEADLINE, m.ready())
        .await
        .expect("an answer in time")
        .unwrap_err();
    let died = expect(&mut m, "app-worker-died", DEADLINE, |x| {
        x.action == "app-worker-died"
    })
    .await;
    let pid = died.data["pid"].as_u64().unwrap() as u32;
    (m, err.to_string(), pid)
}

#[tokio::test]
async fn start_failure_names_the_worker() {
    let (m, text, pid) = failed_start(cluster(1, None, &["exit:7"])).await;
    assert!(
        text.contains(&format!("app worker 1 (pid {pid})")),
        "{text}"
    );
    assert!(text.contains("exit code 7"), "{text}");
    assert!(!alive(pid));
    assert!(m.workers().is_empty(), "{:?}", m.workers());
}

#[tokio::test]
async fn ready_timeout_fails_the_start() {
    let (m, text, pid) =
        failed_start(cluster(1, None, &["no-ready"]).ready_timeout(Duration::from_millis(300)))
            .await;
    assert!(
        text.contains(&format!("app worker 1 (pid {pid}) not ready after 300 ms")),
        "{text}"
    );
    assert!(
        wait_until_async(DEADLINE, || !alive(pid)).await,
        "pid {pid} still alive"
    );
    assert!(m.workers().is_empty(), "{:?}", m.workers());
}
