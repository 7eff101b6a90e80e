//! Building a cluster: [`MasterBuilder`] gathers settings; `prepare` does everything that
//! can fail before a worker starts (validate, bind the port, write the pid file, adopt the
//! parent channel) on the caller's thread, so that `start` can return those errors; then
//! the master's thread runs [`super::lifecycle`].

use super::core::Core;
use super::lifecycle::{self, Event, Plan, Published};
use super::messenger::{Messenger, ParentSink, Source};
use super::metrics::Metrics;
use super::registry::Registry;
use super::{ClusterInfo, Master, State, tasks};
use crate::config::{ReadyMode, RestartPolicy, Settings};
use crate::error::Error;
use crate::listen::PortPlan;
use crate::protocol::Message;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long the master waits, when it is done, for the parent channel to take what is
/// queued for it.
const PARENT_FLUSH: Duration = Duration::from_secs(2);

/// Messages for the in-process handle that may wait for it to read them; past this, new
/// ones are dropped (and counted as undeliverable) rather than grow the master.
pub const HANDLE_QUEUE: usize = 4096;

/// Where the master's `parent` route leads.
enum ParentKind {
    /// The in-process handle.
    Handle,
    /// The IPC fd found in `CLUTCH_CHANNEL_FD` / `NODE_CHANNEL_FD`, if any.
    FromEnv,
}

/// Settings for a cluster, then [`start`](Self::start) (own thread) or [`run`](Self::run).
pub struct MasterBuilder {
    settings: Settings,
    parent: ParentKind,
    handle_signals: bool,
    reread: Option<lifecycle::Reread>,
    main_process: bool,
}

impl MasterBuilder {
    /// Starts from `settings` as they are.
    pub fn from_settings(settings: Settings) -> MasterBuilder {
        MasterBuilder {
            settings,
            parent: ParentKind::Handle,
            handle_signals: false,
            reread: None,
            main_process: false,
        }
    }

    /// The app worker command (program and arguments).
    pub fn app<I, S>(mut self, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.app = Some(command.into_iter().map(Into::into).collect());
        self
    }

    /// The agent command; without it there is no agent.
    pub fn agent<I, S>(mut self, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.agent = Some(command.into_iter().map(Into::into).collect());
        self
    }

    /// How many app workers.
    pub fn workers(mut self, n: usize) -> Self {
        self.settings.workers = n;
        self
    }

    /// The public port (`0` for any free one).
    pub fn port(mut self, port: u16) -> Self {
        self.settings.port = Some(port);
        self
    }

    /// The address to bind the port on.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.settings.host = host.into();
        self
    }

    /// When workers count as ready.
    pub fn ready(mut self, mode: ReadyMode) -> Self {
        self.settings.ready = mode;
        self
    }

    /// When the agent counts as ready (defaults to [`ready`](Self::ready)).
    pub fn agent_ready(mut self, mode: ReadyMode) -> Self {
        self.settings.agent_ready = Some(mode);
        self
    }

    /// How long a worker may take to be ready.
    pub fn ready_timeout(mut self, t: Duration) -> Self {
        self.settings.ready_timeout = t;
        self
    }

    /// How long a stopping worker gets between SIGTERM and SIGKILL.
    pub fn kill_timeout(mut self, t: Duration) -> Self {
        self.settings.kill_timeout = t;
        self
    }

    /// Replaces a worker that sent no `clutch:heartbeat` for `t` (the Rust worker library
    /// sends them on its own): a new worker first, then the silent one stopped.
    pub fn heartbeat_timeout(mut self, t: Duration) -> Self {
        self.settings.heartbeat_timeout = Some(t);
        self
    }

    /// Recycles a worker whose resident memory stays above `bytes`.
    pub fn max_rss(mut self, bytes: u64) -> Self {
        self.settings.max_rss = Some(bytes);
        self
    }

    /// Recycles a worker older than `age` (plus up to a fifth of it).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.settings.max_age = Some(age);
        self
    }

    /// During a reload, at most `n` workers beyond one per slot alive at once (old ones
    /// still stopping count): a new worker waits for an old one to exit.
    pub fn surge(mut self, n: usize) -> Self {
        self.settings.surge = Some(n);
        self
    }

    /// Which exits restart an app worker.
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.settings.restart = policy;
        self
    }

    /// At most `limit` restarts of one slot per `window`.
    pub fn restart_limit(mut self, limit: u32, window: Duration) -> Self {
        self.settings.restart_limit = limit;
        self.settings.restart_window = window;
        self
    }

    /// Sticky mode: the master accepts on the port and hands each connection to an app
    /// worker chosen by client address.
    pub fn sticky(mut self) -> Self {
        self.settings.listen = crate::config::ListenMode::Sticky;
        self
    }

    /// Workers bind the port themselves with SO_REUSEPORT.
    pub fn reuseport(mut self) -> Self {
        self.settings.listen = crate::config::ListenMode::ReusePort;
        self
    }

    /// Sticky mode: who steers connections (`--sticky-mode`; automatic by default).
    pub fn sticky_mode(mut self, mode: crate::config::StickyMode) -> Self {
        self.settings.sticky_mode = mode;
        self
    }

    /// Sticky mode: read a PROXY protocol header (v1 or v2) for the client address.
    pub fn proxy_protocol(mut self, timeout: Duration) -> Self {
        self.settings.proxy_protocol = true;
        self.settings.proxy_timeout = timeout;
        self
    }

    /// How app workers receive handed-over sockets.
    pub fn app_dialect(mut self, dialect: crate::config::Dialect) -> Self {
        self.settings.app_dialect = dialect;
        self
    }

    /// Node dialect: send this string with each handed-over socket instead of the
    /// `clutch:connection` object (egg-cluster's app workers expect
    /// `sticky-session:connection`), as `--node-sticky-message` does.
    pub fn node_sticky_message(mut self, message: impl Into<String>) -> Self {
        self.settings.node_sticky_message = Some(message.into());
        self
    }

    /// The longest line a worker may send.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.settings.max_message_size = bytes;
        self
    }

    /// Where workers' stdout and stderr go (`--output`): inherited (the default), or read
    /// by the master and written line by line with the worker's name in front, the last
    /// lines kept for `clutch ctl logs`. The lines go to this process's stdout and stderr.
    pub fn output(mut self, mode: crate::config::OutputMode) -> Self {
        self.settings.output = mode;
        self
    }

    /// An extra environment variable for every worker.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.env.push((key.into(), value.into()));
        self
    }

    /// Takes the `parent` route from `CLUTCH_CHANNEL_FD`/`NODE_CHANNEL_FD` (as the CLI does)
    /// instead of the handle.
    pub fn parent_from_env(mut self) -> Self {
        self.parent = ParentKind::FromEnv;
        self
    }

    /// Stops the cluster on SIGINT, SIGTERM and SIGQUIT, and reloads it on SIGHUP (as the
    /// CLI does).
    pub fn handle_signals(mut self) -> Self {
        self.handle_signals = true;
        self
    }

    /// On each reload, take the settings `reread` returns (the CLI: `--config` read again,
    /// under the flags it was started with). The new generation runs with them; what only
    /// a restart of the master can change (the port, the name, ...; see
    /// [`crate::config::diff`]) refuses the reload, as does an error `reread` returns (it
    /// should name the key). Nothing is changed by a refused reload.
    pub fn reread_on_reload(
        mut self,
        reread: impl Fn() -> Result<Settings, String> + Send + 'static,
    ) -> Self {
        self.reread = Some(Box::new(reread));
        self
    }

    /// The master is its process's main job, as `clutch start` is: it tells a service
    /// manager how the cluster stands when started with `NOTIFY_SOCKET`
    /// ([`super::systemd`]), serves the listening socket one passed it in `LISTEN_FDS`
    /// instead of binding `--port` ([`crate::listen`]), and as PID 1 reaps orphans
    /// ([`super::orphans`]), as `subreaper` does.
    pub fn main_process(mut self) -> Self {
        self.main_process = true;
        self
    }

    /// Listen for `clutch ctl` on a Unix socket at `path` (0600; the master's user and
    /// root are admin, others need [`Settings::control_users`]).
    pub fn control_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.control = crate::config::ControlSocket::At(path.into());
        self
    }

    /// Serve `/metrics`, `/livez` and `/readyz` over HTTP on `addr` (HOST:PORT), as
    /// `--http` does; an address that cannot be bound is an error of `start`.
    pub fn http(mut self, addr: impl Into<String>) -> Self {
        self.settings.http = Some(addr.into());
        self
    }

    /// `/readyz` answers 200 once `n` app workers are ready (at most the desired number),
    /// as `--ready-minimum` does; by default every app worker.
    pub fn ready_minimum(mut self, n: usize) -> Self {
        self.settings.ready_minimum = Some(n);
        self
    }

    /// The settings as built so far.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Starts the cluster on a thread of its own and returns its handle at once; await
    /// [`Master::ready`]. Bad settings, a port that cannot be bound, a pid file that
    /// cannot be written are errors here, before any worker starts.
    pub fn start(self) -> Result<Master, Error> {
        let prepared = self.prepare()?;
        let (state_tx, state_rx) = watch::channel(State::Starting);
        let (msg_tx, msg_rx) = mpsc::channel(HANDLE_QUEUE);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let workers = Arc::new(Mutex::new(Vec::new()));
        let published = Published {
            state: state_tx,
            workers: workers.clone(),
        };
        let events = ev_tx.clone();
        let thread = std::thread::Builder::new()
            .name("clutch-master".into())
            .spawn(move || prepared.run(Some(msg_tx), events, ev_rx, published))
            .map_err(|e| Error::io("cannot start the master thread", e))?;
        Ok(Master {
            events: ev_tx,
            messages: msg_rx,
            state: state_rx,
            workers,
            thread: Some(thread),
        })
    }

    /// Runs the cluster on this thread until it stops: `Ok` after a signal or the parent
    /// leaving, `Err` when it could not start.
    pub fn run(self) -> Result<(), Error> {
        let (state_tx, _) = watch::channel(State::Starting);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let published = Published {
            state: state_tx,
            workers: Arc::new(Mutex::new(Vec::new())),
        };
        self.prepare()?.run(None, ev_tx, ev_rx, published)
    }

    /// Everything that can fail before a worker starts, done on the caller's thread: an
    /// error here is returned by `start` itself, where the run loop could not report it.
    fn prepare(self) -> Result<Prepared, Error> {
        let mut settings = self.settings;
        if settings.app.is_none() {
            return Err(crate::config::ConfigError::Value {
                key: "app".into(),
                message: "a Master needs an app command".into(),
            }
            .into());
        }
        settings.validate()?;
        let passed = match self.main_process {
            true => crate::listen::take_passed()?,
            false => None,
        };
        let adopted = passed.is_some();
        let port = crate::listen::bind_or_adopt(&mut settings, passed)?;
        // A passed socket set the port and host: a reload's settings keep them, or every
        // re-read config would look like a change of port (which needs a restart).
        let reread = match (self.reread, adopted) {
            (Some(reread), true) => {
                let (port, host) = (settings.port, settings.host.clone());
                Some(Box::new(move || {
                    reread().map(|mut fresh| {
                        fresh.port = port;
                        fresh.host = host.clone();
                        fresh
                    })
                }) as lifecycle::Reread)
            }
            (reread, _) => reread,
        };
        let http = settings
            .http
            .as_deref()
            .map(crate::http::bind)
            .transpose()?;
        let reap_orphans = settings.subreaper || (self.main_process && std::process::id() == 1);
        if settings.subreaper {
            crate::sys::process::set_child_subreaper()
                .map_err(|e| Error::io("cannot become a child subreaper (--subreaper)", e))?;
        }
        let console = crate::console::prepare(&settings, http.as_ref().map(|b| b.addr))?;
        let pid_file = settings
            .pid_file
            .as_deref()
            .map(PidFile::write)
            .transpose()?;
        let control = bind_control(&settings)?;
        let parent_fd = match self.parent {
            ParentKind::FromEnv => parent_fd_from_env()?,
            ParentKind::Handle => None,
        };
        Ok(Prepared {
            notifier: match self.main_process {
                true => super::systemd::Notifier::from_env(),
                false => super::systemd::Notifier::off(),
            },
            reap_orphans,
            settings,
            port,
            parent_fd,
            reread,
            handle_signals: self.handle_signals,
            pid_file,
            control,
            http,
            console,
        })
    }
}

/// A cluster checked and holding its port, pid file and parent channel: what the master's
/// thread is given to run.
struct Prepared {
    notifier: super::systemd::Notifier,
    reap_orphans: bool,
    settings: Settings,
    port: PortPlan,
    parent_fd: Option<OwnedFd>,
    reread: Option<lifecycle::Reread>,
    handle_signals: bool,
    pid_file: Option<PidFile>,
    control: Option<crate::control::server::Control>,
    http: Option<crate::http::Bound>,
    console: Option<crate::console::Setup>,
}

impl Prepared {
    fn run(
        self,
        handle: Option<mpsc::Sender<Message>>,
        events: mpsc::UnboundedSender<Event>,
        inbox: mpsc::UnboundedReceiver<Event>,
        published: Published,
    ) -> Result<(), Error> {
        let Prepared {
            notifier,
            reap_orphans,
            settings,
            port,
            parent_fd,
            reread,
            handle_signals,
            // Held to the end of the run: dropping it removes the file.
            pid_file: _pid_file,
            control,
            http,
            console,
        } = self;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the master's runtime", e))?;
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            let (sink, parent_stream) = match (&handle, parent_fd) {
                (Some(tx), _) => (ParentSink::Handle(tx.clone()), None),
                (None, Some(fd)) => {
                    let std = std::os::unix::net::UnixStream::from(fd);
                    std.set_nonblocking(true)
                        .map_err(|e| Error::io("parent channel", e))?;
                    let stream = tokio::net::UnixStream::from_std(std)
                        .map_err(|e| Error::io("parent channel", e))?;
                    let outbox = Rc::new(crate::channel::Outbox::new());
                    (
                        ParentSink::Channel(outbox.clone()),
                        Some((Rc::new(stream), outbox)),
                    )
                }
                (None, None) => (ParentSink::None, None),
            };
            let metrics = Rc::new(Metrics::default());
            let registry = Rc::new(Registry::default());
            let messenger = Rc::new(
                Messenger::new(sink, registry, metrics.clone()).with_egg_names(settings.egg),
            );
            let mut parent_outbox = None;
            if let Some((stream, outbox)) = parent_stream {
                let src = Source {
                    endpoint: crate::protocol::Endpoint::Parent,
                    worker: None,
                    outbox: Some(outbox.clone()),
                };
                tokio::task::spawn_local(tasks::read_channel(
                    stream.clone(),
                    src,
                    None,
                    messenger.clone(),
                    None,
                    events.clone(),
                    settings.max_message_size,
                    None,
                ));
                tokio::task::spawn_local(tasks::write_channel(stream, outbox.clone()));
                parent_outbox = Some(outbox);
            }
            let has_agent = settings.agent.is_some();
            let info = ClusterInfo {
                port: port.port(),
                address: settings.host.clone(),
                workers: settings.workers,
                sticky: matches!(port, PortPlan::Sticky { .. } | PortPlan::Steered { .. }),
                sticky_mode: match port {
                    PortPlan::Sticky { .. } => Some(crate::sticky::mode::HANDOFF),
                    PortPlan::Steered { .. } => Some(crate::sticky::mode::KERNEL),
                    _ => None,
                },
            };
            let core = Core::new(settings, has_agent, info, metrics);
            let plan = Plan {
                reread,
                port,
                handle_signals,
                control,
                http,
                notifier,
                reap_orphans,
                console,
            };
            let result = lifecycle::run(plan, core, messenger, events, inbox, published).await;
            if let Some(outbox) = parent_outbox {
                // The last words (`agent-worker-died`, ...) must reach the parent.
                let _ = tokio::time::timeout(PARENT_FLUSH, outbox.flushed()).await;
            }
            result
        })
    }
}

/// Binds the control socket (and reads who may use it) before any worker starts: a name
/// another master holds is a start error.
fn bind_control(settings: &Settings) -> Result<Option<crate::control::server::Control>, Error> {
    use crate::config::ControlSocket;
    let (path, default) = match &settings.control {
        ControlSocket::Off => return Ok(None),
        ControlSocket::Default => (crate::control::socket::default_path(&settings.name), true),
        ControlSocket::At(p) => (p.clone(), false),
    };
    let users = match &settings.control_users {
        Some(file) => crate::control::Users::load(file)?,
        None => crate::control::Users::default(),
    };
    let bound = crate::control::socket::bind(&path, default)?;
    Ok(Some(crate::control::server::Control { bound, users }))
}

/// The master's pid file, removed when dropped: after the run, or when the start fails
/// after it was written.
struct PidFile(PathBuf);

impl PidFile {
    fn write(path: &Path) -> Result<PidFile, Error> {
        std::fs::write(path, format!("{}\n", std::process::id())).map_err(|e| {
            crate::config::ConfigError::Value {
                key: "pid-file".into(),
                message: format!("cannot write {}: {e}", path.display()),
            }
        })?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The IPC fd the master was started with, if any, made close-on-exec so no worker
/// inherits it.
fn parent_fd_from_env() -> Result<Option<OwnedFd>, Error> {
    let var = ["CLUTCH_CHANNEL_FD", "NODE_CHANNEL_FD"]
        .iter()
        .find_map(|k| std::env::var(k).ok().map(|v| (*k, v)));
    let Some((key, value)) = var else {
        return Ok(None);
    };
    let fd: i32 = value
        .trim()
        .parse()
        .map_err(|_| crate::config::ConfigError::Value {
            key: key.into(),
            message: format!("`{value}` is not an fd number"),
        })?;
    // SAFETY: fcntl(F_GETFD) only checks the fd is open.
    if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(crate::config::ConfigError::Value {
            key: key.into(),
            message: format!("fd {fd} is not an open channel"),
        }
        .into());
    }
    // SAFETY: the fd is open and was handed to this process to own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    crate::sys::fdpass::set_cloexec(&owned).map_err(|e| Error::io("parent channel", e))?;
    Ok(Some(owned))
}
