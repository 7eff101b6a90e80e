//! `--pid-file`: written with the master's pid while it runs, removed when it exits.

mod common;
use common::*;

#[test]
fn pid_file_written_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clutch.pid");
    let path_arg = path.to_str().unwrap();
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "-w",
        "1",
        "--no-agent",
        "--pid-file",
        path_arg,
        "--",
        fixture(),
    ]));
    // Signals are handled once the cluster runs; before that SIGTERM would just kill it.
    c.expect_ready(DEADLINE);
    let content =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(content.trim(), c.pid().to_string());

    c.signal(libc::SIGTERM);
    let status = c.wait_exit(DEADLINE);
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "stderr:\n{}",
        c.stderr.text()
    );
    assert!(!path.exists(), "{} left behind", path.display());
}
