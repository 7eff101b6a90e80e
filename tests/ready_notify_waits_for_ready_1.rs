//! With `--ready notify` a worker is ready when it sends `READY=1` to its NOTIFY_SOCKET, not
//! before: a worker that says so late holds `cluster-ready` back until it has.

mod common;
use common::net::*;
use common::*;
use std::time::{Duration, Instant};

const DELAY: Duration = Duration::from_millis(700);

#[test]
fn ready_notify_waits_for_ready_1() {
    assert!(have("python3"), "this test needs `python3` on PATH");
    let markers = tempfile::tempdir().unwrap();
    let script = fixture_file("notify_ready_worker.py");
    let delay = DELAY.as_millis().to_string();
    let started = Instant::now();
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "-w",
        "2",
        "--no-agent",
        "--ready",
        "notify",
        "--",
        "python3",
        &script,
        "--delay-ms",
        &delay,
        "--marker-dir",
        markers.path().to_str().unwrap(),
    ]));
    c.expect_ready(DEADLINE);
    let took = started.elapsed();

    // Each worker makes its marker right before it sends READY=1.
    let ready_said: Vec<String> = std::fs::read_dir(markers.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        ready_said.len(),
        2,
        "cluster-ready after {took:?} although only {ready_said:?} sent READY=1"
    );
    assert!(took >= DELAY, "cluster-ready after only {took:?}");

    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
