//! A wrapped binary that speaks no clutch at all (fixtures/listen_fds_server.py) serves the
//! cluster's port from the socket the master passes at fd 3 (`LISTEN_FDS`, `LISTEN_PID`),
//! and says it is ready with systemd's `READY=1` on `NOTIFY_SOCKET`.

mod common;
use common::net::*;
use common::*;
use std::collections::BTreeSet;

#[test]
fn listener_wrapped_binary_uses_listen_fds() {
    assert!(have("python3"), "this test needs `python3` on PATH");
    let script = fixture_file("listen_fds_server.py");
    let (mut c, port, ready) =
        start_on_port(&["-w", "2", "--ready", "notify"], &["python3", &script]);
    assert_ne!(port, 0, "{ready}");
    let workers = children_of(c.pid());

    // Both workers accept on the one shared socket; which one gets a connection is up to
    // the kernel, so ask until both have answered.
    let mut answered = BTreeSet::new();
    let both = wait_until(DEADLINE, || {
        let served = served_from(source(1), port, "/");
        assert!(
            workers.contains(&served.pid),
            "pid {} is not a worker of clutch ({workers:?})",
            served.pid
        );
        answered.insert((served.id, served.pid));
        answered.len() == 2
    });
    assert!(
        both,
        "only {answered:?} answered; stderr:\n{}",
        c.stderr.text()
    );
    let ids: BTreeSet<u32> = answered.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, BTreeSet::from([1, 2]), "{answered:?}");

    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
