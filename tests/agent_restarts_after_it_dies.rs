mod common;
use clutch::Role;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// The agent is SIGKILLed once the cluster is ready: the parent hears of it, a new agent
/// starts no sooner than 200 ms later, learns the app pids, and the apps learn its pid and
/// can reach it.
#[tokio::test]
async fn agent_restarts_after_it_dies() {
    let mut m = start_ready(cluster(2, Some(&[]), &[])).await;
    let old = live_pid(&m, Role::Agent, 0).unwrap();
    let apps = live_app_pids(&m);
    let killed = Instant::now();
    kill(old, libc::SIGKILL);

    let mut new = None;
    let seen = collect_until(
        &mut m,
        "a new agent, its cluster-ready, its pid at every app",
        DEADLINE,
        |seen| {
            new = seen
                .iter()
                .filter_map(started_report)
                .find(|s| s.role == Role::Agent && s.pid != old)
                .map(|s| s.pid);
            new.is_some_and(|new| {
                seen.iter().any(|x| got_by(x, new, "cluster-ready"))
                    && apps.iter().all(|&app| {
                        seen.iter().any(|x| {
                            got_by(x, app, "cluster-pids") && x.data["msg"]["data"] == json!([new])
                        })
                    })
            })
        },
    )
    .await;
    let new = new.unwrap();
    let died: Vec<_> = seen
        .iter()
        .filter(|x| x.action == "agent-worker-died")
        .collect();
    assert_eq!(died.len(), 1, "{}", summary(&seen));
    assert_eq!(
        died[0].data,
        json!({"pid": old, "code": null, "signal": "SIGKILL"})
    );
    assert!(
        killed.elapsed() >= Duration::from_millis(200),
        "restarted after {:?}",
        killed.elapsed()
    );
    assert_eq!(live_pid(&m, Role::Agent, 0), Some(new), "{:?}", m.workers());

    let mut sorted = apps.clone();
    sorted.sort_unstable();
    let told: Vec<Vec<u32>> = seen
        .iter()
        .filter(|x| got_by(x, new, "cluster-pids"))
        .map(|x| {
            let mut p: Vec<u32> = serde_json::from_value(x.data["msg"]["data"].clone()).unwrap();
            p.sort_unstable();
            p
        })
        .collect();
    assert_eq!(
        told,
        vec![sorted],
        "the new agent learns the app pids before cluster-ready"
    );

    have_send(&m, To::App(apps[0]), json!({"action": "hi", "to": "agent"}));
    expect(&mut m, "the new agent's got hi", DEADLINE, |x| {
        got_by(x, new, "hi")
    })
    .await;
    assert_eq!(live_app_pids(&m), apps, "the apps were not restarted");
    m.shutdown().await.unwrap();
}
