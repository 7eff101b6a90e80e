//! A plain Node `http.createServer().listen(port)` server, wrapped with `clutch start -p
//! PORT -w 4`, serves from all 4 workers: clutch's listen preload turns each worker's own
//! `listen(port)` into a listen on the socket the master bound (without it, the second
//! worker's bind fails with EADDRINUSE).

mod common;
use common::net::*;
use common::*;
use std::collections::BTreeSet;
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn four_plain_node_servers_serve_one_port() {
    assert!(have("node"), "this test needs `node` on PATH");
    let port = free_port().to_string();
    let server = fixture_file("node_plain_http_server.js");
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "--no-agent",
        "-w",
        "4",
        "-p",
        &port,
        "--host",
        "127.0.0.1",
        "--ready",
        "spawn",
        "--restart",
        "never",
        "--",
        "node",
        &server,
        &port,
    ]));
    c.expect_ready(DEADLINE);
    let port: u16 = port.parse().unwrap();
    // Every worker accepts on the one socket; the kernel picks who wakes, so requests go
    // out in parallel until each worker has answered at least once.
    let mut pids = BTreeSet::new();
    let all = wait_until(Duration::from_secs(30), || {
        let batch: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(move || get_from(source(1), port, "/")))
            .collect();
        for t in batch {
            if let Ok(Ok(r)) = t.join() {
                pids.insert(Served::from(&r).pid);
            }
        }
        pids.len() == 4
    });
    assert!(
        all,
        "answers from {} worker(s) ({pids:?}); stderr:\n{}",
        pids.len(),
        c.stderr.text()
    );
    let children = children_of(c.pid());
    assert!(
        pids.iter().all(|p| children.contains(p)),
        "{pids:?} {children:?}"
    );
    stop_cleanly(c);
}
