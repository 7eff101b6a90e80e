//! `scale`: the number of app slots is desired state.

use super::*;

#[test]
fn scale_up_adds_slots_with_the_next_ids_and_spawns_them() {
    let mut h = Harness::new(2, true);
    h.start_ready();
    let fx = h.command(Command::Scale { workers: 4 });
    let s = spawns(&fx);
    assert_eq!(
        s.iter().map(|s| (s.1, s.2)).collect::<Vec<_>>(),
        vec![(Role::App, 3), (Role::App, 4)]
    );
    assert_eq!(h.core.desired_workers(), 4);
    assert_eq!(h.core.info().workers, 4);
    let fx = h.ready(s[0].0);
    assert_eq!(accepting(&fx), vec![s[0].0]);
    let msg = sent(&fx, "cluster-ready")[0];
    assert_eq!(msg.data["workers"], 4);
}

#[test]
fn scale_down_retires_the_highest_slots() {
    let mut h = Harness::new(4, false);
    h.start_ready();
    let w3 = h.current(3);
    let w4 = h.current(4);
    let fx = h.command(Command::Scale { workers: 2 });
    let mut stopped = stops(&fx);
    stopped.sort();
    assert_eq!(stopped, vec![w3, w4]);
    for w in [w3, w4] {
        assert!(
            position(
                &fx,
                |e| matches!(e, Effect::NotAccepting { worker } if *worker == w)
            ) < position(
                &fx,
                |e| matches!(e, Effect::Stop { worker, .. } if *worker == w)
            ),
            "NotAccepting before Stop"
        );
        assert_eq!(h.core.worker(w).unwrap().intent, Some(Intent::Retire));
    }
    assert_eq!(h.core.desired_workers(), 2);
    assert_eq!(h.slot(4).goal, Goal::Removed);
}

#[test]
fn retired_workers_exit_without_restart_and_their_slots_go() {
    let mut h = Harness::new(3, false);
    h.start_ready();
    let w2 = h.current(2);
    let w3 = h.current(3);
    h.command(Command::Scale { workers: 1 });
    let fx = h.exit(w3, 1);
    assert!(restart_due(&fx).is_none() && spawns(&fx).is_empty());
    assert!(!h.has_slot(3), "an empty retired slot goes");
    assert!(h.has_slot(2), "a retired slot stays while its worker lives");
    h.killed(w2);
    assert!(!h.has_slot(2));
    assert_eq!(
        h.core.slots().map(|s| s.id).collect::<Vec<_>>(),
        vec![1],
        "only slot 1 is left"
    );
    assert_eq!(h.core.desired_workers(), 1);
}

#[test]
fn scale_down_removes_an_empty_slot_at_once() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let (_, due) = h.crash(2);
    h.command(Command::Scale { workers: 1 });
    assert!(!h.has_slot(2));
    assert!(
        spawns(&h.fire(due.unwrap())).is_empty(),
        "its restart is off"
    );
}

#[test]
fn scale_up_after_a_scale_down_reuses_freed_ids() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let w2 = h.current(2);
    h.command(Command::Scale { workers: 1 });
    h.exit(w2, 0);
    let s = spawns(&h.command(Command::Scale { workers: 2 }));
    assert_eq!(s.iter().map(|s| s.2).collect::<Vec<_>>(), vec![2]);
}

#[test]
fn scale_to_zero_is_refused() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let err = h
        .core
        .command(h.now(), Command::Scale { workers: 0 })
        .unwrap_err();
    assert!(err.contains("at least one"), "{err}");
    assert_eq!(h.core.desired_workers(), 2);
}
