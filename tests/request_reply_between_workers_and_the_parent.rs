//! Request/reply: a request (`requestId`) from an app worker or from the parent reaches its
//! receiver, whose answer (`replyTo`) comes back to the asker alone, with the asker's id.
mod common;
use clutch::{Endpoint, Message};
use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn worker_to_worker_and_parent_to_worker() {
    let m = cluster(2, Some(&["reply-to-requests"]), &["reply-to-requests"]);
    let mut m = start_ready(m).await;
    let agent = live_pid(&m, clutch::Role::Agent, 0).unwrap();
    let apps = live_app_pids(&m);

    // The parent (the Master handle) asks the agent, then app worker 2 by pid.
    let reply = m
        .request(
            Message::new("q", json!({"n": 1})).to(Endpoint::Agent),
            DEADLINE,
        )
        .await
        .expect("the agent answers");
    assert_eq!(reply.data, json!({"pid": agent, "echo": {"n": 1}}));
    assert_eq!(reply.from, Some(Endpoint::Agent));
    let reply = m
        .request(Message::new("q", json!(2)).to_pid(apps[1]), DEADLINE)
        .await
        .expect("app worker 2 answers");
    assert_eq!(reply.data["pid"], apps[1]);

    // App worker 1 asks app worker 2 (by pid, no `to`) and the agent.
    for (target, msg) in [
        (
            apps[1],
            json!({"action": "q", "receiverPid": apps[1], "data": "w2w"}),
        ),
        (agent, json!({"action": "q", "to": "agent", "data": "w2a"})),
    ] {
        m.send(&order(
            To::App(apps[0]),
            "do:request",
            json!({"msg": msg, "timeout_ms": 10_000}),
        ));
        let r = expect(&mut m, "request-result", DEADLINE, |x| {
            x.action == "request-result"
        })
        .await;
        assert_eq!(r.data["reply"]["data"]["pid"], target, "{}", r.data);
        assert_eq!(r.data["reply"]["data"]["echo"], msg["data"]);
    }

    // Several in flight at once from the parent, each answered to its own future.
    let ask = |i: u64, to: u32| {
        let m = &m;
        async move {
            let r = m
                .request(
                    Message::new("q", json!(i)).to_pid(to),
                    Duration::from_secs(20),
                )
                .await
                .expect("answered");
            assert_eq!(r.data["echo"], i);
            assert_eq!(r.data["pid"], to);
        }
    };
    tokio::join!(
        ask(1, apps[0]),
        ask(2, apps[1]),
        ask(3, apps[0]),
        ask(4, apps[1])
    );
}
