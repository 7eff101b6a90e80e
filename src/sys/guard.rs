//! The guard: a tiny forked process that SIGKILLs every worker process group when the
//! master dies without cleaning up (SIGKILL, a crash, a killed test process).
//!
//! `PR_SET_PDEATHSIG` takes the master's children down with it, but not their children:
//! the death signal is not inherited across fork. So the master tells the guard, over a
//! pipe, each process group it creates and each it has emptied. When the pipe reaches end
//! of file (the master is gone, however it went), the guard kills the groups it still
//! knows and exits. After fork the guard only makes async-signal-safe syscalls and touches
//! no allocator, so forking from a multi-threaded process (a test binary) is sound.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const MAX_GROUPS: usize = 4096;

/// The master's side of the guard: the pipe's write end and the guard's pid.
#[derive(Debug)]
pub struct Guard {
    pid: libc::pid_t,
    pipe: Option<std::fs::File>,
}

impl Guard {
    /// Forks the guard.
    pub fn start() -> io::Result<Guard> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into the array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds were just created and are owned here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: the child runs only `guard_main`, which is async-signal-safe and never returns.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => unsafe { guard_main(read.as_raw_fd()) },
            pid => {
                drop(read);
                Ok(Guard {
                    pid,
                    pipe: Some(std::fs::File::from(write)),
                })
            }
        }
    }

    /// Asks the guard to kill group `pgid` should the master die.
    pub fn watch(&mut self, pgid: u32) {
        self.send(pgid as i32);
    }

    /// Tells the guard that group `pgid` is empty and its number may be reused.
    pub fn forget(&mut self, pgid: u32) {
        self.send(-(pgid as i32));
    }

    fn send(&mut self, v: i32) {
        if let Some(pipe) = self.pipe.as_mut()
            && let Err(e) = pipe.write_all(&v.to_ne_bytes())
        {
            tracing::warn!("the guard process (pid {}) is gone: {e}", self.pid);
            self.pipe = None;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.pipe = None;
        let mut status = 0;
        // SAFETY: waits for our own child, which exits as soon as it reads end of file.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

/// The guard process. Never returns.
///
/// # Safety
/// Must run in a freshly forked child; it closes every other fd of the process.
unsafe fn guard_main(read_fd: libc::c_int) -> ! {
    unsafe {
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGQUIT,
            libc::SIGHUP,
            libc::SIGPIPE,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        // Hold nothing of the master's: its channel ends would keep workers from seeing EOF.
        let fd = libc::fcntl(read_fd, libc::F_DUPFD_CLOEXEC, 64);
        if fd < 0 {
            libc::_exit(2);
        }
        libc::syscall(libc::SYS_close_range, 0u32, (fd - 1) as u32, 0u32);
        libc::syscall(libc::SYS_close_range, (fd + 1) as u32, u32::MAX, 0u32);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
        let mut groups = [0i32; MAX_GROUPS];
        let mut count = 0usize;
        let mut buf = [0i32; 256];
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), size_of_val(&buf));
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                break;
            }
            for &v in &buf[..n as usize / 4] {
                if v > 0 {
                    if count < MAX_GROUPS {
                        groups[count] = v;
                        count += 1;
                    }
                } else if let Some(i) = groups[..count].iter().position(|&g| g == -v) {
                    count -= 1;
                    groups[i] = groups[count];
                }
            }
        }
        for &g in &groups[..count] {
            libc::kill(-g, libc::SIGKILL);
        }
        libc::_exit(0)
    }
}
