//! egg's `messenger.sendTo(pid)` from an app worker: `receiverPid` and no `to` goes to the
//! process with that pid, not to the app worker's default route (the agent).
mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn an_app_worker_reaches_another_by_pid() {
    let (mut m, agent, apps) = ready_cluster(2).await;
    let (a, b) = (apps[0], apps[1]);
    have_send(
        &m,
        To::App(a),
        json!({"action": "hello", "receiverPid": b, "data": 1}),
    );
    let seen = collect_until(&mut m, "hello at the other app worker", DEADLINE, |seen| {
        seen.iter().any(|x| got_by(x, b, "hello"))
    })
    .await;
    // Then something the agent does get, to be sure it had no `hello` before it.
    have_send(
        &m,
        To::App(a),
        json!({"action": "marker", "receiverPid": agent}),
    );
    let more = collect_until(&mut m, "marker at the agent", DEADLINE, |seen| {
        seen.iter().any(|x| got_by(x, agent, "marker"))
    })
    .await;
    let all: Vec<_> = seen.iter().chain(&more).collect();
    assert!(
        !all.iter().any(|x| got_by(x, agent, "hello")),
        "{}",
        summary(&seen)
    );
    assert!(!all.iter().any(|x| got_by(x, a, "hello")));
    let hello = all.iter().find(|x| got_by(x, b, "hello")).unwrap();
    assert_eq!(got(hello).unwrap().3["from"], "app");
}
