//! A state-changing POST needs the session's CSRF token, and a foreign Origin is refused
//! even with it; a JSON body is required (a cross-site form cannot send one).

mod common;
mod console_support;
mod http_support;
use common::*;
use console_support::*;
use serde_json::json;

#[test]
fn no_token_a_wrong_token_or_a_foreign_origin_is_403() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(&dir, &[("ann", "admin")]);
    let (c, port) = start_console(1, &users, &[]);
    let me = login(port, "ann");
    let pid = pid_of(&me.state(port), 1).unwrap();
    let body = r#"{"cmd":"restart","args":{"target":"1"}}"#;
    let json_type = "Content-Type: application/json".to_string();

    let r = request(
        port,
        "POST",
        "/api/command",
        &[me.cookie.clone(), json_type.clone()],
        body,
    );
    assert_eq!(r.status, 403, "no token: {r:?}");
    assert!(r.body.contains("X-CSRF-Token"), "{r:?}");

    let wrong = format!("X-CSRF-Token: {}", "0".repeat(me.csrf.len()));
    let r = request(
        port,
        "POST",
        "/api/command",
        &[me.cookie.clone(), json_type.clone(), wrong],
        body,
    );
    assert_eq!(r.status, 403, "wrong token: {r:?}");

    let r = me.command(
        port,
        "restart",
        json!({"target": "1"}),
        &["Origin: https://evil.example".into()],
    );
    assert_eq!(r.status, 403, "foreign origin: {r:?}");
    assert!(r.body.contains("origin"), "{r:?}");

    let r = me.command(
        port,
        "restart",
        json!({"target": "1"}),
        &["Sec-Fetch-Site: cross-site".into()],
    );
    assert_eq!(r.status, 403, "cross-site fetch: {r:?}");

    let r = request(
        port,
        "POST",
        "/login",
        &[json_type.clone(), "Origin: https://evil.example".into()],
        &json!({"user": "ann", "password": PASSWORD}).to_string(),
    );
    assert_eq!(r.status, 403, "a login from another site: {r:?}");

    let form = [
        me.cookie.clone(),
        format!("X-CSRF-Token: {}", me.csrf),
        "Content-Type: application/x-www-form-urlencoded".into(),
    ];
    let r = request(port, "POST", "/api/command", &form, "cmd=restart");
    assert_eq!(r.status, 415, "{r:?}");
    assert_eq!(
        pid_of(&me.state(port), 1),
        Some(pid),
        "nothing was restarted"
    );

    let same = format!("Origin: http://127.0.0.1:{port}");
    let r = me.command(port, "restart", json!({"target": "1"}), &[same]);
    assert_eq!(r.status, 200, "{r:?}");
    net::stop_cleanly(c);
}
