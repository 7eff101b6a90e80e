//! What a user gives: one [`Overrides`] type read both from flags (clap) and from a config
//! file (serde), so each setting is declared once, with its help text.

use super::{
    ConfigError, ControlSocket, Dialect, ListenMode, OutputMode, ReadyMode, RestartPolicy,
    Settings, StickyMode, bad,
};
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Declares [`Overrides`] and what is the same for every field: merging two layers and
/// naming the keys a layer sets (for errors). Each setting is then written once here and
/// once in [`Overrides::apply`].
macro_rules! overrides {
    (
        $(#[$meta:meta])*
        pub struct Overrides {
            $( $(#[$fmeta:meta])* pub $field:ident: Option<$ty:ty>, )*
        }
    ) => {
        $(#[$meta])*
        pub struct Overrides {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
        }

        impl Overrides {
            /// Each setting from `self` when it has it, else from `other`.
            fn or(self, other: Overrides) -> Overrides {
                Overrides { $( $field: self.$field.or(other.$field), )* }
            }

            /// The keys this sets, spelled as in a config file and as the long flags.
            pub fn keys(&self) -> BTreeSet<String> {
                let mut keys = BTreeSet::new();
                $(
                    if self.$field.is_some() {
                        keys.insert(stringify!($field).replace('_', "-"));
                    }
                )*
                keys
            }
        }
    };
}

overrides! {
    /// Settings a user gives, every one optional: from `clutch start`'s flags, or from a
    /// config file (a JSON object whose keys are the long flags: `"workers"`,
    /// `"ready-timeout"`, `"app"`, ...; no unknown key). Layers are combined with
    /// [`Overrides::merge`] and applied over [`Settings::default`] with
    /// [`Overrides::apply`].
    #[derive(Debug, Default, Clone, PartialEq, clap::Args, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    pub struct Overrides {
        /// Number of app workers [default: the CPU count].
        #[arg(short = 'w', long, value_name = "N")]
        pub workers: Option<usize>,
        /// The agent command, split like a shell would (no shell is run). Without it (and
        /// outside the demo) there is no agent.
        #[arg(long, value_name = "CMD")]
        pub agent: Option<Words>,
        /// Run without an agent: the app workers start at once.
        #[arg(long, conflicts_with = "agent", num_args = 0, default_missing_value = "true")]
        pub no_agent: Option<bool>,
        /// The public port; the master binds it once and app workers inherit the socket
        /// (LISTEN_FDS, from fd 3). 0 picks a free port. Given to workers as CLUTCH_PORT.
        /// Started by systemd socket activation (LISTEN_FDS and LISTEN_PID naming clutch),
        /// clutch serves the socket it was passed instead, and its port replaces this one.
        #[arg(short = 'p', long, value_name = "PORT")]
        pub port: Option<u16>,
        /// The address to bind --port on [default: 0.0.0.0].
        #[arg(long, value_name = "ADDR")]
        pub host: Option<String>,
        /// Sticky sessions: the master accepts on --port and hands each connection to the
        /// app worker its client address picks (the same client, the same worker).
        #[arg(long, conflicts_with = "reuseport", num_args = 0, default_missing_value = "true")]
        pub sticky: Option<bool>,
        /// Workers bind --port themselves with SO_REUSEPORT (the master only reserves it).
        #[arg(long, num_args = 0, default_missing_value = "true")]
        pub reuseport: Option<bool>,
        /// With --sticky: who steers each client to its worker. kernel: a listening socket
        /// per worker and a BPF program in the kernel pick it (the master does nothing per
        /// connection; workers accept on fd 3). handoff: the master accepts and hands each
        /// connection over its channel. auto: kernel, except with --proxy-protocol, --egg,
        /// --node-sticky-message or Node workers, which take handed-over handles, and under
        /// socket activation (one passed socket), where the master hands off [default:
        /// auto].
        #[arg(long, value_name = "MODE")]
        #[serde(default, deserialize_with = "parsed")]
        pub sticky_mode: Option<StickyMode>,
        /// With --sticky: read a PROXY protocol (v1 or v2) header for the real client
        /// address; a connection without a valid one is closed.
        #[arg(long, num_args = 0, default_missing_value = "true")]
        pub proxy_protocol: Option<bool>,
        /// How long a PROXY header may take to arrive, in ms (more than 0) [default: 3000].
        #[arg(long, value_name = "MS")]
        pub proxy_timeout: Option<u64>,
        /// How app workers receive handed-over sockets: node (Node's handle protocol),
        /// clutch (a clutch:connection line) or auto (node for node commands) [default:
        /// auto].
        #[arg(long, value_name = "DIALECT")]
        #[serde(default, deserialize_with = "parsed")]
        pub app_dialect: Option<Dialect>,
        /// With the node dialect, the message that comes with each socket: this string
        /// instead of the clutch:connection object. egg-cluster app workers expect
        /// `sticky-session:connection`.
        #[arg(long, value_name = "STRING")]
        pub node_sticky_message: Option<String>,
        /// egg-cluster's lifecycle messages: egg-ready, egg-pids, agent-start to the apps;
        /// `listening` from an app worker counts as app-start; reload-worker restarts the
        /// app workers (`clutch egg` sets it).
        #[arg(long, num_args = 0, default_missing_value = "true")]
        pub egg: Option<bool>,
        /// Do not inject clutch's listen preload (NODE_OPTIONS=--require) into Node app
        /// workers; by default, with --port in shared mode, `server.listen(CLUTCH_PORT)` in
        /// a Node worker listens on the inherited socket instead of binding.
        #[arg(long, num_args = 0, default_missing_value = "true")]
        pub no_node_preload: Option<bool>,
        /// When a worker is ready: `message` (it sends agent-start / app-start), `spawn` (at
        /// once), `delay:MS` (MS after spawn, if alive), `notify` (it sends READY=1 to its
        /// own NOTIFY_SOCKET, as with systemd) or `tcp:PORT` (a connect to 127.0.0.1:PORT
        /// succeeds) [default: message].
        #[arg(long, value_name = "MODE")]
        #[serde(default, deserialize_with = "parsed")]
        pub ready: Option<ReadyMode>,
        /// Like --ready, for the agent only.
        #[arg(long, value_name = "MODE")]
        #[serde(default, deserialize_with = "parsed")]
        pub agent_ready: Option<ReadyMode>,
        /// How long a worker may take to be ready, in ms (more than 0). While the cluster
        /// starts, a worker not ready in time fails the start; once the cluster is ready, a
        /// restarted worker not ready in time is killed and restarted as --restart says
        /// [default: 60000].
        #[arg(long, value_name = "MS")]
        pub ready_timeout: Option<u64>,
        /// How long a stopping worker gets between SIGTERM and SIGKILL, in ms [default:
        /// 5000].
        #[arg(long, value_name = "MS")]
        pub kill_timeout: Option<u64>,
        /// Replace a worker that sent no `{"action":"clutch:heartbeat"}` for this long, in
        /// ms (hung, stuck in a loop, SIGSTOPped): a new worker first, then the old one
        /// stopped. The Rust worker library sends heartbeats on its own [default: off].
        #[arg(long, value_name = "MS")]
        pub heartbeat_timeout: Option<u64>,
        /// Recycle a worker whose resident memory stays above this many MiB (a new worker
        /// first) [default: off].
        #[arg(long, value_name = "MB")]
        pub max_rss: Option<u64>,
        /// Recycle a worker older than this many seconds, plus a random part of up to a
        /// fifth of it so that workers do not all recycle at once [default: off].
        #[arg(long, value_name = "SECONDS")]
        pub max_age: Option<u64>,
        /// During a reload, at most N workers beyond one per slot alive at once: new ones
        /// starting and old ones still stopping (a new worker waits for an old one to exit).
        /// `clutch ctl reload --surge N` overrides it for one reload [default: no limit but
        /// the batch].
        #[arg(long, value_name = "N")]
        pub surge: Option<usize>,
        /// Which app worker exits restart it: always, on-failure (not exit code 0) or never
        /// [default: always].
        #[arg(long, value_name = "POLICY")]
        #[serde(default, deserialize_with = "parsed")]
        pub restart: Option<RestartPolicy>,
        /// At most this many restarts of one slot per --restart-window; past it the slot is
        /// parked [default: 60].
        #[arg(long, value_name = "N")]
        pub restart_limit: Option<u32>,
        /// The window of --restart-limit, in ms [default: 60000].
        #[arg(long, value_name = "MS")]
        pub restart_window: Option<u64>,
        /// The longest message line a worker may send, in bytes, from 1024 to 67108864 (64
        /// MiB) [default: 16777216].
        #[arg(long, value_name = "BYTES")]
        pub max_message_size: Option<usize>,
        /// How often the master samples each worker's CPU, memory, threads and open fds
        /// from /proc, in ms; 0 turns sampling off [default: 1000].
        #[arg(long, value_name = "MS")]
        pub monitor_interval: Option<u64>,
        /// Serve /metrics (Prometheus), /livez and /readyz over HTTP on this address
        /// (HOST:PORT, as in 127.0.0.1:9100; port 0 picks a free one, logged at start).
        /// Those three are read-only and open, without a login: bind it to an address only
        /// trusted clients reach. With --http-users it also serves the web console at /
        /// [default: off].
        #[arg(long, value_name = "ADDR")]
        pub http: Option<String>,
        /// Turn on the web console at / (with --http): who may log in, a JSON or TOML file
        /// of users, each with a name, a role (viewer, operator or admin, as for `clutch
        /// ctl`) and an argon2 hash from `clutch passwd` (see docs/CONSOLE.md). No file, no
        /// console [default: off].
        #[arg(long, value_name = "FILE", requires = "http")]
        pub http_users: Option<PathBuf>,
        /// The TLS certificate chain (PEM) --http serves with; needs --http-tls-key.
        /// Required when the console is on and --http is not a loopback address.
        #[arg(long, value_name = "FILE", requires = "http_tls_key")]
        pub http_tls_cert: Option<PathBuf>,
        /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of --http-tls-cert.
        #[arg(long, value_name = "FILE", requires = "http_tls_cert")]
        pub http_tls_key: Option<PathBuf>,
        /// /readyz answers 200 once this many app workers are ready (at most the desired
        /// number) [default: every app worker].
        #[arg(long, value_name = "N")]
        pub ready_minimum: Option<usize>,
        /// Where workers' stdout and stderr go: `inherit` (the master's own, as is) or
        /// `prefix` (the master reads them and writes each line prefixed with the worker's
        /// name, `[app 2] ...` or `[agent] ...`, and keeps each slot's last 1000 lines for
        /// `clutch ctl logs`; lines it cannot write at once are dropped, never waited for)
        /// [default: inherit].
        #[arg(long, value_name = "MODE")]
        #[serde(default, deserialize_with = "parsed")]
        pub output: Option<OutputMode>,
        /// Write the master's pid here; removed at exit.
        #[arg(long, value_name = "FILE")]
        pub pid_file: Option<PathBuf>,
        /// The cluster's name, for log lines and CLUTCH_NAME [default: clutch].
        #[arg(long)]
        pub name: Option<String>,
        /// Where `clutch ctl` reaches this master [default:
        /// $XDG_RUNTIME_DIR/clutch/NAME.sock, else /tmp/clutch-UID/NAME.sock].
        #[arg(long, value_name = "PATH", conflicts_with = "no_control")]
        pub control_socket: Option<PathBuf>,
        /// No control socket: `clutch ctl` cannot reach this master.
        #[arg(long, num_args = 0, default_missing_value = "true")]
        pub no_control: Option<bool>,
        /// A JSON object granting other local users a role on the control socket:
        /// {"alice": "operator", "@ops": "viewer"} (a user, or @ and a group; roles:
        /// viewer, operator, admin). The master's own user and root are always admin.
        #[arg(long, value_name = "FILE")]
        pub control_users: Option<PathBuf>,
        /// Become a child subreaper (PR_SET_CHILD_SUBREAPER): a worker's orphaned
        /// grandchildren are re-parented to the master, which reaps them so that none stays
        /// a zombie (as it does anyway when it runs as PID 1, in a container). The workers'
        /// own exit statuses are untouched.
        #[arg(long, num_args = 0, default_missing_value = "true")]
        pub subreaper: Option<bool>,
        /// Extra environment variables for every worker (config file only: an object of
        /// strings); a worker's own CLUTCH_* variables are not overridden.
        #[arg(skip)]
        pub env: Option<BTreeMap<String, String>>,
        /// The app worker command and its arguments.
        #[arg(last = true, value_name = "APP_CMD")]
        #[serde(default, deserialize_with = "command")]
        pub app: Option<Vec<String>>,
    }
}

impl Overrides {
    /// These settings over `lower`'s (flags over a config file's): where both set one, this
    /// one's wins. Setting one of a pair that exclude each other also overrides `lower`'s
    /// other: `agent` its `no-agent` and back, `sticky` its `reuseport` and back.
    pub fn merge(self, mut lower: Overrides) -> Overrides {
        if self.agent.is_some() {
            lower.no_agent = None;
        }
        if self.no_agent == Some(true) {
            lower.agent = None;
        }
        if self.sticky == Some(true) {
            lower.reuseport = None;
        }
        if self.reuseport == Some(true) {
            lower.sticky = None;
        }
        if self.control_socket.is_some() {
            lower.no_control = None;
        }
        if self.no_control == Some(true) {
            lower.control_socket = None;
        }
        self.or(lower)
    }

    /// Writes the settings this sets into `s`. Ranges and combinations are left to
    /// [`Settings::validate`]; only what `s` cannot hold is an error here.
    pub fn apply(&self, s: &mut Settings) -> Result<(), ConfigError> {
        let ms = |v: &Option<u64>| v.map(Duration::from_millis);
        set(&mut s.workers, self.workers);
        set(&mut s.app, self.app.clone().map(Some));
        set(&mut s.agent, self.agent.clone().map(|w| Some(w.0)));
        if self.no_agent == Some(true) {
            s.agent = None;
        }
        set(&mut s.port, self.port.map(Some));
        set(&mut s.host, self.host.clone());
        match (self.sticky, self.reuseport) {
            (Some(true), Some(true)) => {
                return Err(bad("sticky", "sticky and reuseport exclude each other"));
            }
            (Some(true), _) => s.listen = ListenMode::Sticky,
            (_, Some(true)) => s.listen = ListenMode::ReusePort,
            _ => {}
        }
        set(&mut s.sticky_mode, self.sticky_mode);
        set(&mut s.proxy_protocol, self.proxy_protocol);
        set(&mut s.proxy_timeout, ms(&self.proxy_timeout));
        set(&mut s.app_dialect, self.app_dialect);
        set(
            &mut s.node_sticky_message,
            self.node_sticky_message.clone().map(Some),
        );
        set(&mut s.egg, self.egg);
        if let Some(off) = self.no_node_preload {
            s.node_preload = !off;
        }
        set(&mut s.ready, self.ready);
        set(&mut s.agent_ready, self.agent_ready.map(Some));
        set(&mut s.ready_timeout, ms(&self.ready_timeout));
        set(&mut s.kill_timeout, ms(&self.kill_timeout));
        set(
            &mut s.heartbeat_timeout,
            ms(&self.heartbeat_timeout).map(Some),
        );
        set(&mut s.max_rss, self.max_rss.map(|mb| Some(mb << 20)));
        set(
            &mut s.max_age,
            self.max_age.map(|secs| Some(Duration::from_secs(secs))),
        );
        set(&mut s.surge, self.surge.map(Some));
        set(&mut s.restart, self.restart);
        set(&mut s.restart_limit, self.restart_limit);
        set(&mut s.restart_window, ms(&self.restart_window));
        set(&mut s.max_message_size, self.max_message_size);
        set(&mut s.monitor_interval, ms(&self.monitor_interval));
        set(&mut s.http, self.http.clone().map(Some));
        set(&mut s.ready_minimum, self.ready_minimum.map(Some));
        set(&mut s.output, self.output);
        set(&mut s.http_users, self.http_users.clone().map(Some));
        set(&mut s.http_tls_cert, self.http_tls_cert.clone().map(Some));
        set(&mut s.http_tls_key, self.http_tls_key.clone().map(Some));
        set(&mut s.pid_file, self.pid_file.clone().map(Some));
        set(&mut s.name, self.name.clone());
        if let Some(path) = &self.control_socket {
            s.control = ControlSocket::At(path.clone());
        }
        if self.no_control == Some(true) {
            s.control = ControlSocket::Off;
        }
        set(&mut s.control_users, self.control_users.clone().map(Some));
        set(&mut s.subreaper, self.subreaper);
        if let Some(env) = &self.env {
            s.env
                .extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Ok(())
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// A command: its program and arguments. From a flag or a config file's string, split as a
/// shell would (quotes, escapes; no shell runs); from a config file's list, as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words(pub Vec<String>);

impl FromStr for Words {
    type Err = String;
    fn from_str(line: &str) -> Result<Words, String> {
        let words = shell_words::split(line).map_err(|e| format!("cannot split `{line}`: {e}"))?;
        if words.is_empty() {
            return Err("the command is empty".into());
        }
        Ok(Words(words))
    }
}

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Words, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Value {
            Line(String),
            List(Vec<String>),
        }
        match Value::deserialize(d)? {
            Value::Line(line) => line.parse().map_err(serde::de::Error::custom),
            Value::List(words) if words.is_empty() => {
                Err(serde::de::Error::custom("the command is empty"))
            }
            Value::List(words) => Ok(Words(words)),
        }
    }
}

/// A command from a config file: a string or a list (see [`Words`]).
fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(Option::<Words>::deserialize(d)?.map(|w| w.0))
}

/// A config file's string value, parsed as the flag's is.
fn parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = String>,
{
    match Option::<String>::deserialize(d)? {
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}

/// A config file: where it is and what it sets.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub overrides: Overrides,
}

impl ConfigFile {
    /// Reads and parses a config file: one JSON object and nothing after it. An unknown key
    /// or a value of the wrong type is an error naming the key.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let in_file = |message: String| ConfigError::File {
            path: path.to_path_buf(),
            message,
        };
        // serde reads a struct from a JSON array too, by position: only an object is let in.
        if text.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(in_file(
                r#"must be a JSON object of settings, as in {"workers": 4}"#.into(),
            ));
        }
        let de = &mut serde_json::Deserializer::from_slice(&text);
        let overrides: Overrides = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let key = e.path().to_string();
            in_file(if key == "." {
                e.inner().to_string()
            } else {
                format!("key `{key}`: {}", e.inner())
            })
        })?;
        de.end()
            .map_err(|e| in_file(format!("something follows the settings object: {e}")))?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            overrides,
        })
    }
}

/// The settings from defaults, then the config file, then the flags (which win), then
/// `below` under all of them (given what the user set: the CLI's demo when there is no
/// app). Checked once, at the end, so a flag may fix what the file alone gets wrong. An
/// error names the flag when one was given, else the file's key when the file set it, else
/// the flag that would fix it.
pub fn resolve(
    flags: Overrides,
    file: Option<ConfigFile>,
    below: impl FnOnce(&Overrides) -> Result<Overrides, ConfigError>,
) -> Result<Settings, ConfigError> {
    let flag_keys = flags.keys();
    let (given, file) = match file {
        Some(f) => {
            let keys = f.overrides.keys();
            (flags.merge(f.overrides), Some((f.path, keys)))
        }
        None => (flags, None),
    };
    let all = {
        let lower = below(&given)?;
        given.merge(lower)
    };
    let mut s = Settings::default();
    all.apply(&mut s)
        .and_then(|()| s.validate())
        .map_err(|e| blame(e, &flag_keys, file.as_ref()))?;
    Ok(s)
}

/// Names where the value at fault came from: the flag when it was given, else the config
/// file's key when the file set it, else the flag that would fix it.
fn blame(
    e: ConfigError,
    flags: &BTreeSet<String>,
    file: Option<&(PathBuf, BTreeSet<String>)>,
) -> ConfigError {
    let ConfigError::Value { key, message } = e else {
        return e;
    };
    match file {
        Some((path, keys)) if keys.contains(&key) && !flags.contains(&key) => ConfigError::File {
            path: path.clone(),
            message: format!("key `{key}`: {message}"),
        },
        _ if key == "app" => ConfigError::Value {
            key: "APP_CMD".into(),
            message,
        },
        _ => ConfigError::Value {
            key: format!("--{key}"),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> Result<ConfigFile, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clutch.json");
        std::fs::write(&path, json).unwrap();
        ConfigFile::load(&path)
    }

    #[test]
    fn flags_win_and_beat_the_files_opposite() {
        let f = file(r#"{"workers": 3, "no-agent": true, "reuseport": true, "name": "f"}"#)
            .unwrap()
            .overrides;
        let flags = Overrides {
            workers: Some(2),
            agent: Some("a b".parse().unwrap()),
            sticky: Some(true),
            ..Overrides::default()
        };
        let m = flags.merge(f);
        assert_eq!(m.workers, Some(2));
        assert_eq!(m.name.as_deref(), Some("f"));
        assert_eq!(
            (m.no_agent, m.reuseport, m.sticky),
            (None, None, Some(true))
        );
        assert_eq!(m.agent, Some(Words(vec!["a".into(), "b".into()])));
    }

    #[test]
    fn keys_are_spelled_as_in_the_file() {
        let f = file(r#"{"ready-timeout": 5, "no-agent": false}"#).unwrap();
        let keys: Vec<String> = f.overrides.keys().into_iter().collect();
        assert_eq!(keys, ["no-agent", "ready-timeout"]);
    }

    #[test]
    fn only_one_object_is_a_config_file() {
        for text in ["[]", "[null, 2]", "", "1", r#"{"workers": 1} x"#] {
            let e = file(text).unwrap_err().to_string();
            assert!(
                e.contains("must be a JSON object") || e.contains("follows the settings"),
                "{text:?}: {e}"
            );
        }
        file("  {\"workers\": 1}\n").unwrap();
    }

    #[test]
    fn file_values_parse_as_the_flags_do() {
        let f = file(r#"{"ready": "delay:5", "restart": "never", "app-dialect": "node", "agent": "x 'y z'"}"#)
            .unwrap()
            .overrides;
        assert_eq!(f.ready, Some(ReadyMode::Delay(Duration::from_millis(5))));
        assert_eq!(f.restart, Some(RestartPolicy::Never));
        assert_eq!(f.app_dialect, Some(Dialect::Node));
        assert_eq!(f.agent, Some(Words(vec!["x".into(), "y z".into()])));
        let e = file(r#"{"agent": []}"#).unwrap_err().to_string();
        assert!(e.contains("key `agent`") && e.contains("empty"), "{e}");
    }
}
