//! `clutch start --no-control` listens on no control socket: `clutch ctl` says that no
//! clutch of that name is running.

mod common;
use common::{Clutch, DEADLINE, fixture};

#[test]
fn no_control_means_no_socket() {
    let runtime = tempfile::tempdir().unwrap();
    let mut cmd = common::clutch_start(&[
        "--no-control",
        "--name",
        "quiet",
        "-w",
        "1",
        "--",
        fixture(),
    ]);
    cmd.env("XDG_RUNTIME_DIR", runtime.path());
    let c = Clutch::spawn(cmd);
    assert!(
        c.stderr
            .wait_for_line(DEADLINE, |l| l.contains("ready with"))
            .is_some(),
        "{}",
        c.stderr.text()
    );
    let out = std::process::Command::new(common::clutch_bin())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["ctl", "--name", "quiet", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no clutch named quiet is running"));
    assert!(!runtime.path().join("clutch").exists());
}
