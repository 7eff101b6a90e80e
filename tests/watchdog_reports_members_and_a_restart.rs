//! The watchdog: a subscribed worker gets `cluster-members` at once, then, for a slot's
//! restart, `member-added` (the new worker), `member-changed` (it is ready; the old one
//! stops) and `member-removed` (the old one exited), in that order per worker.
mod common;
use clutch::Message;
use common::*;
use serde_json::{Value, json};

/// A watchdog message the agent (pid `agent`) reported getting: (action, data).
fn watchdog(m: &Message, agent: u32) -> Option<(String, Value)> {
    let (_, _, p, msg) = got(m)?;
    let action = msg["action"].as_str()?;
    (p == u64::from(agent) && (action == "cluster-members" || action.starts_with("member-")))
        .then(|| (action.to_string(), msg["data"].clone()))
}

fn position(
    seen: &[(String, Value)],
    action: &str,
    pid: u32,
    state: Option<&str>,
) -> Option<usize> {
    seen.iter()
        .position(|(a, d)| a == action && d["pid"] == pid && state.is_none_or(|s| d["state"] == s))
}

#[tokio::test]
async fn snapshot_then_the_events_of_a_restart() {
    let m = cluster(2, Some(&["subscribe"]), &[]);
    let mut m = start_ready(m).await;
    let agent = live_pid(&m, clutch::Role::Agent, 0).unwrap();
    let apps = live_app_pids(&m);
    let mut events = Vec::new();
    // The snapshot, then whatever brings both app workers to `ready`.
    let end = tokio::time::Instant::now() + DEADLINE;
    let members = |events: &[(String, Value)]| {
        let mut state = std::collections::HashMap::new();
        for (a, d) in events {
            match a.as_str() {
                "cluster-members" => {
                    for x in d.as_array().unwrap() {
                        state.insert(x["pid"].as_u64().unwrap(), x["state"].clone());
                    }
                }
                "member-removed" => {
                    state.remove(&d["pid"].as_u64().unwrap());
                }
                _ => {
                    state.insert(d["pid"].as_u64().unwrap(), d["state"].clone());
                }
            }
        }
        state
    };
    while !apps
        .iter()
        .all(|p| members(&events).get(&u64::from(*p)) == Some(&json!("ready")))
    {
        let x = tokio::time::timeout_at(end, m.recv())
            .await
            .expect("both app workers ready in the watchdog's view")
            .unwrap();
        events.extend(watchdog(&x, agent));
    }
    let (first, snapshot) = &events[0];
    assert_eq!(first, "cluster-members");
    let me = snapshot
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["pid"] == agent)
        .expect("the agent among the members");
    assert_eq!(
        me,
        &json!({"id": 0, "role": "agent", "pid": agent, "state": "ready"})
    );

    let old = apps[0];
    m.restart(1).await.expect("the restart is taken");
    let mut seen = Vec::new();
    let end = tokio::time::Instant::now() + DEADLINE;
    while position(&seen, "member-removed", old, None).is_none() {
        let x = tokio::time::timeout_at(end, m.recv())
            .await
            .unwrap_or_else(|_| panic!("no member-removed for the old worker: {seen:?}"))
            .unwrap();
        seen.extend(watchdog(&x, agent));
    }
    let added = seen
        .iter()
        .find(|(a, d)| a == "member-added" && d["id"] == 1)
        .unwrap_or_else(|| panic!("no member-added for slot 1: {seen:?}"));
    let new = added.1["pid"].as_u64().unwrap() as u32;
    assert_ne!(new, old);
    assert_eq!(added.1["state"], "starting");
    let p = |a, pid, s| {
        position(&seen, a, pid, s).unwrap_or_else(|| panic!("{a} {pid} {s:?}: {seen:?}"))
    };
    assert!(p("member-added", new, None) < p("member-changed", new, Some("ready")));
    assert!(p("member-changed", old, Some("stopping")) < p("member-removed", old, None));
    assert!(p("member-added", new, None) < p("member-removed", old, None));
    // The other app worker and the agent did not change.
    assert!(
        !seen
            .iter()
            .any(|(_, d)| d["pid"] == apps[1] || d["pid"] == agent),
        "{seen:?}"
    );
}
