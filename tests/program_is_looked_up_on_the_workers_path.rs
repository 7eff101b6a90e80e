//! A worker's program is looked up on the worker's own `PATH` (the configured one), not on
//! the master's; one found on neither is reported with the `PATH` searched.

mod common;
use clutch::ReadyMode;
use common::*;
use std::os::unix::fs::PermissionsExt;

/// A builder for one app worker running `program` with `PATH` set to `path`.
fn with_path(program: &str, path: &str) -> clutch::MasterBuilder {
    clutch::Master::builder()
        .workers(1)
        .app([program])
        .ready(ReadyMode::Spawn)
        .ready_timeout(DEADLINE)
        .env("PATH", path)
}

#[tokio::test]
async fn a_program_only_on_the_configured_path_starts() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let prog = dir.path().join("clutch-test-myprog");
    std::fs::write(
        &prog,
        format!("#!/bin/sh\n: > {}\nexec sleep 600\n", started.display()),
    )
    .unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", dir.path().display());

    let m = start_ready(with_path("clutch-test-myprog", &path)).await;
    assert!(
        wait_until_async(DEADLINE, || started.exists()).await,
        "the worker never ran"
    );
    m.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_program_on_no_path_is_reported_with_the_path_searched() {
    let dir = tempfile::tempdir().unwrap();
    let path = format!("{}:/nonexistent-clutch-dir", dir.path().display());
    let mut m = with_path("clutch-test-no-such-program", &path)
        .start()
        .unwrap();
    let err = tokio::time::timeout(DEADLINE, m.ready())
        .await
        .expect("an answer in time")
        .unwrap_err()
        .to_string();
    assert!(err.contains("clutch-test-no-such-program"), "{err}");
    assert!(err.contains(&path), "{err}");
}
