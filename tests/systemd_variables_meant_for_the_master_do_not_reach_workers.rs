//! `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`, `LISTEN_FDS`, `LISTEN_PID` and
//! `LISTEN_FDNAMES` in the master's environment are systemd's words to the master: no
//! worker inherits them (a worker that saw them would answer for the whole service, or
//! take an fd it does not have for a socket).

mod common;
use common::systemd::*;
use common::*;

const VARS: [&str; 6] = [
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

#[test]
fn systemd_variables_meant_for_the_master_do_not_reach_workers() {
    let notify = NotifySocket::bind();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    let shown: Vec<String> = VARS.iter().map(|v| format!("{v}=${{{v}-unset}}")).collect();
    let script = format!(
        "echo \"{}\" > {out}.tmp && mv {out}.tmp {out} && exec sleep 600",
        shown.join(" "),
        out = out.display()
    );
    let mut cmd = clutch_start(&[
        "-w",
        "1",
        "--no-agent",
        "--ready",
        "spawn",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    cmd.env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "60000000")
        // Not this clutch (pid 1 is init): the master must not take fd 3 either.
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1")
        .env("LISTEN_FDNAMES", "web");
    let mut c = Clutch::spawn(cmd);
    assert!(
        wait_until(DEADLINE, || out.exists()),
        "the worker wrote nothing; stderr:\n{}",
        c.stderr.text()
    );
    let seen = std::fs::read_to_string(&out).unwrap();
    let expected: Vec<String> = VARS.iter().map(|v| format!("{v}=unset")).collect();
    assert_eq!(seen.trim(), expected.join(" "));
    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
