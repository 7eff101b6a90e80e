//! A stderr nobody reads (a full pipe) never stops the master: it drops log lines rather
//! than wait, so it still starts the cluster and handles SIGTERM.

mod common;
use common::stdio::*;
use common::*;
use std::time::Duration;

#[test]
fn a_master_whose_stderr_is_full_still_stops_on_sigterm() {
    let (read, write) = small_pipe();
    let capacity = pipe_capacity(&read);
    let mut cmd = clutch_start(&["-w", "50", "--no-agent", "--", fixture()]);
    cmd.env("RUST_LOG", "debug");
    let mut c = Clutch::spawn_with_parent_and_stderr(cmd, write);
    // The lines of 50 workers starting fill the one page the pipe holds long before the
    // cluster is ready.
    assert!(
        wait_until(DEADLINE, || pipe_queued(&read) >= capacity / 2),
        "the master logged nothing ({} of {capacity} bytes)",
        pipe_queued(&read)
    );
    c.expect_ready(Duration::from_secs(60));
    let pids = started_pids(&c.expect_started(50, Duration::from_secs(60)));
    assert_eq!(pids.len(), 50);
    c.signal(libc::SIGTERM);
    let status = c.finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "seen: {:?}", c.seen_actions());
    let left: Vec<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "workers left alive: {left:?}");
}
