//! A Node worker written as for egg-cluster's sticky mode (fixtures/node_sticky_worker.js:
//! `process.on('message', (msg, socket) => server.emit('connection', socket))`, no library)
//! serves HTTP under `--sticky`: the master speaks Node's handle dialect to a `node` command
//! by itself, with egg-cluster's `sticky-session:connection` message when asked
//! (`--node-sticky-message`) and clutch's `clutch:connection` object otherwise.

mod common;
use common::net::*;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// `clutch start --sticky` with 3 Node workers and `extra` flags; clutch and its port.
fn start(extra: &[&str]) -> (Clutch, u16) {
    assert!(
        have("node"),
        "this test needs `node` on PATH (Node 12 or later)"
    );
    let script = fixture_file("node_sticky_worker.js");
    let mut flags = vec!["-w", "3", "--sticky"];
    flags.extend_from_slice(extra);
    let (c, port, ready) = start_on_port(&flags, &["node", &script]);
    assert_eq!(ready["sticky"], true, "{ready}");
    (c, port)
}

/// Requests from several addresses: each is served by a worker of `c` holding the client's
/// own socket, every address sticks to one worker; returns the handle messages seen, by
/// source.
fn requests_succeed_and_stick(c: &Clutch, port: u16) -> BTreeMap<u8, Value> {
    let workers = children_of(c.pid());
    let mut pids_by_source: BTreeMap<u8, BTreeSet<u32>> = BTreeMap::new();
    let mut messages = BTreeMap::new();
    for n in 2..8 {
        for _ in 0..4 {
            let response = get_from(source(n), port, "/")
                .unwrap_or_else(|e| panic!("GET / from 127.0.0.{n}: {e}"));
            let served = Served::from(&response);
            assert!(
                workers.contains(&served.pid),
                "pid {} is not a worker of clutch ({workers:?})",
                served.pid
            );
            let remote = served.remote.clone().unwrap_or_default();
            assert!(
                remote.starts_with(&format!("{}:", source(n))),
                "127.0.0.{n} shows up as {remote:?}"
            );
            pids_by_source.entry(n).or_default().insert(served.pid);
            let body: Value = serde_json::from_str(response.body.trim()).unwrap();
            messages.insert(n, body["message"].clone());
        }
    }
    for (n, pids) in &pids_by_source {
        assert_eq!(
            pids.len(),
            1,
            "127.0.0.{n} reached several workers: {pids_by_source:?}"
        );
    }
    messages
}

#[test]
fn sticky_node_worker_written_for_egg_cluster_serves_requests() {
    let (c, port) = start(&["--node-sticky-message", "sticky-session:connection"]);
    let messages = requests_succeed_and_stick(&c, port);
    for (n, message) in &messages {
        assert_eq!(
            message, "sticky-session:connection",
            "the socket for 127.0.0.{n} came with another message"
        );
    }
    stop_cleanly(c);
}

#[test]
fn sticky_node_worker_gets_the_clutch_connection_message_by_default() {
    let (c, port) = start(&[]);
    let messages = requests_succeed_and_stick(&c, port);
    for (n, message) in &messages {
        assert_eq!(message["action"], "clutch:connection", "{message}");
        assert_eq!(
            message["data"]["remoteAddress"],
            source(*n).to_string(),
            "{message}"
        );
    }
    stop_cleanly(c);
}
