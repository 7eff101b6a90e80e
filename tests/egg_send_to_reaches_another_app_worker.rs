//! egg's `messenger.sendTo(pid)` from one app worker reaches the other app worker: egg
//! sends `receiverPid` with no `to`, which must route by pid, not to the app's default (the
//! agent).

mod common;
use common::egg::*;

#[test]
fn send_to_pid_goes_from_app_to_app() {
    let app = EggApp::new();
    let mut c = app.start(&["-w", "2", "-p", "0", "--host", "127.0.0.1"]);
    expect_egg_ready(&mut c);
    // Each app worker learns the others' pids from the agent and sendTo's one of them.
    app.wait_for(&c, "app-to-app in both apps", |a| {
        a.pids_with("app", "app-to-app").len() == 2
    });
    for r in app.records().iter().filter(|r| r["event"] == "app-to-app") {
        assert_eq!(r["who"], "app", "{r}");
        assert_eq!(
            r["data"]["to"], r["pid"],
            "delivered to the pid asked for: {r}"
        );
    }
    common::net::stop_cleanly(c);
}
