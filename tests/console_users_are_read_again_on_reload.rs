//! A reload reads the web console's users file again: a user taken out of it can no longer
//! log in and their open session ends; a user added can log in.

mod common;
mod console_support;
mod http_support;
use common::net::stop_cleanly;
use common::*;
use console_support::*;

#[test]
fn users_are_read_again_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(&dir, &[("ann", "admin")]);
    let (c, port) = start_console(1, &users, &["--no-control"]);
    let ann = login(port, "ann");
    let session = |l: &Login| {
        request(
            port,
            "GET",
            "/api/session",
            std::slice::from_ref(&l.cookie),
            "",
        )
        .status
    };
    assert_eq!(session(&ann), 200);
    assert_eq!(try_login(port, "bob", PASSWORD).status, 401);

    // ann is taken out, bob put in; SIGHUP reloads.
    users_file(&dir, &[("bob", "viewer")]);
    c.signal(libc::SIGHUP);
    assert!(
        wait_until(DEADLINE, || try_login(port, "bob", PASSWORD).status == 200),
        "bob cannot log in after the reload; stderr:\n{}",
        c.stderr.text()
    );
    assert_eq!(session(&ann), 401, "ann's session outlived her removal");
    assert_eq!(try_login(port, "ann", PASSWORD).status, 401);
    assert!(
        c.stderr.text().contains("users were read again"),
        "no audit line; stderr:\n{}",
        c.stderr.text()
    );
    stop_cleanly(c);
}
