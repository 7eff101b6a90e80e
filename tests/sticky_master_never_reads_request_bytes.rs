//! A sticky master never reads what a client sends (without `--proxy-protocol`): bytes
//! written at once on connect, before any handoff can have happened, all reach the worker,
//! from the first; the worker is the first to read any byte of a connection (the kernel's
//! own count says so); and once handed over a connection is no longer held by the master at
//! all.
//! This is the master-accept path (`--sticky-mode handoff`).

mod common;
use common::net::*;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;

/// Starts `clutch --sticky` with fixture `echo` workers; the running clutch and its port.
fn start() -> (Clutch, u16) {
    let (c, port, _) = start_on_port(
        &["-w", "2", "--sticky", "--sticky-mode", "handoff"],
        &[fixture(), "echo"],
    );
    (c, port)
}

/// A payload whose every position is distinguishable, so a lost or shifted byte shows.
fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// Writes `data` on `s` from a thread (so the echo never stalls on a full buffer), half-closes,
/// and returns everything the worker sent back.
fn send_and_echo(s: TcpStream, data: Vec<u8>) -> Vec<u8> {
    let mut writer = s.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        writer.write_all(&data).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut s = s;
    let back = read_until_closed(&mut s).unwrap();
    sending.join().unwrap();
    back
}

#[test]
fn bytes_sent_at_connect_come_back_whole() {
    let (c, port) = start();
    for n in 2..6 {
        let data = payload(64 * 1024, n);
        let mut s = connect_from(source(n), port).unwrap();
        // Written before the master can have accepted, let alone handed over, the socket.
        s.write_all(&data[..1024]).unwrap();
        let back = send_and_echo(s, data[1024..].to_vec());
        assert_eq!(back.len(), data.len(), "from 127.0.0.{n}");
        assert!(
            back == data,
            "from 127.0.0.{n}: the echo differs from what was sent"
        );
    }
    stop_cleanly(c);
}

#[test]
fn the_worker_is_the_first_to_read_every_connection() {
    // A read by the master that forwarded what it read would keep the echo whole; the
    // kernel's count of bytes received but no longer queued would not be 0.
    let (c, port, _) = start_on_port(
        &["-w", "2", "--sticky", "--sticky-mode", "handoff"],
        &[fixture(), "read-before"],
    );
    for i in 0..32u8 {
        let request = [
            format!("GET /{i} HTTP/1.1\r\nHost: clutch-test\r\n\r\n").into_bytes(),
            payload(4096, i),
        ]
        .concat();
        let mut s = connect_from(source(2 + i % 8), port).unwrap();
        // Written before the master can have accepted, let alone handed over, the socket.
        s.write_all(&request).unwrap();
        // Half-closed only once the worker counted: the kernel counts a FIN as a byte.
        let mut report = Vec::new();
        let mut byte = [0u8; 1];
        while report.last() != Some(&b'\n') {
            s.read_exact(&mut byte).unwrap();
            report.push(byte[0]);
        }
        assert_eq!(
            String::from_utf8_lossy(&report),
            "read-before 0\n",
            "connection {i}: someone read from it before the worker"
        );
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let back = read_until_closed(&mut s).unwrap();
        assert!(
            back == request,
            "connection {i}: the worker echoed {} bytes, not the {} of the request",
            back.len(),
            request.len()
        );
    }
    stop_cleanly(c);
}

#[test]
fn master_holds_no_connection_once_handed_over() {
    let (c, port) = start();
    let master = c.pid();
    let idle = socket_inodes(master).len();
    let mut open = Vec::new();
    for n in 2..10 {
        let mut s = connect_from(source(n), port).unwrap();
        s.write_all(b"ping").unwrap();
        let mut back = [0u8; 4];
        std::io::Read::read_exact(&mut s, &mut back).unwrap();
        assert_eq!(&back, b"ping", "from 127.0.0.{n}");
        // Left open: the worker serves it; the master must have let go of it.
        open.push(s);
    }
    let mut sockets = socket_inodes(master).len();
    // The last acknowledgements may still be on their way to the master.
    wait_until(DEADLINE, || {
        sockets = socket_inodes(master).len();
        sockets <= idle
    });
    assert_eq!(
        sockets,
        idle,
        "the master holds {sockets} sockets with {} handed-over connections open, {idle} idle",
        open.len()
    );
    drop(open);
    stop_cleanly(c);
}
