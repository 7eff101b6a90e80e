//! Waiting for a child to exit without reaping it, so that its process group id stays
//! pinned (a zombie group leader keeps the number from being reused) while what is left of
//! the group is killed.
//!
//! A pidfd (Linux 5.3) turns "the process exited" into readiness on an fd; without one,
//! SIGCHLD wakes a `waitid(WNOWAIT)` check.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use tokio::io::unix::AsyncFd;

/// Resolves once process `pid` (a child of this process) has exited and is a zombie; it
/// is not reaped.
pub async fn exited(pid: u32) -> io::Result<()> {
    match pidfd_open(pid) {
        Ok(fd) => {
            // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same until the
            // AsyncFd is dropped.
            let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)? };
            let _ready = fd.readable().await?;
            Ok(())
        }
        Err(_) => {
            use tokio::signal::unix::{SignalKind, signal};
            // Listen first, then look: a SIGCHLD between the two is not lost.
            let mut sigchld = signal(SignalKind::child())?;
            loop {
                if is_zombie(pid)? {
                    return Ok(());
                }
                sigchld.recv().await;
            }
        }
    }
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just returned to us and is owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether child `pid` has exited, leaving it unreaped.
fn is_zombie(pid: u32) -> io::Result<bool> {
    // SAFETY: siginfo_t is plain data that waitid fills.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid with WNOWAIT only reads the child's state.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after a successful waitid, si_pid is set (0 when nothing exited).
    Ok(unsafe { info.si_pid() } != 0)
}
