//! A ready worker that closes its channel (as wrapped binaries that close inherited fds do)
//! keeps running: the ready timeout only concerns workers that never said they were ready.
mod common;
use clutch::{Endpoint, Message, Role};
use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn closing_its_channel_after_ready_does_not_get_a_worker_killed() {
    let ready_timeout = Duration::from_millis(600);
    let mut m = cluster(1, None, &[])
        .ready_timeout(ready_timeout)
        .start()
        .unwrap();
    tokio::time::timeout(DEADLINE, m.ready())
        .await
        .unwrap()
        .unwrap();
    let pid = live_pid(&m, Role::App, 1).expect("app worker 1");
    m.send(&Message::new("do:close-channel", json!(null)).to(Endpoint::App));
    // Past the ready timeout (armed at spawn), the worker must still be the same process.
    let killed = wait_until_async(ready_timeout * 3, || !alive(pid)).await;
    assert!(
        !killed,
        "app worker 1 (pid {pid}) was killed after closing its channel"
    );
    assert_eq!(live_pid(&m, Role::App, 1), Some(pid));
    m.shutdown().await.unwrap();
}
