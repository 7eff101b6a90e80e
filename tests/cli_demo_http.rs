//! `clutch start` with no app command runs the built-in demo: app workers answering HTTP on
//! the port the master bound.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One `GET /` on a connection of its own; the whole response.
fn get(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // The demo answers every request it has read, then closes when we do.
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
}

/// (id, pid) from `hello from app worker N (pid P)`.
fn hello(body: &str) -> Option<(u32, u32)> {
    let rest = body.strip_prefix("hello from app worker ")?;
    let (id, rest) = rest.split_once(" (pid ")?;
    let (pid, _) = rest.split_once(')')?;
    Some((id.parse().ok()?, pid.parse().ok()?))
}

#[test]
fn demo_cluster_serves_http() {
    let mut c = Clutch::spawn(clutch_start(&["-w", "2", "-p", "0", "--host", "127.0.0.1"]));
    let line = c
        .stderr
        .wait_for_line(DEADLINE, |l| l.contains("ready at 127.0.0.1:"))
        .unwrap_or_else(|| panic!("no ready line; stderr:\n{}", c.stderr.text()));
    let port: u16 = line
        .split_once("ready at 127.0.0.1:")
        .and_then(|(_, r)| r.split(|ch: char| !ch.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in: {line}"));
    assert_ne!(port, 0, "{line}");

    let workers = children_of(c.pid());
    for _ in 0..4 {
        let response = get(port);
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let (id, pid) = hello(body).unwrap_or_else(|| panic!("unexpected body: {body:?}"));
        assert!((1..=2).contains(&id), "{body}");
        assert!(
            workers.contains(&pid),
            "pid {pid} is not a worker of clutch ({workers:?})"
        );
    }

    c.signal(libc::SIGTERM);
    let status = c.finish(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
