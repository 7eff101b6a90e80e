//! `--reuseport -p 0`: the master only reserves a free port and says which in
//! `cluster-ready`; each app worker (here the demo worker, via `Worker::listener()`) binds
//! it with SO_REUSEPORT and answers on it.

mod common;
use common::net::*;
use common::*;
use std::collections::BTreeSet;
use std::io::{Read, Write};

/// (id, pid) from the demo's `hello from app worker N (pid P)`.
fn hello(body: &str) -> Option<(u32, u32)> {
    let rest = body.strip_prefix("hello from app worker ")?;
    let (id, rest) = rest.split_once(" (pid ")?;
    let (pid, _) = rest.split_once(')')?;
    Some((id.parse().ok()?, pid.parse().ok()?))
}

/// `GET /` on a connection of its own, half-closed after the request (the demo answers
/// what it has read and closes when the client does); the body.
fn demo_get(port: u16) -> String {
    let mut s = connect_from(source(1), port)
        .unwrap_or_else(|e| panic!("connect to the reuseport port {port}: {e}"));
    s.write_all(b"GET / HTTP/1.1\r\nHost: clutch-test\r\n\r\n")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("GET / on the reuseport port {port}: {e}"));
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response:?}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

#[test]
fn reuseport_workers_bind_the_port_themselves() {
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "-w",
        "2",
        "--no-agent",
        "--reuseport",
        "-p",
        "0",
        "--host",
        "127.0.0.1",
        "--",
        clutch_bin(),
        "demo-worker",
    ]));
    let ready = c.expect_ready(DEADLINE);
    assert_eq!(ready["sticky"], false, "{ready}");
    let port = ready["port"].as_u64().expect("a port in cluster-ready") as u16;
    assert_ne!(port, 0, "{ready}");
    let workers = children_of(c.pid());
    let master_sockets = socket_inodes(c.pid());

    // The kernel spreads connections over the workers' sockets by a hash of the addresses,
    // so from enough client ports both workers answer.
    let mut answered = BTreeSet::new();
    for _ in 0..40 {
        let body = demo_get(port);
        let (id, pid) = hello(&body).unwrap_or_else(|| panic!("not the demo's answer: {body:?}"));
        assert!(
            workers.contains(&pid),
            "pid {pid} is not a worker of clutch ({workers:?})"
        );
        answered.insert((id, pid));
    }
    let ids: BTreeSet<u32> = answered.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, BTreeSet::from([1, 2]), "{answered:?}");
    assert_eq!(
        socket_inodes(c.pid()),
        master_sockets,
        "the master opened sockets while the workers served"
    );

    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
