//! Roles are checked per command on the server: a viewer sees the cluster but a restart is
//! 403 (and audit-logged as refused); an operator's goes through the control plane.

mod common;
mod console_support;
mod http_support;
use common::*;
use console_support::*;
use serde_json::json;

#[test]
fn a_viewer_gets_403_and_an_operator_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(&dir, &[("vic", "viewer"), ("ann", "operator")]);
    let (c, port) = start_console(1, &users, &[]);
    let viewer = login(port, "vic");
    let before = pid_of(&viewer.state(port), 1).expect("slot 1 is ready");
    let r = request(
        port,
        "GET",
        "/api/session",
        std::slice::from_ref(&viewer.cookie),
        "",
    );
    assert_eq!(r.json()["commands"], json!([]), "{r:?}");

    let r = viewer.command(port, "restart", json!({"target": "1"}), &[]);
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("operator"), "{r:?}");
    assert!(
        c.stderr
            .wait_for_line(DEADLINE, |l| l
                .contains("audit: web user vic restart: refused"))
            .is_some(),
        "{}",
        c.stderr.text()
    );
    assert_eq!(pid_of(&viewer.state(port), 1), Some(before));

    let operator = login(port, "ann");
    let r = operator.command(port, "kill", json!({"target": "1"}), &[]);
    assert_eq!(r.status, 400, "kill is not a console command: {r:?}");
    let r = operator.command(port, "restart", json!({"target": "1"}), &[]);
    assert_eq!(r.status, 200, "{r:?}");
    let after = pid_of(&operator.state(port), 1).expect("slot 1 is ready again");
    assert_ne!(after, before);
    assert!(
        c.stderr
            .wait_for_line(DEADLINE, |l| l
                .contains("audit: web user ann restart 1: done"))
            .is_some(),
        "{}",
        c.stderr.text()
    );
    net::stop_cleanly(c);
}
