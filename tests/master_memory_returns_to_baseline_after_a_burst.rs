//! After a burst of garbage and 10 MiB messages on its parent channel (each delivered to a
//! worker, and each worker's 10 MiB report of it sent back), the master's memory comes back
//! near where it started, although no channel has spoken since.
mod common;
use common::memory::rss_kib;
use common::*;
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;

const MIB: usize = 1 << 20;
const BIG: usize = 10 * MIB;
/// How far above its resting size the master may stay once the burst is over.
const MARGIN_KIB: u64 = 12 * 1024;

/// clutch with an agent and 2 app workers and a parent channel: (process, our end of the
/// channel, the actions of the lines it sends us, with their length).
fn start() -> (Clutch, UnixStream, mpsc::Receiver<(String, usize)>) {
    use command_fds::{CommandFdExt, FdMapping};
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut cmd = clutch_start_fixtures("", None, &[]);
    cmd.fd_mappings(vec![FdMapping {
        parent_fd: theirs.into(),
        child_fd: 3,
    }])
    .unwrap()
    .env("CLUTCH_CHANNEL_FD", "3");
    let clutch = Clutch::spawn(cmd);
    let reader = ours.try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let v: Value = serde_json::from_slice(&line).expect("clutch sends JSON");
                    let action = v["action"].as_str().unwrap_or_default().to_string();
                    if tx.send((action, n)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    (clutch, ours, rx)
}

fn send(to: &mut UnixStream, msg: &Value) {
    let mut line = serde_json::to_vec(msg).unwrap();
    line.push(b'\n');
    to.write_all(&line).unwrap();
}

/// Waits for `n` lines with `action` (and at least `min_len` bytes) from clutch.
fn expect_n(rx: &mpsc::Receiver<(String, usize)>, action: &str, min_len: usize, n: usize) {
    let mut seen = 0;
    while seen < n {
        let (a, len) = rx
            .recv_timeout(3 * DEADLINE)
            .unwrap_or_else(|_| panic!("{seen} of {n} `{action}` lines came"));
        if a == action && len >= min_len {
            seen += 1;
        }
    }
}

#[test]
fn master_memory_returns_to_baseline_after_a_burst() {
    let (clutch, mut parent, rx) = start();
    // Every worker reporting `cluster-ready` back: the cluster is at rest.
    expect_n(&rx, "got", 0, 3);
    let pid = clutch.pid().to_string();
    let baseline = rss_kib(&pid);

    // Garbage: lines that are not JSON, one of them 10 MiB long, and invalid UTF-8.
    let mut garbage = Vec::new();
    for _ in 0..8 {
        garbage.extend(std::iter::repeat_n(b'g', MIB));
        garbage.push(b'\n');
    }
    garbage.extend(std::iter::repeat_n(b'{', BIG));
    garbage.extend_from_slice(b"\n\xff\xfe\n");
    parent.write_all(&garbage).unwrap();
    drop(garbage);
    // Then 10 MiB messages, each reported back whole by the workers it reached.
    let big = "x".repeat(BIG);
    for to in ["app", "agent", "app"] {
        send(
            &mut parent,
            &json!({"action": "big", "to": to, "data": big}),
        );
    }
    drop(big);
    expect_n(&rx, "got", BIG, 5);
    let after_burst = rss_kib(&pid);

    let settled = wait_until(2 * DEADLINE, || rss_kib(&pid) < baseline + MARGIN_KIB);
    let rest = rss_kib(&pid);
    eprintln!(
        "master RSS: {} MiB at rest before, {} MiB right after the burst, {} MiB at the end",
        baseline / 1024,
        after_burst / 1024,
        rest / 1024
    );
    assert!(
        settled,
        "the master holds {} MiB after the burst, {} MiB before it",
        rest / 1024,
        baseline / 1024
    );
}
