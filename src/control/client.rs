//! `clutch ctl`: the command line client of the control socket.
//!
//! Exit codes: 0 done; 1 the operation failed or timed out; 2 a usage error, a refusal, or
//! no master running.

use super::protocol::parse_signal;
use super::{Scale, Target};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What `clutch ctl --help` says after the commands.
pub const AFTER_HELP: &str = "\
Targets: `all`, `app` (every app worker), `agent`, a slot id (`3`), or `pid:1234`.

Roles: viewer (list, inspect, stats, watch, logs), operator (+ restart, stop, start, scale, \
signal, send, request, reload), admin (+ kill, shutdown). The master's own user and root are admin; other \
users need `clutch start --control-users FILE`.

The socket: --socket PATH, else $XDG_RUNTIME_DIR/clutch/NAME.sock, else \
/tmp/clutch-UID/NAME.sock (NAME from --name, default clutch).

Exit codes: 0 done, 1 the operation failed or timed out, 2 usage error, refused, or no \
master running.";

/// `clutch ctl`'s flags and command.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The cluster's name (`clutch start --name`), to find its socket [default: clutch].
    #[arg(long, conflicts_with = "socket")]
    pub name: Option<String>,
    /// The control socket's path (`clutch start --control-socket`).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// How long to wait for an operation to be done, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// A table of every slot and worker: id, role, pid, state (starting, ready, stopping,
    /// parked, stopped), generation, uptime, restarts, CPU % (over its life), RSS, last exit.
    #[command(alias = "ls")]
    List {
        /// `{"cluster": {...}, "workers": [{"id", "role", "pid", "state", "generation",
        /// "ready", "uptime_ms", "restarts", "cpu_percent", "rss_bytes", "last_exit"}]}`.
        #[arg(long)]
        json: bool,
    },
    /// Everything known about one slot's workers (JSON): command, environment (values of
    /// keys that look secret redacted), open fds, generation, why it is stopping.
    Inspect { target: Target },
    /// Cluster counters: messages routed and dropped by reason, connections handed off,
    /// restarts and exits by reason, the most frequent message actions (with how many
    /// distinct ones; past 256 the rest count as "other"), log lines dropped.
    Stats {
        #[arg(long)]
        json: bool,
        /// How many actions to list, most frequent first.
        #[arg(long, value_name = "N", default_value_t = 10)]
        top: usize,
    },
    /// The last N lines each targeted worker wrote on stdout and stderr, each prefixed
    /// with its name (`[app 2] ...`); a slot's lines survive its restarts. Needs a master
    /// started with `--output prefix` (exit 2 otherwise).
    Logs {
        /// Follow: then print each new line as it is written, until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Lines per worker.
        #[arg(short = 'n', long, value_name = "N", default_value_t = 20)]
        lines: usize,
        /// all, app, agent, a slot id or pid:P [default: all].
        target: Option<Target>,
    },
    /// A snapshot, then one line per event as it happens (worker.spawned, worker.ready,
    /// worker.stopping, worker.exited, worker.restarted, worker.parked, cluster.ready,
    /// cluster.scaled, ctl.command), each with a sequence number and a time.
    Watch {
        /// Print each event as its JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Graceful: a new worker in each slot, then the old one stopped (SIGTERM, then SIGKILL
    /// after the kill timeout). Not counted as a crash. Waits until done.
    Restart { target: Target },
    /// Stop the slot's worker; the slot stays stopped (not restarted) until `start`.
    Stop { target: Target },
    /// Start a stopped or parked slot.
    Start { target: Target },
    /// Run N app workers, or K more (+K) or fewer (-K); retired workers stop gracefully,
    /// new ones take the next slot ids.
    Scale {
        #[arg(allow_hyphen_values = true, value_name = "N|+K|-K")]
        workers: Scale,
    },
    /// Signal each matching worker's process group (default SIGKILL). The exit is a crash
    /// for the restart policy: the slot restarts as --restart says.
    Kill {
        target: Target,
        #[arg(long, value_name = "SIG", default_value = "KILL")]
        signal: String,
    },
    /// Send any signal (USR2, HUP, ...) to each matching worker's process (not its group).
    Signal { signal: String, target: Target },
    /// Route a message as the parent would: to the master, the agent or the app workers.
    Send {
        /// app, agent or master [default: as the message routes: master].
        #[arg(long)]
        to: Option<String>,
        /// With --to app: only the app worker with this pid.
        #[arg(long)]
        pid: Option<u32>,
        action: String,
        /// The message's data, as JSON.
        data: Option<String>,
    },
    /// Send a request as the parent (with a requestId) and print the reply (JSON). Exit 1
    /// when no reply comes within --timeout, or when the reply is an error (the master
    /// answers at once when there is no such receiver, or it exits before answering).
    Request {
        /// app or agent (the master itself answers no requests) [default: the worker
        /// with --pid].
        #[arg(long)]
        to: Option<String>,
        /// Only the worker with this pid (with --to app, or alone).
        #[arg(long)]
        pid: Option<u32>,
        /// How long to wait for the reply, in ms.
        #[arg(long, value_name = "MS", default_value_t = 5000)]
        timeout: u64,
        action: String,
        /// The request's data, as JSON.
        data: Option<String>,
    },
    /// Rolling reload: every worker replaced by one of a new generation, the app slots in
    /// order then the agent, a new worker first and the old one stopped once it is ready
    /// (as SIGHUP does). A new worker that fails or is not ready in time aborts it: the
    /// slots not reached keep their old workers. Shows each step; exit 1 when aborted.
    ///
    /// A master started with --config reads it again first (under the flags it was started
    /// with): the new generation runs with the new command, env and worker settings, and
    /// each change is shown (secret env values redacted). A config error, or a change only
    /// a restart of the master can make (port, name, sticky, ...), refuses the reload with
    /// nothing changed: exit 1, naming the key.
    Reload {
        /// Slots replaced at once (new workers starting together): a count or a
        /// percentage of the app slots (25%) [default: 1].
        #[arg(long, value_name = "N|P%")]
        batch: Option<super::Batch>,
        /// At most N workers beyond one per slot alive at once, counting the old ones still
        /// stopping: a new worker waits for an old one to exit [default: the master's
        /// --surge, else no limit but the batch].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        surge: Option<u64>,
        /// One JSON object per step.
        #[arg(long)]
        json: bool,
    },
    /// The same graceful stop as SIGTERM; waits until the master is gone.
    Shutdown,
}

/// Runs `clutch ctl`; the exit code.
pub fn run(args: CtlArgs) -> u8 {
    match run_inner(args) {
        Ok(()) => 0,
        Err((code, msg)) => {
            let _ = writeln!(std::io::stderr(), "clutch ctl: {msg}");
            code
        }
    }
}

type Failed = (u8, String);

fn run_inner(args: CtlArgs) -> Result<(), Failed> {
    let name = args.name.clone().unwrap_or_else(|| "clutch".into());
    let (path, label) = match &args.socket {
        Some(p) => (p.clone(), format!("at {}", p.display())),
        None => (super::socket::default_path(&name), format!("named {name}")),
    };
    let timeout = Duration::from_secs(args.timeout);
    let (cmd, wire_args) = request_of(&args.command)?;
    let mut conn = Connection::open(&path, &label)?;
    if let CtlCommand::Watch { json } = args.command {
        return conn.watch(json);
    }
    if let CtlCommand::Reload { json, .. } = args.command {
        return conn.reload(wire_args, json, timeout);
    }
    if let CtlCommand::Logs { .. } = args.command {
        return conn.logs(wire_args);
    }
    let timeout = match args.command {
        // The master gives up after the request's own timeout; this waits a little longer.
        CtlCommand::Request { timeout: ms, .. } => {
            Duration::from_millis(ms) + Duration::from_secs(5)
        }
        _ => timeout,
    };
    let result = conn.call(cmd, wire_args, timeout)?;
    let out = std::io::stdout();
    let mut out = out.lock();
    match &args.command {
        CtlCommand::List { json: true } | CtlCommand::Stats { json: true, .. } => {
            let _ = writeln!(out, "{result}");
        }
        CtlCommand::List { json: false } => {
            let _ = out.write_all(table(&result).as_bytes());
        }
        CtlCommand::Stats { json: false, .. } | CtlCommand::Inspect { .. } => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&result).unwrap_or_default()
            );
        }
        CtlCommand::Shutdown => {
            let _ = writeln!(out, "stopping");
            let end = Instant::now() + timeout;
            while path.exists() {
                if Instant::now() >= end {
                    return Err((1, format!("still running after {}s", timeout.as_secs())));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = writeln!(out, "stopped");
        }
        CtlCommand::Restart { .. }
        | CtlCommand::Stop { .. }
        | CtlCommand::Start { .. }
        | CtlCommand::Scale { .. } => {
            let _ = writeln!(
                out,
                "{}: done in {} ms",
                result["command"].as_str().unwrap_or("?"),
                result["took_ms"]
            );
        }
        _ => {
            let _ = writeln!(out, "{result}");
        }
    }
    Ok(())
}

/// The wire command and its arguments; a bad signal or message is a usage error here.
fn request_of(c: &CtlCommand) -> Result<(&'static str, Value), Failed> {
    let usage = |e: String| (2, e);
    Ok(match c {
        CtlCommand::List { .. } => ("list", json!({})),
        CtlCommand::Inspect { target } => ("inspect", json!({"target": target.to_string()})),
        CtlCommand::Stats { top, .. } => ("stats", json!({"top": top})),
        CtlCommand::Logs {
            follow,
            lines,
            target,
        } => (
            "logs",
            json!({"follow": follow, "lines": lines,
                   "target": (*target).unwrap_or(Target::All).to_string()}),
        ),
        CtlCommand::Watch { .. } => ("watch", json!({})),
        CtlCommand::Restart { target } => ("restart", json!({"target": target.to_string()})),
        CtlCommand::Stop { target } => ("stop", json!({"target": target.to_string()})),
        CtlCommand::Start { target } => ("start", json!({"target": target.to_string()})),
        CtlCommand::Scale { workers } => (
            "scale",
            json!({"workers": match workers {
                Scale::To(n) => n.to_string(),
                Scale::Up(k) => format!("+{k}"),
                Scale::Down(k) => format!("-{k}"),
            }}),
        ),
        CtlCommand::Kill { target, signal } => {
            let sig = parse_signal(signal).map_err(usage)?;
            (
                "kill",
                json!({"target": target.to_string(), "signal": sig.as_str()}),
            )
        }
        CtlCommand::Signal { signal, target } => {
            let sig = parse_signal(signal).map_err(usage)?;
            (
                "signal",
                json!({"target": target.to_string(), "signal": sig.as_str()}),
            )
        }
        CtlCommand::Send {
            to,
            pid,
            action,
            data,
        } => ("send", json!({"message": message(to, pid, action, data)?})),
        CtlCommand::Request {
            to,
            pid,
            timeout,
            action,
            data,
        } => {
            if *timeout == 0 {
                return Err(usage("--timeout must be more than 0 ms".into()));
            }
            (
                "request",
                json!({"message": message(to, pid, action, data)?, "timeout_ms": timeout}),
            )
        }
        CtlCommand::Reload { batch, surge, .. } => {
            let mut args = match batch {
                None => json!({}),
                Some(super::Batch::Count(n)) => json!({"batch": n}),
                Some(super::Batch::Percent(p)) => json!({"batch": format!("{p}%")}),
            };
            if let Some(n) = surge {
                args["surge"] = json!(n);
            }
            ("reload", args)
        }
        CtlCommand::Shutdown => ("shutdown", json!({})),
    })
}

/// The lines of a `reload.started` event's changed settings.
fn changes(event: &Value) -> impl Iterator<Item = &str> {
    event["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str())
}

/// The message `send` and `request` route.
fn message(
    to: &Option<String>,
    pid: &Option<u32>,
    action: &str,
    data: &Option<String>,
) -> Result<Value, Failed> {
    let data: Value = match data {
        Some(d) => {
            serde_json::from_str(d).map_err(|e| (2, format!("the data `{d}` is not JSON: {e}")))?
        }
        None => Value::Null,
    };
    let mut msg = json!({"action": action, "data": data});
    if let Some(to) = to {
        msg["to"] = json!(to);
    }
    if let Some(pid) = pid {
        msg["receiverPid"] = json!(pid);
    }
    Ok(msg)
}

/// The end of a streamed answer (`watch`, `logs`): `None` for an event line; the result
/// line otherwise, a refusal whose error starts with one of `usage` exiting 2, any other
/// error 1.
fn stream_end(line: &Value, usage: &[&str]) -> Option<Result<(), Failed>> {
    let ok = line.get("ok")?;
    if ok == &json!(false) {
        let e = line["error"].as_str().unwrap_or("refused").to_string();
        let code = if usage.iter().any(|p| e.starts_with(p)) {
            2
        } else {
            1
        };
        return Some(Err((code, e)));
    }
    Some(Ok(()))
}

struct Connection {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Connection {
    fn open(path: &std::path::Path, label: &str) -> Result<Connection, Failed> {
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => (
                2,
                format!(
                    "no clutch {label} is running: no socket at {}",
                    path.display()
                ),
            ),
            std::io::ErrorKind::ConnectionRefused => (
                2,
                format!(
                    "no clutch {label} is running: nobody listens on {} (a master that died)",
                    path.display()
                ),
            ),
            _ => (2, format!("cannot connect to {}: {e}", path.display())),
        })?;
        let reader = BufReader::new(
            stream
                .try_clone()
                .map_err(|e| (1, format!("control socket: {e}")))?,
        );
        Ok(Connection { stream, reader })
    }

    fn send(&mut self, cmd: &str, args: Value) -> Result<(), Failed> {
        let mut line = serde_json::to_vec(&json!({"id": 1, "cmd": cmd, "args": args}))
            .expect("a Value serializes");
        line.push(b'\n');
        self.stream
            .write_all(&line)
            .map_err(|e| (1, format!("cannot send to the master: {e}")))
    }

    fn read(&mut self) -> Result<Value, Failed> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err((1, "the master closed the connection".into())),
            Ok(_) => serde_json::from_str(&line)
                .map_err(|e| (1, format!("a bad line from the master ({e}): {line}"))),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err((1, "timed out".into()))
            }
            Err(e) => Err((1, format!("cannot read from the master: {e}"))),
        }
    }

    /// Sends `reload` and shows each step until it completes (0) or is aborted (1): a
    /// progress bar on a terminal, a line per step otherwise, JSON lines with `json`.
    fn reload(&mut self, args: Value, json: bool, timeout: Duration) -> Result<(), Failed> {
        use std::io::IsTerminal;
        self.send("reload", args)?;
        let _ = self
            .stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "reload to generation {prefix} [{bar:30}] {pos}/{len} slots  {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar
        });
        let out = std::io::stdout();
        loop {
            let line = self.read()?;
            let event = if line.get("event").is_some() {
                line["event"].clone()
            } else if line["ok"] == json!(true) {
                line["result"].clone()
            } else {
                let error = line["error"].as_str().unwrap_or("the reload failed");
                if let Some(bar) = &bar {
                    bar.abandon_with_message("aborted");
                }
                if json {
                    let _ = writeln!(
                        out.lock(),
                        "{}",
                        json!({"event": "reload.aborted", "reason": error})
                    );
                }
                let code = if error.starts_with("permission denied") {
                    2
                } else {
                    1
                };
                return Err((code, error.to_string()));
            };
            let kind = event["event"].as_str().unwrap_or("");
            if json {
                let _ = writeln!(out.lock(), "{event}");
            } else if let Some(bar) = &bar {
                match kind {
                    "reload.started" => {
                        bar.set_length(event["slots"].as_u64().unwrap_or(0));
                        bar.set_prefix(event["generation"].to_string());
                        for change in changes(&event) {
                            bar.println(format!("  {change}"));
                        }
                    }
                    "reload.slot" => {
                        bar.set_position(event["index"].as_u64().unwrap_or(0));
                        bar.set_message(format!(
                            "slot {} ready in {} ms",
                            event["slot"], event["ready_ms"]
                        ));
                    }
                    _ => bar.finish_with_message(format!("done in {} ms", event["took_ms"])),
                }
            } else {
                let text = match kind {
                    "reload.started" => std::iter::once(format!(
                        "reload to generation {}: {} slot(s)",
                        event["generation"], event["slots"]
                    ))
                    .chain(changes(&event).map(|c| format!("  {c}")))
                    .collect::<Vec<_>>()
                    .join("\n"),
                    "reload.slot" => format!(
                        "slot {} ({}) {} of {}: generation {} ready in {} ms",
                        event["slot"],
                        event["role"].as_str().unwrap_or("?"),
                        event["index"],
                        event["total"],
                        event["generation"],
                        event["ready_ms"]
                    ),
                    _ => format!(
                        "reload to generation {} completed in {} ms",
                        event["generation"], event["took_ms"]
                    ),
                };
                let _ = writeln!(out.lock(), "{text}");
            }
            if kind == "reload.completed" {
                return Ok(());
            }
        }
    }

    fn call(&mut self, cmd: &str, args: Value, timeout: Duration) -> Result<Value, Failed> {
        self.send(cmd, args)?;
        let _ = self
            .stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        let reply = self.read().map_err(|(c, e)| {
            if e == "timed out" {
                (
                    c,
                    format!(
                        "`{cmd}` not done after {}s; it may still finish (clutch ctl watch)",
                        timeout.as_secs()
                    ),
                )
            } else {
                (c, e)
            }
        })?;
        if reply["ok"] == json!(true) {
            return Ok(reply["result"].clone());
        }
        let error = reply["error"]
            .as_str()
            .unwrap_or("the master failed")
            .to_string();
        let code = if error.starts_with("permission denied") || error.contains("is not a command") {
            2
        } else {
            1
        };
        if let Some(reply) = reply.get("reply") {
            // A request's error reply: shown as it came.
            let _ = writeln!(std::io::stdout(), "{reply}");
        }
        Err((code, error))
    }

    /// Prints each line the master sends until it ends the stream (or, following, until
    /// the client is interrupted).
    fn logs(&mut self, args: Value) -> Result<(), Failed> {
        self.send("logs", args)?;
        let out = std::io::stdout();
        loop {
            let line = self.read()?;
            if let Some(end) = stream_end(&line, &["permission denied", "logs are not"]) {
                return end;
            }
            let ev = &line["event"];
            let mut out = out.lock();
            let text = match ev["event"].as_str() {
                Some("lagged") => format!(
                    "clutch ctl: {} line(s) missed (this follower was too slow)",
                    ev["missed"]
                ),
                _ => ev["line"].as_str().unwrap_or_default().to_string(),
            };
            if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
                return Ok(());
            }
        }
    }

    fn watch(&mut self, as_json: bool) -> Result<(), Failed> {
        self.send("watch", json!({}))?;
        let out = std::io::stdout();
        loop {
            let line = self.read()?;
            if let Some(end) = stream_end(&line, &["permission denied"]) {
                return end;
            }
            let ev = &line["event"];
            let mut out = out.lock();
            let printed = if as_json {
                writeln!(out, "{ev}")
            } else if ev["event"] == "snapshot" {
                out.write_all(table(&ev["snapshot"]).as_bytes())
            } else {
                writeln!(out, "{}", describe_event(ev))
            };
            if printed.and_then(|()| out.flush()).is_err() {
                return Ok(());
            }
        }
    }
}

fn describe_event(ev: &Value) -> String {
    // The time of day in UTC, to the millisecond: enough to follow a watch as it runs.
    let t = ev["time_ms"].as_u64().unwrap_or(0);
    let day = (t / 1000) % 86400;
    let mut s = format!(
        "#{} {:02}:{:02}:{:02}.{:03}Z {}",
        ev["seq"],
        day / 3600,
        day / 60 % 60,
        day % 60,
        t % 1000,
        ev["event"].as_str().unwrap_or("?")
    );
    if let Some(o) = ev.as_object() {
        for (k, v) in o {
            if !matches!(k.as_str(), "seq" | "time_ms" | "event" | "changes") && !v.is_null() {
                s.push_str(&format!(" {k}={v}"));
            }
        }
    }
    for change in changes(ev) {
        s.push_str(&format!("\n  {change}"));
    }
    s
}

/// The `list` table, as `pm2 list` draws it (without the boxes).
fn table(list: &Value) -> String {
    let c = &list["cluster"];
    let mut out = format!(
        "cluster {} (pid {}): {}, {} app worker(s), generation {}\n",
        c["name"].as_str().unwrap_or("?"),
        c["pid"],
        c["state"].as_str().unwrap_or("?"),
        c["workers"],
        c["generation"],
    );
    let header = [
        "id",
        "role",
        "pid",
        "state",
        "gen",
        "uptime",
        "restarts",
        "cpu",
        "rss",
        "last exit",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    let dash = || "-".to_string();
    for w in list["workers"].as_array().into_iter().flatten() {
        let opt = |v: &Value| if v.is_null() { dash() } else { v.to_string() };
        rows.push(vec![
            w["id"].to_string(),
            w["role"].as_str().unwrap_or("?").into(),
            opt(&w["pid"]),
            w["state"].as_str().unwrap_or("?").into(),
            opt(&w["generation"]),
            w["uptime_ms"].as_u64().map_or_else(dash, human_ms),
            w["restarts"].to_string(),
            w["cpu_percent"]
                .as_f64()
                .map_or_else(dash, |p| format!("{p:.1}%")),
            w["rss_bytes"].as_u64().map_or_else(dash, human_bytes),
            match (&w["last_exit"]["code"], &w["last_exit"]["signal"]) {
                (Value::Number(n), _) => format!("code {n}"),
                (_, Value::String(s)) => s.clone(),
                _ => dash(),
            },
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn human_ms(ms: u64) -> String {
    match ms / 1000 {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn human_bytes(b: u64) -> String {
    match b {
        b if b < 1 << 20 => format!("{}K", b >> 10),
        b if b < 1 << 30 => format!("{:.1}M", b as f64 / (1 << 20) as f64),
        b => format!("{:.1}G", b as f64 / (1 << 30) as f64),
    }
}
