//! The worker library acknowledges a handed-over socket to the master before user code can
//! see it: a worker that reads a request and dies at once has still acknowledged the
//! socket, so the master knows not to pass it (its request gone) to another worker.
//!
//! The test plays the master: it holds the other end of the worker's channel, sends one
//! `clutch:connection` with a TCP socket, and the fixture worker (`take-and-exit`) writes to
//! that socket and exits the moment it gets it.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

#[test]
fn worker_library_acknowledges_a_socket_before_user_code_gets_it() {
    use command_fds::{CommandFdExt, FdMapping};
    let (master_end, worker_end) = UnixStream::pair().unwrap();
    let mut cmd = std::process::Command::new(fixture());
    cmd.arg("take-and-exit")
        .env("CLUTCH_ROLE", "app")
        .env("CLUTCH_WORKER_ID", "1")
        .env("CLUTCH_CHANNEL_FD", "3")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .fd_mappings(vec![FdMapping {
            parent_fd: worker_end.into(),
            child_fd: 3,
        }])
        .unwrap();
    let mut worker = CliProcess(cmd.spawn().unwrap());
    // The child has its copy; ours must go for end of file to mean the worker is gone.
    drop(cmd);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    let (conn, _) = listener.accept().unwrap();
    conn.set_nonblocking(true).unwrap();
    let line = br#"{"action":"clutch:connection","data":{"remoteAddress":"127.0.0.1","remotePort":1,"localAddress":"127.0.0.1","localPort":2}}
"#;
    let sent =
        clutch::sys::fdpass::send_with_fds(master_end.as_raw_fd(), line, &[conn.as_raw_fd()])
            .unwrap();
    assert_eq!(sent, line.len());

    let mut taken = [0u8; 5];
    client
        .read_exact(&mut taken)
        .expect("the worker's code got the socket and wrote to it");
    assert_eq!(&taken, b"taken");
    let status = wait_exit(&mut worker.0, DEADLINE).expect("the worker exits");
    assert_eq!(status.code(), Some(7));

    // Everything the worker wrote before dying is in the channel, up to end of file.
    master_end.set_read_timeout(Some(DEADLINE)).unwrap();
    let lines: Vec<serde_json::Value> = BufReader::new(&master_end)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let acked: u64 = lines
        .iter()
        .filter(|m| m["action"] == "clutch:ack")
        .map(|m| m["data"].as_u64().unwrap())
        .sum();
    assert_eq!(
        acked, 1,
        "the worker's code had the socket but the master was never told it was taken: {lines:?}"
    );
}
