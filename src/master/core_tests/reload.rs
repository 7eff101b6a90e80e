//! Rolling reload: one slot at a time by default, the new worker first, the old one stopped
//! once the new one is ready; apps first, then the agent; a failing new worker aborts it.

use super::*;

fn reload_events(fx: &[Effect]) -> Vec<ReloadEvent> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Reload(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_reload_replaces_one_slot_at_a_time_apps_first_then_the_agent() {
    let mut h = Harness::new(2, true);
    h.start_ready();
    let old: Vec<WorkerId> = [1, 2, 0].iter().map(|s| h.current(*s)).collect();
    let fx = h.command(Command::Reload {
        batch: 1,
        surge: None,
    });
    assert_eq!(
        reload_events(&fx),
        vec![ReloadEvent::Started {
            generation: 2,
            slots: 3,
            changes: Vec::new(),
        }]
    );
    let mut order = Vec::new();
    let mut fx = fx;
    for (i, slot) in [1u32, 2, 0].iter().enumerate() {
        let s = spawns(&fx);
        assert_eq!(s.len(), 1, "one new worker at a time: {fx:?}");
        assert_eq!(s[0].2, *slot);
        order.push(s[0].2);
        assert!(
            !stops(&fx).contains(&old[i]),
            "slot {slot}'s old worker is not stopped before its new one is ready"
        );
        let new = s[0].0;
        assert_eq!(h.core.worker(new).unwrap().generation, 2);
        fx = h.ready(new);
        assert_eq!(
            stops(&fx),
            vec![old[i]],
            "the old worker of slot {slot} goes, only it"
        );
        assert!(reload_events(&fx).iter().any(|e| matches!(
            e,
            ReloadEvent::Slot { slot: s, index, total: 3, generation: 2, .. }
                if s == slot && *index == i + 1
        )));
    }
    assert_eq!(order, vec![1, 2, 0]);
    assert!(matches!(
        reload_events(&fx).last(),
        Some(ReloadEvent::Completed { generation: 2, .. })
    ));
    assert!(h.core.reload().is_none());
}

#[test]
fn a_new_worker_that_exits_before_ready_aborts_the_reload_and_the_rest_keep_serving() {
    let mut h = Harness::new(3, false);
    h.start_ready();
    let (old2, old3) = (h.current(2), h.current(3));
    let first = spawned_ids(&h.command(Command::Reload {
        batch: 1,
        surge: None,
    }))[0];
    let fx = h.ready(first);
    let second = spawned_ids(&fx)[0];
    let fx = h.exit(second, 1);
    let aborted = reload_events(&fx);
    assert!(
        matches!(&aborted[..], [ReloadEvent::Aborted { reason, .. }] if reason.contains("slot 2") && reason.contains("1 of 3")),
        "{aborted:?}"
    );
    assert!(
        spawns(&fx).is_empty(),
        "a failing generation is not retried"
    );
    assert!(timers(&fx).is_empty(), "nor restarted");
    assert_eq!(h.current(2), old2);
    assert_eq!(h.current(3), old3);
    assert_eq!(h.current(1), first, "slot 1 stays on the new generation");
    assert!(h.core.reload().is_none());
}

#[test]
fn a_new_worker_not_ready_in_time_aborts_the_reload() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let old1 = h.current(1);
    let new = spawned_ids(&h.command(Command::Reload {
        batch: 1,
        surge: None,
    }))[0];
    let fx = h.input(Input::Timer(Timer::ReadyTimeout(new)));
    assert_eq!(kills(&fx), vec![new]);
    assert!(matches!(
        reload_events(&fx)[..],
        [ReloadEvent::Aborted { .. }]
    ));
    assert_eq!(h.current(1), old1, "the old worker keeps serving");
}

#[test]
fn commands_are_refused_while_a_reload_runs_naming_it() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    h.command(Command::Reload {
        batch: 1,
        surge: None,
    });
    for cmd in [
        Command::Restart { slot: 1 },
        Command::Scale { workers: 3 },
        Command::Reload {
            batch: 1,
            surge: None,
        },
    ] {
        let e = h.core.command(h.now(), cmd).unwrap_err();
        assert!(e.contains("reload to generation 2 is in progress"), "{e}");
    }
}

#[test]
fn a_batch_of_two_starts_two_new_workers_at_once() {
    let mut h = Harness::new(3, false);
    h.start_ready();
    let fx = h.command(Command::Reload {
        batch: 2,
        surge: None,
    });
    assert_eq!(spawns(&fx).len(), 2);
}

#[test]
fn shutdown_aborts_a_reload() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    h.command(Command::Reload {
        batch: 1,
        surge: None,
    });
    let fx = h.input(Input::Signal("SIGTERM"));
    assert!(matches!(
        reload_events(&fx)[..],
        [ReloadEvent::Aborted { .. }]
    ));
}

/// Settings as re-read from a config file: those of the harness with `f` applied.
fn fresh(h: &Harness, f: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = h.core.settings().clone();
    f(&mut s);
    s
}

#[test]
fn a_reload_with_new_settings_runs_the_new_generation_with_them_and_says_what_changed() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let new = fresh(&h, |s| {
        s.app = Some(vec!["server".into(), "--v2".into()]);
        s.env.push(("MODE".into(), "two".into()));
        s.kill_timeout = Duration::from_millis(1234);
    });
    let fx = h.core.reload_with(h.now(), 1, None, new).unwrap();
    let fx = h.answer_spawns(fx);
    let Some(ReloadEvent::Started { changes, .. }) = reload_events(&fx).into_iter().next() else {
        panic!("no reload.started in {fx:?}");
    };
    let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["app", "env MODE", "kill-timeout"]);
    let s = h.core.settings();
    assert_eq!(s.app.as_ref().unwrap()[1], "--v2");
    assert_eq!(s.kill_timeout, Duration::from_millis(1234));
    assert_eq!(spawns(&fx).len(), 1, "the reload began");
}

#[test]
fn a_change_that_needs_a_restart_refuses_the_reload_and_changes_nothing() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let before = h.core.settings().clone();
    let pids = (h.current(1), h.current(2));
    let new = fresh(&h, |s| {
        s.port = Some(9999);
        s.app = Some(vec!["server".into(), "--v2".into()]);
    });
    let e = h.core.reload_with(h.now(), 1, None, new).unwrap_err();
    assert!(
        e.contains("port") && e.contains("restart of the master"),
        "{e}"
    );
    assert_eq!(h.core.settings(), &before, "nothing was taken");
    assert_eq!(h.core.generation(), 1);
    assert!(h.core.reload().is_none());
    assert_eq!((h.current(1), h.current(2)), pids);
}

#[test]
fn a_new_worker_count_is_reported_and_the_slots_stay() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let new = fresh(&h, |s| s.workers = 5);
    let fx = h.core.reload_with(h.now(), 1, None, new).unwrap();
    let Some(ReloadEvent::Started { slots, changes, .. }) = reload_events(&fx).into_iter().next()
    else {
        panic!("no reload.started");
    };
    assert_eq!(slots, 2);
    assert_eq!(changes[0].key, "workers");
    assert_eq!(h.core.desired_workers(), 2);
}

#[test]
fn a_reload_refused_while_another_runs_takes_no_settings() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    h.command(Command::Reload {
        batch: 1,
        surge: None,
    });
    let before = h.core.settings().clone();
    let new = fresh(&h, |s| s.kill_timeout = Duration::from_millis(1));
    assert!(h.core.reload_with(h.now(), 1, None, new).is_err());
    assert_eq!(h.core.settings(), &before);
}

#[test]
fn a_kill_aborts_a_reload_and_no_new_worker_starts_after_it() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    h.command(Command::Reload {
        batch: 1,
        surge: Some(1),
    });
    let fx = h.input(Input::Kill);
    assert!(matches!(
        reload_events(&fx)[..],
        [ReloadEvent::Aborted { .. }]
    ));
    assert!(h.core.reload().is_none());
    let ids: Vec<WorkerId> = h.core.workers().map(|w| w.id).collect();
    for w in ids {
        assert!(
            spawns(&h.killed(w)).is_empty(),
            "nothing starts while killing"
        );
    }
}

#[test]
fn an_aborted_reload_puts_the_settings_from_before_back() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let before = h.core.settings().clone();
    let new = fresh(&h, |s| s.app = Some(vec!["broken".into()]));
    let fx = h.core.reload_with(h.now(), 1, None, new).unwrap();
    let first = spawned_ids(&h.answer_spawns(fx))[0];
    assert_eq!(h.core.settings().app, Some(vec!["broken".to_string()]));
    let fx = h.exit(first, 1);
    let aborted = reload_events(&fx);
    assert!(
        matches!(&aborted[..], [ReloadEvent::Aborted { reason, .. }] if reason.contains("settings from before")),
        "{aborted:?}"
    );
    assert_eq!(
        h.core.settings(),
        &before,
        "a crash restart runs the old command"
    );
}
