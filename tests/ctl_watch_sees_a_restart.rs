//! `clutch ctl watch --json` prints a snapshot, then the events of a restart as they
//! happen: the new worker spawned and ready, the old one stopping and exited (replaced),
//! and the operator's command, each with a growing sequence number.

mod common;
use common::{DEADLINE, ctl};
use serde_json::Value;

#[test]
fn watch_sees_a_restart() {
    let c = ctl::start(2, &[]);
    let old = ctl::row(&c.ctl_json(&["list", "--json"]), 1)["pid"]
        .as_u64()
        .unwrap();
    let (_watch, rx) = c.watch_json();
    let first = rx.recv_timeout(DEADLINE).expect("a snapshot");
    assert_eq!(first["event"], "snapshot");
    assert_eq!(first["snapshot"]["workers"].as_array().unwrap().len(), 3);

    let out = c.ctl(&["restart", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut seen: Vec<Value> = Vec::new();
    let done = |seen: &[Value]| seen.iter().any(|e| e["event"] == "ctl.command");
    while !done(&seen) {
        seen.push(
            rx.recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("events so far: {seen:?}")),
        );
    }
    let names: Vec<&str> = seen.iter().map(|e| e["event"].as_str().unwrap()).collect();
    let at = |name: &str| names.iter().position(|n| *n == name);
    let exited = seen
        .iter()
        .find(|e| e["event"] == "worker.exited")
        .unwrap_or_else(|| panic!("{names:?}"));
    assert_eq!(exited["pid"], old);
    assert_eq!(exited["reason"], "replace");
    assert_eq!(exited["signal"], "SIGTERM");
    let ready = seen.iter().find(|e| e["event"] == "worker.ready").unwrap();
    assert_eq!(ready["slot"], 1);
    assert_ne!(ready["pid"], old);
    assert!(at("worker.restarted") < at("worker.spawned"), "{names:?}");
    assert!(at("worker.spawned") < at("worker.ready"), "{names:?}");
    assert!(at("worker.ready") < at("worker.stopping"), "{names:?}");
    assert!(at("worker.stopping") < at("worker.exited"), "{names:?}");
    let cmd = &seen[at("ctl.command").unwrap()];
    assert_eq!(cmd["command"], "restart 1");
    // SAFETY: geteuid has no preconditions.
    assert_eq!(cmd["uid"], unsafe { libc::geteuid() });
    let seqs: Vec<u64> = seen.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(seen.iter().all(|e| e["time_ms"].as_u64().unwrap() > 0));
}
