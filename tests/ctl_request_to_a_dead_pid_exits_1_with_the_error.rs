//! `clutch ctl request --pid P` for a worker that is gone gets the master's error reply at
//! once ("no live worker with pid P"), printed, and exits 1: it does not wait for the
//! timeout.

mod common;
use common::ctl;
use std::time::{Duration, Instant};

#[test]
fn request_to_a_dead_pid_exits_1_with_the_error() {
    let c = ctl::start_with_app(1, &[], &["reply-to-requests"]);
    let list = c.ctl_json(&["list", "--json"]);
    let old = ctl::row(&list, 1)["pid"].clone();
    let out = c.ctl(&["kill", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.wait_for(
        |l| ctl::row(l, 1)["pid"] != old && ctl::row(l, 1)["state"] == "ready",
        "slot 1 restarted with a new pid",
    );
    let old = old.as_u64().unwrap().to_string();
    let t = Instant::now();
    let out = c.ctl(&["request", "--pid", &old, "--timeout", "60000", "ping"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let want = format!("no live worker with pid {old}");
    assert!(stderr.contains(&want), "{stderr}");
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        reply["error"],
        want.as_str(),
        "the error reply is printed: {reply}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "answered at once, not after the 60 s timeout ({:?})",
        t.elapsed()
    );
}
