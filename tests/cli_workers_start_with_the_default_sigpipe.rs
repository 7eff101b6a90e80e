//! The master ignores SIGPIPE (a closed stderr must not kill it), but an ignored signal
//! survives exec: every worker must start with SIGPIPE at its default, as programs expect
//! (`yes | head` style pipelines end by it).

mod common;
use common::*;

/// Whether `pid` ignores SIGPIPE, from the `SigIgn` mask in /proc.
fn ignores_sigpipe(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .unwrap();
    mask & (1 << (libc::SIGPIPE - 1)) != 0
}

/// The children of `pid` running `comm`.
fn children_named(pid: u32, comm: &str) -> Vec<u32> {
    children_of(pid)
        .into_iter()
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|n| n.trim() == comm)
        })
        .collect()
}

#[test]
fn workers_do_not_inherit_the_masters_ignored_sigpipe() {
    let mut c = Clutch::spawn(clutch_start(&[
        "-w",
        "2",
        "--agent",
        "sleep 600",
        "--ready",
        "spawn",
        "--",
        "sleep",
        "600",
    ]));
    let mut workers = Vec::new();
    assert!(
        wait_until(DEADLINE, || {
            workers = children_named(c.pid(), "sleep");
            workers.len() == 3
        }),
        "3 workers never ran; stderr:\n{}",
        c.stderr.text()
    );
    assert!(ignores_sigpipe(c.pid()), "the master should ignore SIGPIPE");
    for pid in &workers {
        assert!(!ignores_sigpipe(*pid), "worker {pid} ignores SIGPIPE");
    }
    c.signal(libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
