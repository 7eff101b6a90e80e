//! With `--heartbeat-timeout`, a worker that stops sending heartbeats (here: SIGSTOPped,
//! as a hung process is) is replaced: a new worker in its slot first, then the silent one
//! stopped (SIGKILL after the kill timeout, as a stopped process cannot act on SIGTERM).

mod common;
use clutch::Role;
use common::*;
use std::time::Duration;

#[tokio::test]
async fn a_hung_worker_is_replaced_after_the_heartbeat_timeout() {
    let m = start_ready(
        cluster(2, None, &[])
            .heartbeat_timeout(Duration::from_millis(1500))
            .kill_timeout(Duration::from_secs(1)),
    )
    .await;
    let hung = live_pid(&m, Role::App, 1).unwrap();
    let other = live_pid(&m, Role::App, 2).unwrap();
    // Heartbeats flow: after several timeouts, nobody was replaced.
    assert!(
        !wait_until_async(Duration::from_secs(4), || live_app_pids(&m)
            != [hung, other])
        .await,
        "a worker sending heartbeats was replaced: {:?}",
        m.workers()
    );
    kill(hung, libc::SIGSTOP);
    assert!(
        wait_until_async(DEADLINE, || {
            live_pid(&m, Role::App, 1).is_some_and(|p| p != hung) && !alive(hung)
        })
        .await,
        "the hung worker {hung} was not replaced: {:?}",
        m.workers()
    );
    assert_eq!(
        live_pid(&m, Role::App, 2),
        Some(other),
        "the other slot is untouched"
    );
    m.shutdown().await.unwrap();
}
