//! A NUL byte cannot pass into a C string (a worker's name, command or environment): it is
//! a config error (exit 2) naming the key, found before any worker starts.

mod common;
use common::*;
use serde_json::{Value, json};

/// Starts `clutch --config FILE -w 1` with `config` (plus the fixture as the app unless
/// `config` has one, and no agent unless it has one), expects exit code 2 naming the file
/// and `key`.
fn config_error(config: Value, key: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clutch.json");
    let mut config = config;
    let map = config.as_object_mut().unwrap();
    map.entry("app").or_insert(json!([fixture()]));
    if !map.contains_key("agent") {
        map.insert("no-agent".into(), json!(true));
    }
    std::fs::write(&path, config.to_string()).unwrap();
    let mut c = Clutch::spawn(clutch_start(&[
        "--config",
        path.to_str().unwrap(),
        "-w",
        "1",
    ]));
    let status = c.finish(DEADLINE);
    let stderr = c.stderr.text();
    assert_eq!(status.code(), Some(2), "for {config}; stderr:\n{stderr}");
    assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains(&format!("key `{key}`")), "{stderr}");
    assert!(stderr.contains("NUL"), "{stderr}");
    stderr
}

#[test]
fn a_nul_byte_in_the_name_is_named() {
    config_error(json!({"name": "a\u{0}b"}), "name");
}

#[test]
fn a_nul_byte_in_an_env_value_is_named_without_the_value() {
    let stderr = config_error(json!({"env": {"SECRET": "x\u{0}y"}}), "env");
    assert!(
        stderr.contains("SECRET") && !stderr.contains("x\\u0000y"),
        "{stderr}"
    );
}

#[test]
fn a_nul_byte_in_an_env_name_is_named() {
    config_error(json!({"env": {"A\u{0}B": "1"}}), "env");
}

#[test]
fn a_nul_byte_in_the_app_or_agent_command_is_named() {
    config_error(json!({"app": [fixture(), "a\u{0}b"]}), "app");
    config_error(json!({"app": format!("{} 'a\u{0}b'", fixture())}), "app");
    config_error(json!({"agent": ["ag\u{0}ent"]}), "agent");
}
