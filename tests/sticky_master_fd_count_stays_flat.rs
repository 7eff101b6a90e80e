//! A sticky master keeps each connection's fd only until the worker acknowledges it: after
//! 10,000 connections its open fd count is what it was before them.

mod common;
use common::net::*;
use common::*;
use std::time::Duration;

/// Long enough without change that no acknowledgement is still on its way.
const QUIET: Duration = Duration::from_millis(200);
/// Client addresses to spread the connections over (and the ephemeral ports they use).
const SOURCES: u8 = 16;

fn one_request(i: usize, port: u16) {
    let from = source(2 + (i % usize::from(SOURCES)) as u8);
    let response =
        get_from(from, port, "/").unwrap_or_else(|e| panic!("connection {i} from {from}: {e}"));
    assert_eq!(response.status, 200, "connection {i}: {response:?}");
}

#[test]
fn sticky_master_fd_count_stays_flat() {
    let (mut c, port, _) = start_on_port(
        &["-w", "2", "--sticky", "--sticky-mode", "handoff"],
        &[fixture(), "http"],
    );
    let master = c.pid();

    for i in 0..200 {
        one_request(i, port);
    }
    let before = settled_fd_count(master, QUIET);

    for i in 0..10_000 {
        one_request(i, port);
    }

    let mut after = fd_count(master);
    wait_until(DEADLINE, || {
        after = fd_count(master);
        after <= before
    });
    assert_eq!(
        after, before,
        "the master had {before} fds open before 10,000 connections and {after} after"
    );

    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
