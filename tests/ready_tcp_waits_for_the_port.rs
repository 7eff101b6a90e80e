//! With `--ready tcp:PORT` a worker is ready once a connect to the port succeeds: a worker
//! that binds the port late (`--reuseport`, fixtures/late_listen_server.py) holds
//! `cluster-ready` back until it listens.

mod common;
use common::net::*;
use common::*;
use socket2::{Domain, Socket, Type};
use std::time::{Duration, Instant};

const DELAY: Duration = Duration::from_millis(700);

/// A bound, non-listening SO_REUSEPORT socket on a free loopback port: the port stays this
/// test's while it lives, and clutch and its workers can still bind it (with SO_REUSEPORT).
fn reserve_port() -> (Socket, u16) {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.set_reuse_port(true).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}

#[test]
fn ready_tcp_waits_for_the_port() {
    assert!(have("python3"), "this test needs `python3` on PATH");
    let (_reservation, port) = reserve_port();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("listening");
    let script = fixture_file("late_listen_server.py");
    let port_arg = port.to_string();
    let ready_arg = format!("tcp:{port}");
    let delay = DELAY.as_millis().to_string();
    let started = Instant::now();
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "-w",
        "1",
        "--no-agent",
        "--reuseport",
        "-p",
        &port_arg,
        "--host",
        "127.0.0.1",
        "--ready",
        &ready_arg,
        "--",
        "python3",
        &script,
        "--delay-ms",
        &delay,
        "--marker",
        marker.to_str().unwrap(),
    ]));
    let ready = c.expect_ready(DEADLINE);
    let took = started.elapsed();
    assert!(
        marker.exists(),
        "cluster-ready after {took:?}, before the worker opened the port"
    );
    assert!(took >= DELAY, "cluster-ready after only {took:?}");
    assert_eq!(ready["port"], port, "{ready}");
    let served = served_from(source(1), port, "/");
    assert!(
        children_of(c.pid()).contains(&served.pid),
        "{served:?} is not from a worker of clutch"
    );

    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
