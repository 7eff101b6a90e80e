//! `clutch ctl kill` SIGKILLs a worker's group and `clutch ctl signal` sends any signal to
//! the worker: both are crashes for the restart policy (no intent), so the slot restarts
//! and the exit counts as unexpected.

mod common;
use common::ctl;

#[test]
fn kill_and_signal_are_crashes() {
    let c = ctl::start(2, &[]);
    let list = c.ctl_json(&["list", "--json"]);
    let one = ctl::row(&list, 1)["pid"].as_u64().unwrap();
    let out = c.ctl_json(&["kill", "1"]);
    assert_eq!(out["signal"], "SIGKILL");
    assert_eq!(out["pids"][0], one);
    let list = c.wait_for(
        |l| {
            let r = ctl::row(l, 1);
            r["state"] == "ready" && r["pid"] != one
        },
        "slot 1 restarted after the kill",
    );
    assert_eq!(ctl::row(&list, 1)["last_exit"]["signal"], "SIGKILL");

    let two = ctl::row(&list, 2)["pid"].as_u64().unwrap();
    let out = c.ctl_json(&["signal", "HUP", &format!("pid:{two}")]);
    assert_eq!(out["signal"], "SIGHUP");
    let list = c.wait_for(
        |l| {
            let r = ctl::row(l, 2);
            r["state"] == "ready" && r["pid"] != two
        },
        "slot 2 restarted after SIGHUP",
    );
    assert_eq!(ctl::row(&list, 2)["last_exit"]["signal"], "SIGHUP");
    let stats = c.ctl_json(&["stats", "--json"]);
    assert_eq!(stats["exits"]["unexpected"], 2, "{stats}");
    assert_eq!(stats["restarts"]["crash"], 2, "{stats}");

    let out = c.ctl(&["kill", "pid:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no live worker matches"));
    let out = c.ctl(&["signal", "NOPE", "1"]);
    assert_eq!(out.status.code(), Some(2));
}
