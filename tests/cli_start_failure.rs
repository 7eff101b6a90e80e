//! `clutch start` exits 1 when the cluster cannot start, and says which worker failed.

mod common;
use common::*;
use std::time::{Duration, Instant};

/// The line clutch prints last when the start failed.
fn failure_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.starts_with("clutch: the cluster failed to start:"))
        .unwrap_or_else(|| panic!("no failure line in stderr:\n{stderr}"))
        .to_string()
}

/// The number after `(pid ` in `line`.
fn pid_in(line: &str) -> Option<u32> {
    let rest = line.split_once("(pid ")?.1;
    rest.split_once(')')?.0.parse().ok()
}

#[test]
fn start_failure_exits_1_naming_the_app_worker() {
    let mut c = Clutch::spawn(clutch_start(&[
        "-w",
        "2",
        "--no-agent",
        "--",
        fixture(),
        "exit:7",
    ]));
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(1), "stderr:\n{}", c.stderr.text());
    let line = failure_line(&c.stderr.text());
    assert!(line.contains("app worker "), "{line}");
    assert!(pid_in(&line).is_some_and(|p| p > 0), "no pid in: {line}");
    assert!(line.contains("exit code 7"), "{line}");
}

#[test]
fn start_failure_exits_1_naming_the_agent() {
    let mut c = Clutch::spawn(clutch_start_fixtures("exit:5", None, &[]));
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(1), "stderr:\n{}", c.stderr.text());
    let line = failure_line(&c.stderr.text());
    assert!(line.contains("agent (pid "), "{line}");
    assert!(pid_in(&line).is_some_and(|p| p > 0), "no pid in: {line}");
    assert!(line.contains("exit code 5"), "{line}");
}

#[test]
fn ready_timeout_exits_1() {
    let started = Instant::now();
    let mut c = Clutch::spawn(clutch_start(&[
        "-w",
        "2",
        "--no-agent",
        "--ready-timeout",
        "300",
        "--",
        fixture(),
        "no-ready",
    ]));
    let status = c.finish(3 * DEADLINE);
    let took = started.elapsed();
    assert_eq!(status.code(), Some(1), "stderr:\n{}", c.stderr.text());
    assert!(
        took >= Duration::from_millis(300),
        "failed after {took:?}, before the 300 ms timeout"
    );
    let line = failure_line(&c.stderr.text());
    assert!(line.contains("not ready after 300 ms"), "{line}");
}
