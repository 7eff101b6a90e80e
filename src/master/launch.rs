//! Starting one worker: spawn it, register its channel with the Messenger (and the
//! handoff), start the tasks that serve it, and arm its readiness.

use crate::channel::Outbox;
use crate::config::ReadyMode;
use crate::error::Error;
use crate::listen::PortPlan;
use crate::master::lifecycle::{Cluster, Event, Live, Phase};
use crate::master::messenger::{Peer, Source};
use crate::master::spawn::{SpawnSpec, spawn};
use crate::master::tasks;
use crate::master::worker::{Role, WorkerName};
use crate::protocol::Endpoint;
use crate::sys::process::{Signal, signal_group};
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UnixStream;
use tokio::task::spawn_local;

impl Cluster {
    pub(super) fn start_apps(&mut self) {
        for id in 1..=self.apps.len() as u32 {
            self.start(Role::App, id);
        }
    }

    /// Spawns the worker of a slot and the tasks that serve it.
    pub(super) fn start(&mut self, role: Role, id: u32) {
        if matches!(self.phase, Phase::Stopping { .. }) {
            return;
        }
        let s = &self.plan.settings;
        let command = match role {
            Role::Agent => self
                .plan
                .agent
                .clone()
                .expect("an agent slot has a command"),
            Role::App => self.plan.app.clone(),
        };
        let listeners: Vec<(&OwnedFd, &str)> = match (&self.plan.port, role) {
            (PortPlan::Shared { fd, .. }, Role::App) => vec![(fd, "clutch")],
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
                    return self.spawn_failed(role, id, &command, e);
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
        if let Some(n) = &notify {
            env.push(("NOTIFY_SOCKET".into(), n.address()));
        }
        let spec = SpawnSpec {
            role,
            id,
            command: &command,
            name: &s.name,
            port: self.info().port,
            listeners: &listeners,
            extra_env: &env,
        };
        let spawned = match spawn(&spec) {
            Ok(sp) => sp,
            Err(e) => return self.spawn_failed(role, id, &command, e),
        };
        let pid = spawned.pid;
        self.guard.watch(pid);
        let name = WorkerName { role, id, pid };
        tracing::debug!("{name} spawned: {}", shell_words::join(&command));
        let stream = match UnixStream::from_std(spawned.channel) {
            Ok(s) => Rc::new(s),
            Err(e) => {
                // Not a worker without its channel: reap it and treat it as a failed spawn.
                let _ = signal_group(pid, Signal::SIGKILL);
                self.guard.forget(pid);
                spawn_local(tasks::wait_child(
                    spawned.child,
                    pid,
                    self.events.clone(),
                    None,
                ));
                let e =
                    std::io::Error::new(e.kind(), format!("cannot register {name}'s channel: {e}"));
                return self.spawn_failed(role, id, &command, e);
            }
        };
        let outbox = Rc::new(Outbox::new());
        self.messenger.add(Peer {
            name,
            outbox: outbox.clone(),
        });
        let src = Source {
            endpoint: match role {
                Role::Agent => Endpoint::Agent,
                Role::App => Endpoint::App,
            },
            worker: Some(name),
            outbox: Some(outbox.clone()),
        };
        let (channel_done, channel_closed) = tokio::sync::oneshot::channel();
        spawn_local(tasks::read_channel(
            stream.clone(),
            src,
            self.messenger.clone(),
            self.handoff.clone(),
            self.events.clone(),
            s.max_message_size,
            Some(channel_done),
        ));
        spawn_local(tasks::write_channel(stream, outbox.clone()));
        spawn_local(tasks::wait_child(
            spawned.child,
            pid,
            self.events.clone(),
            Some(channel_closed),
        ));

        let timeout = s.ready_timeout;
        let mut timers = Vec::new();
        if !matches!(mode, ReadyMode::Spawn | ReadyMode::Delay(_)) {
            timers.push(self.after(timeout, Event::ReadyTimeout { pid }));
        }
        let events = self.events.clone();
        match mode {
            ReadyMode::Spawn => {
                let _ = events.send(Event::Ready { pid });
            }
            ReadyMode::Delay(d) => timers.push(self.after(d, Event::Ready { pid })),
            ReadyMode::Message => {}
            ReadyMode::Notify => {
                if let Some(n) = notify {
                    let probe = spawn_local(async move {
                        if n.wait_ready(timeout).await {
                            let _ = events.send(Event::Ready { pid });
                        }
                    });
                    timers.push(probe.abort_handle());
                }
            }
            ReadyMode::Tcp(port) => {
                let probe = spawn_local(async move {
                    if crate::master::readiness::wait_tcp(port, timeout).await {
                        let _ = events.send(Event::Ready { pid });
                    }
                });
                timers.push(probe.abort_handle());
            }
        }
        let slot = self.slot_mut(role, id).expect("slot exists");
        slot.restart_pending = false;
        slot.live = Some(Live {
            pid,
            started: Instant::now(),
            ready: false,
            outbox,
            reaped: false,
            timers,
        });
        self.publish_workers();
    }

    /// A worker could not be spawned: before ready the start fails, after it the slot's
    /// restart policy decides.
    pub(super) fn spawn_failed(
        &mut self,
        role: Role,
        id: u32,
        command: &[String],
        e: std::io::Error,
    ) {
        let what = match role {
            Role::Agent => "the agent".to_string(),
            Role::App => format!("app worker {id}"),
        };
        let err = Error::Spawn {
            what,
            command: shell_words::join(command),
            source: Arc::new(e),
        };
        tracing::error!("{err}");
        match self.phase {
            Phase::Starting => self.fail(err),
            Phase::Ready => self.after_death(role, id, Duration::ZERO, false),
            Phase::Stopping { .. } => {}
        }
    }
}
