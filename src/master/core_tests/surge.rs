//! `surge` during a reload: at most that many workers beyond one per slot alive at once
//! (new ones starting, old ones stopping), and never fewer ready workers than slots.

use super::*;

/// Workers alive now (spawned and not yet exited).
fn alive(h: &Harness) -> usize {
    h.core.workers().count()
}

/// Slots whose current worker is ready.
fn ready_slots(h: &Harness) -> usize {
    h.core
        .slots()
        .filter(|s| {
            s.current
                .and_then(|w| h.core.worker(w))
                .is_some_and(|w| w.phase == Phase::Ready)
        })
        .count()
}

fn stopping(h: &Harness) -> Vec<WorkerId> {
    h.core
        .workers()
        .filter(|w| w.phase == Phase::Stopping)
        .map(|w| w.id)
        .collect()
}

fn starting(h: &Harness) -> Vec<WorkerId> {
    h.core
        .workers()
        .filter(|w| w.phase == Phase::Starting)
        .map(|w| w.id)
        .collect()
}

/// Drives a reload of `slots` slots to its end, the new workers ready at once or the old
/// ones slow to exit as `slow_exits` says, checking after each step that at most
/// `slots + surge` workers are alive and every slot has a ready worker.
fn drive(workers: usize, agent: bool, batch: usize, surge: usize, slow_exits: bool) {
    let mut h = Harness::new(workers, agent);
    h.start_ready();
    let slots = workers + usize::from(agent);
    h.command(Command::Reload {
        batch,
        surge: Some(surge),
    });
    let mut most = 0;
    for step in 0..1000 {
        assert!(
            alive(&h) <= slots + surge,
            "step {step}: {} alive, more than {slots} + {surge}",
            alive(&h)
        );
        assert_eq!(
            ready_slots(&h),
            slots,
            "step {step}: a slot without a ready worker"
        );
        most = most.max(alive(&h));
        let (new, old) = (starting(&h), stopping(&h));
        // Old workers slow to exit: new ones are made ready first while there are any.
        let exit_first = !slow_exits || new.is_empty();
        match (new.first(), old.first()) {
            (_, Some(&o)) if exit_first => {
                h.exit(o, 0);
            }
            (Some(&n), _) => {
                h.ready(n);
            }
            (None, Some(&o)) => {
                h.exit(o, 0);
            }
            (None, None) => break,
        }
    }
    assert!(h.core.reload().is_none(), "the reload completed");
    assert!(h.core.workers().all(|w| w.generation == 2));
    assert!(most > slots, "new workers started beside the old ones");
}

#[test]
fn a_surge_bounds_the_workers_alive_and_capacity_never_drops() {
    for (workers, agent) in [(1, false), (3, false), (4, true)] {
        for batch in 1..=3 {
            for surge in 1..=3 {
                for slow in [false, true] {
                    drive(workers, agent, batch, surge, slow);
                }
            }
        }
    }
}

#[test]
fn with_a_surge_of_one_the_next_new_worker_waits_for_the_old_one_to_exit() {
    let mut h = Harness::new(3, false);
    h.start_ready();
    let old1 = h.current(1);
    let fx = h.command(Command::Reload {
        batch: 3,
        surge: Some(1),
    });
    let first = spawned_ids(&fx);
    assert_eq!(first.len(), 1, "the surge, not the batch, limits it");
    let fx = h.ready(first[0]);
    assert_eq!(stops(&fx), vec![old1]);
    assert!(
        spawns(&fx).is_empty(),
        "the old worker still stops: no room"
    );
    let fx = h.exit(old1, 0);
    assert_eq!(spawns(&fx).len(), 1, "its exit makes room for slot 2's");
    assert_eq!(spawns(&fx)[0].2, 2);
}

#[test]
fn without_a_surge_stopping_workers_do_not_hold_the_reload_back() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let first = spawned_ids(&h.command(Command::Reload {
        batch: 1,
        surge: None,
    }))[0];
    let fx = h.ready(first);
    assert_eq!(stops(&fx).len(), 1);
    assert_eq!(spawns(&fx).len(), 1, "slot 2's new worker starts at once");
}

#[test]
fn the_surge_setting_applies_when_the_command_names_none() {
    let mut h = Harness::with(
        Settings {
            workers: 3,
            surge: Some(1),
            ..Settings::default()
        },
        false,
    );
    h.start_ready();
    let fx = h.command(Command::Reload {
        batch: 3,
        surge: None,
    });
    assert_eq!(spawns(&fx).len(), 1);
    assert_eq!(h.core.reload().unwrap().surge, Some(1));
}

#[test]
fn the_reload_completes_once_the_last_new_worker_is_ready_even_with_old_ones_stopping() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let new = spawned_ids(&h.command(Command::Reload {
        batch: 1,
        surge: Some(1),
    }))[0];
    h.ready(new);
    assert!(
        h.core.reload().is_none(),
        "done; the old worker stops on its own"
    );
    assert_eq!(stopping(&h).len(), 1);
}
