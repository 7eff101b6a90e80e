//! egg-development's `reload-worker` (the agent sends it to the master on a code change)
//! restarts every app worker as `restart` does: new workers, each ready (and sent
//! `egg-ready`) before the old one stops.

mod common;
use common::egg::*;
use common::*;
use serde_json::json;

#[test]
fn reload_worker_replaces_every_app_worker() {
    let app = EggApp::new();
    let mut c = app.start(&["-w", "2", "-p", "0", "--host", "127.0.0.1"]);
    expect_egg_ready(&mut c);
    app.wait_for(&c, "egg-ready in both apps", |a| {
        a.pids_with("app", "egg-ready").len() == 2
    });
    let old = app.pids_with("app", "egg-ready");
    // The fixture's agent sends reload-worker when asked.
    c.send(&json!({"action": "please-reload", "to": "agent"}));
    app.wait_for(&c, "egg-ready in two new app workers", |a| {
        a.pids_with("app", "egg-ready")
            .iter()
            .filter(|p| !old.contains(p))
            .count()
            == 2
    });
    let gone = wait_until(DEADLINE * 2, || old.iter().all(|p| !alive(*p as u32)));
    assert!(
        gone,
        "the old app workers {old:?} still run; stderr:\n{}",
        c.stderr.text()
    );
    common::net::stop_cleanly(c);
}
