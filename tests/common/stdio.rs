//! `clutch` with its stderr on a pipe the test holds: one nobody reads, or one whose read
//! end is gone.

use super::*;
use std::os::fd::{AsRawFd, OwnedFd};

/// A pipe (read end, write end) whose buffer is shrunk to one page, so a few log lines fill
/// it.
pub fn small_pipe() -> (OwnedFd, OwnedFd) {
    let (read, write) = std::io::pipe().unwrap();
    // SAFETY: fcntl on a pipe fd this function owns.
    let size = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(
        size > 0,
        "F_SETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    (read.into(), write.into())
}

/// The bytes waiting in a pipe, read from its read end (`FIONREAD`).
pub fn pipe_queued(read: &OwnedFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    unsafe { libc::ioctl(read.as_raw_fd(), libc::FIONREAD, &mut n) };
    n as usize
}

/// The capacity of a pipe's buffer.
pub fn pipe_capacity(fd: &OwnedFd) -> usize {
    // SAFETY: fcntl on a pipe fd the caller owns.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) as usize }
}

impl Clutch {
    /// Like [`Clutch::spawn`], with clutch's stdout on `stdout` (nothing of it is
    /// collected).
    pub fn spawn_with_stdout(mut cmd: std::process::Command, stdout: OwnedFd) -> Clutch {
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(cmd);
        let stderr = Collected::from_pipe(child.stderr.take().unwrap());
        let stdout = Collected::default();
        stdout.0.lock().unwrap().closed = true;
        Clutch {
            process: CliProcess(child),
            stdout,
            stderr,
            parent: None,
            seen: Vec::new(),
            unmatched: std::collections::VecDeque::new(),
        }
    }

    /// Like [`Clutch::spawn_with_parent`], with clutch's stderr on `stderr` (nothing of it
    /// is collected).
    pub fn spawn_with_parent_and_stderr(mut cmd: std::process::Command, stderr: OwnedFd) -> Clutch {
        use command_fds::{CommandFdExt, FdMapping};
        use std::process::Stdio;
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        cmd.fd_mappings(vec![FdMapping {
            parent_fd: theirs.into(),
            child_fd: 3,
        }])
        .unwrap()
        .env("CLUTCH_CHANNEL_FD", "3");
        let reader = ours.try_clone().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    break;
                };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap();
        drop(cmd);
        let stdout = Collected::from_pipe(child.stdout.take().unwrap());
        let stderr = Collected::default();
        stderr.0.lock().unwrap().closed = true;
        Clutch {
            process: CliProcess(child),
            stdout,
            stderr,
            parent: Some(ParentEnd {
                stream: ours,
                lines: rx,
                closed: false,
            }),
            seen: Vec::new(),
            unmatched: std::collections::VecDeque::new(),
        }
    }
}
