//! How `clutch start` stops on signals: apps before the agent, SIGKILL after the kill
//! timeout (grandchildren too), at once on a second SIGINT, and telling the parent of
//! every worker's death.

mod common;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// A kill timeout no test reaches: a stop that waits for it fails the test.
const LONG_KILL_TIMEOUT: &str = "120000";
/// Generous for a loaded machine, and still far below [`LONG_KILL_TIMEOUT`].
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// Where the first message satisfying `pred` is in `msgs`.
fn position(msgs: &[Value], pred: impl Fn(&Value) -> bool) -> Option<usize> {
    msgs.iter().position(pred)
}

#[test]
fn sigterm_stops_apps_before_the_agent_and_exits_promptly() {
    let mut c = Clutch::spawn_with_parent(clutch_start_fixtures(
        "term-exit:0",
        Some("term-exit:0"),
        &["--kill-timeout", LONG_KILL_TIMEOUT],
    ));
    c.expect_ready(DEADLINE);
    c.expect_started(3, DEADLINE);
    let sent = Instant::now();
    c.signal(libc::SIGTERM);
    let status = c.wait_exit(EXIT_DEADLINE);
    let took = sent.elapsed();
    c.wait_closed(DEADLINE);
    let msgs = c.seen.clone();
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "after {took:?}; stderr:\n{}",
        c.stderr.text()
    );

    let terminating = |role: &'static str, id: u64| {
        move |m: &Value| {
            m["action"] == "terminating" && m["data"]["role"] == role && m["data"]["id"] == id
        }
    };
    let app_died =
        |id: u64| move |m: &Value| m["action"] == "app-worker-died" && m["data"]["id"] == id;
    let agent_first_news = position(&msgs, |m| {
        terminating("agent", 0)(m) || m["action"] == "agent-worker-died"
    })
    .unwrap_or_else(|| {
        panic!(
            "no news of the agent stopping; seen: {:?}",
            c.seen_actions()
        )
    });
    for id in [1, 2] {
        assert!(
            position(&msgs, terminating("app", id)).is_some(),
            "app worker {id} got no SIGTERM; seen: {:?}",
            c.seen_actions()
        );
        let app_first_news = position(&msgs, |m| terminating("app", id)(m) || app_died(id)(m))
            .expect("checked above");
        assert!(
            app_first_news < agent_first_news,
            "the agent stopped before app worker {id}; seen: {:?}",
            c.seen_actions()
        );
    }
    assert!(
        position(&msgs, terminating("agent", 0)).is_some(),
        "the agent got no SIGTERM; seen: {:?}",
        c.seen_actions()
    );
}

#[test]
fn worker_ignoring_sigterm_and_its_grandchild_are_killed_after_the_timeout() {
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "-w",
        "1",
        "--no-agent",
        "--kill-timeout",
        "500",
        "--",
        fixture(),
        "ignore-term",
        "grandchild",
    ]));
    c.expect_ready(DEADLINE);
    let started = c.expect_started(1, DEADLINE);
    let pids = started_pids(&started);
    assert_eq!(pids.len(), 2, "worker and grandchild: {started:?}");
    assert!(pids.iter().all(|&p| alive(p)), "{pids:?}");
    let sent = Instant::now();
    c.signal(libc::SIGTERM);
    let status = c.wait_exit(EXIT_DEADLINE);
    let took = sent.elapsed();
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "stderr:\n{}",
        c.stderr.text()
    );
    assert!(
        took >= Duration::from_millis(500),
        "exited {took:?} after SIGTERM, before the kill timeout"
    );
    let gone = wait_until(DEADLINE, || pids.iter().all(|&p| !alive(p)));
    assert!(
        gone,
        "still alive: {:?}",
        pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
    );
}

#[test]
fn second_sigint_kills_at_once() {
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "-w",
        "2",
        "--no-agent",
        "--kill-timeout",
        LONG_KILL_TIMEOUT,
        "--",
        fixture(),
        "ignore-term",
    ]));
    c.expect_ready(DEADLINE);
    let pids = started_pids(&c.expect_started(2, DEADLINE));
    c.signal(libc::SIGINT);
    // The second SIGINT must come after the first was handled, or the two are one.
    let stopping = c
        .stderr
        .wait_for_line(DEADLINE, |l| l.contains("SIGINT received"));
    assert!(
        stopping.is_some(),
        "the first SIGINT was not handled; stderr:\n{}",
        c.stderr.text()
    );
    let sent = Instant::now();
    c.signal(libc::SIGINT);
    let status = c.wait_exit(EXIT_DEADLINE);
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "{:?} after the second SIGINT; stderr:\n{}",
        sent.elapsed(),
        c.stderr.text()
    );
    let gone = wait_until(DEADLINE, || pids.iter().all(|&p| !alive(p)));
    assert!(
        gone,
        "still alive: {:?}",
        pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
    );
}

#[test]
fn sigterm_reports_every_worker_death_to_the_parent() {
    let mut c = Clutch::spawn_with_parent(clutch_start_fixtures(
        "term-exit:0",
        Some("term-exit:0"),
        &[],
    ));
    c.expect_ready(DEADLINE);
    let pids: Vec<u64> = c
        .expect_started(3, DEADLINE)
        .iter()
        .map(|s| s["pid"].as_u64().unwrap())
        .collect();
    c.signal(libc::SIGTERM);
    let status = c.wait_exit(DEADLINE);
    c.wait_closed(DEADLINE);
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "stderr:\n{}",
        c.stderr.text()
    );
    for pid in pids {
        let died = c.seen.iter().any(|m| {
            matches!(
                m["action"].as_str(),
                Some("app-worker-died" | "agent-worker-died")
            ) && m["data"]["pid"] == pid
                && m["data"]["code"] == 0
        });
        assert!(
            died,
            "no death report for pid {pid}; seen: {:?}",
            c.seen_actions()
        );
    }
}
