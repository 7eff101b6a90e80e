//! SIGTERM during a rolling reload aborts the reload and stops the cluster: the service
//! manager hears `STOPPING=1` after `RELOADING=1`, never a `READY=1` in between (which
//! would tell it the service is up again).

mod common;
use common::systemd::*;
use common::*;

#[test]
fn systemd_a_reload_cut_short_by_a_stop_says_stopping_not_ready() {
    let notify = NotifySocket::bind();
    // Each new worker takes 2 s to be ready: the reload is still running at SIGTERM.
    let args = [
        "-w",
        "2",
        "--no-agent",
        "--ready",
        "delay:2000",
        "--",
        "sleep",
        "600",
    ];
    let mut cmd = clutch_start(&args);
    cmd.env("NOTIFY_SOCKET", &notify.path);
    let mut c = Clutch::spawn(cmd);
    let ready = wait_until(std::time::Duration::from_secs(20), || {
        notify.messages().iter().any(|m| has_line(m, "READY=1"))
    });
    assert!(ready, "{:?}\n{}", notify.messages(), c.stderr.text());
    let ready = notify.wait_for_line(0, "READY=1").unwrap();

    c.signal(libc::SIGHUP);
    let reloading = notify.wait_for_line(ready + 1, "RELOADING=1");
    let reloading = reloading.unwrap_or_else(|| {
        panic!(
            "no RELOADING=1: {:?}\n{}",
            notify.messages(),
            c.stderr.text()
        )
    });
    c.signal(libc::SIGTERM);
    let stopping = notify.wait_for_line(reloading + 1, "STOPPING=1");
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
    let all = notify.messages();
    let stopping = stopping.unwrap_or_else(|| panic!("no STOPPING=1: {all:?}"));
    assert!(
        c.stderr.text().contains("reload") && c.stderr.text().contains("abort"),
        "{}",
        c.stderr.text()
    );
    assert!(
        all[reloading + 1..].iter().all(|m| !has_line(m, "READY=1")),
        "READY=1 after RELOADING=1: {all:?}"
    );
    assert!(stopping > reloading, "{all:?}");
}
