//! Started with `NOTIFY_SOCKET` (as `Type=notify` services are), the master tells the
//! service manager, in this order: `READY=1` once the cluster is ready (with `STATUS=` "2/2
//! app workers ready"), `RELOADING=1` with `MONOTONIC_USEC=` when SIGHUP starts a rolling
//! reload and `READY=1` when it completed, then `STOPPING=1` on SIGTERM. No worker
//! inherits the master's `NOTIFY_SOCKET`.

mod common;
use common::systemd::*;
use common::*;

#[test]
fn systemd_notify_says_ready_reloading_and_stopping_in_order() {
    let notify = NotifySocket::bind();
    let mut cmd = clutch_start(&["-w", "2", "--no-agent", "--", fixture()]);
    cmd.env("NOTIFY_SOCKET", &notify.path);
    let mut c = Clutch::spawn_with_parent(cmd);
    c.expect_ready(DEADLINE);
    let stderr = || c.stderr.text();

    let ready = notify.wait_for_line(0, "READY=1");
    let ready =
        ready.unwrap_or_else(|| panic!("no READY=1: {:?}\n{}", notify.messages(), stderr()));
    let m = &notify.messages()[ready];
    assert!(has_line(m, "STATUS=2/2 app workers ready"), "{m:?}");
    assert!(
        notify.messages()[..ready]
            .iter()
            .all(|m| !has_line(m, "READY=1")),
        "{:?}",
        notify.messages()
    );

    c.signal(libc::SIGHUP);
    let reloading = notify.wait_for_line(ready + 1, "RELOADING=1");
    let reloading = reloading
        .unwrap_or_else(|| panic!("no RELOADING=1: {:?}\n{}", notify.messages(), stderr()));
    let m = &notify.messages()[reloading];
    assert!(has_line(m, "MONOTONIC_USEC="), "{m:?}");
    let usec: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(usec > 0, "{m:?}");
    let reloaded = notify.wait_for_line(reloading + 1, "READY=1");
    let reloaded = reloaded.unwrap_or_else(|| {
        panic!(
            "no READY=1 after the reload: {:?}\n{}",
            notify.messages(),
            stderr()
        )
    });

    c.signal(libc::SIGTERM);
    let stopping = notify.wait_for_line(reloaded + 1, "STOPPING=1");
    assert!(
        stopping.is_some(),
        "no STOPPING=1: {:?}\n{}",
        notify.messages(),
        stderr()
    );
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
    let all = notify.messages();
    let firsts: Vec<&str> = all.iter().filter_map(|m| m.lines().next()).collect();
    let order: Vec<&str> = firsts
        .iter()
        .copied()
        .filter(|l| ["READY=1", "RELOADING=1", "STOPPING=1"].contains(l))
        .collect();
    assert_eq!(
        order,
        ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"],
        "{all:?}"
    );
}
