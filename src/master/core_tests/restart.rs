//! The restart policy: an exit nobody asked for, once the cluster is ready.

use super::*;

#[test]
fn a_crash_after_ready_arms_a_restart() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let old = h.current(1);
    let (fx, due) = h.crash(1);
    assert!(spawns(&fx).is_empty(), "not at once: after the delay");
    assert!(matches!(due, Some(Timer::RestartDue { slot: 1, .. })));
    assert_eq!(sent_to(&fx, "app-worker-died", Endpoint::Parent), 1);
    assert!(h.core.worker(old).is_none());
    assert!(has(
        &fx,
        |e| matches!(e, Effect::Gone { worker } if *worker == old)
    ));
}

#[test]
fn a_due_restart_spawns_a_new_worker_in_the_same_slot() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let old = h.current(1);
    let (_, due) = h.crash(1);
    let fx = h.fire(due.unwrap());
    let s = spawns(&fx);
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].1, s[0].2), (Role::App, 1));
    assert_ne!(s[0].0, old, "a new worker id");
    assert!(s[0].0 > old, "ids grow");
    assert_eq!(h.current(1), s[0].0);
    assert_eq!(h.slot(1).restarts, 1);
}

#[test]
fn a_restarted_worker_hears_cluster_ready_when_ready() {
    let mut h = Harness::new(1, true);
    h.start_ready();
    let (_, due) = h.crash(1);
    let w = spawned_ids(&h.fire(due.unwrap()))[0];
    let pid = h.pid(w);
    let fx = h.ready(w);
    assert_eq!(accepting(&fx), vec![w]);
    let to_it: Vec<&Message> = sent(&fx, "cluster-ready")
        .into_iter()
        .filter(|m| m.receiver_pid == Some(pid))
        .collect();
    assert_eq!(to_it.len(), 1);
    assert_eq!(sent_to(&fx, "cluster-pids", Endpoint::Agent), 1);
    assert!(!has(&fx, |e| matches!(e, Effect::ClusterReady(_))));
}

#[test]
fn a_stale_restart_timer_is_ignored() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let (_, due) = h.crash(1);
    let Some(Timer::RestartDue { slot, token }) = due else {
        panic!("no restart armed");
    };
    let stale = Timer::RestartDue {
        slot,
        token: token + 1000,
    };
    assert!(spawns(&h.fire(stale)).is_empty(), "a token never armed");
    assert_eq!(spawns(&h.fire(due.unwrap())).len(), 1);
    assert!(
        spawns(&h.fire(due.unwrap())).is_empty(),
        "a token already used"
    );
}

#[test]
fn a_quick_crash_backs_off_and_a_long_lived_worker_restarts_at_once() {
    use crate::master::restart::{BACKOFF_BASE, MIN_UPTIME};
    let mut h = Harness::new(1, false);
    h.start_ready();
    let arm_delay = |fx: &[Effect]| {
        fx.iter()
            .find_map(|e| match e {
                Effect::Arm {
                    after,
                    timer: Timer::RestartDue { .. },
                } => Some(*after),
                _ => None,
            })
            .expect("a restart armed")
    };
    let (fx, due) = h.crash(1);
    assert_eq!(arm_delay(&fx), BACKOFF_BASE, "died at once: backs off");
    let w = spawned_ids(&h.fire(due.unwrap()))[0];
    h.ready(w);
    h.advance(MIN_UPTIME * 10);
    let (fx, _) = h.crash(1);
    assert_eq!(arm_delay(&fx), Duration::ZERO, "lived long: at once");
}

#[test]
fn a_ready_timeout_of_a_restarted_worker_kills_it_and_restarts_the_slot() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let (_, due) = h.crash(1);
    let fx = h.fire(due.unwrap());
    let w = spawned_ids(&fx)[0];
    let fx = h.fire(ready_timeout_of(&fx, w));
    assert_eq!(kills(&fx), vec![w]);
    assert!(not_accepting(&fx).contains(&w));
    assert_eq!(h.core.worker(w).unwrap().intent, Some(Intent::Recover));
    assert!(h.core.take_failure().is_none(), "not a failed start");
    let fx = h.killed(w);
    assert!(
        matches!(restart_due(&fx), Some(Timer::RestartDue { slot: 1, .. })),
        "the restart policy applies: {fx:?}"
    );
}

#[test]
fn a_worker_that_cannot_be_spawned_after_ready_is_retried() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let (_, due) = h.crash(1);
    let fx = h.raw(Input::Timer(due.unwrap()));
    let w = spawned_ids(&fx)[0];
    let fx = h.raw(Input::SpawnFailed {
        worker: w,
        error: Error::io("spawn app", std::io::ErrorKind::NotFound.into()),
    });
    assert!(restart_due(&fx).is_some(), "{fx:?}");
    assert!(h.core.take_failure().is_none());
    assert_eq!(h.core.phase(), ClusterPhase::Ready);
}

#[test]
fn past_the_restart_limit_the_slot_is_parked() {
    let mut h = Harness::with(
        Settings {
            workers: 2,
            restart_limit: 2,
            ..Settings::default()
        },
        false,
    );
    h.start_ready();
    for _ in 0..2 {
        let (_, due) = h.crash(1);
        let w = spawned_ids(&h.fire(due.expect("a restart within the limit")))[0];
        h.ready(w);
    }
    let (fx, due) = h.crash(1);
    assert!(due.is_none(), "no restart past the limit: {fx:?}");
    let parked = sent(&fx, "app-worker-parked");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].to, Some(Endpoint::Parent));
    assert_eq!(parked[0].data["id"], 1);
    assert!(h.slot(1).parked);
    assert!(h.slot(1).current.is_none());
    // The other slot keeps serving, and the cluster stays ready.
    assert!(h.slot(2).current.is_some());
    assert_eq!(h.core.phase(), ClusterPhase::Ready);
}

#[test]
fn a_parked_slot_is_not_respawned_by_an_older_timer() {
    let mut h = Harness::with(
        Settings {
            workers: 1,
            restart_limit: 1,
            ..Settings::default()
        },
        false,
    );
    h.start_ready();
    let (_, first) = h.crash(1);
    let w = spawned_ids(&h.fire(first.unwrap()))[0];
    h.ready(w);
    let (_, due) = h.crash(1);
    assert!(due.is_none());
    assert!(h.slot(1).parked);
    assert!(spawns(&h.fire(first.unwrap())).is_empty());
}

#[test]
fn crashes_spread_beyond_the_window_never_park() {
    let mut h = Harness::with(
        Settings {
            workers: 1,
            restart_limit: 1,
            restart_window: Duration::from_secs(60),
            ..Settings::default()
        },
        false,
    );
    h.start_ready();
    for _ in 0..3 {
        h.advance(Duration::from_secs(61));
        let (_, due) = h.crash(1);
        let w = spawned_ids(&h.fire(due.expect("one restart per window")))[0];
        h.ready(w);
    }
    assert!(!h.slot(1).parked);
}

#[test]
fn restart_never_leaves_a_crashed_slot_empty() {
    let mut h = Harness::with(
        Settings {
            workers: 1,
            restart: RestartPolicy::Never,
            ..Settings::default()
        },
        false,
    );
    h.start_ready();
    let (fx, due) = h.crash(1);
    assert!(due.is_none());
    assert!(spawns(&fx).is_empty());
    assert!(
        sent(&fx, "app-worker-parked").is_empty(),
        "left, not parked"
    );
    assert!(!h.slot(1).parked);
    assert!(h.slot(1).current.is_none());
}

#[test]
fn restart_on_failure_ignores_a_clean_exit() {
    let mut h = Harness::with(
        Settings {
            workers: 2,
            restart: RestartPolicy::OnFailure,
            ..Settings::default()
        },
        false,
    );
    h.start_ready();
    let w1 = h.current(1);
    assert!(restart_due(&h.exit(w1, 0)).is_none(), "code 0 stays down");
    let w2 = h.current(2);
    assert!(restart_due(&h.exit(w2, 2)).is_some(), "code 2 restarts");
}

#[test]
fn a_crashed_agent_is_restarted_and_the_apps_hear_it() {
    let mut h = Harness::with(
        Settings {
            workers: 1,
            restart: RestartPolicy::Never,
            ..Settings::default()
        },
        true,
    );
    h.start_ready();
    let agent = h.current(AGENT_SLOT);
    let fx = h.exit(agent, 1);
    assert_eq!(sent_to(&fx, "agent-worker-died", Endpoint::Parent), 1);
    let pids = sent(&fx, "cluster-pids");
    assert!(
        pids.iter()
            .any(|m| m.to == Some(Endpoint::App) && m.data == serde_json::json!([])),
        "the apps hear the agent is gone: {fx:?}"
    );
    let Some((after, timer)) = fx.iter().find_map(|e| match e {
        Effect::Arm {
            after,
            timer: t @ Timer::RestartDue {
                slot: AGENT_SLOT, ..
            },
        } => Some((*after, *t)),
        _ => None,
    }) else {
        panic!("the agent restarts whatever --restart says: {fx:?}");
    };
    assert!(
        after >= Duration::from_millis(200),
        "not sooner than 200 ms"
    );
    let fx = h.fire(timer);
    let new = spawned_ids(&fx)[0];
    let new_pid = h.pid(new);
    let fx = h.ready(new);
    assert!(
        sent(&fx, "cluster-pids")
            .iter()
            .any(|m| m.to == Some(Endpoint::App) && m.data == serde_json::json!([new_pid]))
    );
    assert_eq!(sent_to(&fx, "cluster-ready", Endpoint::Agent), 1);
}
