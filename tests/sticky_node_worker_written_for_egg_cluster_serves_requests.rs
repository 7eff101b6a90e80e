//! A Node worker written as for egg-cluster's sticky mode (fixtures/node_sticky_worker.js:
//! `process.on('message', (msg, socket) => server.emit('connection', socket))`, no library)
//! serves HTTP under `--sticky`: the master speaks Node's handle dialect to a `node` command
//! by itself.

mod common;
use common::net::*;
use common::*;
use std::collections::{BTreeMap, BTreeSet};

#[test]
fn sticky_node_worker_written_for_egg_cluster_serves_requests() {
    assert!(
        have("node"),
        "this test needs `node` on PATH (Node 12 or later)"
    );
    let script = fixture_file("node_sticky_worker.js");
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "-w",
        "3",
        "--no-agent",
        "-p",
        "0",
        "--host",
        "127.0.0.1",
        "--sticky",
        "--",
        "node",
        &script,
    ]));
    let ready = c.expect_ready(DEADLINE);
    assert_eq!(ready["sticky"], true, "{ready}");
    let port = ready["port"].as_u64().expect("a port in cluster-ready") as u16;
    let workers = children_of(c.pid());

    let mut pids_by_source: BTreeMap<u8, BTreeSet<u32>> = BTreeMap::new();
    for n in 2..8 {
        for _ in 0..4 {
            let served = served_from(source(n), port, "/");
            assert!(
                workers.contains(&served.pid),
                "pid {} is not a worker of clutch ({workers:?})",
                served.pid
            );
            // The worker holds the client's own socket, not a proxied one.
            let remote = served.remote.clone().unwrap_or_default();
            assert!(
                remote.starts_with(&format!("{}:", source(n))),
                "127.0.0.{n} shows up as {remote:?}"
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

    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
