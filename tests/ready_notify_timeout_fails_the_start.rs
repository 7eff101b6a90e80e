//! With `--ready notify`, a worker that never sends `READY=1` fails the start once the
//! ready timeout passes: clutch exits 1 naming it, and leaves no process behind.

mod common;
use common::net::*;
use common::*;

#[test]
fn ready_notify_timeout_fails_the_start() {
    assert!(have("python3"), "this test needs `python3` on PATH");
    let script = fixture_file("notify_ready_worker.py");
    let mut c = Clutch::spawn(clutch_start(&[
        "-w",
        "1",
        "--no-agent",
        "--ready",
        "notify",
        "--ready-timeout",
        "300",
        "--",
        "python3",
        &script,
        "--never",
    ]));
    let status = c.finish(DEADLINE);
    let stderr = c.stderr.text();
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains("app worker 1") && stderr.contains("not ready after 300 ms"),
        "the failure does not name the worker and the timeout; stderr:\n{stderr}"
    );
}
