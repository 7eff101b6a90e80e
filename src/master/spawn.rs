//! Starting one worker: its command, environment, inherited fds, process group and death
//! signal.
//!
//! The child's fds from 3 on are the listening sockets (if any, systemd's `LISTEN_FDS`
//! layout), then its end of the channel. `LISTEN_PID` must equal the child's own pid, which
//! is only known after fork, so the last `pre_exec` step writes the pid into an environment
//! prepared before fork and calls `execve` itself: no allocation happens in the child.
//!
//! The environment is the master's, then the configured `env`, then clutch's own
//! variables, each key once with the last value given. The program is looked up before fork
//! on that environment's `PATH`, the one the worker will see, as `execvpe` would have done
//! in the child (it is not async-signal-safe, and it searched the master's `PATH`).

use crate::master::worker::Role;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
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
    "CLUTCH_GENERATION",
    "CLUTCH_HEARTBEAT_MS",
    "NODE_CHANNEL_FD",
    "NODE_CHANNEL_SERIALIZATION_MODE",
    "NODE_UNIQUE_ID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    // systemd's watchdog is the master's (`master/systemd.rs`): a worker that pinged it
    // would answer for the whole service.
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
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
    /// stdout and stderr go to pipes the master reads (`--output prefix`), instead of the
    /// master's own.
    pub capture: bool,
}

/// A started child: the process and the master's end of its channel.
pub struct Spawned {
    /// Reaped by its owner task only ([`super::owner`]): a std child, so no runtime reaps
    /// it behind the owner's back.
    pub child: std::process::Child,
    pub pid: u32,
    pub channel: UnixStream,
    /// With `capture`: the read ends of its stdout and stderr.
    pub output: Option<(OwnedFd, OwnedFd)>,
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
    for (k, v) in spec.extra_env {
        set_var(&mut env, k.into(), v.into());
    }
    let master_pid = std::process::id();
    let mut set = |k: &str, v: String| set_var(&mut env, k.into(), v.into());
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
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_os_str());
    let program = resolve(&spec.command[0], path)?;
    let plan = ExecPlan::new(&program, spec.command, &env, !spec.listeners.is_empty())?;

    let mut cmd = std::process::Command::new(&program);
    if spec.capture {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    cmd.stdin(Stdio::null())
        .process_group(0)
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
    let mut child = cmd.spawn()?;
    let pid = child.id();
    ours.set_nonblocking(true)?;
    let output = match (child.stdout.take(), child.stderr.take()) {
        (Some(out), Some(err)) => Some((OwnedFd::from(out), OwnedFd::from(err))),
        _ => None,
    };
    Ok(Spawned {
        child,
        pid,
        channel: ours,
        output,
    })
}

/// Sets `key` to `value`, in place of an earlier value: `getenv` returns the first match,
/// so a second copy would never be seen.
fn set_var(env: &mut Vec<(OsString, OsString)>, key: OsString, value: OsString) {
    match env.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = value,
        None => env.push((key, value)),
    }
}

/// Where `execvp` looks when `PATH` is unset (glibc's default).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Finds `program` as `execvp` would, on `path` (the worker's `PATH`): a name holding a `/`
/// is used as is; otherwise the first executable regular file named so in a `PATH`
/// directory (an empty entry is the current directory).
fn resolve(program: &str, path: Option<&OsStr>) -> io::Result<PathBuf> {
    // A NUL byte is left for `ExecPlan::new` to report, with the other arguments.
    if program.contains('/') || program.contains('\0') {
        return Ok(PathBuf::from(program));
    }
    if program.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the program name is empty; give the command to run",
        ));
    }
    let path = path.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut not_executable = None;
    for dir in path.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(program);
        if !candidate.is_file() {
            continue;
        }
        if nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok() {
            return Ok(candidate);
        }
        not_executable.get_or_insert(candidate);
    }
    let path = path.to_string_lossy();
    Err(match not_executable {
        Some(found) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{program:?} was found at {} but is not executable (searched the worker's \
                 PATH={path}); make it executable",
                found.display()
            ),
        ),
        None => io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{program:?} was not found on the worker's PATH={path}; give its full path, \
                 or set PATH in the worker's env to a directory that holds it"
            ),
        ),
    })
}

/// The program, argv and envp built before fork, so the child only fills in its pid and
/// calls execve.
struct ExecPlan {
    _program: Vec<u8>,
    program_ptr: *const libc::c_char,
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
        program: &Path,
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
        let program = nul_free(program.as_os_str().as_bytes(), &|| {
            format!("the program path {program:?}")
        })?;
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
            program_ptr: program.as_ptr().cast(),
            _program: program,
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            listen_pid,
        })
    }

    /// In the child: set `LISTEN_PID` and exec. Returns only on failure.
    fn exec(&mut self) -> io::Result<()> {
        // SAFETY: getpid and execve are async-signal-safe; the digits are written into
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
            libc::execve(
                self.program_ptr,
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
        match ExecPlan::new(Path::new("/bin/server"), &command, &env, false) {
            Ok(_) => panic!("a NUL byte in {command:?} {env:?} was let through"),
            Err(e) => e.to_string(),
        }
    }

    /// A temp dir holding `names`, each a file with `mode`.
    fn dir_with(names: &[(&str, u32)]) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for (name, mode) in names {
            let p = dir.path().join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        dir
    }

    #[test]
    fn the_program_is_the_first_executable_file_on_the_given_path() {
        let a = dir_with(&[("prog", 0o644)]);
        let b = dir_with(&[]);
        std::fs::create_dir(b.path().join("prog")).unwrap();
        let c = dir_with(&[("prog", 0o755)]);
        let d = dir_with(&[("prog", 0o755)]);
        let path = [&a, &b, &c, &d]
            .map(|d| d.path().display().to_string())
            .join(":");
        let found = resolve("prog", Some(OsStr::new(&path))).unwrap();
        assert_eq!(found, c.path().join("prog"));
        assert_eq!(
            resolve("./x/prog", Some(OsStr::new(&path))).unwrap(),
            Path::new("./x/prog")
        );
    }

    #[test]
    fn a_missing_program_error_names_it_and_the_path() {
        let a = dir_with(&[("prog", 0o644)]);
        let path = format!("{}:/nonexistent", a.path().display());
        let e = resolve("other", Some(OsStr::new(&path))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let text = e.to_string();
        assert!(text.contains("\"other\"") && text.contains(&path), "{text}");
        let e = resolve("prog", Some(OsStr::new(&path))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("not executable"), "{e}");
    }

    #[test]
    fn a_variable_set_again_keeps_one_entry_with_the_last_value() {
        let mut env = vec![("PATH".into(), "/master".into()), ("A".into(), "1".into())];
        set_var(&mut env, "PATH".into(), "/configured".into());
        set_var(&mut env, "B".into(), "2".into());
        let expected: Vec<(OsString, OsString)> = vec![
            ("PATH".into(), "/configured".into()),
            ("A".into(), "1".into()),
            ("B".into(), "2".into()),
        ];
        assert_eq!(env, expected);
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
