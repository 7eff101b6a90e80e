//! A local user other than the master's and root has no role on the control socket unless
//! `--control-users` grants one: the master's SO_PEERCRED check refuses it (the test opens
//! the socket file to everyone, so that the uid check is what decides), and `ctl` exits 2.

mod common;
use common::ctl;

/// Only root can run a command as another uid; the tests say so rather than fail.
fn can_switch_uid() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: running `ctl` as another uid needs root");
    }
    root
}

fn as_nobody(c: &ctl::CtlCluster, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        common::clutch_bin(),
        "ctl",
    ])
    .arg("--socket")
    .arg(&c.socket)
    .args(args);
    cmd.output().unwrap()
}

#[test]
fn a_caller_without_a_role_is_refused() {
    if !can_switch_uid() {
        return;
    }
    let c = ctl::start(1, &[]);
    c.open_to_everyone();
    let out = as_nobody(&c, &["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("permission denied") && err.contains("uid 65534"),
        "{err}"
    );
    assert!(err.contains("has no role"), "{err}");
}

#[test]
fn control_users_grants_viewer_which_may_list_but_not_restart() {
    if !can_switch_uid() {
        return;
    }
    let users = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(users.path(), r#"{"nobody": "viewer"}"#).unwrap();
    let c = ctl::start(1, &["--control-users", users.path().to_str().unwrap()]);
    c.open_to_everyone();
    let out = as_nobody(&c, &["list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pid = ctl::row(&list, 1)["pid"].as_u64().unwrap();

    let out = as_nobody(&c, &["restart", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("needs the operator role") && err.contains("is a viewer"),
        "{err}"
    );
    assert_eq!(ctl::row(&c.ctl_json(&["list", "--json"]), 1)["pid"], pid);
    let log = c.clutch.stderr.text();
    assert!(
        log.contains("audit: nobody (uid 65534) restart: refused"),
        "{log}"
    );
}

#[test]
fn a_bad_control_users_file_is_a_config_error_naming_the_key() {
    let users = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(users.path(), r#"{"no-such-user-anywhere": "viewer"}"#).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("c.sock");
    let out = common::clutch_start(&[
        "--control-socket",
        sock.to_str().unwrap(),
        "--control-users",
        users.path().to_str().unwrap(),
        "--",
        common::fixture(),
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("key `no-such-user-anywhere`"), "{err}");
}
