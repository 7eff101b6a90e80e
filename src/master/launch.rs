//! Carrying out a spawn: start the process, put its channel in the registry, start the
//! tasks that serve it (reader, writer, owner) and its readiness probe, and tell the core
//! how it went.

use crate::channel::Outbox;
use crate::config::{Dialect, ReadyMode};
use crate::error::Error;
use crate::listen::PortPlan;
use crate::master::core::Input;
use crate::master::lifecycle::{Cluster, Event, Owned};
use crate::master::messenger::Source;
use crate::master::owner::{self, Reader};
use crate::master::registry::Entry;
use crate::master::spawn::{SpawnSpec, spawn};
use crate::master::tasks;
use crate::master::worker::{Role, WorkerId, WorkerName};
use crate::protocol::Endpoint;
use crate::sys::process::{Signal, signal_group};
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use tokio::net::UnixStream;
use tokio::task::spawn_local;

impl Cluster {
    /// Spawns `worker` in `slot` and the tasks that serve it; reports
    /// [`Input::Spawned`] or [`Input::SpawnFailed`] to the core.
    pub(super) fn launch(&mut self, worker: WorkerId, role: Role, slot: u32, generation: u64) {
        let s = self.core.settings();
        // From the settings as they are now: a reload may have brought new commands.
        let command = match role {
            Role::Agent => s.agent.clone().expect("an agent slot has a command"),
            Role::App => s.app.clone().expect("a cluster has an app command"),
        };
        if let (Some(steered), Role::App) = (&mut self.steered, role) {
            steered.prepare(slot);
        }
        let listeners: Vec<(&OwnedFd, &str)> = match (&self.plan.port, role) {
            (PortPlan::Shared { fd, .. }, Role::App) => vec![(fd, "clutch")],
            (PortPlan::Steered { .. }, Role::App) => self
                .steered
                .as_ref()
                .and_then(|s| s.socket(slot))
                .map(|fd| vec![(fd, "clutch")])
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let mode = match role {
            Role::Agent => s.agent_ready_mode(),
            Role::App => s.ready,
        };
        let notify = match mode {
            ReadyMode::Notify => match crate::master::readiness::NotifySocket::new() {
                Ok(n) => Some(n),
                Err(e) => {
                    let e = std::io::Error::new(
                        e.kind(),
                        format!("cannot make its NOTIFY_SOCKET: {e}"),
                    );
                    return self.spawn_failed(worker, role, slot, &command, e);
                }
            },
            _ => None,
        };
        let mut env = s.env.clone();
        if self.plan.port.port().is_some() {
            env.push(("CLUTCH_HOST".into(), s.host.clone()));
        }
        if matches!(self.plan.port, PortPlan::ReusePort { .. }) {
            env.push(("CLUTCH_REUSEPORT".into(), "1".into()));
        }
        if matches!(self.plan.port, PortPlan::Steered { .. }) && role == Role::App {
            env.push(("CLUTCH_STICKY".into(), "kernel".into()));
        }
        env.push(("CLUTCH_GENERATION".into(), generation.to_string()));
        if let Some(t) = s.heartbeat_timeout {
            // Three heartbeats per timeout: one lost to a slow moment is not a death.
            let every = (t.as_millis() / 3).max(1);
            env.push(("CLUTCH_HEARTBEAT_MS".into(), every.to_string()));
        }
        // A Node server's own `listen(CLUTCH_PORT)` takes the inherited socket (crate::node).
        if !listeners.is_empty()
            && s.node_preload
            && s.app_dialect.resolve(&command) == Dialect::Node
        {
            match crate::node::preload_path() {
                Ok(p) => env.push(("NODE_OPTIONS".into(), crate::node::node_options(&s.env, p))),
                Err(e) => tracing::warn!(
                    "app worker {slot} runs without the listen preload ({e}); its own \
                     listen(PORT) binds the port itself (--no-node-preload silences this)"
                ),
            }
        }
        if let Some(n) = &notify {
            env.push(("NOTIFY_SOCKET".into(), n.address()));
        }
        let spec = SpawnSpec {
            role,
            id: slot,
            command: &command,
            name: &s.name,
            port: self.plan.port.port(),
            listeners: &listeners,
            extra_env: &env,
            capture: self.output.is_some(),
        };
        let max_line = s.max_message_size;
        let ready_timeout = s.ready_timeout;
        let spawned = match spawn(&spec) {
            Ok(sp) => sp,
            Err(e) => return self.spawn_failed(worker, role, slot, &command, e),
        };
        let pid = spawned.pid;
        self.guard.borrow_mut().watch(pid);
        let name = WorkerName {
            role,
            id: slot,
            pid,
        };
        tracing::debug!("{name} spawned: {}", shell_words::join(&command));
        let (orders_tx, orders) = tokio::sync::mpsc::unbounded_channel();
        let stream = match UnixStream::from_std(spawned.channel) {
            Ok(s) => Some(Rc::new(s)),
            Err(e) => {
                // Not a worker without its channel: its owner reaps it, and the core hears
                // of a failed spawn.
                tracing::error!("cannot register {name}'s channel: {e}");
                let _ = signal_group(pid, Signal::SIGKILL);
                None
            }
        };
        let reader = stream.map(|stream| {
            let outbox = Rc::new(Outbox::new());
            self.messenger.registry().add(Entry {
                worker,
                name,
                outbox: outbox.clone(),
                heard: std::cell::Cell::new(std::time::Instant::now()),
            });
            let src = Source {
                endpoint: match role {
                    Role::Agent => Endpoint::Agent,
                    Role::App => Endpoint::App,
                },
                worker: Some(name),
                outbox: Some(outbox.clone()),
            };
            let (done_tx, done) = tokio::sync::oneshot::channel();
            let task = spawn_local(tasks::read_channel(
                stream.clone(),
                src,
                Some(worker),
                self.messenger.clone(),
                self.handoff.clone(),
                self.events.clone(),
                max_line,
                Some(done_tx),
            ));
            spawn_local(tasks::write_channel(stream, outbox));
            Reader {
                abort: task.abort_handle(),
                done,
            }
        });
        let registered = reader.is_some();
        let pipes = match (spawned.output, &self.output) {
            (Some((stdout, stderr)), Some(output)) => {
                self.prune_logs();
                Some(owner::Pipes {
                    stdout,
                    stderr,
                    output: output.clone(),
                })
            }
            _ => None,
        };
        spawn_local(owner::own(
            spawned.child,
            worker,
            name,
            orders,
            reader,
            pipes,
            self.guard.clone(),
            self.events.clone(),
        ));
        let mut probes = Vec::new();
        let events = self.events.clone();
        match (mode, notify) {
            (ReadyMode::Notify, Some(n)) => {
                let probe = spawn_local(async move {
                    if n.wait_ready(ready_timeout).await {
                        let _ = events.send(Event::Ready { worker });
                    }
                });
                probes.push(probe.abort_handle());
            }
            (ReadyMode::Tcp(port), _) => {
                let probe = spawn_local(async move {
                    if crate::master::readiness::wait_tcp(port, ready_timeout).await {
                        let _ = events.send(Event::Ready { worker });
                    }
                });
                probes.push(probe.abort_handle());
            }
            _ => {}
        }
        self.owned.insert(
            worker,
            Owned {
                orders: orders_tx,
                probes,
            },
        );
        self.then(Input::Spawned { worker, pid });
        if !registered {
            // The core treats it as a worker that died at once; its owner reports the exit.
            let _ = self.events.send(Event::ChannelClosed {
                worker: Some(worker),
                closed: tasks::Closed::Eof,
            });
        }
    }

    /// Forgets the kept output of slots that were scaled away.
    pub(super) fn prune_logs(&self) {
        if let Some(output) = &self.output {
            output.retain_slots(|id| {
                self.core
                    .slots()
                    .any(|s| s.id == id && s.goal != crate::master::core::Goal::Removed)
            });
        }
    }

    /// A worker could not be spawned: the core decides (fail the start, or the restart
    /// policy).
    fn spawn_failed(
        &mut self,
        worker: WorkerId,
        role: Role,
        slot: u32,
        command: &[String],
        e: std::io::Error,
    ) {
        let what = match role {
            Role::Agent => "the agent".to_string(),
            Role::App => format!("app worker {slot}"),
        };
        let error = Error::Spawn {
            what,
            command: shell_words::join(command),
            source: Arc::new(e),
        };
        self.then(Input::SpawnFailed { worker, error });
    }
}
