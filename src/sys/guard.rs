//! The guard: a tiny forked process, named `clutch-guard`, that SIGKILLs every worker
//! process group when the master dies without cleaning up (SIGKILL, a crash, a killed test
//! process).
//!
//! `PR_SET_PDEATHSIG` takes the master's children down with it, but not their children:
//! the death signal is not inherited across fork. So the master tells the guard, over a
//! pipe, each process group it creates and each it has emptied. When the pipe reaches end
//! of file (the master is gone, however it went), the guard kills the groups it still
//! knows and exits. After fork the guard only makes async-signal-safe syscalls and touches
//! no allocator, so forking from a multi-threaded process (a test binary) is sound.
//!
//! The master learns at once that the guard died, from a second pipe whose write end only
//! the guard holds ([`Guard::died`]), and [`supervise`] starts a new one with the groups
//! the master remembers. A pipe rather than a pidfd: it works on every kernel, so there is
//! one way to notice and no fallback to leave untested.
//!
//! # Caveats
//! - Between the guard's death and its replacement (a few milliseconds, longer while fork
//!   fails and [`supervise`] backs off), a master that dies leaves its workers' children
//!   behind.
//! - The guard holds at most 4096 groups; groups past that are not killed.

mod child;
mod close_fds;
#[cfg(test)]
mod tests;

use close_fds::Method;
use std::cell::RefCell;
use std::collections::HashSet;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Weak;
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// How long dropping the guard waits for it to exit before killing it and its groups.
const EXIT_WAIT: Duration = Duration::from_secs(2);
/// A guard that lived less than this before dying counts as a failed start.
const STABLE: Duration = Duration::from_secs(5);
/// Failed starts in a row after which [`supervise`] gives up.
const MAX_FAILURES: u32 = 8;

/// The master's side of the guard: the groups it watches and the running guard process.
#[derive(Debug)]
pub struct Guard {
    process: Process,
    watched: HashSet<u32>,
    first: Method,
}

impl Guard {
    /// Forks the guard.
    pub fn start() -> io::Result<Guard> {
        Self::start_with(Method::CloseRange)
    }

    fn start_with(first: Method) -> io::Result<Guard> {
        Ok(Guard {
            process: Process::spawn(first)?,
            watched: HashSet::new(),
            first,
        })
    }

    /// The guard process's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid as u32
    }

    /// Whether `pid` is a child the master forked and has not reaped: the guard process, or
    /// a worker (each leads the group it is watched by from right after its spawn until
    /// its owner has reaped it). Old guards are reaped within [`Guard::restart`].
    pub fn is_own_child(&self, pid: u32) -> bool {
        pid == self.pid() || self.watched.contains(&pid)
    }

    /// Asks the guard to kill group `pgid` should the master die.
    pub fn watch(&mut self, pgid: u32) {
        self.watched.insert(pgid);
        self.send(&[pgid as i32]);
    }

    /// Tells the guard that group `pgid` is empty and its number may be reused.
    pub fn forget(&mut self, pgid: u32) {
        self.watched.remove(&pgid);
        self.send(&[-(pgid as i32)]);
    }

    fn send(&mut self, values: &[i32]) {
        if let Err(e) = self.process.send(values) {
            tracing::warn!("the guard process (pid {}) is gone: {e}", self.pid());
        }
    }

    /// Resolves when the current guard process has exited, however it went. Borrows the
    /// guard only to start: see [`Guard::death`] to await it without holding a borrow.
    pub async fn died(&self) -> io::Result<()> {
        self.death()?.wait().await
    }

    /// What to await to learn that the current guard process has exited.
    pub fn death(&self) -> io::Result<Death> {
        Ok(Death {
            life: self.process.life.try_clone()?,
            pid: self.pid(),
        })
    }

    /// Forks a new guard, hands it every group watched now, then kills and reaps the old
    /// one (if it still runs) so that no group is ever unwatched by a live guard in between.
    pub fn restart(&mut self) -> io::Result<()> {
        let mut new = Process::spawn(self.first)?;
        let groups: Vec<i32> = self.watched.iter().map(|&g| g as i32).collect();
        new.send(&groups)?;
        let mut old = std::mem::replace(&mut self.process, new);
        // SIGKILL first: the old guard must not see end of file and kill the groups.
        // SAFETY: our own unreaped child, so the pid cannot have been reused.
        unsafe { libc::kill(old.pid, libc::SIGKILL) };
        if !old.reap_within(EXIT_WAIT) {
            tracing::warn!(
                "the old guard process (pid {}) was not reaped; it stays a zombie",
                old.pid
            );
        }
        Ok(())
    }

    /// Tests only: closes the pipe as the master's death would, and leaves the guard to
    /// the caller to reap; returns its pid.
    #[cfg(test)]
    fn abandon(mut self) -> libc::pid_t {
        self.process.pipe = None;
        self.process.reaped = true;
        self.process.pid
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.process.reaped {
            return;
        }
        self.process.pipe = None;
        if self.process.reap_within(EXIT_WAIT) {
            return;
        }
        // It should have seen end of file: something else holds the pipe's write end, or
        // it is stuck. Do its job rather than hang the master's exit.
        tracing::warn!(
            "the guard process (pid {}) did not exit within {EXIT_WAIT:?} of the master \
             closing its pipe; killing it and the {} process groups it watched",
            self.process.pid,
            self.watched.len()
        );
        // SAFETY: our own unreaped child.
        unsafe { libc::kill(self.process.pid, libc::SIGKILL) };
        for &g in &self.watched {
            let _ = crate::sys::process::signal_group(g, crate::sys::process::Signal::SIGKILL);
        }
        if !self.process.reap_within(EXIT_WAIT) {
            tracing::warn!(
                "the guard process (pid {}) was not reaped after SIGKILL",
                self.process.pid
            );
        }
    }
}

/// The end of one guard process, to await (see [`Guard::death`]).
#[derive(Debug)]
pub struct Death {
    life: OwnedFd,
    pid: u32,
}

impl Death {
    /// The pid of the guard process this is about.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resolves when the guard process has exited. Needs a tokio runtime with IO enabled.
    pub async fn wait(self) -> io::Result<()> {
        // SAFETY: an OwnedFd stays open, on the same file description, while the AsyncFd
        // owns it.
        let fd = unsafe { AsyncFd::register_with_interest(self.life, Interest::READABLE) }
            .map_err(io::Error::from)?;
        loop {
            let mut ready = fd.readable().await?;
            let mut byte = 0u8;
            // SAFETY: reads at most one byte into a local; the fd is non-blocking.
            let read = ready.try_io(|fd| {
                match unsafe { libc::read(fd.as_raw_fd(), (&raw mut byte).cast(), 1) } {
                    -1 => Err(io::Error::last_os_error()),
                    n => Ok(n),
                }
            });
            match read {
                // End of file: the last holder of the write end, the guard, is gone.
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(_)) | Err(_) => continue,
                Ok(Err(e)) => return Err(e),
            }
        }
    }
}

/// Keeps a guard running: each time its process dies, logs it and starts a new one.
///
/// Returns `Ok` once the `Guard` is dropped, and `Err` after 8 starts in a row failed (fork
/// failed, or the new guard died within 5 s; the pauses between them grow from 100 ms):
/// then worker groups are no longer killed if the master dies, and the caller decides
/// whether to go on. Holds the guard only between awaits, so the master may borrow it at
/// any other time.
pub async fn supervise(guard: Weak<RefCell<Guard>>) -> io::Result<()> {
    let mut failures = 0u32;
    loop {
        let (death, started) = match guard.upgrade() {
            Some(g) => {
                let g = g.borrow();
                (g.death()?, g.process.started)
            }
            None => return Ok(()),
        };
        let pid = death.pid();
        death.wait().await?;
        if guard.strong_count() == 0 {
            return Ok(());
        }
        if started.elapsed() < STABLE {
            failures += 1;
        } else {
            failures = 0;
        }
        tracing::warn!("the guard process (pid {pid}) died; starting a new one");
        loop {
            if failures >= MAX_FAILURES {
                return Err(io::Error::other(format!(
                    "the guard process could not be kept running ({failures} failed starts \
                     in a row); worker process groups will not be killed if the master dies"
                )));
            }
            if failures > 0 {
                let backoff = Duration::from_millis(100 << (failures - 1).min(6));
                tokio::time::sleep(backoff).await;
            }
            let Some(g) = guard.upgrade() else {
                return Ok(());
            };
            let restarted = g.borrow_mut().restart();
            match restarted {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!("cannot start a new guard process: {e}");
                    failures += 1;
                }
            }
        }
    }
}

/// One guard process, seen from the master.
#[derive(Debug)]
struct Process {
    pid: libc::pid_t,
    /// Group numbers to the guard; `None` once closed or broken.
    pipe: Option<std::io::PipeWriter>,
    /// Reaches end of file when the guard exits.
    life: OwnedFd,
    started: Instant,
    reaped: bool,
}

impl Process {
    fn spawn(first: Method) -> io::Result<Process> {
        let (groups_read, groups_write) = std::io::pipe()?;
        let (life_read, life_write) = std::io::pipe()?;
        // The guard points 0 to 2 at /dev/null: keep its two ends clear of them, should
        // the master have been started with a standard stream closed.
        let groups_read = above_stdio(groups_read.into())?;
        let life_write = above_stdio(life_write.into())?;
        let life_read = OwnedFd::from(life_read);
        set_nonblocking(&life_read)?;
        let setup = child::Setup {
            groups: groups_read.as_raw_fd(),
            life: life_write.as_raw_fd(),
            fd_limit: fd_limit(),
            first,
        };
        // SAFETY: the child runs only `child::main`, which is async-signal-safe and never
        // returns; both of its fds are 3 or more.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => unsafe { child::main(&setup) },
            pid => Ok(Process {
                pid,
                pipe: Some(groups_write),
                life: life_read,
                started: Instant::now(),
                reaped: false,
            }),
        }
    }

    fn send(&mut self, values: &[i32]) -> io::Result<()> {
        // Closed by an earlier failure, already reported: the next guard gets the groups.
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(());
        };
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        pipe.write_all(&bytes).inspect_err(|_| self.pipe = None)
    }

    /// Reaps the guard if it exits within `limit`; true once reaped.
    fn reap_within(&mut self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        let mut pause = Duration::from_millis(1);
        loop {
            let mut status = 0;
            // SAFETY: waits without blocking for our own child.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if r == self.pid
                || (r == -1 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR))
            {
                self.reaped = true;
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // try_clone duplicates to the lowest free fd from 3 on.
    fd.try_clone()
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// The soft open-file limit, read before fork for the guard's last way of closing fds.
fn fd_limit() -> libc::c_int {
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    limit.min(libc::c_int::MAX as u64) as libc::c_int
}
