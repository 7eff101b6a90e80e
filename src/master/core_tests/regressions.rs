//! Bugs these tests found in `core.rs` when it was first written, each fixed: they keep it
//! that way.

use super::*;

/// Was a bug: `stop_slot` leaves the stopping worker as the slot's `current`, so a `Start` that
/// comes before it exits sees a worker and spawns nothing; the exit (intent Stop) then
/// arms nothing either: the slot stays empty with goal Running.
#[test]
fn start_before_the_stopped_worker_exits_still_fills_the_slot() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let old = h.current(1);
    h.command(Command::Stop { slot: 1 });
    let mut fx = h.command(Command::Start { slot: 1 });
    fx.extend(h.exit(old, 0));
    if let Some(due) = restart_due(&fx) {
        fx.extend(h.fire(due));
    }
    assert_eq!(
        spawns(&fx).len(),
        1,
        "a worker for the started slot: {fx:?}"
    );
    assert!(h.slot(1).current.is_some());
}

/// Was a bug: only an exit judged `Retire` calls `remove_if_empty`. A worker keeps the first
/// intent recorded (here Stop), so when it is the last one out of a scaled-away slot the
/// slot stays in `slots()` forever (goal Removed, no worker).
#[test]
fn a_scaled_away_slot_goes_even_if_its_worker_was_stopping_for_another_reason() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let w2 = h.current(2);
    h.command(Command::Stop { slot: 2 });
    h.command(Command::Scale { workers: 1 });
    h.exit(w2, 0);
    assert!(!h.has_slot(2), "slot 2 is still listed");
}

/// The same bug through a restart: the old worker drains (Replace) while the new one is
/// retired and exits first.
#[test]
fn a_scaled_away_slot_goes_once_its_draining_worker_exits() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let old = h.current(2);
    let new = spawned_ids(&h.command(Command::Restart { slot: 2 }))[0];
    h.ready(new);
    h.command(Command::Scale { workers: 1 });
    h.exit(new, 0);
    h.exit(old, 0);
    assert!(!h.has_slot(2), "slot 2 is still listed");
}

/// Was a bug: when the current worker crashes while an operator's replacement is starting, the
/// crash arms a restart (the slot has no `current`), which spawns a third worker as the
/// current; the replacement then takes the slot and the third one is stopped at once.
#[test]
fn a_crash_while_the_replacement_starts_spawns_no_third_worker() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let old = h.current(1);
    let new = spawned_ids(&h.command(Command::Restart { slot: 1 }))[0];
    let mut fx = h.exit(old, 1);
    if let Some(due) = restart_due(&fx) {
        fx.extend(h.fire(due));
    }
    fx.extend(h.ready(new));
    assert!(spawns(&fx).is_empty(), "only the replacement: {fx:?}");
    assert!(stops(&fx).is_empty(), "nothing to stop: {fx:?}");
    assert_eq!(h.current(1), new);
}

/// Was a bug: `ask_to_stop` sends Stop again to a worker already stopping: at shutdown, every
/// draining, retiring or operator-stopped app. The owner task ignores a Stop while its
/// SIGKILL is pending, so today this costs nothing; past that deadline (or after a Kill)
/// it would SIGTERM again and arm a new grace, and many runtimes take a second SIGTERM as
/// "exit now".
#[test]
fn a_worker_already_stopping_is_not_asked_again_at_shutdown() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let old = h.current(1);
    let new = spawned_ids(&h.command(Command::Restart { slot: 1 }))[0];
    h.ready(new);
    let stopped = h.current(2);
    h.command(Command::Stop { slot: 2 });
    let fx = h.input(Input::Shutdown);
    assert_eq!(
        stops(&fx),
        vec![new],
        "only the worker not yet asked: {fx:?}"
    );
    assert!(!stops(&fx).contains(&old) && !stops(&fx).contains(&stopped));
}

/// The same double Stop through a restart of an operator-stopped slot.
#[test]
fn a_stopping_worker_is_not_asked_again_when_its_replacement_is_ready() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    h.command(Command::Stop { slot: 1 });
    let new = spawned_ids(&h.command(Command::Restart { slot: 1 }))[0];
    let fx = h.ready(new);
    assert!(stops(&fx).is_empty(), "{fx:?}");
}

/// Was a bug: the apps hear `cluster-pids []` when the agent dies only if it was still Ready;
/// an agent the master stopped (operator Stop, channel abuse) is Stopping by then, so
/// the apps keep its pid as the live agent's.
#[test]
fn the_apps_hear_the_agent_is_gone_when_it_was_stopped() {
    let mut h = Harness::new(1, true);
    h.start_ready();
    let agent = h.current(AGENT_SLOT);
    h.command(Command::Stop { slot: AGENT_SLOT });
    let fx = h.exit(agent, 0);
    assert!(
        sent(&fx, "cluster-pids")
            .iter()
            .any(|m| m.to == Some(Endpoint::App) && m.data == serde_json::json!([])),
        "{fx:?}"
    );
}

/// Was a bug: a channel that closed (without abuse) leaves the worker's phase as is, so a late
/// Ready (a tcp or notify probe) makes it Accepting, for a channel that is gone. The run
/// loop drops the worker's outbox on the close, so `Accepting` finds none and attaches
/// nothing today; the core should not ask for it.
#[test]
fn a_worker_whose_channel_closed_never_accepts() {
    let mut h = Harness::with(
        Settings {
            workers: 1,
            ready: ReadyMode::Notify,
            ..Settings::default()
        },
        false,
    );
    h.start_ready();
    let (_, due) = h.crash(1);
    let w = spawned_ids(&h.fire(due.unwrap()))[0];
    h.input(Input::ChannelClosed {
        worker: w,
        abuse: false,
    });
    let fx = h.ready(w);
    assert!(accepting(&fx).is_empty(), "{fx:?}");
}

/// The double Stop again: a Kill during the graceful stop, then the apps' exits move on
/// to the agent's stage, which sends the already-killed agent a Stop (SIGTERM).
#[test]
fn a_killed_agent_is_not_asked_to_stop_afterwards() {
    let mut h = Harness::new(1, true);
    h.start_ready();
    let app = h.current(1);
    h.input(Input::Shutdown);
    h.input(Input::Kill);
    let fx = h.killed(app);
    assert!(stops(&fx).is_empty(), "{fx:?}");
}

/// Was a bug: `--workers` is capped at 1024 by `Settings::validate`, but `scale` takes any
/// number: a typo (`scale 10000`) forks ten thousand workers at once.
#[test]
fn scale_beyond_the_workers_cap_is_refused() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let refused = h.core.command(h.now(), Command::Scale { workers: 10_000 });
    let spawned = refused.as_ref().map_or(0, |fx| spawns(fx).len());
    assert!(refused.is_err(), "{spawned} workers spawned");
    assert_eq!(h.core.desired_workers(), 1);
}
