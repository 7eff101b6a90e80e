//! An operator's restart: a replacement starts while the old worker serves; the old one goes (intent Replace) once the new one is ready, and never counts as a crash.

use super::*;

#[test]
fn an_operator_restart_spawns_a_replacement_while_the_old_worker_serves() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let old = h.current(1);
    let fx = h.command(Command::Restart { slot: 1 });
    let s = spawns(&fx);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].2, 1);
    assert!(stops(&fx).is_empty(), "the old one still serves");
    assert!(not_accepting(&fx).is_empty());
    assert_eq!(h.current(1), old);
    assert_eq!(h.slot(1).incoming, Some(s[0].0));
}

#[test]
fn the_replaced_worker_is_stopped_only_once_the_new_one_is_ready() {
    let mut h = Harness::new(2, true);
    h.start_ready();
    let old = h.current(1);
    let new = spawned_ids(&h.command(Command::Restart { slot: 1 }))[0];
    let fx = h.ready(new);
    assert_eq!(stops(&fx), vec![old]);
    assert_eq!(not_accepting(&fx), vec![old]);
    assert_eq!(accepting(&fx), vec![new]);
    assert!(
        position(&fx, |e| matches!(e, Effect::NotAccepting { .. }))
            < position(&fx, |e| matches!(e, Effect::Stop { .. })),
        "no new connection for the old one before it is asked to stop"
    );
    assert_eq!(h.current(1), new);
    assert_eq!(h.slot(1).draining, vec![old]);
    assert_eq!(h.core.worker(old).unwrap().intent, Some(Intent::Replace));
    // The agent hears the new set, without the old pid.
    let old_pid = h.pid(old);
    let new_pid = h.pid(new);
    let last = sent(&fx, "cluster-pids")
        .into_iter()
        .rfind(|m| m.to == Some(Endpoint::Agent))
        .expect("the agent hears the new set");
    let pids = last.data.as_array().unwrap();
    assert!(pids.contains(&new_pid.into()) && !pids.contains(&old_pid.into()));
}

#[test]
fn the_replaced_worker_exit_arms_no_restart() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let old = h.current(1);
    let new = spawned_ids(&h.command(Command::Restart { slot: 1 }))[0];
    h.ready(new);
    let fx = h.exit(old, 1);
    assert!(restart_due(&fx).is_none());
    assert!(spawns(&fx).is_empty());
    assert_eq!(h.current(1), new);
    assert!(h.slot(1).draining.is_empty());
}

#[test]
fn operator_restarts_never_count_toward_the_crash_limit() {
    let mut h = Harness::with(
        Settings {
            workers: 1,
            restart_limit: 2,
            ..Settings::default()
        },
        false,
    );
    h.start_ready();
    for _ in 0..10 {
        let old = h.current(1);
        let new = spawned_ids(&h.command(Command::Restart { slot: 1 }))[0];
        h.ready(new);
        let fx = h.exit(old, 1);
        assert!(sent(&fx, "app-worker-parked").is_empty());
        assert!(!h.slot(1).parked);
        assert_eq!(h.current(1), new);
    }
    assert_eq!(h.slot(1).restarts, 10);
    // The crash budget is untouched: a real crash still restarts.
    let (_, due) = h.crash(1);
    assert!(due.is_some());
}

#[test]
fn a_replacement_that_exits_before_ready_leaves_the_old_worker_serving() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let old = h.current(1);
    let new = spawned_ids(&h.command(Command::Restart { slot: 1 }))[0];
    let fx = h.exit(new, 1);
    assert!(restart_due(&fx).is_none(), "not retried");
    assert!(spawns(&fx).is_empty());
    assert!(stops(&fx).is_empty() && kills(&fx).is_empty());
    assert_eq!(h.current(1), old);
    assert!(h.slot(1).incoming.is_none());
    assert_eq!(h.core.worker(old).unwrap().phase, Phase::Ready);
    // The slot can be restarted again.
    assert_eq!(spawns(&h.command(Command::Restart { slot: 1 })).len(), 1);
}

#[test]
fn a_replacement_whose_ready_timeout_fires_is_killed_and_the_old_keeps_serving() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let old = h.current(1);
    let fx = h.command(Command::Restart { slot: 1 });
    let new = spawned_ids(&fx)[0];
    let fx = h.fire(ready_timeout_of(&fx, new));
    assert_eq!(kills(&fx), vec![new]);
    assert!(stops(&fx).is_empty(), "the old one is not touched");
    assert_eq!(h.core.worker(new).unwrap().intent, Some(Intent::Abandon));
    let fx = h.killed(new);
    assert!(restart_due(&fx).is_none());
    assert!(spawns(&fx).is_empty());
    assert_eq!(h.current(1), old);
    assert_eq!(h.core.worker(old).unwrap().phase, Phase::Ready);
}

#[test]
fn a_replacement_that_cannot_be_spawned_leaves_the_old_worker_serving() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let old = h.current(1);
    let fx = h
        .core
        .command(h.now(), Command::Restart { slot: 1 })
        .unwrap();
    let new = spawned_ids(&fx)[0];
    let fx = h.raw(Input::SpawnFailed {
        worker: new,
        error: Error::io("spawn app", std::io::ErrorKind::NotFound.into()),
    });
    assert!(restart_due(&fx).is_none() && stops(&fx).is_empty());
    assert_eq!(h.current(1), old);
    assert!(h.slot(1).incoming.is_none());
}

#[test]
fn a_second_restart_while_one_is_under_way_is_refused() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    h.command(Command::Restart { slot: 1 });
    let err = h
        .core
        .command(h.now(), Command::Restart { slot: 1 })
        .unwrap_err();
    assert!(err.contains("already being replaced"), "{err}");
}

#[test]
fn an_operator_restart_of_the_agent_swaps_it_once_the_new_one_is_ready() {
    let mut h = Harness::new(2, true);
    h.start_ready();
    let old = h.current(AGENT_SLOT);
    let fx = h.command(Command::Restart { slot: AGENT_SLOT });
    let s = spawns(&fx);
    assert_eq!((s[0].1, s[0].2), (Role::Agent, AGENT_SLOT));
    assert!(stops(&fx).is_empty());
    let new = s[0].0;
    let new_pid = h.pid(new);
    let fx = h.ready(new);
    assert_eq!(stops(&fx), vec![old]);
    assert!(
        sent(&fx, "cluster-pids")
            .iter()
            .any(|m| m.to == Some(Endpoint::App) && m.data == serde_json::json!([new_pid]))
    );
    assert_eq!(sent_to(&fx, "cluster-ready", Endpoint::Agent), 1);
    let app_pids = [h.pid(h.current(1)), h.pid(h.current(2))];
    let to_agent = sent(&fx, "cluster-pids")
        .into_iter()
        .find(|m| m.to == Some(Endpoint::Agent))
        .expect("the new agent hears the apps");
    assert_eq!(to_agent.data, serde_json::json!(app_pids));
    let fx = h.exit(old, 0);
    assert!(restart_due(&fx).is_none());
    assert!(
        !sent(&fx, "cluster-pids")
            .iter()
            .any(|m| m.data == serde_json::json!([])),
        "the apps keep the new agent: {fx:?}"
    );
}
