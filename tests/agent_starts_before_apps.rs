mod common;
use clutch::Role;
use common::*;
use serde_json::json;

/// The agent is held before saying ready (`wait-ready`); while it is live and provably
/// reading its channel, no app worker may exist. Once it says ready, the apps start.
#[tokio::test]
async fn no_app_worker_is_spawned_before_the_agent_is_ready() {
    let mut m = cluster(3, Some(&["wait-ready"]), &[]).start().unwrap();
    assert!(
        wait_until_async(DEADLINE, || live_pid(&m, Role::Agent, 0).is_some()).await,
        "no agent within {DEADLINE:?}"
    );
    let agent = live_pid(&m, Role::Agent, 0).unwrap();
    ping(&mut m, To::Agent, agent, "before-ready").await;
    let early: Vec<_> = m
        .workers()
        .into_iter()
        .filter(|w| w.role == Role::App)
        .collect();
    assert!(
        early.is_empty(),
        "app workers before the agent was ready: {early:?}"
    );
    assert!(
        !m.workers()[0].ready,
        "the agent counts as ready before it said so"
    );

    m.send(&order(To::Agent, "do:ready", json!(null)));
    let info = tokio::time::timeout(DEADLINE, m.ready())
        .await
        .expect("ready in time")
        .unwrap();
    assert_eq!(info.workers, 3);
    let apps = live_app_pids(&m);
    assert_eq!(apps.len(), 3, "{:?}", m.workers());
    assert!(m.workers().iter().all(|w| w.ready), "{:?}", m.workers());
    m.shutdown().await.unwrap();
}
