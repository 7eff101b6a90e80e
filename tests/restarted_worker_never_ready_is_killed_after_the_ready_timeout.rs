//! `--ready-timeout` applies to restarted workers too, not only to the start: a worker
//! restarted after a crash that never says it is ready is killed once the timeout has
//! passed since it started, and its slot is restarted under the restart policy; the
//! cluster stays up.

mod common;
use common::*;

const READY_TIMEOUT_MS: u64 = 1000;

/// The pids recorded in `path` by `restarted-never-ready` workers, in start order.
fn recorded(path: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Seconds since boot at which `pid` started, from /proc/PID/stat (while it is alive).
fn started_at(pid: u64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = stat.rsplit(')').next().unwrap();
    // Field 22 of stat; field 3 (state) is the first after the command name.
    let ticks: f64 = after_comm
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: sysconf with a constant name.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Seconds since boot now.
fn uptime() -> f64 {
    let text = std::fs::read_to_string("/proc/uptime").unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn restarted_worker_never_ready_is_killed_after_the_ready_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pids_file = dir.path().join("app-pids");
    let never_ready = format!("restarted-never-ready:{}", pids_file.display());
    let timeout = READY_TIMEOUT_MS.to_string();
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "-w",
        "1",
        "--no-agent",
        "--ready-timeout",
        &timeout,
        "--",
        fixture(),
        "crash-after-if-id:1:100",
        &never_ready,
    ]));
    c.expect_ready(DEADLINE);
    let first = c.expect_started(1, DEADLINE)[0]["pid"].as_u64().unwrap();
    let crash = c.expect("the first worker's crash", DEADLINE, |m| {
        m["action"] == "app-worker-died" && m["data"]["pid"] == first
    });
    assert_eq!(crash["data"]["code"], 3, "{crash}");

    // Its replacement starts, and never says it is ready.
    let mut pids = Vec::new();
    assert!(
        wait_until(DEADLINE, || {
            pids = recorded(&pids_file);
            pids.len() >= 2
        }),
        "slot 1 was not restarted after its crash; pids {pids:?}; stderr:\n{}",
        c.stderr.text()
    );
    let restarted = pids[1];
    let born = started_at(restarted);

    let killed = c.expect(
        "the restarted worker killed after the ready timeout",
        3 * DEADLINE,
        |m| m["action"] == "app-worker-died" && m["data"]["pid"] == restarted,
    );
    let lived = uptime() - born;
    // It waits for ever unless killed: the master killed it.
    assert!(
        killed["data"]["code"].is_null() && !killed["data"]["signal"].is_null(),
        "{killed}"
    );
    assert!(
        lived >= (READY_TIMEOUT_MS as f64 / 1000.0) - 0.05,
        "killed {lived:.2} s after it started, before the {READY_TIMEOUT_MS} ms ready timeout"
    );
    let warning = c.stderr.wait_for_line(DEADLINE, |l| {
        l.contains(&format!("pid {restarted}")) && l.contains("not ready")
    });
    assert!(
        warning.is_some(),
        "no warning naming the worker; stderr:\n{}",
        c.stderr.text()
    );

    // The slot goes on under the restart policy.
    assert!(
        wait_until(3 * DEADLINE, || {
            pids = recorded(&pids_file);
            pids.len() >= 3
        }),
        "slot 1 was not restarted after the ready timeout; pids {pids:?}; stderr:\n{}",
        c.stderr.text()
    );
    assert!(
        alive(c.pid()),
        "clutch exited; stderr:\n{}",
        c.stderr.text()
    );
    c.signal(libc::SIGTERM);
    let status = c.finish(3 * DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
