//! Start errors of the console, before any worker starts, exit 2 naming the thing: a
//! non-loopback address without TLS (naming both TLS flags), a users file with a
//! plaintext or malformed hash (naming the user).

mod common;
mod console_support;
mod http_support;
use common::*;

fn refused(args: &[&str]) -> String {
    let mut all = vec!["-w", "1", "--no-agent"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--", fixture()]);
    let mut c = Clutch::spawn(clutch_start(&all));
    let status = c.finish(DEADLINE);
    let stderr = c.stderr.text();
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    assert!(!stderr.contains("ready"), "a worker started: {stderr}");
    stderr
}

#[test]
fn a_public_address_without_tls_exits_2_naming_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let users = console_support::users_file(&dir, &[("ann", "admin")]);
    let e = refused(&[
        "--http",
        "0.0.0.0:0",
        "--http-users",
        users.to_str().unwrap(),
    ]);
    assert!(
        e.contains("--http-tls-cert") && e.contains("--http-tls-key"),
        "{e}"
    );
    assert!(e.contains("loopback"), "{e}");
}

#[test]
fn a_plaintext_or_malformed_hash_exits_2_naming_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    for hash in [
        "hunter2",
        "$argon2id$v=19$m=19456,t=2,p=1$short",
        "$2b$12$abcdefghijklmnopqrstuv",
    ] {
        let text = serde_json::json!({"users": [{"name": "ann", "role": "admin", "hash": hash}]});
        std::fs::write(&path, text.to_string()).unwrap();
        let e = refused(&[
            "--http",
            "127.0.0.1:0",
            "--http-users",
            path.to_str().unwrap(),
        ]);
        assert!(
            e.contains("user `ann`") && e.contains("clutch passwd"),
            "{hash}: {e}"
        );
        assert!(!e.contains("hunter2") || hash != "hunter2" || !e.contains("password hunter2"));
    }
}
