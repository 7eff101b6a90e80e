//! With `WATCHDOG_USEC` (systemd's `WatchdogSec=`) the master's run loop sends `WATCHDOG=1`
//! at half that interval, after `READY=1`, for as long as it runs; without it, none.

mod common;
use common::systemd::*;
use common::*;

fn watchdog_pings(usec: Option<&str>) -> (usize, Vec<String>) {
    let notify = NotifySocket::bind();
    let mut cmd = clutch_start(&["-w", "1", "--no-agent", "--", fixture()]);
    cmd.env("NOTIFY_SOCKET", &notify.path);
    if let Some(usec) = usec {
        cmd.env("WATCHDOG_USEC", usec);
    }
    let mut c = Clutch::spawn_with_parent(cmd);
    c.expect_ready(DEADLINE);
    let ready = notify.wait_for_line(0, "READY=1");
    assert!(ready.is_some(), "{:?}", notify.messages());
    let ready = ready.unwrap();
    match usec {
        // 200 ms apart: wait for three after READY=1.
        Some(_) => {
            let three = wait_until(DEADLINE, || {
                notify.messages()[ready..]
                    .iter()
                    .filter(|m| has_line(m, "WATCHDOG=1"))
                    .count()
                    >= 3
            });
            assert!(three, "{:?}\n{}", notify.messages(), c.stderr.text());
        }
        // A second is five periods of the case above: long enough to see a ping, were one sent.
        None => std::thread::sleep(std::time::Duration::from_secs(1)),
    }
    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
    let all = notify.messages();
    let pings = all.iter().filter(|m| has_line(m, "WATCHDOG=1")).count();
    (pings, all)
}

#[test]
fn with_watchdog_usec_the_loop_pings_after_ready() {
    let (pings, all) = watchdog_pings(Some("400000"));
    assert!(pings >= 3, "{all:?}");
}

#[test]
fn without_watchdog_usec_nothing_is_pinged() {
    let (pings, all) = watchdog_pings(None);
    assert_eq!(pings, 0, "{all:?}");
}
