//! The Messenger routes by `to` and `receiverPid` between the parent, the master, the agent
//! and the app workers.
mod common;
use clutch::Endpoint;
use common::*;
use serde_json::json;

#[tokio::test]
async fn messenger_app_to_agent() {
    let (mut m, agent, apps) = ready_cluster(2).await;
    have_send(
        &m,
        To::App(apps[1]),
        json!({"action": "hello", "data": {"n": 1}, "to": "agent"}),
    );
    let got_it = expect(&mut m, "the agent's got hello", DEADLINE, |m| {
        got_by(m, agent, "hello")
    })
    .await;
    let msg = &got_it.data["msg"];
    assert_eq!(msg["from"], "app", "{msg}");
    assert_eq!(msg["data"], json!({"n": 1}), "{msg}");
    m.shutdown().await.unwrap();
}

#[tokio::test]
async fn messenger_agent_to_app() {
    let (mut m, agent, apps) = ready_cluster(3).await;
    have_send(
        &m,
        To::Agent,
        json!({"action": "hello", "data": "all", "to": "app"}),
    );
    let seen = collect_until(&mut m, "every app worker's got hello", DEADLINE, |seen| {
        apps.iter()
            .all(|&pid| seen.iter().any(|m| got_by(m, pid, "hello")))
    })
    .await;
    for m in seen
        .iter()
        .filter(|m| got(m).is_some_and(|(_, _, _, msg)| msg["action"] == "hello"))
    {
        let (role, _, pid, msg) = got(m).unwrap();
        assert_eq!(role, "app", "only app workers get it: {m:?}");
        assert_ne!(pid, u64::from(agent));
        assert_eq!(msg["from"], "agent", "{msg}");
        assert_eq!(msg["data"], "all", "{msg}");
    }
    m.shutdown().await.unwrap();
}

#[tokio::test]
async fn messenger_app_to_app_by_receiver_pid() {
    let (mut m, _agent, apps) = ready_cluster(3).await;
    let target = apps[2];
    have_send(
        &m,
        To::App(apps[0]),
        json!({"action": "hello", "to": "app", "receiverPid": target}),
    );
    // Then a broadcast from the same sender: each channel is ordered, so by the time every
    // app worker reported the broadcast, any of them that got `hello` has reported it too.
    have_send(
        &m,
        To::App(apps[0]),
        json!({"action": "after", "to": "app"}),
    );
    let seen = collect_until(&mut m, "every app worker's got after", DEADLINE, |seen| {
        apps.iter()
            .all(|&pid| seen.iter().any(|m| got_by(m, pid, "after")))
    })
    .await;
    let receivers: Vec<u64> = seen
        .iter()
        .filter_map(got)
        .filter(|(_, _, _, msg)| msg["action"] == "hello")
        .map(|(_, _, pid, _)| pid)
        .collect();
    assert_eq!(receivers, vec![u64::from(target)], "{}", summary(&seen));
    m.shutdown().await.unwrap();
}

#[tokio::test]
async fn messenger_parent_to_worker_and_back() {
    let (mut m, _agent, apps) = ready_cluster(2).await;
    m.send(&order(To::App(apps[0]), "hello", json!({"n": 7})));
    let got_it = expect(&mut m, "the app's got hello", DEADLINE, |m| {
        got(m).is_some_and(|(_, _, _, msg)| msg["action"] == "hello")
    })
    .await;
    let (role, _, pid, msg) = got(&got_it).unwrap();
    assert_eq!(
        (role, pid),
        ("app", u64::from(apps[0])),
        "only the addressed worker: {got_it:?}"
    );
    assert_eq!(msg["from"], "parent", "{msg}");
    assert_eq!(msg["data"], json!({"n": 7}), "{msg}");

    have_send(
        &m,
        To::App(apps[0]),
        json!({"action": "answer", "data": 42, "to": "parent"}),
    );
    let answer = expect(&mut m, "the answer", DEADLINE, |m| m.action == "answer").await;
    assert_eq!(answer.from, Some(Endpoint::App));
    assert_eq!(answer.data, json!(42));
    m.shutdown().await.unwrap();
}

#[tokio::test]
async fn messenger_to_master() {
    let (mut m, _agent, apps) = ready_cluster(1).await;
    have_send(
        &m,
        To::App(apps[0]),
        json!({"action": "for-the-master", "data": [1, 2], "to": "master"}),
    );
    let msg = expect(&mut m, "the message to the master", DEADLINE, |m| {
        m.action == "for-the-master"
    })
    .await;
    assert_eq!(msg.from, Some(Endpoint::App));
    assert_eq!(msg.to, Some(Endpoint::Master));
    assert_eq!(msg.data, json!([1, 2]));
    m.shutdown().await.unwrap();
}

#[tokio::test]
async fn receiver_pid_of_no_live_worker_is_dropped_quietly() {
    let (mut m, agent, apps) = ready_cluster(2).await;
    // A live pid, but no worker's.
    let nobody = std::process::id();
    m.send(&order(To::App(nobody), "lost", json!("from the parent")));
    have_send(
        &m,
        To::App(apps[0]),
        json!({"action": "lost", "to": "app", "receiverPid": nobody}),
    );
    // Broadcasts after them, from both senders: once every app worker reported both, any
    // that had got a `lost` would have reported it first.
    m.send(&clutch::Message::new("after", json!(null)).to(Endpoint::App));
    have_send(
        &m,
        To::App(apps[0]),
        json!({"action": "after", "to": "app"}),
    );
    let seen = collect_until(
        &mut m,
        "every app worker's two got after",
        DEADLINE,
        |seen| {
            apps.iter()
                .all(|&pid| seen.iter().filter(|m| got_by(m, pid, "after")).count() == 2)
        },
    )
    .await;
    let lost: Vec<_> = seen
        .iter()
        .filter(|m| got(m).is_some_and(|(_, _, _, msg)| msg["action"] == "lost"))
        .collect();
    assert!(
        lost.is_empty(),
        "a message to pid {nobody} was delivered: {lost:?}"
    );

    // The cluster keeps routing: both ways between an app worker and the agent.
    have_send(&m, To::App(apps[1]), json!({"action": "up", "to": "agent"}));
    expect(&mut m, "the agent's got up", DEADLINE, |m| {
        got_by(m, agent, "up")
    })
    .await;
    have_send(
        &m,
        To::Agent,
        json!({"action": "down", "to": "app", "receiverPid": apps[1]}),
    );
    expect(&mut m, "the app's got down", DEADLINE, |m| {
        got_by(m, apps[1], "down")
    })
    .await;
    assert_eq!(live_app_pids(&m), apps, "no worker was replaced");
    m.shutdown().await.unwrap();
}
