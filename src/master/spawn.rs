//! Starting one worker: its command, environment, inherited fds, process group and death
//! signal.
//!
//! The child's fds from 3 on are the listening sockets (if any, systemd's `LISTEN_FDS`
//! layout), then its end of the channel. `LISTEN_PID` must equal the child's own pid, which
//! is only known after fork, so the last `pre_exec` step writes the pid into an environment
//! prepared before fork and calls `execvpe` itself: no allocation happens in the child.

use crate::master::worker::Role;
use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::process::Stdio;

use command_fds::{CommandFdExt, FdMapping};

/// Environment variables the master sets for its children; a value inherited from the
/// master's own environment is dropped so it never leaks through.
const OWN_VARS: &[&str] = &[
    "CLUTCH_ROLE",
    "CLUTCH_WORKER_ID",
    "CLUTCH_CHANNEL_FD",
    "CLUTCH_MASTER_PID",
    "CLUTCH_PORT",
    "CLUTCH_HOST",
    "CLUTCH_REUSEPORT",
    "CLUTCH_NAME",
    "NODE_CHANNEL_FD",
    "NODE_CHANNEL_SERIALIZATION_MODE",
    "NODE_UNIQUE_ID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
];

/// What one child is started with.
pub struct SpawnSpec<'a> {
    pub role: Role,
    pub id: u32,
    pub command: &'a [String],
    pub name: &'a str,
    pub port: Option<u16>,
    /// Listening sockets the child inherits from fd 3, with their names for `LISTEN_FDNAMES`.
    pub listeners: &'a [(&'a OwnedFd, &'a str)],
    /// Extra variables (such as `NOTIFY_SOCKET`).
    pub extra_env: &'a [(String, String)],
}

/// A started child: the process and the master's end of its channel.
pub struct Spawned {
    pub child: tokio::process::Child,
    pub pid: u32,
    pub channel: UnixStream,
}

/// Forks and execs one worker in its own process group.
pub fn spawn(spec: &SpawnSpec<'_>) -> io::Result<Spawned> {
    let (ours, theirs) = UnixStream::pair()?;
    let channel_fd = 3 + spec.listeners.len() as i32;

    let mut mappings = Vec::with_capacity(spec.listeners.len() + 1);
    for (i, (fd, _)) in spec.listeners.iter().enumerate() {
        mappings.push(FdMapping {
            parent_fd: fd.try_clone()?,
            child_fd: 3 + i as i32,
        });
    }
    mappings.push(FdMapping {
        parent_fd: OwnedFd::from(theirs),
        child_fd: channel_fd,
    });

    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !OWN_VARS.iter().any(|own| k.as_bytes() == own.as_bytes()))
        .collect();
    let master_pid = std::process::id();
    let mut set = |k: &str, v: String| env.push((k.into(), v.into()));
    set("CLUTCH_ROLE", spec.role.as_str().to_string());
    set("CLUTCH_WORKER_ID", spec.id.to_string());
    set("CLUTCH_CHANNEL_FD", channel_fd.to_string());
    set("CLUTCH_MASTER_PID", master_pid.to_string());
    set("CLUTCH_NAME", spec.name.to_string());
    set("NODE_CHANNEL_FD", channel_fd.to_string());
    set("NODE_CHANNEL_SERIALIZATION_MODE", "json".to_string());
    if let Some(port) = spec.port {
        set("CLUTCH_PORT", port.to_string());
    }
    if !spec.listeners.is_empty() {
        set("LISTEN_FDS", spec.listeners.len().to_string());
        let names: Vec<&str> = spec.listeners.iter().map(|(_, n)| *n).collect();
        set("LISTEN_FDNAMES", names.join(":"));
    }
    for (k, v) in spec.extra_env {
        set(k, v.clone());
    }
    let plan = ExecPlan::new(spec.command, &env, !spec.listeners.is_empty())?;

    let mut cmd = tokio::process::Command::new(&spec.command[0]);
    cmd.stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(false)
        .fd_mappings(mappings)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let master = master_pid as i32;
    let mut plan = plan;
    // SAFETY: both closures make only async-signal-safe calls and do not allocate.
    unsafe {
        cmd.pre_exec(move || {
            crate::sys::process::die_with_parent(master)?;
            crate::sys::process::reset_signal_dispositions()?;
            crate::sys::process::restore_fd_limit()
        });
        cmd.pre_exec(move || plan.exec());
    }
    let child = cmd.spawn()?;
    let pid = child.id().expect("a just-spawned child has a pid");
    ours.set_nonblocking(true)?;
    Ok(Spawned {
        child,
        pid,
        channel: ours,
    })
}

/// argv and envp built before fork, so the child only fills in its pid and calls execvpe.
struct ExecPlan {
    _argv: Vec<Vec<u8>>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<Vec<u8>>,
    envp_ptrs: Vec<*const libc::c_char>,
    /// Points at the 10 digit places of `LISTEN_PID=`, when the child gets listeners.
    listen_pid: Option<*mut u8>,
}

// SAFETY: the raw pointers point into the Vecs owned by the same struct, which never
// reallocate after construction; the plan is only used by the forked child.
unsafe impl Send for ExecPlan {}
unsafe impl Sync for ExecPlan {}

impl ExecPlan {
    fn new(
        command: &[String],
        env: &[(OsString, OsString)],
        listen_pid: bool,
    ) -> io::Result<ExecPlan> {
        // The kernel takes C strings: a NUL byte would silently cut the value short.
        let nul_free = |b: &[u8], what: &dyn Fn() -> String| -> io::Result<Vec<u8>> {
            if b.contains(&0) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} holds a NUL byte; remove it", what()),
                ));
            }
            let mut v = b.to_vec();
            v.push(0);
            Ok(v)
        };
        let mut argv: Vec<Vec<u8>> = command
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let what = || match i {
                    0 => format!("the program {a:?}"),
                    _ => format!("argument {i} ({a:?})"),
                };
                nul_free(a.as_bytes(), &what)
            })
            .collect::<Result<_, _>>()?;
        let mut envp: Vec<Vec<u8>> = env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                nul_free(&kv, &|| format!("the environment variable {k:?}"))
            })
            .collect::<Result<_, _>>()?;
        if listen_pid {
            envp.push(b"LISTEN_PID=0000000000\0".to_vec());
        }
        let argv_ptrs = ptrs(&mut argv);
        let envp_ptrs = ptrs(&mut envp);
        let listen_pid = listen_pid.then(|| {
            let last = envp.last_mut().expect("pushed above");
            // SAFETY: "LISTEN_PID=" is 11 bytes; the digits follow within the Vec.
            unsafe { last.as_mut_ptr().add(11) }
        });
        Ok(ExecPlan {
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            listen_pid,
        })
    }

    /// In the child: set `LISTEN_PID` and exec. Returns only on failure.
    fn exec(&mut self) -> io::Result<()> {
        // SAFETY: getpid and execvpe are async-signal-safe; the digits are written into
        // memory this plan owns, NUL-terminated within its 10 places.
        unsafe {
            if let Some(digits) = self.listen_pid {
                let mut pid = libc::getpid() as u32;
                let mut tmp = [0u8; 10];
                let mut n = 0;
                loop {
                    tmp[n] = b'0' + (pid % 10) as u8;
                    n += 1;
                    pid /= 10;
                    if pid == 0 {
                        break;
                    }
                }
                for i in 0..n {
                    *digits.add(i) = tmp[n - 1 - i];
                }
                *digits.add(n) = 0;
            }
            libc::execvpe(
                self.argv_ptrs[0],
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
            );
        }
        Err(io::Error::last_os_error())
    }
}

fn ptrs(strings: &mut [Vec<u8>]) -> Vec<*const libc::c_char> {
    let mut v: Vec<*const libc::c_char> = strings
        .iter_mut()
        .map(|s| s.as_mut_ptr() as *const libc::c_char)
        .collect();
    v.push(std::ptr::null());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nul_error(command: &[&str], env: &[(&str, &str)]) -> String {
        let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        let env: Vec<(OsString, OsString)> =
            env.iter().map(|(k, v)| (k.into(), v.into())).collect();
        match ExecPlan::new(&command, &env, false) {
            Ok(_) => panic!("a NUL byte in {command:?} {env:?} was let through"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_nul_byte_error_names_the_argument_or_variable() {
        let e = nul_error(&["server", "--x", "a\0b"], &[]);
        assert!(e.contains("argument 2") && e.contains("a\\0b"), "{e}");
        let e = nul_error(&["ser\0ver"], &[]);
        assert!(e.contains("the program"), "{e}");
        let e = nul_error(&["server"], &[("OK", "1"), ("SECRET", "x\0y")]);
        assert!(e.contains("\"SECRET\"") && !e.contains("x\\0y"), "{e}");
    }
}
