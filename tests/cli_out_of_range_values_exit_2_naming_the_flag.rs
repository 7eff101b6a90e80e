//! Values outside what clutch can work with exit 2 naming the flag (or the config file's
//! key): a timeout of 0, a message size limit above 64 MiB.

mod common;
use common::*;

/// `clutch start ARGS -w 1 --no-agent -- fixture`: expects exit code 2, returns stderr.
fn usage_error(args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["-w", "1", "--no-agent", "--", fixture()]);
    let mut c = Clutch::spawn(clutch_start(&all));
    let status = c.finish(DEADLINE);
    let stderr = c.stderr.text();
    assert_eq!(status.code(), Some(2), "for {args:?}; stderr:\n{stderr}");
    stderr
}

#[test]
fn a_ready_timeout_of_0_is_refused() {
    let stderr = usage_error(&["--ready-timeout", "0"]);
    assert!(
        stderr.contains("--ready-timeout: must be more than 0 ms"),
        "{stderr}"
    );
}

#[test]
fn a_proxy_timeout_of_0_is_refused() {
    let stderr = usage_error(&[
        "-p",
        "0",
        "--sticky",
        "--proxy-protocol",
        "--proxy-timeout",
        "0",
    ]);
    assert!(
        stderr.contains("--proxy-timeout: must be more than 0 ms"),
        "{stderr}"
    );
}

#[test]
fn a_zero_timeout_from_the_config_file_is_named_as_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clutch.json");
    std::fs::write(&path, r#"{"ready-timeout": 0}"#).unwrap();
    let stderr = usage_error(&["--config", path.to_str().unwrap()]);
    assert!(
        stderr.contains("key `ready-timeout`: must be more than 0 ms"),
        "{stderr}"
    );
}

#[test]
fn a_max_message_size_above_64_mib_is_refused() {
    let stderr = usage_error(&["--max-message-size", "67108865"]);
    assert!(
        stderr.contains("--max-message-size: 67108865 is more than"),
        "{stderr}"
    );
    let stderr = usage_error(&["--max-message-size", "18446744073709551615"]);
    assert!(stderr.contains("--max-message-size"), "{stderr}");
}

#[test]
fn a_max_message_size_of_64_mib_is_accepted() {
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "--max-message-size",
        "67108864",
        "-w",
        "1",
        "--no-agent",
        "--",
        fixture(),
    ]));
    c.expect_ready(DEADLINE);
    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
