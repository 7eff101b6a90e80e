//! A worker's environment holds each variable once: a configured value replaces the one
//! inherited from the master (so `getenv` sees it), and clutch's own variables replace both.

mod common;
use clutch::ReadyMode;
use common::*;

/// The `KEY=VALUE` entries of `pid`'s environment.
fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect()
}

/// The values `key` has in `env`, in order.
fn values<'a>(env: &'a [String], key: &str) -> Vec<&'a str> {
    env.iter()
        .filter_map(|e| e.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[tokio::test]
async fn configured_values_replace_inherited_ones_and_clutch_s_own_win() {
    assert!(std::env::var_os("PATH").is_some(), "the test needs a PATH");
    let path = "/usr/bin:/bin:/clutch-configured";
    let m = start_ready(
        clutch::Master::builder()
            .workers(1)
            .app(["/bin/sleep", "600"])
            .ready(ReadyMode::Spawn)
            .ready_timeout(DEADLINE)
            .env("PATH", path)
            .env("CLUTCH_ROLE", "configured"),
    )
    .await;
    let pid = m.workers()[0].pid;
    // Read after exec: before it, /proc shows the master's copy of the environment.
    assert!(
        wait_until_async(DEADLINE, || std::fs::read_to_string(format!(
            "/proc/{pid}/comm"
        ))
        .is_ok_and(|c| c == "sleep\n"))
        .await,
        "the worker never ran sleep"
    );
    let env = environ(pid);
    assert_eq!(values(&env, "PATH"), [path], "{env:#?}");
    assert_eq!(values(&env, "CLUTCH_ROLE"), ["app"], "{env:#?}");
    let mut keys: Vec<&str> = env.iter().map(|e| e.split('=').next().unwrap()).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), before, "a variable appears twice: {env:#?}");
    m.shutdown().await.unwrap();
}
