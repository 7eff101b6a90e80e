//! The variables clutch sets for its workers are its own: a value of `CLUTCH_HOST` or
//! `CLUTCH_REUSEPORT` in the master's environment never reaches a worker, where it would
//! claim a mode or an address the master did not set up.

mod common;
use common::*;

/// Runs one app worker (a shell) under `clutch start ARGS` with `CLUTCH_HOST=leaked` and
/// `CLUTCH_REUSEPORT=1` in clutch's environment; returns what the worker saw of them.
fn seen_by_the_worker(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    let script = format!(
        "printf '%s|%s' \"${{CLUTCH_HOST-unset}}\" \"${{CLUTCH_REUSEPORT-unset}}\" > {out}.tmp \
         && mv {out}.tmp {out} && exec sleep 600",
        out = out.display()
    );
    let mut all = vec!["-w", "1", "--no-agent", "--ready", "spawn"];
    all.extend(args);
    all.extend(["--", "sh", "-c", &script]);
    let mut cmd = clutch_start(&all);
    cmd.env("CLUTCH_HOST", "leaked")
        .env("CLUTCH_REUSEPORT", "1");
    let mut c = Clutch::spawn(cmd);
    assert!(
        wait_until(DEADLINE, || out.exists()),
        "the worker wrote nothing; stderr:\n{}",
        c.stderr.text()
    );
    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
    std::fs::read_to_string(&out).unwrap()
}

#[test]
fn without_a_port_a_worker_sees_neither() {
    assert_eq!(seen_by_the_worker(&[]), "unset|unset");
}

#[test]
fn with_a_shared_port_a_worker_sees_the_real_host_and_no_reuseport() {
    assert_eq!(
        seen_by_the_worker(&["-p", "0", "--host", "127.0.0.1"]),
        "127.0.0.1|unset"
    );
}
