//! A flag beats the config file's key, and the settings are checked once, after the flags:
//! what the file alone gets wrong, a flag can fix.

mod common;
use common::*;
use serde_json::{Value, json};
use std::path::PathBuf;

/// A config file holding `json`, in a temp dir that lives as long as the returned guard.
fn config_file(json: &Value) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clutch.json");
    std::fs::write(&path, json.to_string()).unwrap();
    (dir, path)
}

/// Starts a cluster of fixture workers with `config` and `args`, waits for it to be ready,
/// stops it, and returns `cluster-ready`'s data and the roles of the workers that started.
fn ready_with(config: &Value, args: &[&str], workers: usize) -> (Value, Vec<String>) {
    let (_dir, path) = config_file(config);
    let mut all = vec!["--config", path.to_str().unwrap(), "--host", "127.0.0.1"];
    all.extend(args);
    all.extend(["--", fixture()]);
    let mut c = Clutch::spawn_with_parent(clutch_start(&all));
    let info = c.expect_ready(DEADLINE);
    let roles = c
        .expect_started(workers, DEADLINE)
        .iter()
        .map(|s| s["role"].as_str().unwrap().to_string())
        .collect();
    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
    (info, roles)
}

#[test]
fn a_port_flag_completes_a_sticky_config() {
    let (info, _) = ready_with(
        &json!({"sticky": true, "workers": 1, "no-agent": true}),
        &["-p", "0"],
        1,
    );
    assert_eq!(info["sticky"], true, "{info}");
}

#[test]
fn a_workers_flag_fixes_a_config_of_zero_workers() {
    let (info, _) = ready_with(&json!({"workers": 0, "no-agent": true}), &["-w", "2"], 2);
    assert_eq!(info["workers"], 2, "{info}");
}

#[test]
fn proxy_protocol_flag_works_with_sticky_from_the_config() {
    let (info, _) = ready_with(
        &json!({"sticky": true, "workers": 1, "no-agent": true}),
        &["-p", "0", "--proxy-protocol"],
        1,
    );
    assert_eq!(info["sticky"], true, "{info}");
}

#[test]
fn an_agent_flag_beats_no_agent_in_the_config() {
    let agent = fixture();
    let (_, roles) = ready_with(
        &json!({"workers": 1, "no-agent": true}),
        &["--agent", agent],
        2,
    );
    assert!(roles.iter().any(|r| r == "agent"), "{roles:?}");
}

#[test]
fn a_no_agent_flag_beats_an_agent_in_the_config() {
    let (_dir, path) = config_file(&json!({"workers": 1, "agent": [fixture()]}));
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "--config",
        path.to_str().unwrap(),
        "--no-agent",
        "--",
        fixture(),
    ]));
    c.expect_ready(DEADLINE);
    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
    let roles: Vec<&Value> = c
        .seen
        .iter()
        .filter(|m| m["action"] == "started")
        .map(|m| &m["data"]["role"])
        .collect();
    assert_eq!(roles, [&json!("app")], "seen: {:?}", c.seen_actions());
}

/// Runs `clutch start ARGS -- fixture` with `config`, expects exit code 2, returns stderr.
fn usage_error(config: &Value, args: &[&str]) -> (String, PathBuf, tempfile::TempDir) {
    let (dir, path) = config_file(config);
    let mut all = vec!["--config", path.to_str().unwrap()];
    all.extend(args);
    all.extend(["--", fixture()]);
    let mut c = Clutch::spawn(clutch_start(&all));
    let status = c.finish(DEADLINE);
    let stderr = c.stderr.text();
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    (stderr, path, dir)
}

#[test]
fn a_bad_value_from_the_config_is_named_as_the_files_key() {
    let (stderr, path, _dir) = usage_error(&json!({"workers": 0}), &[]);
    assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
    assert!(
        stderr.contains("key `workers`: must be at least 1"),
        "{stderr}"
    );
}

#[test]
fn a_bad_value_from_a_flag_is_named_as_the_flag() {
    let (stderr, path, _dir) = usage_error(&json!({"workers": 2}), &["-w", "0"]);
    assert!(stderr.contains("--workers: must be at least 1"), "{stderr}");
    assert!(!stderr.contains(path.to_str().unwrap()), "{stderr}");
}

#[test]
fn proxy_protocol_without_sticky_is_named_by_validation() {
    let (stderr, _, _dir) = usage_error(&json!({}), &["--proxy-protocol"]);
    assert!(
        stderr.contains("--proxy-protocol: only works with --sticky"),
        "{stderr}"
    );
}
