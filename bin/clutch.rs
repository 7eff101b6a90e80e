//! The `clutch` command: parse flags, load the config, run the master.

mod demo;

use clap::{Args, Parser, Subcommand};
use clutch::config::{self, ConfigError, ConfigFile, Overrides, Words};
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
    /// Run an egg.js app with clutch as its master (egg-cluster's workers, egg's lifecycle
    /// messages): `clutch egg [BASEDIR] -w 4 -p 7001`. Takes start's flags, on port 7001
    /// by default.
    Egg(Box<EggArgs>),
    /// Talk to a running master: list, inspect, stats, logs, watch, restart, stop, start,
    /// scale, kill, signal, send, request, reload, shutdown (see `clutch ctl --help`).
    #[command(after_help = clutch::control::client::AFTER_HELP)]
    Ctl(clutch::control::client::CtlArgs),
    /// Print the argon2 hash of a password, for the web console's users file
    /// (--http-users). The password is read from the terminal without echo (asked twice),
    /// or from the first line of stdin when it is not a terminal:
    /// `clutch passwd < secret.txt`. The hash goes to stdout; nothing else is printed there.
    Passwd,
    /// Run as a demo worker (used by the demo cluster itself).
    #[command(name = "demo-worker", hide = true)]
    DemoWorker,
}

#[derive(Args)]
struct StartArgs {
    #[command(flatten)]
    flags: Overrides,
    /// A JSON object with the same settings (keys as the long flags: "workers",
    /// "ready-timeout", "app", ...; "env" for extra variables). Flags override it. Read
    /// again on each reload (`clutch ctl reload`, SIGHUP): the new generation runs with the
    /// new command, env and worker settings; an error, or a change of what only a restart
    /// can change (port, host, sticky/reuseport, name, control socket, ...), refuses the
    /// reload and the cluster keeps running as it was.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct EggArgs {
    /// The egg app's directory (its package.json) [default: the current directory].
    #[arg(value_name = "BASEDIR")]
    base_dir: Option<PathBuf>,
    /// The framework: a package in the app's node_modules or an absolute path [default:
    /// package.json's egg.framework, else egg].
    #[arg(long, value_name = "NAME")]
    framework: Option<String>,
    /// The cluster's title: its name in log lines, and egg's `title` option.
    #[arg(long)]
    title: Option<String>,
    /// egg's server env (local, prod, ...) [default: EGG_SERVER_ENV, else egg's own].
    #[arg(long = "env", value_name = "ENV")]
    server_env: Option<String>,
    #[command(flatten)]
    start: StartArgs,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::DemoWorker => match demo::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "clutch demo worker: {e}");
                ExitCode::from(1)
            }
        },
        Command::Passwd => ExitCode::from(clutch::console::password::passwd_command()),
        Command::Ctl(args) => ExitCode::from(clutch::control::client::run(args)),
        Command::Start(args) => {
            clutch::log::init();
            let code = start(*args);
            // Bounded: a stderr nobody reads must not keep clutch from exiting.
            clutch::master::output::finish(Duration::from_secs(2));
            clutch::log::finish(Duration::from_secs(2));
            code
        }
        Command::Egg(args) => {
            clutch::log::init();
            let code = egg(*args);
            clutch::master::output::finish(Duration::from_secs(2));
            clutch::log::finish(Duration::from_secs(2));
            code
        }
    }
}

fn start(args: StartArgs) -> ExitCode {
    let file = args.config.as_deref().map(ConfigFile::load).transpose();
    // A reload reads the file again, under the same flags: they still win.
    let reread = args.config.clone().map(|path| {
        let flags = args.flags.clone();
        move || {
            ConfigFile::load(&path)
                .and_then(|file| config::resolve(flags.clone(), Some(file), demo))
                .map_err(|e| e.to_string())
        }
    });
    match file.and_then(|file| config::resolve(args.flags, file, demo)) {
        Ok(s) => {
            let builder = MasterBuilder::from_settings(s);
            run(match reread {
                Some(f) => builder.reread_on_reload(f),
                None => builder,
            })
        }
        Err(e) => {
            clutch::log::line(&format!("clutch: {e}"));
            ExitCode::from(2)
        }
    }
}

fn egg(args: EggArgs) -> ExitCode {
    let app = clutch::egg::EggApp {
        base_dir: args.base_dir.unwrap_or_else(|| PathBuf::from(".")),
        framework: args.framework,
        title: args.title,
        env: args.server_env,
    };
    let file = args
        .start
        .config
        .as_deref()
        .map(ConfigFile::load)
        .transpose();
    let settings = file
        .map_err(clutch::egg::EggError::from)
        .and_then(|file| clutch::egg::settings(&app, args.start.flags, file));
    // The egg options carry ports picked at start: a reload keeps the settings it has.
    match settings {
        Ok(s) => run(MasterBuilder::from_settings(s)),
        Err(e) => {
            clutch::log::line(&format!("clutch egg: {e}"));
            ExitCode::from(2)
        }
    }
}

fn run(builder: MasterBuilder) -> ExitCode {
    // The library leaves the embedding process's limits alone; the CLI owns its process.
    if let Err(e) = clutch::sys::process::raise_fd_limit() {
        tracing::debug!("cannot raise the open-file limit: {e}");
    }
    match builder
        .parent_from_env()
        .handle_signals()
        .main_process()
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

/// With no app command, the built-in demo: this binary as the app and (unless told there is
/// no agent) the agent, on port 7001 unless another is given.
fn demo(given: &Overrides) -> Result<Overrides, ConfigError> {
    if given.app.is_some() {
        return Ok(Overrides::default());
    }
    let exe = std::env::current_exe().map_err(|e| ConfigError::Value {
        key: "app".into(),
        message: format!("cannot find the clutch binary for the demo: {e}"),
    })?;
    let demo = vec![
        exe.to_string_lossy().into_owned(),
        demo::SUBCOMMAND.to_string(),
    ];
    Ok(Overrides {
        app: Some(demo.clone()),
        agent: Some(Words(demo)),
        port: Some(7001),
        ..Overrides::default()
    })
}
