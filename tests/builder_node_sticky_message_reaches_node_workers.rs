//! `MasterBuilder::node_sticky_message` does what `--node-sticky-message` does: a Node
//! worker gets each handed-over socket with that string as its message (egg-cluster's
//! `sticky-session:connection`).

mod common;
use common::net::*;
use common::*;
use serde_json::Value;

#[tokio::test]
async fn builder_node_sticky_message_reaches_node_workers() {
    assert!(
        have("node"),
        "this test needs `node` on PATH (Node 12 or later)"
    );
    let mut m = clutch::Master::builder()
        .workers(1)
        .app(["node".to_string(), fixture_file("node_sticky_worker.js")])
        .host("127.0.0.1")
        .port(0)
        .sticky()
        .node_sticky_message("sticky-session:connection")
        .ready_timeout(DEADLINE)
        .start()
        .unwrap();
    let info = tokio::time::timeout(DEADLINE, m.ready())
        .await
        .expect("ready in time")
        .unwrap();
    let port = info.port.expect("a port");
    let response = tokio::task::spawn_blocking(move || get_from(source(2), port, "/"))
        .await
        .unwrap()
        .expect("a response");
    let body: Value = serde_json::from_str(response.body.trim()).unwrap();
    assert_eq!(body["message"], "sticky-session:connection", "{body}");
    m.shutdown().await.unwrap();
}
