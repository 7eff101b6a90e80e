//! The `clutch` command: parse flags, load the config, run the master.

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use clutch::config::{
    ConfigError, Dialect, FileKeys, FileSettings, ListenMode, ReadyMode, RestartPolicy, Settings,
    split_command,
};
use clutch::{Error, MasterBuilder};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// A multi-process supervisor: a master, an agent and N app workers over IPC channels.
///
/// Exit codes: 0 after a signal shutdown, 1 when the cluster failed to start, 2 for usage or
/// config errors. Log level: RUST_LOG (default info).
#[derive(Parser)]
#[command(name = "clutch", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a cluster. With no APP_CMD (and no `app` in --config), runs the built-in demo:
    /// an agent and N app workers serving HTTP on --port (default 7001).
    Start(Box<StartArgs>),
    /// Run as a demo worker (used by the demo cluster itself).
    #[command(name = "demo-worker", hide = true)]
    DemoWorker,
}

#[derive(Args)]
struct StartArgs {
    /// Number of app workers [default: the CPU count].
    #[arg(short = 'w', long, value_name = "N")]
    workers: Option<usize>,
    /// The agent command, split like a shell would (no shell is run). Without it (and
    /// outside the demo) there is no agent.
    #[arg(long, value_name = "CMD")]
    agent: Option<String>,
    /// Run without an agent: the app workers start at once.
    #[arg(long, conflicts_with = "agent")]
    no_agent: bool,
    /// The public port; the master binds it once and app workers inherit the socket
    /// (LISTEN_FDS, from fd 3). 0 picks a free port. Given to workers as CLUTCH_PORT.
    #[arg(short = 'p', long, value_name = "PORT")]
    port: Option<u16>,
    /// The address to bind --port on [default: 0.0.0.0].
    #[arg(long, value_name = "ADDR")]
    host: Option<String>,
    /// Sticky sessions: the master accepts on --port and hands each connection to the app
    /// worker its client address picks (the same client, the same worker).
    #[arg(long, conflicts_with = "reuseport")]
    sticky: bool,
    /// Workers bind --port themselves with SO_REUSEPORT (the master only reserves it).
    #[arg(long)]
    reuseport: bool,
    /// With --sticky: read a PROXY protocol (v1 or v2) header for the real client address;
    /// a connection without a valid one is closed.
    #[arg(long)]
    proxy_protocol: bool,
    /// How long a PROXY header may take to arrive, in ms [default: 3000].
    #[arg(long, value_name = "MS")]
    proxy_timeout: Option<u64>,
    /// How app workers receive handed-over sockets: node (Node's handle protocol), clutch
    /// (a clutch:connection line) or auto (node for node commands) [default: auto].
    #[arg(long, value_name = "DIALECT")]
    app_dialect: Option<String>,
    /// With the node dialect, the message that comes with each socket: this string instead
    /// of the clutch:connection object. egg-cluster app workers expect
    /// `sticky-session:connection`.
    #[arg(long, value_name = "STRING")]
    node_sticky_message: Option<String>,
    /// When a worker is ready: `message` (it sends agent-start / app-start), `spawn` (at
    /// once), `delay:MS` (MS after spawn, if alive), `notify` (it sends READY=1 to its own
    /// NOTIFY_SOCKET, as with systemd) or `tcp:PORT` (a connect to 127.0.0.1:PORT succeeds)
    /// [default: message].
    #[arg(long, value_name = "MODE")]
    ready: Option<String>,
    /// Like --ready, for the agent only.
    #[arg(long, value_name = "MODE")]
    agent_ready: Option<String>,
    /// How long a worker may take to be ready, in ms. While the cluster starts, a worker not
    /// ready in time fails the start; once the cluster is ready, a restarted worker not ready
    /// in time is killed and restarted as --restart says [default: 60000].
    #[arg(long, value_name = "MS")]
    ready_timeout: Option<u64>,
    /// How long a stopping worker gets between SIGTERM and SIGKILL, in ms [default: 5000].
    #[arg(long, value_name = "MS")]
    kill_timeout: Option<u64>,
    /// Which app worker exits restart it: always, on-failure (not exit code 0) or never
    /// [default: always].
    #[arg(long, value_name = "POLICY")]
    restart: Option<String>,
    /// At most this many restarts of one slot per --restart-window; past it the slot is
    /// parked [default: 60].
    #[arg(long, value_name = "N")]
    restart_limit: Option<u32>,
    /// The window of --restart-limit, in ms [default: 60000].
    #[arg(long, value_name = "MS")]
    restart_window: Option<u64>,
    /// The longest message line a worker may send, in bytes [default: 16777216].
    #[arg(long, value_name = "BYTES")]
    max_message_size: Option<usize>,
    /// A JSON file with the same settings (keys as the long flags: "workers",
    /// "ready-timeout", "app", ...). Flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write the master's pid here; removed at exit.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// The cluster's name, for log lines and CLUTCH_NAME [default: clutch].
    #[arg(long)]
    name: Option<String>,
    /// The app worker command and its arguments.
    #[arg(last = true, value_name = "APP_CMD")]
    app: Vec<String>,
}

fn main() -> ExitCode {
    // The matches are kept to tell a flag given from one left out (see `blame`).
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::DemoWorker => match clutch::demo::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "clutch demo worker: {e}");
                ExitCode::from(1)
            }
        },
        Command::Start(args) => start(
            *args,
            matches
                .subcommand_matches("start")
                .expect("the start subcommand was parsed"),
        ),
    }
}

fn start(args: StartArgs, matches: &ArgMatches) -> ExitCode {
    clutch::log::init();
    let code = run(args, matches);
    // Bounded: a stderr nobody reads must not keep clutch from exiting.
    clutch::log::finish(Duration::from_secs(2));
    code
}

fn run(args: StartArgs, matches: &ArgMatches) -> ExitCode {
    let settings = match settings(args, matches) {
        Ok(s) => s,
        Err(e) => {
            clutch::log::line(&format!("clutch: {e}"));
            return ExitCode::from(2);
        }
    };
    // The library leaves the embedding process's limits alone; the CLI owns its process.
    if let Err(e) = clutch::sys::process::raise_fd_limit() {
        tracing::debug!("cannot raise the open-file limit: {e}");
    }
    match MasterBuilder::from_settings(settings)
        .parent_from_env()
        .handle_signals()
        .run()
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Config(e)) => {
            clutch::log::line(&format!("clutch: {e}"));
            ExitCode::from(2)
        }
        Err(e) => {
            clutch::log::line(&format!("clutch: the cluster failed to start: {e}"));
            ExitCode::from(1)
        }
    }
}

/// Defaults, then the config file, then flags; the demo fills in what is left. Validated
/// once, at the end: a flag may fix what the file alone gets wrong.
fn settings(a: StartArgs, matches: &ArgMatches) -> Result<Settings, ConfigError> {
    let mut s = Settings::default();
    let mut file_no_agent = false;
    let mut file_keys = None;
    if let Some(path) = &a.config {
        let file = FileSettings::load(path)?;
        file_no_agent = file.no_agent();
        file_keys = Some(file.apply(&mut s, path)?);
    }
    let flag = |key: &str, m: String| ConfigError::Value {
        key: format!("--{key}"),
        message: m,
    };
    if let Some(v) = a.workers {
        s.workers = v;
    }
    if let Some(v) = &a.agent {
        s.agent = Some(split_command("--agent", v)?);
    }
    if let Some(v) = a.port {
        s.port = Some(v);
    }
    if let Some(v) = a.host {
        s.host = v;
    }
    if a.sticky {
        s.listen = ListenMode::Sticky;
    }
    if a.reuseport {
        s.listen = ListenMode::ReusePort;
    }
    if a.proxy_protocol {
        s.proxy_protocol = true;
    }
    if let Some(v) = a.proxy_timeout {
        s.proxy_timeout = Duration::from_millis(v);
    }
    if let Some(v) = a.app_dialect {
        s.app_dialect = v.parse::<Dialect>().map_err(|m| flag("app-dialect", m))?;
    }
    if let Some(v) = a.node_sticky_message {
        s.node_sticky_message = Some(v);
    }
    if let Some(v) = a.ready {
        s.ready = v.parse::<ReadyMode>().map_err(|m| flag("ready", m))?;
    }
    if let Some(v) = a.agent_ready {
        s.agent_ready = Some(v.parse::<ReadyMode>().map_err(|m| flag("agent-ready", m))?);
    }
    if let Some(v) = a.ready_timeout {
        s.ready_timeout = Duration::from_millis(v);
    }
    if let Some(v) = a.kill_timeout {
        s.kill_timeout = Duration::from_millis(v);
    }
    if let Some(v) = a.restart {
        s.restart = v.parse::<RestartPolicy>().map_err(|m| flag("restart", m))?;
    }
    if let Some(v) = a.restart_limit {
        s.restart_limit = v;
    }
    if let Some(v) = a.restart_window {
        s.restart_window = Duration::from_millis(v);
    }
    if let Some(v) = a.max_message_size {
        s.max_message_size = v;
    }
    if let Some(v) = a.pid_file {
        s.pid_file = Some(v);
    }
    if let Some(v) = a.name {
        s.name = v;
    }
    if !a.app.is_empty() {
        s.app = Some(a.app);
    }
    // An `--agent` flag beats the file's `no-agent`, as `--no-agent` beats its `agent`.
    let no_agent = a.no_agent || (file_no_agent && a.agent.is_none());
    if s.app.is_none() {
        let exe = std::env::current_exe()
            .map_err(|e| {
                flag(
                    "app",
                    format!("cannot find the clutch binary for the demo: {e}"),
                )
            })?
            .to_string_lossy()
            .into_owned();
        let demo = vec![exe, clutch::demo::SUBCOMMAND.to_string()];
        s.app = Some(demo.clone());
        if s.agent.is_none() && !no_agent {
            s.agent = Some(demo);
        }
        s.port.get_or_insert(7001);
    }
    if no_agent {
        s.agent = None;
    }
    s.validate()
        .map_err(|e| blame(e, matches, file_keys.as_ref()))?;
    Ok(s)
}

/// Names where the value at fault came from: the flag when it was given, else the config
/// file's key when the file set it, else the flag that would fix it.
fn blame(e: ConfigError, matches: &ArgMatches, file: Option<&FileKeys>) -> ConfigError {
    let ConfigError::Value { key, message } = e else {
        return e;
    };
    match file {
        Some(f) if f.sets(&key) && !flag_given(matches, &key) => f.error(&key, message),
        _ => ConfigError::Value {
            key: format!("--{key}"),
            message,
        },
    }
}

/// Whether the flag `--key` was on the command line.
fn flag_given(matches: &ArgMatches, key: &str) -> bool {
    let id = key.replace('-', "_");
    // `value_source` panics (in debug builds) on an id that is no argument's.
    matches.ids().any(|i| i.as_str() == id)
        && matches.value_source(&id) == Some(ValueSource::CommandLine)
}
