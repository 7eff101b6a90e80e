//! An operator's restart of a sticky slot: the new worker starts first, the old one is told
//! to stop only once the new one is ready, and from then on the slot's new connections go
//! to the new worker, never to the old one, which is still draining.

mod common;
use common::net::*;
use common::*;

#[tokio::test]
async fn a_stopping_worker_gets_no_new_sticky_connections() {
    // On SIGTERM the fixture keeps serving for 4 s before it exits (a draining server).
    let mut m = start_ready(
        cluster(1, None, &["http", "term-exit:0", "term-delay:4000"])
            .sticky()
            .sticky_mode(clutch::config::StickyMode::Handoff)
            .port(0)
            .host("127.0.0.1"),
    )
    .await;
    let port = m.ready().await.unwrap().port.unwrap();
    let old = live_app_pids(&m)[0];
    let first = tokio::task::spawn_blocking(move || served_from(source(1), port, "/"))
        .await
        .unwrap();
    assert_eq!(first.pid, old);

    m.restart(1).await.expect("the restart is taken");
    let term = m.recv_action("terminating", DEADLINE).await;
    assert!(term.is_some(), "the old worker was never told to stop");
    let new = live_app_pids(&m)
        .into_iter()
        .find(|p| *p != old)
        .expect("the new worker is live when the old one is told to stop");
    let served = tokio::task::spawn_blocking(move || {
        (0..20)
            .map(|i| served_from(source(1 + i % 4), port, "/"))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for s in &served {
        assert_eq!(
            s.pid, new,
            "a connection went to the stopping worker: {s:?}"
        );
    }
    m.shutdown().await.unwrap();
    assert!(!alive(old) && !alive(new));
}
