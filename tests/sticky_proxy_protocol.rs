//! `--sticky --proxy-protocol`: the master reads a PROXY header (v1 or v2) off each
//! connection, hands the rest to the worker with the header's client address, and routes by
//! that address. A connection without a complete, valid header in time is closed by the
//! master without a response, and the next good connection is served as usual.

mod common;
use common::net::*;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const PROXY_TIMEOUT: Duration = Duration::from_millis(300);
const WORKERS: usize = 4;

/// `clutch start --sticky --proxy-protocol --proxy-timeout 300` with fixture `http`
/// workers; the running clutch and its port.
fn start() -> (Clutch, u16) {
    let fixture = fixture();
    let timeout = PROXY_TIMEOUT.as_millis().to_string();
    let workers = WORKERS.to_string();
    let (c, port, _) = start_on_port(
        &[
            "-w",
            &workers,
            "--sticky",
            "--proxy-protocol",
            "--proxy-timeout",
            &timeout,
        ],
        &[fixture, "http"],
    );
    (c, port)
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// A request behind `header`, from 127.0.0.1: who served it.
fn served_behind(header: &[u8], port: u16) -> Served {
    let mut s = connect_from(source(1), port).unwrap();
    s.write_all(header).unwrap();
    let response = get_on(&mut s, "/").unwrap_or_else(|e| {
        panic!(
            "a request behind {:?}: {e}",
            String::from_utf8_lossy(header)
        )
    });
    Served::from(&response)
}

/// The master closes `s` without a byte of response, within the deadline.
fn assert_closed_without_response(mut s: TcpStream, what: &str) {
    match read_until_closed(&mut s) {
        Ok(got) => assert!(
            got.is_empty(),
            "{what}: got a response: {:?}",
            String::from_utf8_lossy(&got)
        ),
        Err(e) => panic!("{what}: the connection was not closed within {DEADLINE:?}: {e}"),
    }
}

/// A connection behind a good header is still served.
fn assert_good_connection_served(port: u16) {
    let client = addr("198.51.100.20:4242");
    let served = served_behind(&proxy_v1(client, addr("10.0.0.1:80")), port);
    assert_eq!(served.remote.as_deref(), Some("198.51.100.20:4242"));
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: clutch-test\r\nConnection: close\r\n\r\n";

#[test]
fn v1_header_gives_the_worker_the_client_address() {
    let (c, port) = start();
    let header = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 80\r\n";
    let served = served_behind(header, port);
    assert_eq!(served.remote.as_deref(), Some("203.0.113.7:5555"));
    stop_cleanly(c);
}

#[test]
fn v2_header_gives_the_worker_the_client_address() {
    let (c, port) = start();
    let header = proxy_v2(addr("203.0.113.9:6666"), addr("10.0.0.1:80"));
    let served = served_behind(&header, port);
    assert_eq!(served.remote.as_deref(), Some("203.0.113.9:6666"));
    stop_cleanly(c);
}

#[test]
fn bad_header_is_closed_without_response() {
    let (c, port) = start();
    let mut s = connect_from(source(1), port).unwrap();
    // One write: the master may close as soon as it has seen the header.
    let mut bytes = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 99999\r\n".to_vec();
    bytes.extend_from_slice(GET);
    s.write_all(&bytes).unwrap();
    assert_closed_without_response(s, "a header with port 99999");
    assert_good_connection_served(port);
    stop_cleanly(c);
}

#[test]
fn truncated_header_then_close_gets_no_response() {
    let (c, port) = start();
    let mut s = connect_from(source(1), port).unwrap();
    s.write_all(b"PROXY TCP4 203.0.113.7 10.0").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed_without_response(s, "a header cut short by the client's close");
    assert_good_connection_served(port);
    stop_cleanly(c);
}

#[test]
fn connection_without_header_is_closed_without_response() {
    let (c, port) = start();
    let mut s = connect_from(source(1), port).unwrap();
    s.write_all(GET).unwrap();
    assert_closed_without_response(s, "a request with no PROXY header");
    assert_good_connection_served(port);
    stop_cleanly(c);
}

#[test]
fn slow_header_is_closed_after_the_proxy_timeout() {
    let (c, port) = start();
    let started = Instant::now();
    let mut s = connect_from(source(1), port).unwrap();
    s.write_all(b"PROXY TCP4 203.0.113.7 ").unwrap();
    assert_closed_without_response(s, "a header that never completes");
    let took = started.elapsed();
    // Timers never fire early; the margin only covers clock granularity.
    assert!(
        took >= PROXY_TIMEOUT - Duration::from_millis(10),
        "closed after {took:?}, before the {PROXY_TIMEOUT:?} proxy timeout"
    );
    assert_good_connection_served(port);
    stop_cleanly(c);
}

#[test]
fn affinity_follows_the_header_address() {
    let (c, port) = start();
    let mut pids_by_client: BTreeMap<u8, BTreeSet<u32>> = BTreeMap::new();
    for n in 1..=24u8 {
        let ip = Ipv4Addr::new(203, 0, 113, n);
        let client = SocketAddr::new(IpAddr::V4(ip), 40_000 + u16::from(n));
        for _ in 0..3 {
            // Every connection comes from 127.0.0.1; only the header differs.
            let served = served_behind(&proxy_v1(client, addr("10.0.0.1:80")), port);
            assert_eq!(served.remote, Some(client.to_string()));
            let expected = clutch::sticky::affinity::pick_slot(IpAddr::V4(ip), &[true; WORKERS]);
            assert_eq!(
                Some(served.id),
                expected,
                "{ip} was not routed by its header address"
            );
            pids_by_client.entry(n).or_default().insert(served.pid);
        }
    }
    for (n, pids) in &pids_by_client {
        assert_eq!(
            pids.len(),
            1,
            "203.0.113.{n} reached several workers: {pids_by_client:?}"
        );
    }
    let used: BTreeSet<u32> = pids_by_client.values().flatten().copied().collect();
    assert!(
        used.len() > 1,
        "24 header addresses from one loopback source all reached one worker: {pids_by_client:?}"
    );
    stop_cleanly(c);
}
