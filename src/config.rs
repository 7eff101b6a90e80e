//! Settings: what a cluster runs and how, from a JSON file and from flags, validated with
//! errors that name the key or flag at fault.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::protocol::codec::DEFAULT_MAX_LINE;

pub mod diff;
mod overrides;
pub use overrides::{ConfigFile, Overrides, Words, resolve};

/// The most app workers one cluster runs (`--workers`, `scale`).
pub const MAX_WORKERS: usize = 1024;

/// The largest `max_message_size`: a line must fit in one worker's outbox, which drops
/// messages past 64 MiB queued ([`crate::channel::HARD_CAP`]).
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;

/// A configuration mistake: what is wrong and where. Exit code 2 on the command line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Value { key: String, message: String },
}

fn bad(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        key: key.to_string(),
        message: message.into(),
    }
}

/// When a worker counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyMode {
    /// When it sends `agent-start` / `app-start` on its channel.
    Message,
    /// As soon as it is spawned (for binaries that cannot speak the channel).
    Spawn,
    /// This long after it is spawned, if still alive.
    Delay(Duration),
    /// When it sends `READY=1` to its own `NOTIFY_SOCKET` (systemd's sd_notify protocol).
    Notify,
    /// When a TCP connect to this port on loopback succeeds.
    Tcp(u16),
}

impl FromStr for ReadyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<ReadyMode, String> {
        match s {
            "message" => Ok(ReadyMode::Message),
            "spawn" => Ok(ReadyMode::Spawn),
            "notify" => Ok(ReadyMode::Notify),
            _ => {
                if let Some(ms) = s.strip_prefix("delay:") {
                    ms.parse::<u64>()
                        .map(|ms| ReadyMode::Delay(Duration::from_millis(ms)))
                        .map_err(|_| {
                            format!("`{s}`: the delay must be whole milliseconds, as in delay:500")
                        })
                } else if let Some(port) = s.strip_prefix("tcp:") {
                    match port.parse::<u16>() {
                        Ok(p) if p > 0 => Ok(ReadyMode::Tcp(p)),
                        _ => Err(format!(
                            "`{s}`: the port must be a number from 1 to 65535, as in tcp:8080"
                        )),
                    }
                } else {
                    Err(format!(
                        "`{s}` is not a ready mode; use message, spawn, delay:MS, notify or tcp:PORT"
                    ))
                }
            }
        }
    }
}

/// Which exits of an app worker lead to a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Every exit.
    Always,
    /// Every exit but code 0.
    OnFailure,
    /// None: the slot stays empty.
    Never,
}

impl FromStr for RestartPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<RestartPolicy, String> {
        match s {
            "always" => Ok(RestartPolicy::Always),
            "on-failure" => Ok(RestartPolicy::OnFailure),
            "never" => Ok(RestartPolicy::Never),
            _ => Err(format!(
                "`{s}` is not a restart policy; use always, on-failure or never"
            )),
        }
    }
}

/// Who owns the public port, and how connections reach app workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenMode {
    /// The master binds the port once; app workers inherit the socket and accept on it.
    Shared,
    /// The master accepts and hands each connection to a worker chosen by client address.
    Sticky,
    /// Each worker binds the port itself with SO_REUSEPORT.
    ReusePort,
}

/// Where workers' stdout and stderr go (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// They inherit the master's (journald, Kubernetes and the terminal see them as is).
    #[default]
    Inherit,
    /// The master reads them through pipes and writes each line prefixed with the
    /// worker's name (`[app 2] ...`), keeping the last lines for `clutch ctl logs`.
    Prefix,
}

impl FromStr for OutputMode {
    type Err = String;
    fn from_str(s: &str) -> Result<OutputMode, String> {
        match s {
            "inherit" => Ok(OutputMode::Inherit),
            "prefix" => Ok(OutputMode::Prefix),
            _ => Err(format!(
                "`{s}` is not an output mode; use inherit or prefix"
            )),
        }
    }
}

/// How sticky sessions reach app workers (`--sticky-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickyMode {
    /// `kernel` when the workers accept on their inherited socket, `handoff` otherwise
    /// (see [`crate::sticky::mode`]).
    Auto,
    /// A socket per slot, the kernel picks it with a BPF program: the master does nothing
    /// per connection.
    Kernel,
    /// The master accepts each connection and hands it over on the worker's channel.
    Handoff,
}

impl FromStr for StickyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<StickyMode, String> {
        match s {
            "auto" => Ok(StickyMode::Auto),
            "kernel" => Ok(StickyMode::Kernel),
            "handoff" => Ok(StickyMode::Handoff),
            _ => Err(format!(
                "`{s}` is not a sticky mode; use auto, kernel or handoff"
            )),
        }
    }
}

/// How the master speaks to a worker when it hands over a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `node` for a `node` command (or a `.js`/`.mjs`/`.cjs` script), `clutch` otherwise.
    Auto,
    /// Node.js's own handle protocol (`NODE_HANDLE`, acknowledged).
    Node,
    /// clutch's `clutch:connection` line with the socket attached.
    Clutch,
}

impl FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Dialect, String> {
        match s {
            "auto" => Ok(Dialect::Auto),
            "node" => Ok(Dialect::Node),
            "clutch" => Ok(Dialect::Clutch),
            _ => Err(format!("`{s}` is not a dialect; use auto, node or clutch")),
        }
    }
}

impl Dialect {
    /// The dialect for a worker running `command`.
    pub fn resolve(self, command: &[String]) -> Dialect {
        match self {
            Dialect::Auto => {
                let is_node = command.first().is_some_and(|p| {
                    let base = Path::new(p)
                        .file_name()
                        .and_then(|b| b.to_str())
                        .unwrap_or("");
                    matches!(base, "node" | "nodejs")
                        || [".js", ".mjs", ".cjs"].iter().any(|e| base.ends_with(e))
                });
                if is_node {
                    Dialect::Node
                } else {
                    Dialect::Clutch
                }
            }
            other => other,
        }
    }
}

/// Everything a cluster is started with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Shown in log lines and given to workers as `CLUTCH_NAME`.
    pub name: String,
    /// How many app workers.
    pub workers: usize,
    /// The app worker command; `None` runs the built-in demo.
    pub app: Option<Vec<String>>,
    /// The agent command; `None` means no agent.
    pub agent: Option<Vec<String>>,
    /// The public port, if any.
    pub port: Option<u16>,
    /// The address the port is bound on.
    pub host: String,
    pub ready: ReadyMode,
    /// Overrides `ready` for the agent.
    pub agent_ready: Option<ReadyMode>,
    pub ready_timeout: Duration,
    pub kill_timeout: Duration,
    /// A worker that sent no `clutch:heartbeat` for this long is replaced (off: `None`).
    pub heartbeat_timeout: Option<Duration>,
    /// A worker whose resident memory stays above this many bytes is recycled.
    pub max_rss: Option<u64>,
    /// A worker older than this (plus up to a fifth of it, so that they do not all go at
    /// once) is recycled.
    pub max_age: Option<Duration>,
    /// During a reload, at most this many workers beyond one per slot are alive at once
    /// (new ones starting and old ones still stopping); `None`: only the batch limits it.
    pub surge: Option<usize>,
    pub restart: RestartPolicy,
    /// At most this many restarts of one slot per `restart_window`.
    pub restart_limit: u32,
    pub restart_window: Duration,
    pub pid_file: Option<PathBuf>,
    /// The longest line a worker may send.
    pub max_message_size: usize,
    /// Extra environment variables for every worker.
    pub env: Vec<(String, String)>,
    /// How the port reaches app workers (with `port`).
    pub listen: ListenMode,
    /// In sticky mode: who steers connections, the kernel or the master.
    pub sticky_mode: StickyMode,
    /// In sticky mode: read a PROXY protocol header for the real client address.
    pub proxy_protocol: bool,
    /// How long a PROXY header may take to arrive.
    pub proxy_timeout: Duration,
    /// How app workers receive handed-over sockets (only app workers receive them).
    pub app_dialect: Dialect,
    /// Node dialect: send this string as the handle's message instead of the
    /// `clutch:connection` object (egg-cluster's app workers expect
    /// `sticky-session:connection`).
    pub node_sticky_message: Option<String>,
    /// Speak egg-cluster's lifecycle: `egg-ready`, `egg-pids`, `agent-start` to the apps,
    /// `listening` counts as `app-start`, `reload-worker` restarts the apps.
    pub egg: bool,
    /// What `egg-ready` carries to the agent and the apps: egg-cluster's options (set by
    /// `clutch egg`; not a flag). Without it, what `cluster-ready` carries.
    pub egg_options: Option<serde_json::Value>,
    /// Inject the listen preload into Node app workers when the master owns the port in
    /// shared mode (see `crate::node`).
    pub node_preload: bool,
    /// Where `clutch ctl` reaches the master.
    pub control: ControlSocket,
    /// Who else may use the control socket, and as what (`--control-users`).
    pub control_users: Option<PathBuf>,
    /// How often the monitor samples each worker from /proc; zero: never.
    pub monitor_interval: Duration,
    /// Where to serve `/metrics`, `/livez` and `/readyz` (`--http`, HOST:PORT); off: `None`.
    pub http: Option<String>,
    /// `/readyz` answers 200 once this many app workers are ready (at most the desired
    /// number); `None`: all of them.
    pub ready_minimum: Option<usize>,
    /// Become a child subreaper and reap the orphans re-parented to the master (see
    /// `master::orphans`). The CLI's master does it anyway as PID 1. Not for a [`Master`]
    /// embedded in a program that runs children of its own: it would reap them too.
    ///
    /// [`Master`]: crate::Master
    pub subreaper: bool,
    /// Where workers' stdout and stderr go.
    pub output: OutputMode,
    /// The web console's users file (`--http-users`); `None`: no console.
    pub http_users: Option<PathBuf>,
    /// `--http-tls-cert` and `--http-tls-key`: serve `--http` over TLS.
    pub http_tls_cert: Option<PathBuf>,
    pub http_tls_key: Option<PathBuf>,
}

/// Where the master listens for `clutch ctl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlSocket {
    /// Nowhere (`--no-control`; the default for an embedded [`crate::Master`]).
    Off,
    /// `$XDG_RUNTIME_DIR/clutch/NAME.sock`, else `/tmp/clutch-UID/NAME.sock`.
    Default,
    /// Here (`--control-socket`).
    At(PathBuf),
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            name: "clutch".to_string(),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            app: None,
            agent: None,
            port: None,
            host: "0.0.0.0".to_string(),
            ready: ReadyMode::Message,
            agent_ready: None,
            ready_timeout: Duration::from_millis(60_000),
            kill_timeout: Duration::from_millis(5_000),
            heartbeat_timeout: None,
            max_rss: None,
            max_age: None,
            surge: None,
            restart: RestartPolicy::Always,
            restart_limit: 60,
            restart_window: Duration::from_secs(60),
            pid_file: None,
            max_message_size: DEFAULT_MAX_LINE,
            env: Vec::new(),
            listen: ListenMode::Shared,
            sticky_mode: StickyMode::Auto,
            proxy_protocol: false,
            proxy_timeout: Duration::from_millis(3_000),
            app_dialect: Dialect::Auto,
            node_sticky_message: None,
            egg: false,
            egg_options: None,
            node_preload: true,
            control: ControlSocket::Default,
            control_users: None,
            monitor_interval: Duration::from_secs(1),
            http: None,
            ready_minimum: None,
            subreaper: false,
            output: OutputMode::Inherit,
            http_users: None,
            http_tls_cert: None,
            http_tls_key: None,
        }
    }
}

impl Settings {
    /// The agent's ready mode.
    pub fn agent_ready_mode(&self) -> ReadyMode {
        self.agent_ready.unwrap_or(self.ready)
    }

    /// Checks what serde cannot: ranges and non-empty commands.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.workers == 0 {
            return Err(bad("workers", "must be at least 1"));
        }
        if self.workers > MAX_WORKERS {
            return Err(bad(
                "workers",
                format!(
                    "{} is more than the {MAX_WORKERS} clutch supports",
                    self.workers
                ),
            ));
        }
        if self.app.as_ref().is_some_and(|c| c.is_empty()) {
            return Err(bad("app", "the app command is empty"));
        }
        if self.agent.as_ref().is_some_and(|c| c.is_empty()) {
            return Err(bad("agent", "the agent command is empty"));
        }
        if self.restart_window.is_zero() {
            return Err(bad("restart-window", "must be more than 0 ms"));
        }
        // A sticky master can accept on a socket systemd passed (LISTEN_FDS) instead.
        let passed = self.listen == ListenMode::Sticky && crate::listen::socket_passed();
        if self.listen != ListenMode::Shared && self.port.is_none() && !passed {
            let key = if self.listen == ListenMode::Sticky {
                "sticky"
            } else {
                "reuseport"
            };
            return Err(bad(key, "needs a port (--port)"));
        }
        if self.proxy_protocol && self.listen != ListenMode::Sticky {
            return Err(bad(
                "proxy-protocol",
                "only works with --sticky (the master must accept the connections)",
            ));
        }
        crate::sticky::mode::validate(self)?;
        if self.max_message_size < 1024 {
            return Err(bad("max-message-size", "must be at least 1024 bytes"));
        }
        if self.max_message_size > MAX_MESSAGE_SIZE {
            return Err(bad(
                "max-message-size",
                format!(
                    "{} is more than the {MAX_MESSAGE_SIZE} bytes (64 MiB) clutch supports",
                    self.max_message_size
                ),
            ));
        }
        if self.ready_timeout.is_zero() {
            return Err(bad("ready-timeout", "must be more than 0 ms"));
        }
        if self.proxy_timeout.is_zero() {
            return Err(bad("proxy-timeout", "must be more than 0 ms"));
        }
        if self.heartbeat_timeout.is_some_and(|t| t.is_zero()) {
            return Err(bad(
                "heartbeat-timeout",
                "must be more than 0 ms (leave it out to turn heartbeats off)",
            ));
        }
        if self.max_rss == Some(0) {
            return Err(bad(
                "max-rss",
                "must be at least 1 MB (leave it out to turn it off)",
            ));
        }
        if self.max_age.is_some_and(|t| t.is_zero()) {
            return Err(bad(
                "max-age",
                "must be at least 1 second (leave it out to turn it off)",
            ));
        }
        if let Some(addr) = &self.http {
            crate::http::parse_addr(addr).map_err(|message| bad("http", message))?;
        }
        if self.ready_minimum == Some(0) {
            return Err(bad(
                "ready-minimum",
                "must be at least 1 (leave it out to wait for every app worker)",
            ));
        }
        if self.surge == Some(0) {
            return Err(bad(
                "surge",
                "must be at least 1: a reload starts each new worker beside the old one \
                 (leave it out for no limit beyond the batch)",
            ));
        }
        self.validate_c_strings()
    }

    /// Names, commands and variables become C strings at spawn, where a NUL byte would cut
    /// them short: caught here, naming the key, rather than when a worker starts.
    fn validate_c_strings(&self) -> Result<(), ConfigError> {
        const NUL: &str = "holds a NUL byte; remove it";
        if self.name.contains('\0') {
            return Err(bad("name", format!("the name {NUL}")));
        }
        for (key, command) in [("app", &self.app), ("agent", &self.agent)] {
            for (i, word) in command.iter().flatten().enumerate() {
                if word.contains('\0') {
                    let what = match i {
                        0 => "the program".to_string(),
                        _ => format!("argument {i}"),
                    };
                    return Err(bad(key, format!("{what} {NUL}")));
                }
            }
        }
        for (k, v) in &self.env {
            // The value is not shown: it may be a secret.
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(bad(
                    "env",
                    format!("{k:?} is not a variable name (empty, or holds `=` or a NUL byte)"),
                ));
            }
            if v.contains('\0') {
                return Err(bad("env", format!("the value of {k} {NUL}")));
            }
        }
        if self
            .pid_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().as_encoded_bytes().contains(&0))
        {
            return Err(bad("pid-file", format!("the path {NUL}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn load_str(json: &str) -> Result<Settings, ConfigError> {
        load_with_flags(json, Overrides::default())
    }

    pub(super) fn load_with_flags(json: &str, flags: Overrides) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clutch.json");
        std::fs::write(&path, json).unwrap();
        resolve(flags, Some(ConfigFile::load(&path)?), |_| {
            Ok(Overrides::default())
        })
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load_str(r#"{"wrokers": 2}"#).unwrap_err().to_string();
        assert!(e.contains("wrokers"), "{e}");
    }

    #[test]
    fn bad_value_names_its_key() {
        let e = load_str(r#"{"workers": "four"}"#).unwrap_err().to_string();
        assert!(e.contains("key `workers`"), "{e}");
        let e = load_str(r#"{"ready": "soon"}"#).unwrap_err().to_string();
        assert!(e.contains("key `ready`"), "{e}");
        let e = load_str(r#"{"workers": 0}"#).unwrap_err().to_string();
        assert!(e.contains("key `workers`"), "{e}");
    }

    #[test]
    fn commands_split_like_a_shell() {
        let s = load_str(r#"{"app": "node 'my app.js' --x", "agent": ["a", "b"]}"#).unwrap();
        assert_eq!(s.app.unwrap(), ["node", "my app.js", "--x"]);
        assert_eq!(s.agent.unwrap(), ["a", "b"]);
    }

    #[test]
    fn ready_modes_parse() {
        assert_eq!(
            "delay:250".parse(),
            Ok(ReadyMode::Delay(Duration::from_millis(250)))
        );
        assert!("delay:x".parse::<ReadyMode>().is_err());
        assert!("later".parse::<ReadyMode>().is_err());
        assert_eq!("notify".parse(), Ok(ReadyMode::Notify));
        assert_eq!("tcp:8080".parse(), Ok(ReadyMode::Tcp(8080)));
        assert!("tcp:0".parse::<ReadyMode>().is_err());
    }

    #[test]
    fn output_mode_is_read_from_the_file_and_named_when_bad() {
        assert_eq!(load_str("{}").unwrap().output, OutputMode::Inherit);
        let s = load_str(r#"{"output": "prefix"}"#).unwrap();
        assert_eq!(s.output, OutputMode::Prefix);
        let e = load_str(r#"{"output": "colour"}"#).unwrap_err().to_string();
        assert!(
            e.contains("key `output`") && e.contains("inherit or prefix"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod dialect_tests {
    use super::tests::{load_str, load_with_flags};
    use super::*;

    #[test]
    fn auto_dialect_is_node_for_node_commands() {
        let cmd = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Dialect::Auto.resolve(&cmd(&["/usr/bin/node", "app.js"])),
            Dialect::Node
        );
        assert_eq!(
            Dialect::Auto.resolve(&cmd(&["./server.mjs"])),
            Dialect::Node
        );
        assert_eq!(Dialect::Auto.resolve(&cmd(&["./server"])), Dialect::Clutch);
        assert_eq!(Dialect::Clutch.resolve(&cmd(&["node"])), Dialect::Clutch);
    }

    #[test]
    fn sticky_needs_a_port_and_excludes_reuseport() {
        let e = load_str(r#"{"sticky": true}"#).unwrap_err().to_string();
        assert!(e.contains("sticky") && e.contains("port"), "{e}");
        let e = load_str(r#"{"sticky": true, "reuseport": true, "port": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("reuseport"), "{e}");
        let e = load_str(r#"{"proxy-protocol": true, "port": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("proxy-protocol"), "{e}");
    }

    #[test]
    fn a_flag_fixes_what_the_file_gets_wrong() {
        let json = r#"{"sticky": true, "workers": 0}"#;
        let e = load_str(json).unwrap_err().to_string();
        assert!(e.contains("key `workers`"), "{e}");
        let flags = Overrides {
            port: Some(0),
            workers: Some(2),
            ..Overrides::default()
        };
        let s = load_with_flags(json, flags).unwrap();
        assert_eq!((s.workers, s.listen), (2, ListenMode::Sticky));
    }
}
