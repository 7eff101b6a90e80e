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

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): an orphan among its
/// descendants is re-parented to it rather than to init, so it must reap them (see
/// `master::orphans`). Process-wide, and kept for the life of the process.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments; changes only this process's attributes.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The pids of this process's children, those of every thread: a child is listed under
/// the thread that forked it, and an orphan re-parented to this process under any of them.
///
/// Reads `/proc/self/task/*/children`; on a kernel without it (`CONFIG_PROC_CHILDREN`
/// off), scans every `/proc/PID/stat` for this process as the parent. Either may miss a
/// child that comes or goes while it is read: callers look again on the next SIGCHLD.
pub fn child_pids() -> io::Result<Vec<u32>> {
    // /proc shows the pids of the namespace it was mounted in: a master in a new pid
    // namespace with the host's /proc (`unshare --pid` without `--mount-proc`) would read
    // pids it cannot wait for.
    let me = std::fs::read_link("/proc/self")?;
    if me.to_str() != Some(std::process::id().to_string().as_str()) {
        return Err(io::Error::other(format!(
            "/proc is not of this process's pid namespace (/proc/self is {}, the pid is {}): \
             mount a /proc of its own (unshare --mount-proc; containers do)",
            me.display(),
            std::process::id()
        )));
    }
    match children_from_tasks() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => children_from_stat(std::process::id()),
        other => other,
    }
}

fn children_from_tasks() -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let text = match std::fs::read_to_string(task?.path().join("children")) {
            Ok(t) => t,
            // A thread that ended since the directory was listed.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => continue,
            Err(e) => return Err(e),
        };
        pids.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    Ok(pids)
}

/// Every pid whose parent is `parent`, from `/proc/PID/stat`.
fn children_from_stat(parent: u32) -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // Gone since listed, or not ours to read: not a child that matters.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may hold spaces and parentheses: fields follow the last `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// Reaps child `pid` if it has exited, and says how it ended; `None` while it runs.
/// Waits for that pid only, never for "any child", so no other child's status is taken.
pub fn reap_if_exited(pid: u32) -> io::Result<Option<Exit>> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let status = waitpid(
        nix::unistd::Pid::from_raw(pid as i32),
        Some(WaitPidFlag::WNOHANG),
    )?;
    Ok(match status {
        WaitStatus::Exited(_, code) => Some(Exit {
            code: Some(code),
            signal: None,
        }),
        WaitStatus::Signaled(_, sig, _) => Some(Exit {
            code: None,
            signal: Some(sig as i32),
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A child that exits at once with code 5, not reaped yet: (its pid, the handle that
    /// must not reap it).
    // The tests reap it by pid, through the function under test.
    #[allow(clippy::zombie_processes)]
    fn exited_child() -> (u32, std::process::Child) {
        let child = std::process::Command::new("sh")
            .args(["-c", "exit 5"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            if stat
                .rsplit_once(')')
                .unwrap()
                .1
                .trim_start()
                .starts_with('Z')
            {
                return (pid, child);
            }
            assert!(Instant::now() < end, "pid {pid} never exited");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn both_ways_of_listing_children_find_a_zombie_child_and_it_is_reaped_once() {
        let (pid, child) = exited_child();
        assert!(children_from_tasks().unwrap().contains(&pid));
        assert!(
            children_from_stat(std::process::id())
                .unwrap()
                .contains(&pid)
        );
        assert!(child_pids().unwrap().contains(&pid));
        let exit = reap_if_exited(pid).unwrap();
        assert_eq!(exit.map(|e| e.code), Some(Some(5)));
        assert!(reap_if_exited(pid).is_err(), "reaped twice");
        // The std handle's own wait now finds nothing: not ours to wait for any more.
        std::mem::forget(child);
    }

    #[test]
    fn a_running_child_is_left_alone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert_eq!(reap_if_exited(child.id()).unwrap(), None);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
