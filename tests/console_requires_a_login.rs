//! The console and its API need a login; /metrics, /livez and /readyz stay open; without
//! --http-users the console is off and `/` says so.

mod common;
mod console_support;
mod http_support;
use common::*;
use console_support::*;

#[test]
fn without_a_session_the_page_redirects_and_the_api_is_401() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(&dir, &[("ann", "admin")]);
    let (c, port) = start_console(1, &users, &[]);
    let r = request(port, "GET", "/", &[], "");
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.header("location").as_deref(), Some("/login"), "{r:?}");
    for path in ["/api/state", "/api/session", "/api/events"] {
        let r = request(port, "GET", path, &[], "");
        assert_eq!(r.status, 401, "{path}: {r:?}");
    }
    let r = request(
        port,
        "GET",
        "/api/state",
        &["Cookie: clutch_session=00ff".into()],
        "",
    );
    assert_eq!(r.status, 401, "a made-up token: {r:?}");
    let r = request(
        port,
        "POST",
        "/api/command",
        &["Content-Type: application/json".into()],
        r#"{"cmd":"restart","args":{"target":"1"}}"#,
    );
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(request(port, "GET", "/login", &[], "").status, 200);
    assert_eq!(request(port, "GET", "/livez", &[], "").status, 200);
    assert_eq!(request(port, "GET", "/metrics", &[], "").status, 200);

    let me = login(port, "ann");
    assert!(me.state(port)["workers"].as_array().unwrap().len() == 1);
    let r = request(port, "GET", "/", std::slice::from_ref(&me.cookie), "");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("/console/console.js"), "{r:?}");
    assert!(r.header("content-security-policy").is_some(), "{r:?}");
    net::stop_cleanly(c);
}

#[test]
fn without_a_users_file_the_console_is_off() {
    let (c, port) = http_support::start_with_http(1, &[], &[]);
    let r = request(port, "GET", "/", &[], "");
    assert_eq!(r.status, 404, "{r:?}");
    assert!(r.body.contains("--http-users"), "{r:?}");
    assert_eq!(try_login(port, "ann", PASSWORD).status, 404);
    net::stop_cleanly(c);
}
