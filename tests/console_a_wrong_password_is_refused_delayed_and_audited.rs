//! A wrong password (or an unknown user) is refused with 401, answered no sooner than the
//! failed-login delay, and audit-logged; the delay does not hold up other requests.

mod common;
mod console_support;
mod http_support;
use common::*;
use console_support::*;
use std::time::{Duration, Instant};

#[test]
fn a_wrong_password_is_refused_after_a_delay_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(&dir, &[("ann", "admin")]);
    let (c, port) = start_console(1, &users, &[]);

    let slow = std::thread::spawn(move || {
        let t = Instant::now();
        let r = try_login(port, "ann", "not the password");
        (r, t.elapsed())
    });
    // Meanwhile the endpoint answers others.
    assert!(wait_until(DEADLINE, || request(
        port,
        "GET",
        "/livez",
        &[],
        ""
    )
    .status
        == 200));
    let (r, took) = slow.join().unwrap();
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.header("set-cookie").is_none(), "{r:?}");
    assert!(took >= Duration::from_secs(1), "answered after {took:?}");
    let t = Instant::now();
    assert_eq!(try_login(port, "nobody", PASSWORD).status, 401);
    assert!(t.elapsed() >= Duration::from_secs(1));

    let line = c
        .stderr
        .wait_for_line(DEADLINE, |l| {
            l.contains("audit: web login as \"ann\"") && l.contains("refused")
        })
        .unwrap_or_else(|| panic!("no audit line: {}", c.stderr.text()));
    assert!(line.contains("from 127.0.0.1"), "{line}");
    assert!(
        !c.stderr.text().contains("not the password"),
        "the password was logged"
    );
    net::stop_cleanly(c);
}
