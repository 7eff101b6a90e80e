//! A Node child may send the master a handle (`process.send(msg, server)`); the master
//! acknowledges it as Node expects, or Node would hold every later message forever.
mod common;
use common::*;
use serde_json::Value;

#[test]
fn node_handle_to_the_master_is_acknowledged() {
    let script = format!(
        "{}/fixtures/node_sends_a_handle.js",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "-w",
        "1",
        "--no-agent",
        "--",
        "node",
        &script,
    ]));
    c.expect_ready(DEADLINE);
    let after = c.expect(
        "the message Node sent after its handle",
        DEADLINE,
        |m: &Value| m["action"] == "after-the-handle",
    );
    assert_eq!(after["from"], "app", "{after}");
}
