//! With `--max-rss`, a worker whose resident memory stays above the limit is recycled: a
//! new worker in its slot, then the old one stopped. (Any process is above a 1 MiB limit.)

mod common;
use clutch::Role;
use common::*;

#[tokio::test]
async fn a_worker_above_max_rss_is_recycled() {
    let m = start_ready(cluster(1, None, &[]).max_rss(1 << 20)).await;
    let big = live_pid(&m, Role::App, 1).unwrap();
    assert!(
        wait_until_async(DEADLINE, || {
            live_pid(&m, Role::App, 1).is_some_and(|p| p != big) && !alive(big)
        })
        .await,
        "worker {big} was not recycled: {:?}",
        m.workers()
    );
    m.shutdown().await.unwrap();
}
