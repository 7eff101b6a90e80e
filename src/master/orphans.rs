//! Reaping orphans: as PID 1 (a container's entry point) or a child subreaper
//! (`--subreaper`), the master becomes the parent of every process whose own parent died
//! (a worker's grandchild left behind). Nobody else will wait for them, so each would stay
//! a zombie for the life of the master.
//!
//! The master's own children must not be touched: each worker is reaped by its owner task
//! ([`super::owner`]), which must read the worker's exit status itself (it is the exit the
//! core judges), and the guard is reaped by [`crate::sys::guard`]. So the reaper never
//! waits for "any child" (`waitpid(-1)` would take a worker's status as readily as an
//! orphan's): it lists the children, skips every pid the [`Guard`] knows as the master's
//! own, and waits for each other pid by number. This is sound because everything runs on
//! the master's one thread: a worker is watched by the guard in the same step as its
//! spawn and forgotten in the same step as its reap, and a sweep has no await inside, so
//! it never sees a worker the guard does not know yet, nor one already reaped.
//!
//! Why not `waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)` to peek at the next zombie and reap
//! it only when it is not ours: it shows one zombie, always the same until someone reaps
//! it. A worker that has exited but whose owner has not reaped it yet (the owner kills its
//! group first) would hide every orphan behind it, and an owner that never reaps (a bug)
//! would stop orphan reaping for good. Listing the children shows them all.
//!
//! # Caveats
//! - The children are listed from `/proc`, which must be of the master's pid namespace
//!   (containers mount one; `unshare --pid` needs `--mount-proc`). Otherwise a warning says
//!   so and orphans stay zombies.
//! - Not for a master embedded in a program that forks children of its own: the sweep
//!   would reap them too (hence `Settings::subreaper` is off by default, and PID 1 is only
//!   assumed for the CLI's master).

use crate::sys::guard::Guard;
use crate::sys::process::{Exit, child_pids, reap_if_exited};
use std::cell::RefCell;
use std::io;
use std::rc::Weak;
use std::time::Duration;

/// A sweep this often besides the one on each SIGCHLD: the kernel's list of children can
/// miss one that came or went while it was read.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// A failure to list the children was logged as a warning already.
static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Reaps orphans on each SIGCHLD until the guard (and so the cluster) is gone.
pub async fn reap(guard: Weak<RefCell<Guard>>) {
    use tokio::signal::unix::{SignalKind, signal};
    // Listen first, then look: a SIGCHLD between the two is not lost.
    let mut sigchld = match signal(SignalKind::child()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                "cannot watch for SIGCHLD ({e}); orphaned processes are reaped every {} s",
                SWEEP_EVERY.as_secs()
            );
            return sweep_periodically(guard).await;
        }
    };
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        if !sweep_now(&guard) {
            return;
        }
        tokio::select! {
            _ = sigchld.recv() => {}
            _ = every.tick() => {}
        }
    }
}

async fn sweep_periodically(guard: Weak<RefCell<Guard>>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    while sweep_now(&guard) {
        every.tick().await;
    }
}

/// One sweep; false once the guard is gone (the cluster has ended: stop reaping, as
/// nothing tells own children apart any more).
fn sweep_now(guard: &Weak<RefCell<Guard>>) -> bool {
    let Some(guard) = guard.upgrade() else {
        return false;
    };
    let children = match child_pids() {
        Ok(c) => c,
        Err(e) => {
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!("cannot list the master's children to reap orphans: {e}");
            }
            return true;
        }
    };
    let guard = guard.borrow();
    sweep(&children, |pid| guard.is_own_child(pid), reap_if_exited);
    true
}

/// Reaps every exited child among `children` that `is_own` does not claim; returns the
/// pids reaped.
fn sweep(
    children: &[u32],
    is_own: impl Fn(u32) -> bool,
    mut reap: impl FnMut(u32) -> io::Result<Option<Exit>>,
) -> Vec<u32> {
    let mut reaped = Vec::new();
    for &pid in children.iter().filter(|&&pid| !is_own(pid)) {
        match reap(pid) {
            Ok(Some(exit)) => {
                tracing::debug!("reaped orphaned process {pid} ({exit})");
                reaped.push(pid);
            }
            Ok(None) => {}
            // Reaped in between (ECHILD), or not ours after all: nothing to do.
            Err(e) => tracing::debug!("cannot reap orphaned process {pid}: {e}"),
        }
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_children_are_never_waited_for() {
        let mut asked = Vec::new();
        let reaped = sweep(
            &[10, 11, 12, 13],
            |pid| pid == 11 || pid == 13,
            |pid| {
                asked.push(pid);
                Ok((pid == 10).then_some(Exit {
                    code: Some(0),
                    signal: None,
                }))
            },
        );
        assert_eq!(asked, [10, 12], "only the orphans are waited for");
        assert_eq!(reaped, [10], "only an exited orphan is reaped");
    }

    #[test]
    fn an_error_on_one_orphan_does_not_stop_the_sweep() {
        let reaped = sweep(
            &[20, 21],
            |_| false,
            |pid| match pid {
                20 => Err(io::Error::from_raw_os_error(libc::ECHILD)),
                _ => Ok(Some(Exit {
                    code: None,
                    signal: Some(libc::SIGKILL),
                })),
            },
        );
        assert_eq!(reaped, [21]);
    }
}
