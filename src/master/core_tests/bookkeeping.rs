//! Exits reported twice or for nobody, the counters, the snapshot.

use super::*;

#[test]
fn an_exit_of_an_unknown_worker_is_ignored() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let fx = h.exit(WorkerId(999), 1);
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(h.core.phase(), ClusterPhase::Ready);
}

#[test]
fn a_second_exit_of_the_same_worker_is_ignored() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let w = h.current(1);
    let (_, due) = h.crash(1);
    assert!(due.is_some());
    let fx = h.exit(w, 1);
    assert!(fx.is_empty(), "{fx:?}");
    let fx = h.fire(due.unwrap());
    assert_eq!(spawns(&fx).len(), 1, "one restart, not two");
}

#[test]
fn exits_and_restarts_are_counted_by_reason() {
    let metrics = Rc::new(Metrics::default());
    let mut h = Harness::new(2, false);
    h.core = Core::new(
        Settings {
            workers: 2,
            ..Settings::default()
        },
        false,
        h.core.info(),
        metrics.clone(),
    );
    h.start_ready();
    let (_, due) = h.crash(1);
    let w = spawned_ids(&h.fire(due.unwrap()))[0];
    h.ready(w);
    let old = h.current(2);
    let new = spawned_ids(&h.command(Command::Restart { slot: 2 }))[0];
    h.ready(new);
    h.exit(old, 0);
    h.input(Input::Shutdown);
    h.exit(w, 0);
    h.exit(new, 0);
    let s = metrics.snapshot();
    let exits = |r: ExitReason| s.exits[r as usize];
    assert_eq!(exits(ExitReason::Unexpected), 1);
    assert_eq!(exits(ExitReason::Replaced), 1);
    assert_eq!(exits(ExitReason::Stopped), 2);
    assert_eq!(s.restarts[RestartReason::Crash as usize], 1);
    assert_eq!(s.restarts[RestartReason::Operator as usize], 1);
    // And per slot, for `clutch_worker_restarts_total{reason}`.
    let by = |slot: u32, r: RestartReason| h.slot(slot).restarts_by[r as usize];
    assert_eq!(by(1, RestartReason::Crash), 1);
    assert_eq!(by(1, RestartReason::Operator), 0);
    assert_eq!(by(2, RestartReason::Operator), 1);
    assert_eq!(by(2, RestartReason::Crash), 0);
}

#[test]
fn the_snapshot_lists_spawned_workers_and_their_readiness() {
    let mut h = Harness::new(2, true);
    let agent = spawned_ids(&h.input(Input::Start))[0];
    let snap = h.core.snapshot();
    assert_eq!(snap.len(), 1);
    assert_eq!(
        (snap[0].role, snap[0].id, snap[0].ready),
        (Role::Agent, 0, false)
    );
    h.ready(agent);
    let snap = h.core.snapshot();
    assert_eq!(snap.len(), 3);
    assert!(snap[0].ready);
    assert!(snap[1..].iter().all(|w| w.role == Role::App && !w.ready));
}
