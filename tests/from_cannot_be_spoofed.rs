//! The master stamps `from` with the endpoint of the channel a message came on, whatever
//! the sender wrote.
mod common;
use clutch::Endpoint;
use common::*;
use serde_json::json;

#[tokio::test]
async fn from_cannot_be_spoofed() {
    let (mut m, agent, apps) = ready_cluster(1).await;
    let app = apps[0];

    have_send(
        &m,
        To::App(app),
        json!({"action": "x", "data": 1, "from": "agent", "to": "agent"}),
    );
    let x = expect(&mut m, "the agent's got x", DEADLINE, |m| {
        got_by(m, agent, "x")
    })
    .await;
    assert_eq!(x.data["msg"]["from"], "app", "{}", x.data);
    assert_eq!(
        x.data["msg"]["data"], 1,
        "the rest of the message is kept: {}",
        x.data
    );

    have_send(
        &m,
        To::Agent,
        json!({"action": "y", "from": "master", "to": "parent"}),
    );
    let y = expect(&mut m, "y from the agent", DEADLINE, |m| m.action == "y").await;
    assert_eq!(y.from, Some(Endpoint::Agent));
    m.shutdown().await.unwrap();
}

#[tokio::test]
async fn message_without_from_gets_the_senders_endpoint() {
    let (mut m, agent, apps) = ready_cluster(1).await;
    let app = apps[0];

    have_send(
        &m,
        To::App(app),
        json!({"action": "x", "data": {"k": "v"}, "to": "agent"}),
    );
    let x = expect(&mut m, "the agent's got x", DEADLINE, |m| {
        got_by(m, agent, "x")
    })
    .await;
    assert_eq!(x.data["msg"]["from"], "app", "{}", x.data);
    assert_eq!(x.data["msg"]["data"], json!({"k": "v"}), "{}", x.data);

    have_send(&m, To::Agent, json!({"action": "y", "to": "app"}));
    let y = expect(&mut m, "the app's got y", DEADLINE, |m| got_by(m, app, "y")).await;
    assert_eq!(y.data["msg"]["from"], "agent", "{}", y.data);
    m.shutdown().await.unwrap();
}
