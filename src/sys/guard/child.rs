//! The guard process itself, from fork to exit.

use super::close_fds::{Method, close_from};
use libc::c_int;

const MAX_GROUPS: usize = 4096;

/// What the forked guard is given: all read in the parent, so the child allocates nothing.
pub(super) struct Setup {
    /// The read end of the master's pipe of group numbers.
    pub groups: c_int,
    /// The write end of the pipe whose end of file tells the master the guard is gone.
    pub life: c_int,
    /// The open-file limit, for the last way of closing fds.
    pub fd_limit: c_int,
    pub first: Method,
}

/// The guard process. Never returns.
///
/// # Safety
/// Must run in a freshly forked child; it closes every other fd of the process. Both fds
/// of `setup` must be 3 or more, as 0 to 2 are pointed at `/dev/null`.
pub(super) unsafe fn main(setup: &Setup) -> ! {
    // SAFETY: only async-signal-safe syscalls on memory of this stack frame.
    unsafe {
        // `ps -o comm` and `pgrep clutch-guard` tell it from a second copy of the master.
        libc::prctl(
            libc::PR_SET_NAME,
            c"clutch-guard".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGQUIT,
            libc::SIGHUP,
            libc::SIGPIPE,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        // Hold nothing of the master's: a copy of the pipe's write end would keep the guard
        // from ever seeing end of file, and channel ends would keep workers from seeing it.
        close_from(3, [setup.groups, setup.life], setup.fd_limit, setup.first);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
        let fd = setup.groups;
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
