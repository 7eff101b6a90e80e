//! An unmodified egg.js app (fixtures/egg-app, egg 3 and egg-cluster 2 from npm) under
//! `clutch egg` in shared-port mode: both app workers serve HTTP on the port, `egg-ready`
//! reaches the agent and every app worker (so `serverDidReady` runs and egg-schedule
//! starts), the messenger works in every direction egg offers, and SIGTERM stops it all.

mod common;
use common::egg::*;
use common::net::*;
use common::*;
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn egg_app_serves_and_its_messenger_and_schedules_work() {
    let app = EggApp::new();
    let mut c = app.start(&["-w", "2", "-p", "0", "--host", "127.0.0.1"]);
    let ready = expect_egg_ready(&mut c);
    let port = ready["port"].as_u64().expect("a port in egg-ready") as u16;

    let mut served = BTreeSet::new();
    let both = wait_until(Duration::from_secs(30), || {
        let batch: Vec<_> = (0..6)
            .map(|_| std::thread::spawn(move || get_from(source(1), port, "/")))
            .collect();
        for t in batch {
            if let Ok(Ok(r)) = t.join() {
                served.insert(Served::from(&r).id);
            }
        }
        served.len() == 2
    });
    assert!(both, "served by {served:?}; stderr:\n{}", c.stderr.text());

    app.wait_for(&c, "egg-ready in the agent and both apps", |a| {
        a.pids_with("agent", "egg-ready").len() == 1 && a.pids_with("app", "egg-ready").len() == 2
    });
    app.wait_for(&c, "serverDidReady everywhere", |a| {
        a.pids_with("agent", "serverDidReady").len() == 1
            && a.pids_with("app", "serverDidReady").len() == 2
    });
    let apps = app.pids_with("app", "egg-ready");
    app.wait_for(&c, "app → agent (sendToAgent) from both apps", |a| {
        let froms: BTreeSet<u64> = a
            .records()
            .iter()
            .filter(|r| r["who"] == "agent" && r["event"] == "app-to-agent")
            .filter_map(|r| r["data"]["from"].as_u64())
            .collect();
        froms.len() == 2
    });
    app.wait_for(&c, "agent → one app (sendRandom)", |a| {
        a.pids_with("app", "agent-to-random-app").len() == 1
    });
    app.wait_for(&c, "the agent's broadcast in both apps", |a| {
        a.pids_with("app", "broadcast-from-agent") == apps
    });
    app.wait_for(&c, "the apps' broadcasts in the agent and the apps", |a| {
        let count = |who: &str| {
            a.records()
                .iter()
                .filter(|r| r["who"] == who && r["event"] == "broadcast-from-app")
                .count()
        };
        count("agent") == 2 && count("app") == 4
    });
    app.wait_for(&c, "the schedule of type all in both apps", |a| {
        a.pids_with("app", "schedule-all") == apps
    });
    app.wait_for(&c, "the schedule of type worker", |a| {
        !a.pids_with("app", "schedule-worker").is_empty()
    });

    let workers = children_of(c.pid());
    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE * 3);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
    for pid in workers {
        assert!(!alive(pid), "pid {pid} outlived clutch");
    }
}
