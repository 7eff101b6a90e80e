//! Shutdown: the listener closes, the apps stop, then the agent; a second signal or `Kill` kills.

use super::*;

#[test]
fn a_stop_signal_stops_the_apps_first_then_the_agent() {
    let mut h = Harness::new(2, true);
    h.start_ready();
    let agent = h.current(AGENT_SLOT);
    let apps = [h.current(1), h.current(2)];
    let fx = h.input(Input::Signal("SIGTERM"));
    assert!(has(&fx, |e| matches!(e, Effect::CloseListener)));
    assert!(
        position(&fx, |e| matches!(e, Effect::CloseListener))
            < position(&fx, |e| matches!(e, Effect::Stop { .. })),
        "the listener closes before any worker is asked to stop"
    );
    let mut stopped = stops(&fx);
    stopped.sort();
    assert_eq!(stopped, apps.to_vec(), "the apps, not the agent");
    let mut quiet = not_accepting(&fx);
    quiet.sort();
    assert_eq!(quiet, apps.to_vec());
    assert!(matches!(h.core.phase(), ClusterPhase::Stopping { .. }));
    let fx = h.exit(apps[0], 0);
    assert!(stops(&fx).is_empty(), "the agent waits for every app");
    assert!(restart_due(&fx).is_none());
    let fx = h.exit(apps[1], 0);
    assert_eq!(stops(&fx), vec![agent]);
    assert!(!h.core.done());
    let fx = h.exit(agent, 0);
    assert!(restart_due(&fx).is_none());
    assert!(h.core.done());
    assert!(h.core.take_failure().is_none());
}

#[test]
fn a_second_signal_kills_every_live_worker() {
    let mut h = Harness::new(2, true);
    h.start_ready();
    let agent = h.current(AGENT_SLOT);
    let apps = [h.current(1), h.current(2)];
    h.input(Input::Signal("SIGTERM"));
    h.exit(apps[0], 0);
    let fx = h.input(Input::Signal("SIGINT"));
    let mut killed = kills(&fx);
    killed.sort();
    assert_eq!(killed, vec![agent, apps[1]]);
    h.killed(apps[1]);
    h.killed(agent);
    assert!(h.core.done());
}

#[test]
fn shutdown_with_no_agent_is_done_after_the_last_app() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let apps = [h.current(1), h.current(2)];
    let fx = h.input(Input::Shutdown);
    assert_eq!(stops(&fx).len(), 2);
    h.exit(apps[0], 0);
    assert!(!h.core.done());
    h.exit(apps[1], 0);
    assert!(h.core.done());
}

#[test]
fn shutdown_cancels_armed_restarts() {
    let mut h = Harness::new(2, false);
    h.start_ready();
    let (_, due) = h.crash(1);
    h.input(Input::Shutdown);
    assert!(spawns(&h.fire(due.unwrap())).is_empty());
}

#[test]
fn shutdown_while_starting_stops_what_was_started() {
    let mut h = Harness::new(2, true);
    let agent = spawned_ids(&h.input(Input::Start))[0];
    let fx = h.input(Input::Signal("SIGTERM"));
    assert_eq!(stops(&fx), vec![agent]);
    let fx = h.ready(agent);
    assert!(spawns(&fx).is_empty(), "no app starts once stopping");
    h.exit(agent, 0);
    assert!(h.core.done());
}

#[test]
fn kill_kills_every_worker_and_is_done_after_their_exits() {
    let mut h = Harness::new(2, true);
    h.start_ready();
    let all: Vec<WorkerId> = h.core.workers().map(|w| w.id).collect();
    let fx = h.input(Input::Kill);
    let mut killed = kills(&fx);
    killed.sort();
    assert_eq!(killed, all);
    assert!(has(&fx, |e| matches!(e, Effect::CloseListener)));
    assert!(stops(&fx).is_empty());
    for w in &all {
        assert!(!h.core.done());
        let fx = h.killed(*w);
        assert!(restart_due(&fx).is_none() && spawns(&fx).is_empty());
    }
    assert!(h.core.done());
}

#[test]
fn kill_while_starting_is_done_after_the_exits() {
    let mut h = Harness::new(1, true);
    let agent = spawned_ids(&h.input(Input::Start))[0];
    assert_eq!(kills(&h.input(Input::Kill)), vec![agent]);
    h.killed(agent);
    assert!(h.core.done());
}
