//! Who takes new sticky connections, and what a closed channel does.

use super::*;

#[test]
fn a_stopping_worker_never_accepts_again() {
    // The bug this guards: a stopping worker still got new sticky connections.
    let mut h = Harness::new(1, false);
    h.start_ready();
    let (_, due) = h.crash(1);
    let w = spawned_ids(&h.fire(due.unwrap()))[0];
    let fx = h.command(Command::Stop { slot: 1 });
    assert_eq!(not_accepting(&fx), vec![w]);
    let fx = h.ready(w);
    assert!(accepting(&fx).is_empty(), "{fx:?}");
    assert_eq!(h.core.worker(w).unwrap().phase, Phase::Stopping);
}

#[test]
fn a_retiring_worker_never_accepts_again() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let new = spawns(&h.command(Command::Scale { workers: 2 }))[0].0;
    h.command(Command::Scale { workers: 1 });
    assert!(accepting(&h.ready(new)).is_empty());
}

#[test]
fn a_worker_stopped_during_shutdown_never_accepts_again() {
    let mut h = Harness::with(
        Settings {
            workers: 1,
            ready: ReadyMode::Delay(Duration::from_millis(50)),
            ..Settings::default()
        },
        false,
    );
    let fx = h.input(Input::Start);
    let w = spawned_ids(&fx)[0];
    let delay = timers(&fx)
        .into_iter()
        .find(|t| *t == Timer::ReadyDelay(w))
        .expect("a ready delay");
    h.input(Input::Shutdown);
    assert!(accepting(&h.fire(delay)).is_empty());
}

#[test]
fn a_channel_closed_for_abuse_stops_the_worker_for_recovery() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let w = h.current(1);
    let fx = h.input(Input::ChannelClosed {
        worker: w,
        abuse: true,
    });
    assert!(not_accepting(&fx).contains(&w));
    assert_eq!(stops(&fx), vec![w]);
    assert_eq!(h.core.worker(w).unwrap().intent, Some(Intent::Recover));
    let fx = h.exit(w, 0);
    assert!(
        matches!(restart_due(&fx), Some(Timer::RestartDue { slot: 1, .. })),
        "the crash policy applies: {fx:?}"
    );
}

#[test]
fn a_channel_closed_for_abuse_counts_toward_the_crash_limit() {
    let mut h = Harness::with(
        Settings {
            workers: 1,
            restart_limit: 1,
            ..Settings::default()
        },
        false,
    );
    h.start_ready();
    let w = h.current(1);
    h.input(Input::ChannelClosed {
        worker: w,
        abuse: true,
    });
    let due = restart_due(&h.exit(w, 0)).unwrap();
    let w = spawned_ids(&h.fire(due))[0];
    h.ready(w);
    h.input(Input::ChannelClosed {
        worker: w,
        abuse: true,
    });
    let fx = h.exit(w, 0);
    assert_eq!(sent(&fx, "app-worker-parked").len(), 1);
}

#[test]
fn a_channel_closed_without_abuse_only_stops_accepting() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let w = h.current(1);
    let fx = h.input(Input::ChannelClosed {
        worker: w,
        abuse: false,
    });
    assert_eq!(not_accepting(&fx), vec![w]);
    assert!(stops(&fx).is_empty() && kills(&fx).is_empty());
    assert_eq!(h.core.worker(w).unwrap().intent, None);
}

#[test]
fn a_replaced_slot_never_has_a_step_without_an_accepting_worker() {
    // Kernel steering spreads a slot's clients when, after a step, none of its workers
    // accepts: a restart (and each reload step) must hand over within one step (the shell
    // looks once the step's effects are all carried out, so their order inside it is free).
    let mut h = Harness::new(2, false);
    h.start_ready();
    let old = h.current(1);
    let new = spawned_ids(&h.command(Command::Restart { slot: 1 }))[0];
    let fx = h.ready(new);
    assert_eq!(accepting(&fx), vec![new], "{fx:?}");
    assert_eq!(not_accepting(&fx), vec![old], "{fx:?}");
}
