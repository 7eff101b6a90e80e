//! A sticky master never reads what a client sends (without `--proxy-protocol`): bytes
//! written at once on connect, before any handoff can have happened, all reach the worker,
//! from the first; the master's reads do not grow with the payload; and once handed over a
//! connection is no longer held by the master at all.

mod common;
use common::net::*;
use common::*;
use std::io::Write;
use std::net::TcpStream;

/// Starts `clutch --sticky` with fixture `echo` workers; the running clutch and its port.
fn start() -> (Clutch, u16) {
    let (c, port, _) = start_on_port(&["-w", "2", "--sticky"], &[fixture(), "echo"]);
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
fn master_reads_do_not_grow_with_the_payload() {
    // rchar counts read(2)-style reads; recv(2) on a socket does not show in it, so this
    // catches a master that copies a connection with read(2), not one that uses recv(2)
    // (see master_holds_no_connection_once_handed_over for that).
    let (c, port) = start();
    let master = c.pid();
    const TOTAL: usize = 1 << 20;
    const CONNECTIONS: usize = 8;
    let before = rchar(master);
    for i in 0..CONNECTIONS {
        let data = payload(TOTAL / CONNECTIONS, i as u8);
        let s = connect_from(source(2 + i as u8), port).unwrap();
        let back = send_and_echo(s, data.clone());
        assert!(back == data, "connection {i}: the echo differs");
    }
    let grew = rchar(master) - before;
    assert!(
        grew < (TOTAL / 16) as u64,
        "the master's rchar grew by {grew} bytes while {TOTAL} went through it"
    );
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
