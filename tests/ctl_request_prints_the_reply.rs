//! `clutch ctl request` sends a request as the parent and prints the worker's reply.

mod common;
use common::ctl;
use serde_json::Value;

#[test]
fn request_prints_the_reply() {
    let c = ctl::start_with_app(2, &[], &["reply-to-requests"]);
    let list = c.ctl_json(&["list", "--json"]);
    let pid = ctl::row(&list, 2)["pid"].as_u64().unwrap();
    let p = pid.to_string();
    let out = c.ctl(&["request", "--to", "app", "--pid", &p, "ping", r#"{"n":7}"#]);
    assert!(
        out.status.success(),
        "stderr: {}\nmaster's stderr:\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.clutch.stderr.text()
    );
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["action"], "ping", "{reply}");
    assert_eq!(
        reply["data"]["pid"], pid,
        "the worker with that pid answered: {reply}"
    );
    assert_eq!(reply["data"]["echo"]["n"], 7, "{reply}");
    assert!(reply["replyTo"].is_number(), "{reply}");
    assert!(reply.get("error").is_none(), "{reply}");
}
