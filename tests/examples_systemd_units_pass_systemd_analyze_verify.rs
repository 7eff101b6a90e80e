//! `examples/clutch.service` and `examples/clutch.socket` are units systemd accepts as they
//! are: `systemd-analyze verify` (Debian's `systemd` package; it needs no systemd running)
//! reports nothing about them, not even an unknown key. ExecStart points at the clutch just
//! built, as the tool checks that the program exists. The service says what the README
//! promises: Type=notify, NotifyAccess=main, ExecReload with SIGHUP, KillMode=mixed, and a
//! TimeoutStopSec above twice its --kill-timeout (the app workers', then the agent's).

mod common;
use common::*;

fn example(name: &str) -> String {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The value of `key=` in `unit` (the last one).
fn value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .next_back()
        .unwrap_or_else(|| panic!("no {key}= in\n{unit}"))
}

#[test]
fn the_service_says_what_the_readme_promises() {
    let service = example("clutch.service");
    assert_eq!(value(&service, "Type"), "notify");
    assert_eq!(value(&service, "NotifyAccess"), "main");
    assert_eq!(value(&service, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(value(&service, "KillMode"), "mixed");
    assert!(value(&service, "WatchdogSec").parse::<u64>().unwrap() > 0);
    let exec = value(&service, "ExecStart");
    let kill_ms: u64 = exec
        .split_once("--kill-timeout ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no --kill-timeout in ExecStart: {exec}"))
        .parse()
        .unwrap();
    let stop_s: u64 = value(&service, "TimeoutStopSec").parse().unwrap();
    assert!(
        stop_s * 1000 > 2 * kill_ms,
        "TimeoutStopSec={stop_s} --kill-timeout {kill_ms}"
    );
}

#[test]
fn examples_systemd_units_pass_systemd_analyze_verify() {
    let Ok(version) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("skipped: no systemd-analyze here (Debian's `systemd` package has it)");
        return;
    };
    assert!(version.status.success());
    let dir = tempfile::tempdir().unwrap();
    let service = example("clutch.service").replace("/usr/local/bin/clutch", clutch_bin());
    std::fs::write(dir.path().join("clutch.service"), service).unwrap();
    std::fs::write(dir.path().join("clutch.socket"), example("clutch.socket")).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("clutch.service"))
        .arg(dir.path().join("clutch.socket"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Warnings (an unknown key, a bad value) leave the exit status 0: none may name a unit.
    let dir_name = dir.path().display().to_string();
    let about_ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(&dir_name) || l.contains("clutch."))
        .collect();
    assert!(about_ours.is_empty(), "{stderr}");
}
