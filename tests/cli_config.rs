//! `--config` files and flag values: mistakes exit 2 naming the key, flag or file; good
//! values are applied, and flags override them.

mod common;
use common::*;
use std::path::PathBuf;

/// A config file holding `json`, in a temp dir that lives as long as the returned guard.
fn config_file(json: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clutch.json");
    std::fs::write(&path, json).unwrap();
    (dir, path)
}

/// Runs `clutch start ARGS -- fixture`, expects exit code 2, and returns stderr.
fn usage_error(args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--", fixture()]);
    let mut c = Clutch::spawn(clutch_start(&all));
    let status = c.finish(DEADLINE);
    let stderr = c.stderr.text();
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    stderr
}

fn config_error(json: &str) -> String {
    let (_dir, path) = config_file(json);
    usage_error(&["--config", path.to_str().unwrap()])
}

#[test]
fn unknown_config_key_exits_2_naming_it() {
    let stderr = config_error(r#"{"wrokers": 2}"#);
    assert!(stderr.contains("wrokers"), "{stderr}");
}

#[test]
fn config_value_of_the_wrong_type_exits_2_naming_the_key() {
    let stderr = config_error(r#"{"workers": "two"}"#);
    assert!(stderr.contains("`workers`"), "{stderr}");
}

#[test]
fn config_value_that_does_not_parse_exits_2_naming_the_key() {
    let stderr = config_error(r#"{"ready": "later"}"#);
    assert!(stderr.contains("`ready`"), "{stderr}");
}

#[test]
fn missing_config_file_exits_2_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.json");
    let stderr = usage_error(&["--config", path.to_str().unwrap()]);
    assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
}

#[test]
fn bad_flag_value_exits_2_naming_the_flag() {
    let stderr = usage_error(&["--restart", "sometimes"]);
    assert!(stderr.contains("--restart"), "{stderr}");
}

#[test]
fn unknown_flag_exits_2() {
    let stderr = usage_error(&["--wrokers", "2"]);
    assert!(stderr.contains("--wrokers"), "{stderr}");
}

/// The `workers` of `cluster-ready` from a cluster started with `config` and `args`.
fn workers_when_ready(config: &str, args: &[&str]) -> serde_json::Value {
    let (_dir, path) = config_file(config);
    let mut all = vec!["--config", path.to_str().unwrap()];
    all.extend(args);
    let mut c = Clutch::spawn_with_parent(clutch_start(&all));
    let info = c.expect_ready(DEADLINE);
    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
    info["workers"].clone()
}

fn fixture_config() -> String {
    serde_json::json!({"workers": 3, "app": [fixture()], "no-agent": true}).to_string()
}

#[test]
fn config_values_are_applied() {
    assert_eq!(workers_when_ready(&fixture_config(), &[]), 3);
}

#[test]
fn flags_override_the_config() {
    assert_eq!(workers_when_ready(&fixture_config(), &["-w", "2"]), 2);
}
