//! Signals to process groups, the parent-death signal, and naming how a process ended.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};

pub use nix::sys::signal::Signal;

/// Sends `sig` to every process in group `pgid`. A group that is already empty is not an
/// error: the point is that nothing of it is left.
pub fn signal_group(pgid: u32, sig: Signal) -> io::Result<()> {
    let pgid = nix::unistd::Pid::from_raw(pgid as i32);
    match nix::sys::signal::killpg(pgid, sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Runs in the forked child before exec: ask for SIGKILL when the parent dies, and leave at
/// once if it already has (the race between fork and prctl).
///
/// Only async-signal-safe calls are made here, as the parent may be multi-threaded.
pub fn die_with_parent(parent_pid: i32) -> io::Result<()> {
    // SAFETY: prctl and getppid are async-signal-safe syscalls with integer arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::getppid() != parent_pid {
            libc::_exit(1);
        }
    }
    Ok(())
}

/// Runs in the forked child before exec: give back the default disposition of the signals
/// the master ignores (SIGPIPE, see [`crate::log`]), as an ignored disposition survives exec
/// and a worker expects the default. Async-signal-safe.
pub fn reset_signal_dispositions() -> io::Result<()> {
    // SAFETY: signal(2) with SIG_DFL is async-signal-safe and installs no handler code.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How a process ended: its exit code, or the name of the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal, when one killed it.
    pub signal: Option<i32>,
}

impl Exit {
    /// Reads a wait status.
    pub fn from_status(status: ExitStatus) -> Exit {
        Exit {
            code: status.code(),
            signal: status.signal(),
        }
    }

    /// The signal's name, such as `SIGKILL`.
    pub fn signal_name(&self) -> Option<&'static str> {
        self.signal.map(|s| {
            Signal::try_from(s)
                .map(|s| s.as_str())
                .unwrap_or("SIGUNKNOWN")
        })
    }

    /// Whether it exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal_name()) {
            (Some(c), _) => write!(f, "exit code {c}"),
            (None, Some(s)) => write!(f, "signal {s}"),
            (None, None) => f.write_str("an unknown status"),
        }
    }
}

/// The soft open-file limit the process started with, when [`raise_fd_limit`] raised it
/// (0: untouched). Children get it back before exec.
static ORIGINAL_SOFT: AtomicU64 = AtomicU64::new(0);
static HARD: AtomicU64 = AtomicU64::new(0);

/// Raises the soft open-file limit to the hard one: the sticky master holds a socket per
/// connection until a worker takes it, and a low soft limit (often 1024) would make
/// `accept` and even spawning fail under a burst. Workers still start with the original
/// soft limit (see [`restore_fd_limit`]): a program using `select()` must not see fds
/// past 1024. Returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        HARD.store(hard, Ordering::Relaxed);
        ORIGINAL_SOFT.store(soft, Ordering::Relaxed);
    }
    Ok(hard)
}

/// Runs in the forked child before exec: put back the soft open-file limit the master
/// started with, if it raised it. Async-signal-safe.
pub fn restore_fd_limit() -> io::Result<()> {
    let soft = ORIGINAL_SOFT.load(Ordering::Relaxed);
    if soft == 0 {
        return Ok(());
    }
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: HARD.load(Ordering::Relaxed),
    };
    // SAFETY: setrlimit with a valid struct; a plain syscall.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
