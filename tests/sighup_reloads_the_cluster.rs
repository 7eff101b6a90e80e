//! SIGHUP to a master that handles signals (as the CLI does) starts a rolling reload.

mod common;
use common::*;

#[tokio::test]
async fn sighup_reloads_the_cluster() {
    let m = start_ready(cluster(2, None, &[]).handle_signals()).await;
    let before = live_app_pids(&m);
    kill(std::process::id(), libc::SIGHUP);
    assert!(
        wait_until_async(DEADLINE, || {
            let w = m.workers();
            w.len() == 2 && w.iter().all(|w| w.generation == 2 && w.ready)
        })
        .await,
        "{:?}",
        m.workers()
    );
    assert!(live_app_pids(&m).iter().all(|p| !before.contains(p)));
    m.shutdown().await.unwrap();
}
