//! The watchdog from Node: a worker that sends `{action: 'clutch:subscribe'}` with plain
//! `process.send` gets `cluster-members` (fixtures/node_subscriber.js).
mod common;
use clutch::Master;
use common::*;
use std::time::Duration;

#[tokio::test]
async fn a_plain_node_worker_gets_cluster_members() {
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "this test needs `node` on PATH: {node:?}"
    );
    let script = format!("{}/fixtures/node_subscriber.js", env!("CARGO_MANIFEST_DIR"));
    let builder = Master::builder()
        .workers(1)
        .app(["node".to_string(), script])
        .ready_timeout(Duration::from_secs(20));
    let mut m = start_ready(builder).await;
    let pid = live_app_pids(&m)[0];
    let w = expect(
        &mut m,
        "cluster-members at the Node worker",
        DEADLINE,
        |x| x.action == "watchdog" && x.data["got"]["action"] == "cluster-members",
    )
    .await;
    assert_eq!(w.data["pid"], pid);
    assert_eq!(w.data["got"]["from"], "master");
    let members = w.data["got"]["data"].as_array().expect("a list of members");
    let me = members
        .iter()
        .find(|x| x["pid"] == pid)
        .unwrap_or_else(|| panic!("itself among the members: {members:?}"));
    assert_eq!(me["id"], 1);
    assert_eq!(me["role"], "app");
    assert!(me["state"] == "starting" || me["state"] == "ready", "{me}");
}
