//! Settings: what a cluster runs and how, from a JSON file and from flags, validated with
//! errors that name the key or flag at fault.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::protocol::codec::DEFAULT_MAX_LINE;

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
            restart: RestartPolicy::Always,
            restart_limit: 60,
            restart_window: Duration::from_secs(60),
            pid_file: None,
            max_message_size: DEFAULT_MAX_LINE,
            env: Vec::new(),
            listen: ListenMode::Shared,
            proxy_protocol: false,
            proxy_timeout: Duration::from_millis(3_000),
            app_dialect: Dialect::Auto,
            node_sticky_message: None,
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
        if self.workers > 1024 {
            return Err(bad(
                "workers",
                format!("{} is more than the 1024 clutch supports", self.workers),
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
        if self.listen != ListenMode::Shared && self.port.is_none() {
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
        if self.max_message_size < 1024 {
            return Err(bad("max-message-size", "must be at least 1024 bytes"));
        }
        Ok(())
    }
}

/// A command given as one string (split as a shell would, without running one) or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CommandValue {
    Line(String),
    Words(Vec<String>),
}

/// Splits a command line as a shell would (quotes, escapes), without running a shell.
pub fn split_command(key: &str, line: &str) -> Result<Vec<String>, ConfigError> {
    let words =
        shell_words::split(line).map_err(|e| bad(key, format!("cannot split `{line}`: {e}")))?;
    if words.is_empty() {
        return Err(bad(key, "the command is empty"));
    }
    Ok(words)
}

/// The config file's shape: every key optional, none unknown.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileSettings {
    name: Option<String>,
    workers: Option<usize>,
    app: Option<CommandValue>,
    agent: Option<CommandValue>,
    no_agent: Option<bool>,
    port: Option<u16>,
    host: Option<String>,
    ready: Option<String>,
    agent_ready: Option<String>,
    ready_timeout: Option<u64>,
    kill_timeout: Option<u64>,
    restart: Option<String>,
    restart_limit: Option<u32>,
    restart_window: Option<u64>,
    pid_file: Option<PathBuf>,
    max_message_size: Option<usize>,
    env: Option<std::collections::BTreeMap<String, String>>,
    sticky: Option<bool>,
    reuseport: Option<bool>,
    proxy_protocol: Option<bool>,
    proxy_timeout: Option<u64>,
    app_dialect: Option<String>,
    node_sticky_message: Option<String>,
    /// The keys the file sets, so a later error about one of them can name the file.
    #[serde(skip)]
    keys: BTreeSet<String>,
}

/// The keys a config file set: a value that fails validation after flags are merged is
/// named as the file's key when the file gave it, so the user knows where to look.
#[derive(Debug)]
pub struct FileKeys {
    path: PathBuf,
    keys: BTreeSet<String>,
}

impl FileKeys {
    /// Whether the file sets `key` (as spelled in the file, like the long flag).
    pub fn sets(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    /// `message` about `key`, naming this file.
    pub fn error(&self, key: &str, message: String) -> ConfigError {
        ConfigError::File {
            path: self.path.clone(),
            message: format!("key `{key}`: {message}"),
        }
    }

    /// Names the file in a validation error about a key it sets; other errors as they are.
    pub fn blame(&self, e: ConfigError) -> ConfigError {
        match e {
            ConfigError::Value { key, message } if self.sets(&key) => self.error(&key, message),
            other => other,
        }
    }
}

impl FileSettings {
    /// Reads and parses a config file; an unknown key or a value of the wrong type is an
    /// error naming the key.
    pub fn load(path: &Path) -> Result<FileSettings, ConfigError> {
        let text = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let de = &mut serde_json::Deserializer::from_slice(&text);
        let mut file: FileSettings = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let message = if key == "." {
                e.inner().to_string()
            } else {
                format!("key `{key}`: {}", e.inner())
            };
            ConfigError::File {
                path: path.to_path_buf(),
                message,
            }
        })?;
        // The text parsed as the struct, so it is an object; only its key names are kept.
        if let Ok(map) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&text)
        {
            file.keys = map.into_iter().map(|(k, _)| k).collect();
        }
        Ok(file)
    }

    /// Applies the file's settings over `s`. A value that does not parse is an error naming
    /// the key; ranges and combinations are left to [`Settings::validate`], which must run
    /// once flags are merged too (a flag may fix what the file lacks). The returned keys
    /// name the file in that validation's errors.
    pub fn apply(self, s: &mut Settings, path: &Path) -> Result<FileKeys, ConfigError> {
        let in_file = |key: &str, message: String| ConfigError::File {
            path: path.to_path_buf(),
            message: format!("key `{key}`: {message}"),
        };
        let command = |key: &str, v: CommandValue| -> Result<Vec<String>, ConfigError> {
            match v {
                CommandValue::Line(l) => {
                    split_command(key, &l).map_err(|e| in_file(key, inner_message(e)))
                }
                CommandValue::Words(w) if w.is_empty() => {
                    Err(in_file(key, "the command is empty".into()))
                }
                CommandValue::Words(w) => Ok(w),
            }
        };
        if let Some(v) = self.name {
            s.name = v;
        }
        if let Some(v) = self.workers {
            s.workers = v;
        }
        if let Some(v) = self.app {
            s.app = Some(command("app", v)?);
        }
        if let Some(v) = self.agent {
            s.agent = Some(command("agent", v)?);
        }
        if self.no_agent == Some(true) {
            s.agent = None;
        }
        if let Some(v) = self.port {
            s.port = Some(v);
        }
        if let Some(v) = self.host {
            s.host = v;
        }
        if let Some(v) = self.ready {
            s.ready = v.parse().map_err(|m| in_file("ready", m))?;
        }
        if let Some(v) = self.agent_ready {
            s.agent_ready = Some(v.parse().map_err(|m| in_file("agent-ready", m))?);
        }
        if let Some(v) = self.ready_timeout {
            s.ready_timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.kill_timeout {
            s.kill_timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.restart {
            s.restart = v.parse().map_err(|m| in_file("restart", m))?;
        }
        if let Some(v) = self.restart_limit {
            s.restart_limit = v;
        }
        if let Some(v) = self.restart_window {
            s.restart_window = Duration::from_millis(v);
        }
        if let Some(v) = self.pid_file {
            s.pid_file = Some(v);
        }
        if let Some(v) = self.max_message_size {
            s.max_message_size = v;
        }
        if let Some(v) = self.env {
            s.env.extend(v);
        }
        match (self.sticky, self.reuseport) {
            (Some(true), Some(true)) => {
                return Err(in_file(
                    "sticky",
                    "sticky and reuseport exclude each other".into(),
                ));
            }
            (Some(true), _) => s.listen = ListenMode::Sticky,
            (_, Some(true)) => s.listen = ListenMode::ReusePort,
            _ => {}
        }
        if let Some(v) = self.proxy_protocol {
            s.proxy_protocol = v;
        }
        if let Some(v) = self.proxy_timeout {
            s.proxy_timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.app_dialect {
            s.app_dialect = v.parse().map_err(|m| in_file("app-dialect", m))?;
        }
        if let Some(v) = self.node_sticky_message {
            s.node_sticky_message = Some(v);
        }
        Ok(FileKeys {
            path: path.to_path_buf(),
            keys: self.keys,
        })
    }

    /// Whether the file asks for no agent.
    pub fn no_agent(&self) -> bool {
        self.no_agent == Some(true)
    }
}

fn inner_message(e: ConfigError) -> String {
    match e {
        ConfigError::Value { message, .. } => message,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn load_str(json: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clutch.json");
        std::fs::write(&path, json).unwrap();
        let mut s = Settings::default();
        let keys = FileSettings::load(&path)?.apply(&mut s, &path)?;
        s.validate().map_err(|e| keys.blame(e))?;
        Ok(s)
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
}

#[cfg(test)]
mod dialect_tests {
    use super::tests::load_str;
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
    fn apply_leaves_what_a_flag_may_fix_to_validate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clutch.json");
        std::fs::write(&path, r#"{"sticky": true, "workers": 0}"#).unwrap();
        let mut s = Settings::default();
        let keys = FileSettings::load(&path)
            .unwrap()
            .apply(&mut s, &path)
            .unwrap();
        assert!(keys.sets("sticky") && keys.sets("workers") && !keys.sets("port"));
        // What flags would do:
        s.port = Some(0);
        s.workers = 2;
        s.validate().unwrap();
    }
}
