//! The egg dialect (`--egg`): the same lifecycle under egg-cluster's names, so an egg.js
//! app's `messenger.once('egg-ready')`, `egg-pids` and `agent-start` fire; clutch's own
//! names without it.

use super::*;
use serde_json::json;

fn egg(workers: usize, options: Option<serde_json::Value>) -> Harness {
    Harness::with(
        Settings {
            workers,
            egg: true,
            egg_options: options,
            ..Settings::default()
        },
        true,
    )
}

#[test]
fn egg_ready_goes_to_the_agent_the_apps_and_the_parent_with_egg_s_options() {
    let options = json!({"baseDir": "/srv/app", "workers": 2, "clusterPort": 4242});
    let mut h = egg(2, Some(options.clone()));
    let fx = h.start_ready();
    for to in [Endpoint::Agent, Endpoint::App, Endpoint::Parent] {
        assert_eq!(sent_to(&fx, "egg-ready", to), 1, "to {to:?}: {fx:?}");
    }
    for m in sent(&fx, "egg-ready") {
        let want = match m.to {
            Some(Endpoint::Parent) => json!(h.core.info()),
            _ => options.clone(),
        };
        assert_eq!(m.data, want, "{m:?}");
    }
    assert!(sent(&fx, "cluster-ready").is_empty(), "{fx:?}");
    assert!(sent(&fx, "cluster-pids").is_empty(), "{fx:?}");
}

#[test]
fn egg_pids_go_where_cluster_pids_would() {
    let mut h = egg(2, None);
    let fx = h.start_ready();
    let agent = h.pid(h.current(AGENT_SLOT));
    let apps = [h.pid(h.current(1)), h.pid(h.current(2))];
    let to_apps: Vec<_> = sent(&fx, "egg-pids")
        .into_iter()
        .filter(|m| m.to == Some(Endpoint::App) || m.receiver_pid.is_some())
        .collect();
    assert!(!to_apps.is_empty(), "{fx:?}");
    assert!(
        to_apps.iter().all(|m| m.data == json!([agent])),
        "{to_apps:?}"
    );
    let last_to_agent = sent(&fx, "egg-pids")
        .into_iter()
        .rfind(|m| m.to == Some(Endpoint::Agent))
        .expect("egg-pids to the agent");
    let mut got: Vec<u64> = serde_json::from_value(last_to_agent.data.clone()).unwrap();
    got.sort();
    assert_eq!(got, apps.map(u64::from));
}

#[test]
fn agent_start_reaches_the_apps_when_the_agent_restarts() {
    let mut h = egg(2, None);
    h.start_ready();
    let (fx, due) = h.crash(AGENT_SLOT);
    assert_eq!(
        sent_to(&fx, "egg-pids", Endpoint::App),
        1,
        "an empty set: {fx:?}"
    );
    let fx = h.fire(due.expect("the agent restarts"));
    let agent = spawned_ids(&fx)[0];
    let fx = h.ready(agent);
    assert_eq!(sent_to(&fx, "agent-start", Endpoint::App), 1, "{fx:?}");
    assert_eq!(sent_to(&fx, "egg-ready", Endpoint::Agent), 1, "{fx:?}");
    assert_eq!(sent_to(&fx, "egg-pids", Endpoint::Agent), 1, "{fx:?}");
}

#[test]
fn a_restarted_app_gets_egg_ready_by_pid() {
    let mut h = egg(2, Some(json!({"port": 7001})));
    h.start_ready();
    let (_, due) = h.crash(1);
    let fx = h.fire(due.expect("the slot restarts"));
    let w = spawned_ids(&fx)[0];
    let pid = h.pid(w);
    let fx = h.ready(w);
    let ready = sent(&fx, "egg-ready");
    assert_eq!(ready.len(), 1, "{fx:?}");
    assert_eq!(ready[0].receiver_pid, Some(pid));
    assert_eq!(ready[0].data, json!({"port": 7001}));
}

#[test]
fn without_egg_clutch_s_own_names_stay() {
    let mut h = Harness::new(2, true);
    let fx = h.start_ready();
    assert_eq!(sent_to(&fx, "cluster-ready", Endpoint::App), 1);
    assert!(sent(&fx, "egg-ready").is_empty());
    assert!(sent(&fx, "egg-pids").is_empty());
    assert!(sent(&fx, "agent-start").is_empty());
}

#[test]
fn listening_counts_as_ready_only_in_the_egg_dialect() {
    use crate::master::names::is_ready_action;
    assert!(is_ready_action(Role::App, "listening", true));
    assert!(is_ready_action(Role::App, "reuse-port-listening", true));
    assert!(is_ready_action(Role::App, "app-start", true));
    assert!(!is_ready_action(Role::App, "listening", false));
    assert!(!is_ready_action(Role::Agent, "listening", true));
    assert!(!is_ready_action(Role::App, "realport", true));
}
