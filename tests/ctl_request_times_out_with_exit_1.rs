//! `clutch ctl request` to a worker that never answers exits 1 after `--timeout`.

mod common;
use common::ctl;

#[test]
fn request_times_out_with_exit_1() {
    // The agent fixture does not answer requests.
    let c = ctl::start(1, &[]);
    let out = c.ctl(&["request", "--to", "agent", "--timeout", "300", "ping"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("no reply within 300 ms"), "{stderr}");
    // Still answering afterwards.
    assert!(c.list().is_some());
    let out = c.ctl(&["request", "--timeout", "0", "ping"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a zero timeout is a usage error"
    );
}
