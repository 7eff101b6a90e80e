//! Recycling: `--max-age` arms a timer per worker; a due worker (or one the run loop says
//! is silent or too big) is replaced as by an operator's restart, never during a reload.

use super::*;

fn aged(workers: usize, age: Duration) -> Harness {
    let settings = Settings {
        workers,
        max_age: Some(age),
        ..Settings::default()
    };
    Harness::with(settings, false)
}

fn max_age_timers(fx: &[Effect]) -> Vec<(Duration, WorkerId)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Arm {
                after,
                timer: Timer::MaxAge(w),
            } => Some((*after, *w)),
            _ => None,
        })
        .collect()
}

#[test]
fn every_worker_gets_a_max_age_timer_with_its_own_jitter() {
    let age = Duration::from_secs(100);
    let mut h = aged(4, age);
    let fx = h.input(Input::Start);
    let timers = max_age_timers(&fx);
    assert_eq!(timers.len(), 4, "{fx:?}");
    for (after, _) in &timers {
        assert!(*after >= age && *after <= age + age / 5, "{after:?}");
    }
    let distinct: std::collections::BTreeSet<_> = timers.iter().map(|(a, _)| *a).collect();
    assert!(
        distinct.len() > 1,
        "workers would all recycle at once: {timers:?}"
    );
}

#[test]
fn a_worker_past_max_age_is_replaced_new_one_first() {
    let mut h = aged(2, Duration::from_secs(100));
    h.start_ready();
    let old = h.current(1);
    let fx = h.input(Input::Timer(Timer::MaxAge(old)));
    let s = spawns(&fx);
    assert_eq!(s.len(), 1);
    assert!(
        stops(&fx).is_empty(),
        "the old one serves until the new one is ready"
    );
    let fx = h.ready(s[0].0);
    assert_eq!(stops(&fx), vec![old]);
    assert_eq!(h.core.worker(old).unwrap().intent, Some(Intent::Replace));
}

#[test]
fn recycling_waits_while_a_reload_runs() {
    let mut h = aged(2, Duration::from_secs(100));
    h.start_ready();
    let w2 = h.current(2);
    h.command(Command::Reload {
        batch: 1,
        surge: None,
    });
    let fx = h.input(Input::Timer(Timer::MaxAge(w2)));
    assert!(spawns(&fx).is_empty());
    assert_eq!(max_age_timers(&fx).len(), 1, "looked at again later");
    let fx = h.input(Input::Recycle {
        worker: w2,
        reason: "no heartbeat".into(),
    });
    assert!(spawns(&fx).is_empty());
}

#[test]
fn a_stale_recycle_of_a_gone_or_stopping_worker_does_nothing() {
    let mut h = Harness::new(1, false);
    h.start_ready();
    let w = h.current(1);
    h.command(Command::Stop { slot: 1 });
    let fx = h.input(Input::Recycle {
        worker: w,
        reason: "too big".into(),
    });
    assert!(spawns(&fx).is_empty());
}
