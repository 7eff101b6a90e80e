//! In sticky mode the master hands every connection from one client address to the same
//! app worker, and different addresses spread over the workers.

mod common;
use common::net::*;
use common::*;
use std::collections::{BTreeMap, BTreeSet};

#[tokio::test]
async fn sticky_same_client_address_reaches_the_same_worker() {
    let mut m = cluster(4, None, &["http"])
        .sticky()
        .sticky_mode(clutch::config::StickyMode::Handoff)
        .port(0)
        .host("127.0.0.1")
        .start()
        .unwrap();
    let info = tokio::time::timeout(DEADLINE, m.ready())
        .await
        .expect("ready in time")
        .unwrap();
    let port = info.port.expect("a sticky cluster has a port");
    assert!(info.sticky, "{info:?}");
    let workers = live_app_pids(&m);
    assert_eq!(workers.len(), 4, "{:?}", m.workers());

    let mut pids_by_source: BTreeMap<u8, BTreeSet<u32>> = BTreeMap::new();
    for n in 2..10 {
        for _ in 0..10 {
            let served = served_from(source(n), port, "/");
            assert!(
                workers.contains(&served.pid),
                "pid {} is not an app worker ({workers:?})",
                served.pid
            );
            pids_by_source.entry(n).or_default().insert(served.pid);
        }
    }
    for (n, pids) in &pids_by_source {
        assert_eq!(
            pids.len(),
            1,
            "127.0.0.{n} reached several workers: {pids_by_source:?}"
        );
    }
    let used: BTreeSet<u32> = pids_by_source.values().flatten().copied().collect();
    assert!(
        used.len() > 1,
        "8 client addresses all reached one worker: {pids_by_source:?}"
    );
}
