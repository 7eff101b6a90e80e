//! A Node worker that knows nothing of clutch but `process.send` and
//! `process.on('message')` (fixtures/node_worker.js) works as agent and as app worker.

mod common;
use common::*;
use serde_json::{Value, json};

fn node_worker() -> String {
    format!("{}/fixtures/node_worker.js", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn node_child_using_plain_process_send_works() {
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "this test needs `node` on PATH (Node 12 or later): {node:?}"
    );
    let script = node_worker();
    let agent = format!("node {script}");
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "-w", "2", "--agent", &agent, "--", "node", &script,
    ]));
    c.expect_ready(DEADLINE);

    c.send(&json!({"action": "ping", "to": "app", "data": {"n": 1}}));
    c.send(&json!({"action": "ping", "to": "agent", "data": {"n": 2}}));
    let pong =
        |role: &'static str| move |m: &Value| m["action"] == "pong" && m["data"]["role"] == role;
    let apps = [
        c.expect("a pong from an app worker", DEADLINE, pong("app")),
        c.expect("a pong from the other app worker", DEADLINE, pong("app")),
    ];
    let agent_pong = c.expect("a pong from the agent", DEADLINE, pong("agent"));

    let children = children_of(c.pid());
    let mut ids = Vec::new();
    for p in &apps {
        assert_eq!(p["from"], "app", "the master stamps `from`: {p}");
        assert_eq!(p["data"]["got"]["action"], "ping", "{p}");
        assert_eq!(
            p["data"]["got"]["from"], "parent",
            "the master stamps `from`: {p}"
        );
        assert_eq!(p["data"]["got"]["data"], json!({"n": 1}), "{p}");
        let pid = p["data"]["pid"].as_u64().unwrap() as u32;
        assert!(
            children.contains(&pid),
            "pid {pid} is not a worker of clutch ({children:?})"
        );
        ids.push(p["data"]["id"].as_u64().unwrap());
    }
    ids.sort();
    assert_eq!(ids, [1, 2], "one pong from each app worker: {apps:?}");

    assert_eq!(agent_pong["from"], "agent", "{agent_pong}");
    assert_eq!(agent_pong["data"]["id"], 0, "{agent_pong}");
    assert_eq!(agent_pong["data"]["got"]["from"], "parent", "{agent_pong}");
    assert_eq!(
        agent_pong["data"]["got"]["data"],
        json!({"n": 2}),
        "{agent_pong}"
    );
    let pid = agent_pong["data"]["pid"].as_u64().unwrap() as u32;
    assert!(
        children.contains(&pid),
        "pid {pid} is not a worker of clutch ({children:?})"
    );

    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
