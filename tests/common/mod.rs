//! Helpers the integration tests share: the fixture binaries, waiting on conditions with
//! deadlines, and checking processes.
#![allow(dead_code)]

use clutch::{Master, MasterBuilder, Message};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The scriptable Rust worker (fixtures/worker.rs).
pub fn fixture() -> &'static str {
    env!("CARGO_BIN_EXE_clutch-fixture")
}

/// The clutch CLI.
pub fn clutch_bin() -> &'static str {
    env!("CARGO_BIN_EXE_clutch")
}

/// A fixture command with arguments.
pub fn fixture_cmd(args: &[&str]) -> Vec<String> {
    std::iter::once(fixture().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect()
}

/// A builder with fixture agent and app workers.
pub fn cluster(workers: usize, agent_args: Option<&[&str]>, app_args: &[&str]) -> MasterBuilder {
    let mut b = Master::builder()
        .workers(workers)
        .app(fixture_cmd(app_args));
    if let Some(a) = agent_args {
        b = b.agent(fixture_cmd(a));
    }
    b.ready_timeout(Duration::from_secs(20))
        .kill_timeout(Duration::from_secs(5))
}

/// Starts `builder` and waits (with [`DEADLINE`]) until the cluster is ready.
pub async fn start_ready(builder: MasterBuilder) -> Master {
    let mut m = builder.start().expect("the cluster starts");
    tokio::time::timeout(DEADLINE, m.ready())
        .await
        .expect("ready in time")
        .expect("the cluster is ready");
    m
}

/// A ready cluster of fixtures: an agent and `apps` app workers; (handle, agent pid, app
/// pids).
pub async fn ready_cluster(apps: usize) -> (Master, u32, Vec<u32>) {
    let m = start_ready(cluster(apps, Some(&[]), &[])).await;
    let agent = live_pid(&m, clutch::Role::Agent, 0).expect("an agent");
    let pids = live_app_pids(&m);
    assert_eq!(pids.len(), apps);
    (m, agent, pids)
}

/// The usual deadline for a condition.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Async: polls `cond` until it holds or `timeout` passes.
pub async fn wait_until_async(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Receives messages until one satisfies `pred`, or panics after `timeout` naming `what`.
pub async fn expect(
    master: &mut Master,
    what: &str,
    timeout: Duration,
    mut pred: impl FnMut(&Message) -> bool,
) -> Message {
    let found = tokio::time::timeout(timeout, async {
        while let Some(m) = master.recv().await {
            if pred(&m) {
                return Some(m);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(m)) => m,
        Ok(None) => panic!("the master ended before {what}"),
        Err(_) => panic!("no {what} within {timeout:?}"),
    }
}

/// A `got` report from a fixture worker: (role, id, pid, the message it got).
pub fn got(m: &Message) -> Option<(&str, u64, u64, &Value)> {
    if m.action != "got" {
        return None;
    }
    Some((
        m.data["role"].as_str()?,
        m.data["id"].as_u64()?,
        m.data["pid"].as_u64()?,
        &m.data["msg"],
    ))
}

/// Whether `pid` is a live process (not a zombie, not gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// Every pid whose parent is `ppid`.
pub fn children_of(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            && let Some(rest) = stat.rsplit(')').next()
        {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(ppid) {
                out.push(pid);
            }
        }
    }
    out
}

/// Sends `sig` to `pid`.
pub fn kill(pid: u32, sig: i32) {
    // SAFETY: kill with plain integers.
    unsafe { libc::kill(pid as i32, sig) };
}

/// A child `clutch` process killed (and reaped) when dropped, so a failing test leaves no
/// process behind.
pub struct CliProcess(pub std::process::Child);

impl Drop for CliProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for a child process to exit within `timeout`; its status, or `None`.
pub fn wait_exit(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// The `clutch` command line, run as a real process: its output, and the parent channel.

/// `clutch start ARGS`, logging at info without colours, and with no channel fd inherited
/// from the test's own environment.
pub fn clutch_start(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(clutch_bin());
    cmd.arg("start");
    // Tests run many masters of the default name at once: only the ones about the control
    // socket get one.
    if !args
        .iter()
        .any(|a| a.starts_with("--control") || *a == "--no-control")
    {
        cmd.arg("--no-control");
    }
    cmd.args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("CLUTCH_CHANNEL_FD")
        .env_remove("NODE_CHANNEL_FD");
    cmd
}

/// `clutch start -w 2` with the fixture as the agent (with `agent_arg`) and as the app (with
/// `app_arg`, if any), plus `flags`.
pub fn clutch_start_fixtures(
    agent_arg: &str,
    app_arg: Option<&str>,
    flags: &[&str],
) -> std::process::Command {
    let agent = format!("{} {agent_arg}", fixture());
    let mut args = vec!["-w", "2", "--agent", &agent];
    args.extend_from_slice(flags);
    args.extend(["--", fixture()]);
    args.extend(app_arg);
    clutch_start(&args)
}

/// What a child writes to one pipe, collected by a thread as it comes.
#[derive(Clone, Default)]
pub struct Collected(std::sync::Arc<std::sync::Mutex<CollectedText>>);

#[derive(Default)]
struct CollectedText {
    text: String,
    closed: bool,
}

impl Collected {
    /// Starts collecting `pipe` until end of file (when every process holding it is gone).
    pub fn from_pipe(pipe: impl std::io::Read + Send + 'static) -> Collected {
        use std::io::BufRead;
        let out = Collected::default();
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => sink
                        .0
                        .lock()
                        .unwrap()
                        .text
                        .push_str(&String::from_utf8_lossy(&line)),
                }
            }
            sink.0.lock().unwrap().closed = true;
        });
        out
    }

    /// Everything collected so far.
    pub fn text(&self) -> String {
        self.0.lock().unwrap().text.clone()
    }

    /// Whether the pipe reached end of file.
    pub fn closed(&self) -> bool {
        self.0.lock().unwrap().closed
    }

    /// The first line satisfying `pred`, waiting up to `timeout` for it.
    pub fn wait_for_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let mut found = None;
        wait_until(timeout, || {
            found = self.text().lines().find(|l| pred(l)).map(str::to_string);
            found.is_some()
        });
        found
    }
}

/// The test's end of a `clutch` process's parent channel: a thread reads its lines.
struct ParentEnd {
    stream: std::os::unix::net::UnixStream,
    lines: std::sync::mpsc::Receiver<Value>,
    closed: bool,
}

/// A running `clutch` process: killed and reaped on drop (its guard then kills its workers),
/// with its stdout and stderr collected and, if started so, its parent channel.
pub struct Clutch {
    pub process: CliProcess,
    pub stdout: Collected,
    pub stderr: Collected,
    parent: Option<ParentEnd>,
    /// Every message received on the parent channel, in order.
    pub seen: Vec<Value>,
    /// Messages received that no `expect` has returned yet.
    unmatched: std::collections::VecDeque<Value>,
}

impl Clutch {
    /// Spawns `cmd` with piped output and no parent channel.
    pub fn spawn(cmd: std::process::Command) -> Clutch {
        Self::spawn_inner(cmd, None)
    }

    /// Spawns `cmd` with a socketpair end at fd 3 and `CLUTCH_CHANNEL_FD=3`, so clutch
    /// talks to the test as its parent.
    pub fn spawn_with_parent(mut cmd: std::process::Command) -> Clutch {
        use command_fds::{CommandFdExt, FdMapping};
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
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("bad line from clutch: {line}: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Self::spawn_inner(
            cmd,
            Some(ParentEnd {
                stream: ours,
                lines: rx,
                closed: false,
            }),
        )
    }

    fn spawn_inner(mut cmd: std::process::Command, parent: Option<ParentEnd>) -> Clutch {
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The command holds the child's end of the channel until it is dropped.
        drop(cmd);
        let stdout = Collected::from_pipe(child.stdout.take().unwrap());
        let stderr = Collected::from_pipe(child.stderr.take().unwrap());
        Clutch {
            process: CliProcess(child),
            stdout,
            stderr,
            parent,
            seen: Vec::new(),
            unmatched: std::collections::VecDeque::new(),
        }
    }

    /// The clutch process's pid.
    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }

    /// Sends `sig` to the clutch process.
    pub fn signal(&self, sig: i32) {
        kill(self.pid(), sig);
    }

    /// Waits for clutch to exit within `timeout`; its status, or `None`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        wait_exit(&mut self.process.0, timeout)
    }

    /// Waits for clutch to exit and for its stdout and stderr to close (every process that
    /// inherited them is gone), or panics naming what did not happen.
    pub fn finish(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let end = Instant::now() + timeout;
        let status = self.wait_exit(timeout).unwrap_or_else(|| {
            panic!(
                "clutch still running after {timeout:?}; stderr:\n{}",
                self.stderr.text()
            )
        });
        let closed = wait_until(end.saturating_duration_since(Instant::now()), || {
            self.stdout.closed() && self.stderr.closed()
        });
        assert!(
            closed,
            "clutch exited but its output is still open (a process it started lives on); stderr:\n{}",
            self.stderr.text()
        );
        status
    }

    fn parent(&mut self) -> &mut ParentEnd {
        self.parent
            .as_mut()
            .expect("clutch was started without a parent channel")
    }

    /// Sends one message to clutch on the parent channel.
    pub fn send(&mut self, msg: &Value) {
        use std::io::Write;
        let mut line = serde_json::to_vec(msg).unwrap();
        line.push(b'\n');
        (&self.parent().stream).write_all(&line).unwrap();
    }

    /// The next message on the parent channel within `timeout`, logged in `seen`; `None`
    /// on timeout or once the channel is closed.
    fn recv(&mut self, timeout: Duration) -> Option<Value> {
        let p = self.parent();
        match p.lines.recv_timeout(timeout) {
            Ok(v) => {
                self.seen.push(v.clone());
                Some(v)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                p.closed = true;
                None
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
        }
    }

    /// The first message satisfying `pred` that no earlier `expect` returned, waiting up to
    /// `timeout` for it; panics naming `what`, with what was seen and clutch's stderr.
    pub fn expect(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        if let Some(i) = self.unmatched.iter().position(&mut pred) {
            return self.unmatched.remove(i).expect("found above");
        }
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Some(v) if pred(&v) => return v,
                Some(v) => self.unmatched.push_back(v),
                None => {
                    let closed = self.parent().closed;
                    panic!(
                        "no {what} within {timeout:?} (channel closed: {closed}); seen: {:?}\nstderr:\n{}",
                        self.seen_actions(),
                        self.stderr.text()
                    )
                }
            }
        }
    }

    /// Waits for `cluster-ready` and returns its data.
    pub fn expect_ready(&mut self, timeout: Duration) -> Value {
        self.expect("cluster-ready", timeout, |m| m["action"] == "cluster-ready")["data"].clone()
    }

    /// Waits for `n` `started` reports from fixture workers and returns their data.
    pub fn expect_started(&mut self, n: usize, timeout: Duration) -> Vec<Value> {
        let end = Instant::now() + timeout;
        (0..n)
            .map(|_| {
                let left = end.saturating_duration_since(Instant::now());
                self.expect("started reports", left, |m| m["action"] == "started")["data"].clone()
            })
            .collect()
    }

    /// Receives every message until the parent channel closes (all of them are in `seen`),
    /// or panics after `timeout`.
    pub fn wait_closed(&mut self, timeout: Duration) {
        let end = Instant::now() + timeout;
        while !self.parent().closed {
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the parent channel still open after {timeout:?}; seen: {:?}\nstderr:\n{}",
                self.seen_actions(),
                self.stderr.text()
            );
            if let Some(v) = self.recv(left) {
                self.unmatched.push_back(v);
            }
        }
    }

    /// The actions seen so far on the parent channel, for failure messages.
    pub fn seen_actions(&self) -> Vec<String> {
        self.seen
            .iter()
            .map(|m| format!("{}{}", m["action"], m["data"]))
            .collect()
    }
}

/// Every pid in a fixture's `started` report: the worker's and its grandchild's, if any.
pub fn started_pids(started: &[Value]) -> Vec<u32> {
    started
        .iter()
        .flat_map(|s| [s["pid"].as_u64(), s["grandchild"].as_u64()])
        .flatten()
        .map(|p| p as u32)
        .collect()
}

// The library `Master`: what fixture workers report, and orders for them.

/// A fixture's `started` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartedReport {
    pub role: clutch::Role,
    pub id: u32,
    pub pid: u32,
    pub grandchild: Option<u32>,
}

/// The `started` report in `m`, if it is one.
pub fn started_report(m: &Message) -> Option<StartedReport> {
    if m.action != "started" {
        return None;
    }
    let role = match m.data["role"].as_str()? {
        "agent" => clutch::Role::Agent,
        "app" => clutch::Role::App,
        _ => return None,
    };
    Some(StartedReport {
        role,
        id: m.data["id"].as_u64()? as u32,
        pid: m.data["pid"].as_u64()? as u32,
        grandchild: m.data["grandchild"].as_u64().map(|p| p as u32),
    })
}

/// Whether `m` is a `got` report from the worker with `pid` of a message with `action`.
pub fn got_by(m: &Message, pid: u32, action: &str) -> bool {
    got(m).is_some_and(|(_, _, p, msg)| p == u64::from(pid) && msg["action"] == action)
}

/// Receives every message until `done` holds for all of them so far, and returns them;
/// panics after `timeout` naming `what` and listing what came.
pub async fn collect_until(
    master: &mut Master,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Message]) -> bool,
) -> Vec<Message> {
    let mut seen = Vec::new();
    let end = tokio::time::Instant::now() + timeout;
    while !done(&seen) {
        match tokio::time::timeout_at(end, master.recv()).await {
            Ok(Some(m)) => seen.push(m),
            Ok(None) => panic!("the master ended before {what}; seen: {}", summary(&seen)),
            Err(_) => panic!("no {what} within {timeout:?}; seen: {}", summary(&seen)),
        }
    }
    seen
}

/// Messages as `action data` lines, for failure messages.
pub fn summary(msgs: &[Message]) -> String {
    msgs.iter()
        .map(|m| format!("\n  {} {}", m.action, m.data))
        .collect()
}

/// The pid of the live worker in slot `id` of `role`, from the handle's list.
pub fn live_pid(master: &Master, role: clutch::Role, id: u32) -> Option<u32> {
    master
        .workers()
        .iter()
        .find(|w| w.role == role && w.id == id)
        .map(|w| w.pid)
}

/// The pids of the live app workers, in slot order.
pub fn live_app_pids(master: &Master) -> Vec<u32> {
    let mut apps: Vec<_> = master
        .workers()
        .into_iter()
        .filter(|w| w.role == clutch::Role::App)
        .collect();
    apps.sort_by_key(|w| w.id);
    apps.into_iter().map(|w| w.pid).collect()
}

/// A fixture worker to give an order to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// The app worker with this pid.
    App(u32),
    /// The agent.
    Agent,
}

/// A message from the parent to one worker.
pub fn order(to: To, action: &str, data: Value) -> Message {
    let msg = Message::new(action, data);
    match to {
        To::App(pid) => msg.to_pid(pid),
        To::Agent => msg.to(clutch::Endpoint::Agent),
    }
}

/// Has worker `by` send `msg` as is (`do:send`).
pub fn have_send(master: &Master, by: To, msg: Value) {
    master.send(&order(by, "do:send", msg));
}

/// Sends `ping` with `token` from the parent to `to` and waits for its `got` report: proof
/// that the master routes and the worker reads.
pub async fn ping(master: &mut Master, to: To, pid: u32, token: &str) {
    master.send(&order(to, "ping", Value::from(token)));
    expect(
        master,
        &format!("ping {token} reaching pid {pid}"),
        DEADLINE,
        |m| got_by(m, pid, "ping") && got(m).is_some_and(|(_, _, _, msg)| msg["data"] == token),
    )
    .await;
}
pub mod ctl;
pub mod egg;
pub mod memory;
pub mod net;
pub mod stdio;
pub mod systemd;
