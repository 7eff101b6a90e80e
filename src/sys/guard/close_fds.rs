//! Closing every fd of a freshly forked child but a few, with async-signal-safe calls only.
//!
//! `close_range(2)` does it in one call, but it is missing before Linux 5.9 and a seccomp
//! profile may refuse it. Hand-written because the fallbacks must not allocate (the parent
//! may be multi-threaded): `nix::dir` and `opendir` allocate, and glibc's `closefrom`
//! cannot keep an fd in the middle of the range and aborts when its own fallback fails.
//! So: `close_range` around the kept fds, else the numbers listed in `/proc/self/fd` read
//! with raw `getdents64` into a stack buffer, else (no `/proc`) every number up to the
//! open-file limit the parent read before fork. The limit comes last because the master
//! raises its soft limit to the hard one, which can be 2^30 in a container.

use libc::c_int;

/// A way to close fds, in the order they are tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Method {
    CloseRange,
    ProcSelfFd,
    UpToLimit,
    /// Tests only: close nothing, as the guard did when `close_range` failed.
    #[cfg(test)]
    Nothing,
}

/// Closes every fd from `low` on except `keep`, trying the methods from `first` on; returns
/// the one that did it.
///
/// # Safety
/// Must run in a child that owns its fd table alone (right after fork): any fd other than
/// `keep` is closed under whoever holds it.
pub(super) unsafe fn close_from(
    low: c_int,
    keep: [c_int; 2],
    limit: c_int,
    first: Method,
) -> Method {
    let keep = if keep[0] <= keep[1] {
        keep
    } else {
        [keep[1], keep[0]]
    };
    #[cfg(test)]
    if first == Method::Nothing {
        return Method::Nothing;
    }
    // SAFETY: per this function's contract.
    unsafe {
        if first <= Method::CloseRange && close_range_around(low, keep) {
            return Method::CloseRange;
        }
        if first <= Method::ProcSelfFd && close_listed(low, keep) {
            return Method::ProcSelfFd;
        }
        for fd in low..limit {
            if !keep.contains(&fd) {
                libc::close(fd);
            }
        }
    }
    Method::UpToLimit
}

/// `close_range` over the gaps between the kept fds; false if the kernel refused.
unsafe fn close_range_around(low: c_int, keep: [c_int; 2]) -> bool {
    let range = |first: c_int, last: u32| {
        // SAFETY: close_range takes plain integers; it fails as a whole or not at all.
        first as u32 > last
            || unsafe { libc::syscall(libc::SYS_close_range, first as u32, last, 0u32) } == 0
    };
    let mut start = low;
    for k in keep {
        if k >= start {
            if !range(start, (k - 1) as u32) {
                return false;
            }
            start = k + 1;
        }
    }
    range(start, u32::MAX)
}

/// Closes the fds `/proc/self/fd` lists; false if it cannot be read (then nothing or only
/// some were closed, and the caller goes on to the next method).
unsafe fn close_listed(low: c_int, keep: [c_int; 2]) -> bool {
    // SAFETY: open, lseek, getdents64 and close are plain syscalls; the buffer is ours.
    unsafe {
        let dir = libc::open(
            c"/proc/self/fd".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if dir < 0 {
            return false;
        }
        // u64 for the alignment of `linux_dirent64`.
        let mut buf = [0u64; 256];
        loop {
            // Rescan after closing, as glibc's closefrom does: a listing read while its
            // entries change is not promised to be whole.
            let mut closed = false;
            if libc::lseek(dir, 0, libc::SEEK_SET) != 0 {
                libc::close(dir);
                return false;
            }
            loop {
                let n = libc::syscall(
                    libc::SYS_getdents64,
                    dir,
                    buf.as_mut_ptr(),
                    size_of_val(&buf),
                );
                if n < 0 {
                    libc::close(dir);
                    return false;
                }
                if n == 0 {
                    break;
                }
                let bytes = buf.as_ptr().cast::<u8>();
                let mut off = 0usize;
                while off < n as usize {
                    // linux_dirent64: u64 d_ino, i64 d_off, u16 d_reclen, u8 d_type, d_name.
                    let reclen = bytes.add(off + 16).cast::<u16>().read_unaligned() as usize;
                    if let Some(fd) = parse_fd(bytes.add(off + 19))
                        && fd >= low
                        && fd != dir
                        && !keep.contains(&fd)
                    {
                        libc::close(fd);
                        closed = true;
                    }
                    off += reclen;
                }
            }
            if !closed {
                break;
            }
        }
        libc::close(dir);
        true
    }
}

/// A NUL-terminated decimal fd number; `None` for `.` and `..`.
unsafe fn parse_fd(name: *const u8) -> Option<c_int> {
    let mut fd: c_int = 0;
    let mut i = 0;
    loop {
        // SAFETY: the kernel NUL-terminates d_name within the record.
        let b = unsafe { *name.add(i) };
        match b {
            0 if i > 0 => return Some(fd),
            b'0'..=b'9' => fd = fd.checked_mul(10)?.checked_add((b - b'0') as c_int)?,
            _ => return None,
        }
        i += 1;
    }
}
