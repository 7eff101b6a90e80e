//! Helpers the integration tests share: the fixture binaries, waiting on conditions with
//! deadlines, and checking processes.
#![allow(dead_code)]

use clutch::{Master, MasterBuilder, Message};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The scriptable Rust worker (fixtures/worker.rs).
pub fn fixture() -> &'static str {
    env!("CARGO_BIN_EXE_clutch-fixture")
}

/// The clutch CLI.
pub fn clutch_bin() -> &'static str {
    env!("CARGO_BIN_EXE_clutch")
}

/// A fixture command with arguments.
pub fn fixture_cmd(args: &[&str]) -> Vec<String> {
    std::iter::once(fixture().to_string()).chain(args.iter().map(|a| a.to_string())).collect()
}

/// A builder with fixture agent and app workers.
pub fn cluster(workers: usize, agent_args: Option<&[&str]>, app_args: &[&str]) -> MasterBuilder {
    let mut b = Master::builder().workers(workers).app(fixture_cmd(app_args));
    if let Some(a) = agent_args {
        b = b.agent(fixture_cmd(a));
    }
    b.ready_timeout(Duration::from_secs(20)).kill_timeout(Duration::from_secs(5))
}

/// The usual deadline for a condition.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Async: polls `cond` until it holds or `timeout` passes.
pub async fn wait_until_async(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Receives messages until one satisfies `pred`, or panics after `timeout` naming `what`.
pub async fn expect(master: &mut Master, what: &str, timeout: Duration, mut pred: impl FnMut(&Message) -> bool) -> Message {
    let found = tokio::time::timeout(timeout, async {
        while let Some(m) = master.recv().await {
            if pred(&m) {
                return Some(m);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(m)) => m,
        Ok(None) => panic!("the master ended before {what}"),
        Err(_) => panic!("no {what} within {timeout:?}"),
    }
}

/// A `got` report from a fixture worker: (role, id, pid, the message it got).
pub fn got(m: &Message) -> Option<(&str, u64, u64, &Value)> {
    if m.action != "got" {
        return None;
    }
    Some((m.data["role"].as_str()?, m.data["id"].as_u64()?, m.data["pid"].as_u64()?, &m.data["msg"]))
}

/// Whether `pid` is a live process (not a zombie, not gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().and_then(|r| r.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// Every pid whose parent is `ppid`.
pub fn children_of(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            && let Some(rest) = stat.rsplit(')').next()
        {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(ppid) {
                out.push(pid);
            }
        }
    }
    out
}

/// Sends `sig` to `pid`.
pub fn kill(pid: u32, sig: i32) {
    // SAFETY: kill with plain integers.
    unsafe { libc::kill(pid as i32, sig) };
}

/// A child `clutch` process killed (and reaped) when dropped, so a failing test leaves no
/// process behind.
pub struct CliProcess(pub std::process::Child);

impl Drop for CliProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for a child process to exit within `timeout`; its status, or `None`.
pub fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
