//! Started by `systemd-socket-activate` (systemd's own tool for socket activation, from
//! Debian's `systemd` package; it needs no systemd running), clutch serves the listening
//! socket it was passed (`LISTEN_FDS`, `LISTEN_PID`) instead of binding a port: shared
//! among the app workers, or accepted on by a sticky master. The first connection, the one
//! that made `systemd-socket-activate` start clutch, is served too. A passed socket that
//! is not a listening TCP socket is refused with exit code 2 and a message saying so.

mod common;
use common::net::*;
use common::systemd::*;
use common::*;
use std::collections::BTreeSet;

/// `systemd-socket-activate -l 127.0.0.1:PORT [socket_flags] clutch start ARGS`; it
/// passes no environment of its own, hence `-E`.
fn socket_activate(port: u16, socket_flags: &[&str], args: &[&str]) -> Clutch {
    assert!(
        have_socket_activate(),
        "this test needs `systemd-socket-activate` (Debian's `systemd` package; .ci/run \
         installs it)"
    );
    let mut cmd = std::process::Command::new("systemd-socket-activate");
    cmd.args(["-l", &format!("127.0.0.1:{port}")])
        .args(socket_flags)
        .args(["-E", "RUST_LOG=info", "-E", "NO_COLOR=1"])
        .args([clutch_bin(), "start", "--no-control"])
        .args(args);
    Clutch::spawn(cmd)
}

/// Starts clutch under `systemd-socket-activate`, retrying on another port should the free
/// one have been taken in between; returns it once it listens, and the port.
fn listening(socket_flags: &[&str], args: &[&str]) -> (Clutch, u16) {
    for _ in 0..3 {
        let port = free_port();
        let c = socket_activate(port, socket_flags, args);
        let said = c.stderr.wait_for_line(DEADLINE, |l| {
            l.starts_with("Listening on") || l.contains("ddress already in use")
        });
        match said {
            Some(l) if l.starts_with("Listening on") => return (c, port),
            Some(_) => continue,
            None => panic!("systemd-socket-activate said nothing:\n{}", c.stderr.text()),
        }
    }
    panic!("no free port for systemd-socket-activate in three tries");
}

fn serves_the_passed_socket(mode: &[&str]) {
    let mut args = vec!["-w", "2", "--no-agent", "--port", "1"];
    args.extend_from_slice(mode);
    args.extend(["--", fixture(), "http"]);
    let (mut c, port) = listening(&[], &args);
    // The first connection starts clutch; it waits in the socket's queue meanwhile.
    let first = served_from(source(1), port, "/");
    assert!([1, 2].contains(&first.id), "{first:?}");
    let log = c.stderr.text();
    assert!(
        log.contains(&format!("the service manager passed, on 127.0.0.1:{port}")),
        "{log}"
    );
    // Both workers serve it (in sticky mode, from two client addresses).
    let mut ids = BTreeSet::new();
    let mut n = 1u8;
    let both = wait_until(DEADLINE, || {
        n = n % 200 + 1;
        ids.insert(served_from(source(n), port, "/").id);
        ids.len() == 2
    });
    assert!(both, "only {ids:?} answered; stderr:\n{}", c.stderr.text());
    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}

#[test]
fn shared_mode_serves_the_passed_socket() {
    serves_the_passed_socket(&[]);
}

#[test]
fn sticky_mode_serves_the_passed_socket() {
    serves_the_passed_socket(&["--sticky"]);
}

#[test]
fn a_datagram_socket_is_refused_with_exit_code_2() {
    let (mut c, port) = listening(&["--datagram"], &["-w", "1", "--no-agent", "--", fixture()]);
    // A datagram to the passed socket is what starts clutch.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"hello", ("127.0.0.1", port)).unwrap();
    let status = c.finish(DEADLINE);
    let log = c.stderr.text();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("not a listening TCP socket"), "{log}");
}
