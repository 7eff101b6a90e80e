//! The start: the agent first, then the apps; `cluster-ready` once all are ready; a start that fails stops what it started.

use super::*;

#[test]
fn with_an_agent_only_the_agent_is_spawned_first() {
    let mut h = Harness::new(2, true);
    let fx = h.input(Input::Start);
    let s = spawns(&fx);
    assert_eq!(s.len(), 1, "{fx:?}");
    assert_eq!((s[0].1, s[0].2), (Role::Agent, AGENT_SLOT));
    assert_eq!(h.core.phase(), ClusterPhase::Starting);
}

#[test]
fn apps_are_spawned_after_the_agent_is_ready() {
    let mut h = Harness::new(2, true);
    let fx = h.input(Input::Start);
    let agent = spawned_ids(&fx)[0];
    let fx = h.ready(agent);
    let s = spawns(&fx);
    assert_eq!(
        s.iter().map(|s| (s.1, s.2)).collect::<Vec<_>>(),
        vec![(Role::App, 1), (Role::App, 2)]
    );
    assert!(s.iter().all(|s| s.0 != agent), "new ids");
}

#[test]
fn without_an_agent_the_apps_start_at_once() {
    let mut h = Harness::new(3, false);
    let fx = h.input(Input::Start);
    let s = spawns(&fx);
    assert_eq!(s.len(), 3);
    assert!(s.iter().all(|s| s.1 == Role::App));
    assert_eq!(
        s.iter().map(|s| s.2).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "slots from 1"
    );
}

#[test]
fn a_second_start_spawns_nothing() {
    let mut h = Harness::new(1, false);
    h.input(Input::Start);
    assert!(spawns(&h.input(Input::Start)).is_empty());
}

#[test]
fn the_cluster_is_ready_only_once_every_app_is_ready() {
    let mut h = Harness::new(2, true);
    let fx = h.input(Input::Start);
    let agent = spawned_ids(&fx)[0];
    let apps = spawned_ids(&h.ready(agent));
    let fx = h.ready(apps[0]);
    assert!(!has(&fx, |e| matches!(e, Effect::ClusterReady(_))));
    assert_eq!(h.core.phase(), ClusterPhase::Starting);
    let fx = h.ready(apps[1]);
    let ready: Vec<&ClusterInfo> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::ClusterReady(i) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].workers, 2);
    assert_eq!(ready[0].port, Some(7001));
    assert_eq!(h.core.phase(), ClusterPhase::Ready);
}

#[test]
fn cluster_ready_is_sent_to_the_agent_the_apps_and_the_parent() {
    let mut h = Harness::new(2, true);
    let fx = h.start_ready();
    for to in [Endpoint::Agent, Endpoint::App, Endpoint::Parent] {
        assert_eq!(sent_to(&fx, "cluster-ready", to), 1, "to {to:?}");
    }
    let msg = sent(&fx, "cluster-ready")[0];
    assert_eq!(msg.data["workers"], 2);
    // The messages go out before the cluster is published as ready.
    let last_send = fx
        .iter()
        .rposition(|e| matches!(e, Effect::Send(m) if m.action == "cluster-ready"))
        .unwrap();
    assert!(last_send < position(&fx, |e| matches!(e, Effect::ClusterReady(_))));
}

#[test]
fn the_agent_hears_the_app_pids_during_the_start() {
    let mut h = Harness::new(2, true);
    let fx = h.input(Input::Start);
    let agent = spawned_ids(&fx)[0];
    let apps = spawned_ids(&h.ready(agent));
    let first = h.pid(apps[0]);
    let second = h.pid(apps[1]);
    let fx = h.ready(apps[0]);
    let to_agent: Vec<&Message> = sent(&fx, "cluster-pids")
        .into_iter()
        .filter(|m| m.to == Some(Endpoint::Agent))
        .collect();
    assert_eq!(to_agent.len(), 1, "{fx:?}");
    assert_eq!(to_agent[0].data, serde_json::json!([first]));
    let fx = h.ready(apps[1]);
    let to_agent: Vec<&Message> = sent(&fx, "cluster-pids")
        .into_iter()
        .filter(|m| m.to == Some(Endpoint::Agent))
        .collect();
    assert_eq!(to_agent.len(), 1);
    assert_eq!(to_agent[0].data, serde_json::json!([first, second]));
}

#[test]
fn each_ready_app_hears_the_agent_pid() {
    let mut h = Harness::new(1, true);
    let fx = h.input(Input::Start);
    let agent = spawned_ids(&fx)[0];
    let agent_pid = h.pid(agent);
    let app = spawned_ids(&h.ready(agent))[0];
    let app_pid = h.pid(app);
    let fx = h.ready(app);
    let to_app: Vec<&Message> = sent(&fx, "cluster-pids")
        .into_iter()
        .filter(|m| m.receiver_pid == Some(app_pid))
        .collect();
    assert_eq!(to_app.len(), 1);
    assert_eq!(to_app[0].data, serde_json::json!([agent_pid]));
}

#[test]
fn a_ready_app_is_accepting() {
    let mut h = Harness::new(1, false);
    let fx = h.input(Input::Start);
    let app = spawned_ids(&fx)[0];
    let fx = h.ready(app);
    assert_eq!(accepting(&fx), vec![app]);
}

#[test]
fn ready_on_spawn_starts_the_cluster_without_any_ready_message() {
    let mut h = Harness::with(
        Settings {
            workers: 2,
            ready: ReadyMode::Spawn,
            ..Settings::default()
        },
        true,
    );
    let fx = h.input(Input::Start);
    assert_eq!(spawns(&fx).len(), 3, "the agent, then both apps: {fx:?}");
    assert!(has(&fx, |e| matches!(e, Effect::ClusterReady(_))));
    assert!(
        !timers(&fx)
            .iter()
            .any(|t| matches!(t, Timer::ReadyTimeout(_)))
    );
}

#[test]
fn a_worker_that_exits_before_the_cluster_is_ready_fails_the_start() {
    let mut h = Harness::new(2, true);
    let fx = h.input(Input::Start);
    let agent = spawned_ids(&fx)[0];
    let apps = spawned_ids(&h.ready(agent));
    h.ready(apps[0]);
    let fx = h.exit(apps[1], 3);
    match h.core.take_failure() {
        Some(Error::ExitedEarly { worker, exit }) => {
            assert_eq!((worker.role, worker.id), (Role::App, 2));
            assert_eq!(exit.code, Some(3));
        }
        other => panic!("expected ExitedEarly, got {other:?}"),
    }
    assert!(has(&fx, |e| matches!(e, Effect::CloseListener)));
    assert!(matches!(h.core.phase(), ClusterPhase::Stopping { .. }));
    // The live app is asked to stop; the agent waits for the apps.
    assert_eq!(stops(&fx), vec![apps[0]]);
    let fx = h.exit(apps[0], 0);
    assert_eq!(stops(&fx), vec![agent]);
    assert!(!h.core.done());
    h.exit(agent, 0);
    assert!(h.core.done());
}

#[test]
fn an_agent_that_exits_before_it_is_ready_fails_the_start() {
    let mut h = Harness::new(2, true);
    let fx = h.input(Input::Start);
    let agent = spawned_ids(&fx)[0];
    let fx = h.exit(agent, 1);
    assert!(spawns(&fx).is_empty(), "no app is started");
    assert!(matches!(
        h.core.take_failure(),
        Some(Error::ExitedEarly { worker, .. }) if worker.role == Role::Agent
    ));
    assert!(h.core.done());
}

#[test]
fn a_failed_start_reports_its_first_cause_only() {
    let mut h = Harness::new(2, false);
    let apps = spawned_ids(&h.input(Input::Start));
    h.exit(apps[0], 1);
    h.fire(Timer::ReadyTimeout(apps[1]));
    h.exit(apps[1], 0);
    assert!(matches!(
        h.core.take_failure(),
        Some(Error::ExitedEarly { worker, .. }) if worker.id == 1
    ));
    assert!(h.core.take_failure().is_none(), "taken once");
}

#[test]
fn a_ready_timeout_before_the_cluster_is_ready_fails_the_start() {
    let mut h = Harness::new(2, false);
    let fx = h.input(Input::Start);
    let apps = spawned_ids(&fx);
    h.ready(apps[0]);
    let timeout = ready_timeout_of(&fx, apps[1]);
    let fx = h.fire(timeout);
    match h.core.take_failure() {
        Some(Error::NotReady { worker, .. }) => assert_eq!(worker.id, 2),
        other => panic!("expected NotReady, got {other:?}"),
    }
    let mut stopped = stops(&fx);
    stopped.sort();
    assert_eq!(stopped, apps, "every live app is asked to stop");
}

#[test]
fn an_agent_ready_timeout_fails_the_start_before_any_app() {
    let mut h = Harness::new(2, true);
    let fx = h.input(Input::Start);
    let agent = spawned_ids(&fx)[0];
    let fx = h.fire(ready_timeout_of(&fx, agent));
    assert!(spawns(&fx).is_empty());
    assert_eq!(stops(&fx), vec![agent]);
    assert!(matches!(
        h.core.take_failure(),
        Some(Error::NotReady { worker, .. }) if worker.role == Role::Agent
    ));
}

#[test]
fn a_ready_timeout_of_a_ready_worker_is_ignored() {
    let mut h = Harness::new(1, false);
    let fx = h.input(Input::Start);
    let app = spawned_ids(&fx)[0];
    h.ready(app);
    let fx = h.fire(ready_timeout_of(&fx, app));
    assert!(kills(&fx).is_empty() && stops(&fx).is_empty());
    assert!(h.core.take_failure().is_none());
}

#[test]
fn a_spawn_failure_during_the_start_fails_it() {
    let mut h = Harness::new(1, false);
    let fx = h.raw(Input::Start);
    let w = spawned_ids(&fx)[0];
    let fx = h.raw(Input::SpawnFailed {
        worker: w,
        error: Error::io("spawn app", std::io::ErrorKind::NotFound.into()),
    });
    assert!(has(
        &fx,
        |e| matches!(e, Effect::Gone { worker } if *worker == w)
    ));
    assert!(h.core.take_failure().is_some());
    assert!(h.core.done());
}
