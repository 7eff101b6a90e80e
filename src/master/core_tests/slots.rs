//! Operator commands on one slot (`stop`, `start`), and when commands are refused.

use super::*;

#[test]
fn a_stopped_slot_stays_empty_after_its_worker_exits() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let w = h.current(2);
    let fx = h.command(Command::Stop { slot: 2 });
    assert_eq!(stops(&fx), vec![w]);
    assert_eq!(not_accepting(&fx), vec![w]);
    assert_eq!(h.slot(2).goal, Goal::Stopped);
    let fx = h.exit(w, 0);
    assert!(restart_due(&fx).is_none());
    assert!(spawns(&fx).is_empty());
    assert!(h.slot(2).current.is_none());
    assert_eq!(h.core.phase(), ClusterPhase::Ready);
}

#[test]
fn a_stop_cancels_an_armed_restart() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let (_, due) = h.crash(1);
    h.command(Command::Stop { slot: 1 });
    assert!(spawns(&h.fire(due.unwrap())).is_empty());
}

#[test]
fn the_agent_hears_an_operator_stopped_app_leave_the_set() {
    let mut h = Harness::new(2, true);
    h.start_ready();
    let keep = h.pid(h.current(1));
    let fx = h.command(Command::Stop { slot: 2 });
    let to_agent = sent(&fx, "cluster-pids")
        .into_iter()
        .find(|m| m.to == Some(Endpoint::Agent))
        .expect("the agent hears the new set");
    assert_eq!(to_agent.data, serde_json::json!([keep]));
}

#[test]
fn an_operator_stop_of_a_worker_stopping_for_recovery_keeps_the_slot_stopped() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let w = h.current(1);
    h.input(Input::ChannelClosed {
        worker: w,
        abuse: true,
    });
    h.command(Command::Stop { slot: 1 });
    let fx = h.exit(w, 0);
    assert!(restart_due(&fx).is_none(), "the slot was stopped: {fx:?}");
}

#[test]
fn start_spawns_a_stopped_slot_again() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let w = h.current(2);
    h.command(Command::Stop { slot: 2 });
    h.exit(w, 0);
    let fx = h.command(Command::Start { slot: 2 });
    let s = spawns(&fx);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].2, 2);
    assert_eq!(h.slot(2).goal, Goal::Running);
    assert_eq!(accepting(&h.ready(s[0].0)), vec![s[0].0]);
}

#[test]
fn start_of_a_running_slot_is_refused() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let err = h
        .core
        .command(h.now(), Command::Start { slot: 1 })
        .unwrap_err();
    assert!(err.contains("already running"), "{err}");
}

#[test]
fn start_unparks_a_parked_slot() {
    let mut h = Harness::with(
        Settings {
            workers: 1,
            restart_limit: 0,
            ..Settings::default()
        },
        false,
    );
    h.start_ready();
    let (_, due) = h.crash(1);
    assert!(due.is_none());
    assert!(h.slot(1).parked);
    let fx = h.command(Command::Start { slot: 1 });
    assert_eq!(spawns(&fx).len(), 1);
    assert!(!h.slot(1).parked);
}

#[test]
fn a_restart_of_a_stopped_slot_starts_it() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let w = h.current(1);
    h.command(Command::Stop { slot: 1 });
    h.exit(w, 0);
    let s = spawns(&h.command(Command::Restart { slot: 1 }));
    assert_eq!(s.len(), 1);
    assert_eq!(h.current(1), s[0].0);
    assert_eq!(h.slot(1).goal, Goal::Running);
}

#[test]
fn a_command_for_an_unknown_slot_is_refused() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    for cmd in [
        Command::Restart { slot: 9 },
        Command::Stop { slot: 9 },
        Command::Start { slot: 9 },
    ] {
        let err = h.core.command(h.now(), cmd).unwrap_err();
        assert!(err.contains("slot 9"), "{err}");
    }
}

#[test]
fn commands_are_refused_while_starting() {
    let mut h = Harness::new(1, false);
    h.input(Input::Start);
    let err = h
        .core
        .command(h.now(), Command::Scale { workers: 3 })
        .unwrap_err();
    assert!(err.contains("starting"), "{err}");
    assert_eq!(h.core.desired_workers(), 1);
}

#[test]
fn commands_are_refused_while_stopping() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    h.input(Input::Shutdown);
    for cmd in [
        Command::Restart { slot: 1 },
        Command::Stop { slot: 1 },
        Command::Start { slot: 1 },
        Command::Scale { workers: 2 },
    ] {
        let err = h.core.command(h.now(), cmd).unwrap_err();
        assert!(err.contains("stopping"), "{cmd:?}: {err}");
    }
}
