//! When whoever held clutch's stderr is gone (the read end of the pipe closed), log lines
//! fail with EPIPE: the master neither panics nor dies of SIGPIPE, and still stops the
//! cluster gracefully on SIGTERM.

mod common;
use common::stdio::*;
use common::*;

#[test]
fn a_master_whose_stderr_is_closed_stops_the_cluster_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("term.log");
    let term_log = format!("term-log:{}", log.display());
    let (read, write) = small_pipe();
    let mut c = Clutch::spawn_with_parent_and_stderr(
        clutch_start(&[
            "-w",
            "3",
            "--no-agent",
            "--",
            fixture(),
            "term-exit:0",
            &term_log,
        ]),
        write,
    );
    drop(read);
    c.expect_ready(DEADLINE);
    let first = started_pids(&c.expect_started(3, DEADLINE));
    // A restart is logged, onto the closed pipe.
    kill(first[0], libc::SIGKILL);
    let again = started_pids(&c.expect_started(1, DEADLINE));
    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE * 3);
    assert_eq!(status.code(), Some(0), "seen: {:?}", c.seen_actions());
    let lines = std::fs::read_to_string(&log).unwrap_or_default();
    for pid in first[1..].iter().chain(&again) {
        assert!(
            lines
                .lines()
                .any(|l| l.starts_with("term ") && l.ends_with(&format!(" {pid}"))),
            "worker {pid} got no SIGTERM; term log:\n{lines}"
        );
    }
}
