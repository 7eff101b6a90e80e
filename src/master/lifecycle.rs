//! The master's run loop: the I/O shell around the [`Core`].
//!
//! Events arrive from the tasks (a channel said ready, an owner reaped its child, a timer
//! fired, a signal, the handle); each becomes an [`Input`] for the core, and the core's
//! [`Effect`]s are carried out here: [`super::launch`] spawns a worker and its tasks, an
//! owner ([`super::owner`]) is told to stop or kill its child, the handoff and the
//! registry are told who takes connections and who is gone.

use crate::error::Error;
use crate::listen::PortPlan;
use crate::master::State;
use crate::master::core::{Command, Core, Effect, Goal, Input, ReloadEvent, Timer};
use crate::master::liveness::Liveness;
use crate::master::messenger::{Messenger, Outcome, Source};
use crate::master::owner::Order;
use crate::master::tasks::Closed;
use crate::master::worker::{Role, WorkerId, WorkerInfo};
use crate::protocol::{Endpoint, Message};
use crate::sticky::handoff::Handoff;
use crate::sticky::listener::accept_loop;
use crate::sticky::steered::Steered;
use crate::sys::guard::Guard;
use crate::sys::process::Exit;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::{oneshot, watch};
use tokio::task::{AbortHandle, spawn_local};

/// How often the master checks that every kernel-steered socket is still in the group.
const STEERING_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Something the run loop must act on.
#[derive(Debug)]
pub enum Event {
    /// The worker is ready (message, notify or tcp probe).
    Ready { worker: WorkerId },
    /// The worker's owner reaped it; sent once per worker.
    Exited { worker: WorkerId, exit: Exit },
    /// A channel's reader stopped (`None`: the parent channel).
    ChannelClosed {
        worker: Option<WorkerId>,
        closed: Closed,
    },
    /// A timer the core armed fired.
    Timer(Timer),
    /// A message addressed to the master.
    ToMaster(Message),
    /// SIGINT, SIGTERM or SIGQUIT arrived.
    Signal(&'static str),
    /// A line from the in-process parent (the [`crate::Master`] handle).
    FromHandle(Vec<u8>),
    /// An operator's command; the answer says whether it was taken.
    Command(Command, oneshot::Sender<Result<(), String>>),
    /// A rolling reload; `progress` hears how it goes once it is taken.
    Reload {
        batch: usize,
        surge: Option<usize>,
        progress: UnboundedSender<ReloadEvent>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// SIGHUP: a rolling reload, one slot at a time.
    Hangup,
    /// Time to check heartbeats and memory ([`super::liveness`]).
    LivenessTick,
    /// A `clutch ctl` request, its caller's role already checked.
    Control(
        crate::control::Call,
        oneshot::Sender<crate::control::Answer>,
    ),
    /// The handle asks for a graceful stop.
    Shutdown,
    /// The handle was dropped: kill everything now.
    Kill,
    /// A worker sent `clutch:subscribe` (the watchdog).
    Subscribe { worker: WorkerId },
    /// A request from the handle; the reply completes the sender.
    Request(Vec<u8>, oneshot::Sender<Message>),
    /// Time to check the kernel-steered sockets ([`crate::sticky::steered`]).
    SteeringTick,
    /// The handle asks for every worker's monitor sample.
    Stats(oneshot::Sender<Vec<crate::master::monitor::WorkerStats>>),
    /// `--http` asks for the core's state (`/metrics`, `/livez`, `/readyz`).
    Http(oneshot::Sender<crate::http::View>),
    /// Time to tell systemd's watchdog that the loop is alive ([`super::systemd`]).
    Watchdog,
}

/// Re-reads the settings for a reload (the CLI: `--config` again under the same flags);
/// an error names the key at fault.
pub type Reread = Box<dyn Fn() -> Result<crate::config::Settings, String> + Send>;

/// What the loop was given to run.
pub struct Plan {
    /// Where a reload gets its settings; without it, a reload keeps the running ones.
    pub reread: Option<Reread>,
    /// The public port and who listens on it.
    pub port: PortPlan,
    pub handle_signals: bool,
    /// The control socket, bound, to serve.
    pub control: Option<crate::control::server::Control>,
    /// The `--http` socket, bound, to serve.
    pub http: Option<crate::http::Bound>,
    /// What to tell a service manager (silent unless it gave `NOTIFY_SOCKET`).
    pub notifier: crate::master::systemd::Notifier,
    /// Reap orphans re-parented to the master (PID 1, or `--subreaper`).
    pub reap_orphans: bool,
    /// What `--http` serves besides its read-only paths: the web console, TLS.
    pub console: Option<crate::console::Setup>,
}

/// Where the loop publishes its state for the handle.
pub struct Published {
    pub state: watch::Sender<State>,
    pub workers: Arc<Mutex<Vec<WorkerInfo>>>,
}

/// A live worker's I/O side: how to reach its owner, and the probes to stop at its exit.
pub(super) struct Owned {
    pub(super) orders: UnboundedSender<Order>,
    pub(super) probes: Vec<AbortHandle>,
}

pub(super) struct Cluster {
    pub(super) core: Core,
    pub(super) plan: Plan,
    pub(super) messenger: Rc<Messenger>,
    pub(super) events: UnboundedSender<Event>,
    pub(super) guard: Rc<RefCell<Guard>>,
    pub(super) owned: HashMap<WorkerId, Owned>,
    pub(super) published: Published,
    /// Sticky mode: the connection router and the accept task.
    pub(super) handoff: Option<Rc<Handoff>>,
    /// Kernel-steered sticky mode: the slots' sockets and their program.
    pub(super) steered: Option<Steered>,
    /// The web console's users, re-read from `--http-users` on a reload.
    web_users: Option<crate::console::SharedUsers>,
    accept_task: Option<tokio::task::JoinHandle<()>>,
    /// Inputs produced while carrying out effects (a spawn's result), handled next.
    queue: VecDeque<Input>,
    /// Who follows the reload in progress.
    pub(super) reload_progress: Vec<UnboundedSender<ReloadEvent>>,
    pub(super) liveness: Liveness,
    pub(super) control: crate::master::control_handler::ControlState,
    /// Reload counts and durations, for `/metrics`.
    reloads: Rc<crate::http::Reloads>,
    /// Workers' output, with `--output prefix`.
    pub(super) output: Option<Rc<crate::master::output::Output>>,
}

/// Runs a cluster until it has stopped. `Ok` after a requested stop, `Err` when it could not
/// start. Must run inside a `LocalSet` on a current-thread runtime, on a thread that lives
/// as long as the cluster (children's death signal is tied to it).
pub async fn run(
    mut plan: Plan,
    core: Core,
    messenger: Rc<Messenger>,
    events: UnboundedSender<Event>,
    mut inbox: UnboundedReceiver<Event>,
    published: Published,
) -> Result<(), Error> {
    let guard = Guard::start().map_err(|e| Error::io("cannot start the guard process", e))?;
    if plan.handle_signals {
        crate::master::signals::listen_for_signals(&events)?;
    }
    let settings = core.settings();
    let output = (settings.output == crate::config::OutputMode::Prefix).then(Rc::default);
    let (handoff, accept_task, steered) = match &mut plan.port {
        PortPlan::Sticky { listener, .. } => {
            let dialect = settings
                .app_dialect
                .resolve(settings.app.as_deref().unwrap_or_default());
            let handoff = Rc::new(
                Handoff::new(settings.workers, dialect)
                    .with_node_message(settings.node_sticky_message.as_deref())
                    .with_metrics(messenger.metrics().clone()),
            );
            let proxy = settings.proxy_protocol.then_some(settings.proxy_timeout);
            let listener = listener.take().expect("the sticky listener is taken once");
            let task = spawn_local(accept_loop(listener, handoff.clone(), proxy));
            (Some(handoff), Some(task), None)
        }
        PortPlan::Steered { group, .. } => {
            // The handoff only carries what the master drains from a down slot's socket.
            let dialect = settings
                .app_dialect
                .resolve(settings.app.as_deref().unwrap_or_default());
            let handoff = Rc::new(
                Handoff::new(settings.workers, dialect).with_metrics(messenger.metrics().clone()),
            );
            let group = group.take().expect("the socket group is taken once");
            let events = events.clone();
            spawn_local(async move {
                let mut tick = tokio::time::interval(STEERING_CHECK);
                loop {
                    tick.tick().await;
                    if events.send(Event::SteeringTick).is_err() {
                        return;
                    }
                }
            });
            (
                Some(handoff.clone()),
                None,
                Some(Steered::new(group, handoff)),
            )
        }
        _ => (None, None, None),
    };
    if let Some(control) = plan.control.take() {
        spawn_local(crate::control::server::serve(control, events.clone()));
    }
    let reloads = Rc::new(crate::http::Reloads::default());
    // The run loop re-reads the console's users file on a reload.
    let web_users = plan.console.as_ref().and_then(|s| s.users.clone());
    if let Some(http) = plan.http.take() {
        spawn_local(crate::http::serve(
            http,
            events.clone(),
            messenger.clone(),
            reloads.clone(),
            plan.console.take(),
        ));
    }
    spawn_local(crate::master::monitor::run(
        messenger.monitor().clone(),
        messenger.registry().clone(),
        settings.monitor_interval,
    ));
    let guard = Rc::new(RefCell::new(guard));
    if plan.reap_orphans {
        let why = match std::process::id() {
            1 => "as PID 1",
            _ => "--subreaper",
        };
        tracing::info!("reaping orphaned processes re-parented to the master ({why})");
        spawn_local(crate::master::orphans::reap(Rc::downgrade(&guard)));
    }
    if let Some(every) = plan.notifier.watchdog_every() {
        spawn_local(crate::master::systemd::watchdog_ticks(
            every,
            events.clone(),
        ));
    }
    // A guard that dies is replaced at once: protection never lapses silently.
    let supervised = Rc::downgrade(&guard);
    spawn_local(async move {
        if let Err(e) = crate::sys::guard::supervise(supervised).await {
            tracing::error!(
                "cannot keep a guard process running ({e}); if the master is killed, its                  workers' children may be left behind"
            );
        }
    });
    let mut c = Cluster {
        core,
        plan,
        messenger,
        events,
        guard,
        owned: HashMap::new(),
        published,
        handoff,
        steered,
        web_users,
        accept_task,
        queue: VecDeque::new(),
        reload_progress: Vec::new(),
        liveness: Liveness::default(),
        control: Default::default(),
        reloads,
        output,
    };
    c.arm_liveness();
    c.input(Input::Start);
    while !c.core.done() {
        let Some(ev) = inbox.recv().await else { break };
        c.handle(ev);
    }
    let result = match c.core.take_failure() {
        Some(e) => {
            let _ = c.published.state.send(State::Failed(e.clone()));
            Err(e)
        }
        None => {
            let _ = c.published.state.send(State::Stopped);
            Ok(())
        }
    };
    c.publish_workers();
    result
}

impl Cluster {
    fn publish_workers(&self) {
        *self.published.workers.lock().expect("workers lock") = self.core.snapshot();
    }

    /// Feeds `input` to the core and carries out what it decides, and what that leads to.
    pub(super) fn input(&mut self, input: Input) {
        self.queue.push_back(input);
        while let Some(input) = self.queue.pop_front() {
            let seen = self.control_before(&input);
            for effect in self.core.handle(Instant::now(), input) {
                self.apply(effect);
            }
            self.control_after(seen);
        }
        self.sync_steering();
    }

    /// Kernel steering follows who takes connections now, once per core step (so a slot
    /// whose old and new worker swap within one step never looks down).
    fn sync_steering(&mut self) {
        if let Some(s) = &mut self.steered {
            s.sync();
        }
    }

    /// A result of carrying out an effect, for the core next.
    pub(super) fn then(&mut self, input: Input) {
        self.queue.push_back(input);
    }

    fn apply(&mut self, effect: Effect) {
        self.control_effect(&effect);
        self.plan.notifier.effect(&effect, &self.core);
        match effect {
            Effect::Spawn {
                worker,
                role,
                slot,
                generation,
            } => {
                if role == Role::App
                    && let Some(s) = &mut self.steered
                {
                    s.starting(worker, slot);
                }
                self.launch(worker, role, slot, generation)
            }
            Effect::Stop { worker, grace } => self.order(worker, Order::Stop { grace }),
            Effect::Kill { worker } => self.order(worker, Order::Kill),
            Effect::Arm { after, timer } => {
                let events = self.events.clone();
                spawn_local(async move {
                    tokio::time::sleep(after).await;
                    let _ = events.send(Event::Timer(timer));
                });
            }
            Effect::Accepting { worker, slot } => {
                if let Some(h) = &self.handoff
                    && let Some(outbox) = self.messenger.registry().outbox(worker)
                {
                    h.attach(slot, worker, outbox);
                }
                if let Some(s) = &mut self.steered {
                    s.accepting(worker, slot);
                }
            }
            Effect::NotAccepting { worker } => {
                if let Some(h) = &self.handoff {
                    h.stop_sending(worker);
                }
                if let Some(s) = &mut self.steered {
                    s.not_accepting(worker);
                }
            }
            Effect::Gone { worker } => {
                if let Some(owned) = self.owned.remove(&worker) {
                    for probe in owned.probes {
                        probe.abort();
                    }
                }
                self.messenger.registry().remove(worker);
                self.messenger.gone(worker);
                self.prune_logs();
                if let Some(h) = &self.handoff {
                    h.gone(worker);
                }
                if let Some(s) = &mut self.steered {
                    s.not_accepting(worker);
                }
            }
            Effect::Send(msg) => self.messenger.send_from_master(&msg),
            Effect::CloseListener => {
                if let Some(task) = self.accept_task.take() {
                    task.abort();
                }
                if let Some(s) = &mut self.steered {
                    s.close();
                }
            }
            Effect::ClusterReady(info) => {
                // Steered as the ready workers say before anyone hears it is ready.
                self.sync_steering();
                let _ = self.published.state.send(State::Ready(info));
            }
            Effect::Publish => {
                self.publish_workers();
                self.messenger.members_changed(&self.core);
            }
            Effect::Reload(event) => {
                self.reloads.observe(&event);
                let last = matches!(
                    event,
                    ReloadEvent::Completed { .. } | ReloadEvent::Aborted { .. }
                );
                self.reload_progress
                    .retain(|p| p.send(event.clone()).is_ok());
                if last {
                    self.reload_progress.clear();
                }
                if matches!(event, ReloadEvent::Aborted { .. }) {
                    // The settings from before may be back: heartbeats and --max-rss too.
                    self.arm_liveness();
                }
            }
        }
    }

    /// egg-development's `reload-worker` (on a code change): each app slot restarts as
    /// an operator's restart does, its worker serving until the new one is ready.
    fn reload_apps(&mut self) {
        let slots: Vec<u32> = self
            .core
            .slots()
            .filter(|s| s.role == Role::App && s.goal == Goal::Running)
            .map(|s| s.id)
            .collect();
        tracing::info!("reload-worker: restarting {} app worker(s)", slots.len());
        for slot in slots {
            let (reply, mut answer) = oneshot::channel();
            self.handle(Event::Command(Command::Restart { slot }, reply));
            if let Ok(Err(why)) = answer.try_recv() {
                tracing::warn!("reload-worker: app worker {slot} not restarted: {why}");
            }
        }
    }

    /// Carries out an operator's command and what it leads to; refused with the reason.
    pub(super) fn command(&mut self, cmd: Command) -> Result<(), String> {
        self.core
            .command(Instant::now(), cmd)
            .map(|effects| self.carry_out(effects))
    }

    /// Carries out a command's effects and the inputs they lead to.
    fn carry_out(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            self.apply(effect);
        }
        let queued: Vec<Input> = self.queue.drain(..).collect();
        for input in queued {
            self.input(input);
        }
        self.sync_steering();
    }

    /// A rolling reload: the settings re-read first when the plan says how (an error there
    /// refuses the reload with nothing changed), then the core's reload; refused with the
    /// reason.
    pub(super) fn reload(&mut self, batch: usize, surge: Option<usize>) -> Result<(), String> {
        let refused = |e: String| {
            format!("not reloading: {e}; nothing was changed, the cluster runs as it was")
        };
        let fresh = match &self.plan.reread {
            Some(reread) => Some(reread().map_err(refused)?),
            None => None,
        };
        // The users file is read again too (the same path: a new one needs a restart), so
        // removing a user or changing a password or role takes effect on reload; its
        // errors refuse the reload as a config error does.
        let path = match &fresh {
            Some(f) => f.http_users.clone(),
            None => self.core.settings().http_users.clone(),
        };
        let users = match (&self.web_users, &path) {
            (Some(_), Some(path)) => Some(
                crate::console::WebUsers::load(path)
                    .map_err(|e| refused(e.to_string()))
                    .and_then(|u| match u.is_empty() {
                        true => Err(refused(format!(
                            "{} lists no user: nobody could log in",
                            path.display()
                        ))),
                        false => Ok(u),
                    })?,
            ),
            _ => None,
        };
        let effects = match fresh {
            Some(fresh) => self.core.reload_with(Instant::now(), batch, surge, fresh)?,
            None => self
                .core
                .command(Instant::now(), Command::Reload { batch, surge })?,
        };
        if let (Some(shared), Some(users)) = (&self.web_users, users)
            && let Ok(mut current) = shared.write()
        {
            tracing::info!(
                target: "clutch::audit",
                "audit: the web console's users were read again on reload: {} user(s); \
                 sessions of users removed or changed end",
                users.len()
            );
            *current = users;
        }
        self.carry_out(effects);
        // Heartbeats and --max-rss may have been turned on, off or changed.
        self.arm_liveness();
        Ok(())
    }

    fn order(&self, worker: WorkerId, order: Order) {
        if let Some(owned) = self.owned.get(&worker) {
            let _ = owned.orders.send(order);
        }
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Ready { worker } => self.input(Input::Ready { worker }),
            Event::Exited { worker, exit } => self.input(Input::Exited { worker, exit }),
            Event::ChannelClosed {
                worker: None,
                closed: _,
            } => {
                tracing::info!("the parent channel closed; stopping");
                self.input(Input::Shutdown);
            }
            Event::ChannelClosed {
                worker: Some(worker),
                closed,
            } => {
                // Nothing more is routed to a closed channel.
                self.messenger.registry().remove(worker);
                let abuse = matches!(closed, Closed::Abuse(_));
                self.input(Input::ChannelClosed { worker, abuse });
            }
            Event::Timer(timer) => self.input(Input::Timer(timer)),
            Event::ToMaster(msg) => {
                tracing::debug!("message to the master: {}", msg.action);
                if msg.action == "reload-worker" && self.core.settings().egg {
                    self.reload_apps();
                }
                self.messenger.deliver_to_handle(msg);
            }
            Event::Signal(name) => self.input(Input::Signal(name)),
            Event::FromHandle(line) => {
                let src = Source {
                    endpoint: Endpoint::Parent,
                    worker: None,
                    outbox: None,
                };
                if let Outcome::ToMaster(msg) = self.messenger.route(&src, &line) {
                    self.messenger.deliver_to_handle(msg);
                }
            }
            Event::Command(cmd, reply) => {
                let _ = reply.send(self.command(cmd));
            }
            Event::Reload {
                batch,
                surge,
                progress,
                reply,
            } => {
                // Registered first: the reload's first events come with the command itself.
                self.reload_progress.push(progress);
                let result = self.reload(batch, surge);
                if result.is_err() {
                    self.reload_progress.pop();
                }
                let _ = reply.send(result);
            }
            Event::LivenessTick => self.liveness_tick(),
            Event::SteeringTick => self.sync_steering(),
            Event::Hangup => {
                tracing::info!("SIGHUP received; reloading one slot at a time");
                if let Err(e) = self.reload(1, None) {
                    tracing::warn!("SIGHUP: not reloading: {e}");
                }
            }
            Event::Control(call, reply) => self.control(call, reply),
            Event::Shutdown => self.input(Input::Shutdown),
            Event::Kill => self.input(Input::Kill),
            Event::Subscribe { worker } => self.messenger.subscribe(worker, &self.core),
            Event::Request(line, reply) => self.messenger.request_from_handle(&line, reply),
            Event::Http(reply) => {
                let _ = reply.send(crate::http::View::of(&self.core));
            }
            Event::Watchdog => self.plan.notifier.watchdog(),
            Event::Stats(reply) => {
                let _ = reply.send(crate::master::monitor::stats(
                    &self.core,
                    self.messenger.monitor(),
                ));
            }
        }
    }
}
