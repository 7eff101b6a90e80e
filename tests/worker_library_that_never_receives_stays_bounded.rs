//! A Rust worker that never calls `recv()` does not grow without bound however much the
//! master sends: the library stops reading its channel once its inbox is full (backpressure),
//! so the bytes stay in the master's hands (and caps), not in the worker's memory.
//!
//! The test plays the master: it holds the other end of the worker's channel and writes
//! up to 200 MB of messages to a fixture worker that never reads them (`no-ready`).

mod common;
use common::*;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// What the master tries to send.
const FLOOD: usize = 200 << 20;
/// The worker's resident memory may not pass this (its inbox holds 16 MiB of messages).
const MAX_RSS: u64 = 96 << 20;
/// No byte taken for this long: the worker has stopped reading.
const QUIET: Duration = Duration::from_millis(500);

#[test]
fn worker_library_that_never_receives_stays_bounded() {
    use command_fds::{CommandFdExt, FdMapping};
    let (mut master_end, worker_end) = UnixStream::pair().unwrap();
    let mut cmd = std::process::Command::new(fixture());
    cmd.arg("no-ready")
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
    let worker = CliProcess(cmd.spawn().unwrap());
    drop(cmd);
    let pid = worker.0.id();

    let mut line = br#"{"action":"flood","data":""#.to_vec();
    line.resize(line.len() + 1000, b'x');
    line.extend_from_slice(b"\"}\n");
    let chunk: Vec<u8> = line.repeat(64);

    master_end.set_nonblocking(true).unwrap();
    let mut sent = 0usize;
    let mut at = 0usize;
    let mut last_progress = Instant::now();
    let mut peak = 0u64;
    let end = Instant::now() + Duration::from_secs(120);
    while sent < FLOOD && last_progress.elapsed() < QUIET {
        assert!(Instant::now() < end, "200 MB took more than 2 minutes");
        match master_end.write(&chunk[at..]) {
            Ok(n) => {
                sent += n;
                at = (at + n) % chunk.len();
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("the worker's channel failed after {sent} bytes: {e}"),
        }
        peak = peak.max(rss(pid));
    }
    // What was read is parsed and queued a moment later: let it settle.
    let mut last = rss(pid);
    let mut since = Instant::now();
    wait_until(DEADLINE, || {
        let now = rss(pid);
        if now != last {
            last = now;
            since = Instant::now();
        }
        since.elapsed() >= QUIET
    });
    peak = peak.max(last);
    eprintln!(
        "sent {} MiB; the worker's RSS peaked at {} MiB",
        sent >> 20,
        peak >> 20
    );
    assert!(
        peak < MAX_RSS,
        "a worker that never calls recv() reached {} MiB of RSS after {} MiB were sent to it \
         (at most {} MiB expected)",
        peak >> 20,
        sent >> 20,
        MAX_RSS >> 20
    );
}

/// Resident memory of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for pid {pid}"));
    kb << 10
}
