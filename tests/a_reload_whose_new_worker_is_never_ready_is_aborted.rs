//! A reload whose new worker never becomes ready is aborted after the ready timeout: the
//! new worker is stopped, the old one keeps serving, and the reason comes back.

mod common;
use common::*;
use std::time::Duration;

#[tokio::test]
async fn a_reload_whose_new_worker_is_never_ready_is_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pids");
    let arg = format!("restarted-never-ready:{}", marker.display());
    let m = start_ready(cluster(1, None, &[&arg]).ready_timeout(Duration::from_secs(2))).await;
    let old = live_app_pids(&m)[0];
    let err = m.reload(1).await.expect_err("the reload is aborted");
    assert!(err.contains("slot 1") && err.contains("not ready"), "{err}");
    assert!(
        wait_until_async(DEADLINE, || m.workers().len() == 1).await,
        "the new worker is gone: {:?}",
        m.workers()
    );
    let w = m.workers()[0];
    assert_eq!(
        (w.pid, w.ready, w.generation),
        (old, true, 1),
        "the old one serves"
    );
    // Not retried in a loop: nothing new is started.
    assert!(
        !wait_until_async(Duration::from_millis(1500), || m.workers().len() != 1).await,
        "{:?}",
        m.workers()
    );
    m.shutdown().await.unwrap();
}
