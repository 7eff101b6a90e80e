//! A `clutch start` of fixtures with a control socket in a temp dir, and `clutch ctl`
//! against it, both as real processes.

use super::{Clutch, DEADLINE, clutch_bin, clutch_start, fixture, wait_until};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A running `clutch start` with its control socket at `socket`.
pub struct CtlCluster {
    pub clutch: Clutch,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

/// `clutch start -w APPS --agent FIXTURE --control-socket DIR/ctl.sock FLAGS -- FIXTURE`,
/// waited for until `ctl list` says it is ready.
pub fn start(apps: usize, flags: &[&str]) -> CtlCluster {
    start_with_app(apps, flags, &[])
}

/// As [`start`], with `app_args` for the app fixture.
pub fn start_with_app(apps: usize, flags: &[&str], app_args: &[&str]) -> CtlCluster {
    start_full(apps, flags, app_args, None)
}

/// As [`start_with_app`], with the master's stdout on `stdout` (not collected) when given.
pub fn start_full(
    apps: usize,
    flags: &[&str],
    app_args: &[&str],
    stdout: Option<std::os::fd::OwnedFd>,
) -> CtlCluster {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let agent = fixture().to_string();
    let apps = apps.to_string();
    let mut args = vec!["-w", &apps, "--agent", &agent, "--kill-timeout", "5000"];
    let sock = socket.to_str().unwrap().to_string();
    args.extend(["--control-socket", &sock]);
    args.extend_from_slice(flags);
    args.extend(["--", fixture()]);
    args.extend_from_slice(app_args);
    let clutch = match stdout {
        None => Clutch::spawn(clutch_start(&args)),
        Some(fd) => Clutch::spawn_with_stdout(clutch_start(&args), fd),
    };
    let c = CtlCluster {
        clutch,
        socket,
        dir,
    };
    c.wait_for(
        |l| l["cluster"]["state"] == "ready",
        "the cluster to be ready",
    );
    c
}

/// `clutch start --control-socket DIR/ctl.sock --config DIR/clutch.json FLAGS` with
/// `config` in the file and no APP_CMD (the file names the app), waited for until ready.
pub fn start_with_config(config: &Value, flags: &[&str]) -> CtlCluster {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let path = dir.path().join("clutch.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let (sock, file) = (socket.to_str().unwrap(), path.to_str().unwrap());
    let mut args = vec!["--control-socket", sock, "--config", file];
    args.extend_from_slice(flags);
    let clutch = Clutch::spawn(clutch_start(&args));
    let c = CtlCluster {
        clutch,
        socket,
        dir,
    };
    c.wait_for(
        |l| l["cluster"]["state"] == "ready",
        "the cluster to be ready",
    );
    c
}

impl CtlCluster {
    /// Replaces the config file [`start_with_config`] wrote.
    pub fn write_config(&self, config: &Value) {
        let path = self.dir.path().join("clutch.json");
        std::fs::write(path, config.to_string()).unwrap();
    }

    /// The pids of the app workers in `list`, by slot.
    pub fn app_pids(list: &Value) -> Vec<u64> {
        apps(list)
            .iter()
            .filter_map(|w| w["pid"].as_u64())
            .collect()
    }

    /// `clutch ctl --socket SOCKET ARGS`.
    pub fn ctl_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(clutch_bin());
        cmd.arg("ctl").arg("--socket").arg(&self.socket).args(args);
        cmd
    }

    /// Runs `clutch ctl ARGS` to its end.
    /// `clutch ctl watch --json`, running: the process (killed when dropped) and its events
    /// as they come, each line parsed.
    pub fn watch_json(&self) -> (super::CliProcess, std::sync::mpsc::Receiver<Value>) {
        use std::io::BufRead;
        let mut watch = self
            .ctl_cmd(&["watch", "--json"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = watch.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Value>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        (super::CliProcess(watch), rx)
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_cmd(args).output().unwrap()
    }

    /// Runs `clutch ctl ARGS`, which must succeed and print JSON.
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "clutch ctl {args:?} failed: {}\nmaster's stderr:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.clutch.stderr.text()
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "clutch ctl {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `ctl list --json`, or `None` while the master does not answer.
    pub fn list(&self) -> Option<Value> {
        let out = self.ctl(&["list", "--json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    /// Polls `ctl list --json` until `cond` holds, or panics naming `what`.
    pub fn wait_for(&self, cond: impl Fn(&Value) -> bool, what: &str) -> Value {
        let mut last = None;
        let ok = wait_until(DEADLINE * 2, || {
            last = self.list();
            last.as_ref().is_some_and(&cond)
        });
        assert!(
            ok,
            "no {what}: last list {last:?}\nmaster's stderr:\n{}",
            self.clutch.stderr.text()
        );
        last.unwrap()
    }

    /// Lets every user reach the socket, so that the master's own uid check (not the file's
    /// mode) is what decides: the directory traversable, the socket 0666. Tests only.
    pub fn open_to_everyone(&self) {
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::set_permissions(&self.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
}

/// The rows of a `list --json` for app slots.
pub fn apps(list: &Value) -> Vec<&Value> {
    list["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["role"] == "app")
        .collect()
}

/// The row of slot `id` (the first, when it has several workers).
pub fn row(list: &Value, id: u64) -> &Value {
    list["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == id)
        .unwrap_or_else(|| panic!("no slot {id} in {list}"))
}

/// Every app slot is a single ready worker, `n` of them.
pub fn all_ready(list: &Value, n: usize) -> bool {
    let a = apps(list);
    a.len() == n && a.iter().all(|w| w["state"] == "ready")
}
