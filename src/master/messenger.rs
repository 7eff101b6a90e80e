//! The Messenger: routes each line a channel delivers by its `from`/`to`, as egg-cluster's
//! Messenger does, without building the message.
//!
//! Per line: check UTF-8, read only the routing fields ([`Header`]), stamp `from` with the
//! channel's endpoint (a worker cannot spoof it), and append the bytes to each destination's
//! [`Outbox`]. When the sender wrote no `from`, the stamp is a prefix spliced in front of the
//! original bytes; when it wrote the right one, the line goes on untouched. Only a spoofed
//! `from`, a bare-string message, and requests and replies (whose ids the master rewrites,
//! see [`super::requests`]) are re-serialised.
//!
//! A message with `receiverPid` and no `to` goes to the process with that pid: the master,
//! the agent or an app worker.

use crate::channel::{HIGH_WATER, Outbox, Refused};
use crate::master::core::Core;
use crate::master::metrics::{DropReason, Metrics};
use crate::master::monitor::{self, Monitor};
use crate::master::registry::{Entry, Registry};
use crate::master::requests::{Asker, Pending, Requests};
use crate::master::watchdog::Watchdog;
use crate::master::worker::{WorkerId, WorkerName};
use crate::protocol::actions::{MONITOR_ACTION, SUBSCRIBE_ACTION};
use crate::protocol::message::Header;
use crate::protocol::{Endpoint, Message};
use crate::sticky::handoff::ACK_ACTION;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::rc::Rc;
use tokio::sync::{mpsc, oneshot};

/// Where a line came from.
#[derive(Clone)]
pub struct Source {
    pub endpoint: Endpoint,
    /// The worker, for worker channels.
    pub worker: Option<WorkerName>,
    /// The sender's own outbox, for answers to Node's internal messages.
    pub outbox: Option<Rc<Outbox>>,
}

/// Where messages to `parent` go.
pub enum ParentSink {
    /// Nobody: they are dropped.
    None,
    /// The IPC channel the master was started with.
    Channel(Rc<Outbox>),
    /// The in-process [`crate::Master`] handle.
    Handle(mpsc::Sender<Message>),
}

/// What routing a line led to, beyond delivery.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Delivered to this many channels (0 when nobody matched; logged at debug).
    Routed(usize),
    /// A worker said it is ready (`agent-start` / `app-start`).
    Ready,
    /// A message for the master itself.
    ToMaster(Message),
    /// One of Node's internal messages, answered or ignored here.
    NodeInternal,
    /// A clutch worker took this many handed-over sockets.
    HandoffAck(usize),
    /// A Node worker took the handle in flight.
    NodeAck,
    /// A Node worker could not take the handle in flight.
    NodeNack,
    /// A worker said it is still working (`clutch:heartbeat`).
    Heartbeat,
    /// A worker pushed its monitor figures (`clutch:monitor`, validated).
    Monitor(Map<String, Value>),
    /// A worker asked for the cluster's members and their changes (`clutch:subscribe`).
    Subscribe,
    /// A blank line; ignored.
    Blank,
    /// Not a valid message; dropped. Says why.
    Bad(String),
}

/// The routing table and the router.
pub struct Messenger {
    registry: Rc<Registry>,
    metrics: Rc<Metrics>,
    parent: RefCell<ParentSink>,
    /// An outbox that crossed the high-water mark while routing; the reader waits on it.
    congested: RefCell<Option<Rc<Outbox>>>,
    /// egg-cluster's dialect: an app worker's `listening` says it is ready.
    egg: bool,
    monitor: Rc<Monitor>,
    watchdog: Watchdog,
    requests: RefCell<Requests>,
    /// This process: `receiverPid` naming it means the master.
    master_pid: u32,
}

const FROM_PREFIX: [&[u8]; 4] = [
    br#"{"from":"master","#,
    br#"{"from":"parent","#,
    br#"{"from":"app","#,
    br#"{"from":"agent","#,
];

use crate::protocol::actions::HEARTBEAT_ACTION;
pub use crate::protocol::actions::RESERVED_PREFIX;

/// Each endpoint's name as JSON, to compare with a `from` the sender wrote.
const QUOTED: [&str; 4] = [r#""master""#, r#""parent""#, r#""app""#, r#""agent""#];

fn prefix(e: Endpoint) -> &'static [u8] {
    FROM_PREFIX[e as usize]
}

impl Messenger {
    /// A router over `registry`, with the given parent, counting into `metrics`.
    pub fn new(parent: ParentSink, registry: Rc<Registry>, metrics: Rc<Metrics>) -> Messenger {
        Messenger {
            registry,
            metrics,
            parent: RefCell::new(parent),
            congested: RefCell::new(None),
            egg: false,
            monitor: Rc::default(),
            watchdog: Watchdog::default(),
            requests: RefCell::default(),
            master_pid: std::process::id(),
        }
    }

    /// Hears egg-cluster's readiness names too (`--egg`).
    pub fn with_egg_names(mut self, egg: bool) -> Messenger {
        self.egg = egg;
        self
    }

    /// The workers' resource samples and pushed figures.
    pub fn monitor(&self) -> &Rc<Monitor> {
        &self.monitor
    }

    /// Requests in flight through the master.
    pub fn requests_in_flight(&self) -> usize {
        self.requests.borrow().len()
    }

    /// The table of live workers it routes through.
    pub fn registry(&self) -> &Rc<Registry> {
        &self.registry
    }

    /// The counters it adds to.
    pub fn metrics(&self) -> &Rc<Metrics> {
        &self.metrics
    }

    /// Takes the outbox that crossed its high-water mark since the last call, if any.
    pub fn take_congested(&self) -> Option<Rc<Outbox>> {
        self.congested.borrow_mut().take()
    }

    /// Sends a message from the master (`cluster-pids`, `cluster-ready`, ...).
    pub fn send_from_master(&self, msg: &Message) {
        let mut line = Vec::with_capacity(128);
        let mut msg = msg.clone();
        msg.from = Some(Endpoint::Master);
        msg.write_line(&mut line);
        line.pop();
        let src = Source {
            endpoint: Endpoint::Master,
            worker: None,
            outbox: None,
        };
        self.route(&src, &line);
    }

    /// Routes one line (without its newline) that arrived from `src`.
    pub fn route(&self, src: &Source, line: &[u8]) -> Outcome {
        self.route_with(src, line, None)
    }

    /// Routes a request from the in-process handle: the reply (or the master's error
    /// reply) completes `reply`.
    pub fn request_from_handle(&self, line: &[u8], reply: oneshot::Sender<Message>) {
        let src = Source {
            endpoint: Endpoint::Parent,
            worker: None,
            outbox: None,
        };
        if let Outcome::Bad(why) = self.route_with(&src, line, Some(reply)) {
            tracing::warn!("Master::request: {why}");
        }
    }

    fn route_with(
        &self,
        src: &Source,
        line: &[u8],
        handle: Option<oneshot::Sender<Message>>,
    ) -> Outcome {
        let Ok(text) = std::str::from_utf8(line) else {
            return Outcome::Bad("invalid UTF-8".into());
        };
        let body = text.trim_ascii_start();
        match body.as_bytes().first() {
            Some(b'{') => {}
            Some(b'"') => return self.route_bare(src, text),
            None => return Outcome::Blank,
            Some(_) => return Outcome::Bad("not a JSON object or string".into()),
        }
        let header = match Header::parse(text) {
            Ok(h) => h,
            Err(e) => return Outcome::Bad(format!("invalid JSON: {e}")),
        };
        if header
            .cmd
            .as_deref()
            .is_some_and(|c| c.starts_with("NODE_"))
        {
            return self.node_internal(src, &header);
        }
        let Some(action) = header.action.as_deref() else {
            return Outcome::Bad("no `action`".into());
        };
        if action.starts_with(RESERVED_PREFIX) {
            if src.worker.is_some() {
                if action == MONITOR_ACTION {
                    return match monitor::validate_push(text) {
                        Ok(data) => Outcome::Monitor(data),
                        Err(why) => Outcome::Bad(why),
                    };
                }
                if action == SUBSCRIBE_ACTION {
                    return Outcome::Subscribe;
                }
            }
            // The master's own protocol: a worker forging `clutch:connection` could pair a
            // handed-over socket with made-up addresses.
            if action == HEARTBEAT_ACTION && src.worker.is_some() {
                return Outcome::Heartbeat;
            }
            return match serde_json::from_str::<AckLine>(text) {
                Ok(a) if action == ACK_ACTION && src.endpoint == Endpoint::App => {
                    Outcome::HandoffAck(a.data)
                }
                _ => Outcome::Bad(format!(
                    "`{action}`: actions starting with `{RESERVED_PREFIX}` are clutch's own"
                )),
            };
        }
        self.metrics.action(action);
        let to = match header.to.as_deref() {
            None => None,
            Some(t) => match Endpoint::parse(t) {
                Some(e) => Some(e),
                None => {
                    return Outcome::Bad(format!(
                        "`to` is `{t}`; use master, parent, app or agent"
                    ));
                }
            },
        };
        if let Some(w) = src.worker
            && crate::master::names::is_ready_action(w.role, action, self.egg)
            && matches!(to, None | Some(Endpoint::Master))
        {
            return Outcome::Ready;
        }
        let to = match (to, header.receiver_pid) {
            (Some(to), _) => to,
            (None, Some(pid)) => self.endpoint_of(pid),
            (None, None) => src.endpoint.default_to(),
        };
        if header.request_id.is_some() || header.reply_to.is_some() || handle.is_some() {
            return self.route_request(src, text, &header, to, handle);
        }
        let from = src.endpoint.as_str();
        match header.from_json.as_deref() {
            Some(f) if f == QUOTED[src.endpoint as usize] => {
                self.deliver(to, header.receiver_pid, &[body.as_bytes()])
            }
            Some(_) => {
                let mut v: serde_json::Map<String, serde_json::Value> =
                    match serde_json::from_str(text) {
                        Ok(v) => v,
                        Err(e) => return Outcome::Bad(format!("invalid JSON: {e}")),
                    };
                v.insert("from".into(), from.into());
                let line = serde_json::to_vec(&v).expect("a JSON map serializes");
                self.deliver(to, header.receiver_pid, &[&line])
            }
            // The object has an `action`, so it is not empty: the prefix's comma fits.
            None => self.deliver(
                to,
                header.receiver_pid,
                &[prefix(src.endpoint), &body.as_bytes()[1..]],
            ),
        }
    }

    /// Who has `pid`: the master, the agent, or (else) an app worker.
    fn endpoint_of(&self, pid: u32) -> Endpoint {
        if pid == self.master_pid {
            Endpoint::Master
        } else if self
            .registry
            .with_agent(|a| a.is_some_and(|a| a.name.pid == pid))
        {
            Endpoint::Agent
        } else {
            Endpoint::App
        }
    }

    /// A request (`requestId`) or a reply (`replyTo`): see [`super::requests`].
    fn route_request(
        &self,
        src: &Source,
        text: &str,
        header: &Header<'_>,
        to: Endpoint,
        handle: Option<oneshot::Sender<Message>>,
    ) -> Outcome {
        let mut map: Map<String, Value> = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Outcome::Bad(format!("invalid JSON: {e}")),
        };
        map.insert("from".into(), src.endpoint.as_str().into());
        if let Some(reply_to) = header.reply_to.as_deref() {
            let Some(p) = self.requests.borrow_mut().take(reply_to) else {
                tracing::debug!("a reply to no request in flight (replyTo {reply_to}) dropped");
                self.metrics.dropped(DropReason::NoRoute);
                return Outcome::Routed(0);
            };
            map.insert("replyTo".into(), p.asker_id);
            return self.answer(p.asker, map);
        }
        let action = header.action.as_deref().unwrap_or_default().to_string();
        let Some(asker_id) = map.get("requestId").filter(|v| !v.is_null()).cloned() else {
            return Outcome::Bad("a request without `requestId`".into());
        };
        let asker = match (handle, src.worker) {
            (Some(tx), _) => Asker::Handle(tx),
            (None, Some(name)) => match self.registry.id_of(name.pid) {
                Some(w) => Asker::Worker(w),
                // Its channel is gone: nobody to answer.
                None => return Outcome::Routed(0),
            },
            (None, None) => Asker::Parent,
        };
        let target = match self.request_target(to, header.receiver_pid) {
            Ok(t) => t,
            Err(why) => {
                self.error_reply(asker, asker_id, action, why);
                return Outcome::Routed(0);
            }
        };
        let what = match target {
            Some((_, name)) => name.to_string(),
            None => to.to_string(),
        };
        let (id, evicted) = self.requests.borrow_mut().insert(Pending {
            asker,
            asker_id,
            action,
            target,
        });
        if let Some(old) = evicted {
            tracing::debug!(
                "more than {} requests in flight: the oldest (`{}`) is forgotten",
                crate::master::requests::MAX_IN_FLIGHT,
                old.action
            );
        }
        map.insert("requestId".into(), id.into());
        let line = serde_json::to_vec(&map).expect("a JSON map serializes");
        let out = self.deliver(to, header.receiver_pid, &[&line]);
        if out == Outcome::Routed(0)
            && let Some(p) = self.requests.borrow_mut().cancel(id)
        {
            let why = format!("the request could not be delivered to {what}");
            self.error_reply(p.asker, p.asker_id, p.action, why);
        }
        out
    }

    /// The one worker a request goes to (`None`: several, or the parent), or why there is
    /// none.
    fn request_target(
        &self,
        to: Endpoint,
        pid: Option<u32>,
    ) -> Result<Option<(WorkerId, WorkerName)>, String> {
        match (to, pid) {
            (Endpoint::Agent, _) => self
                .registry
                .with_agent(|a| a.map(|a| Some((a.worker, a.name))))
                .ok_or_else(|| "there is no live agent".to_string()),
            (Endpoint::App, Some(pid)) => {
                let mut found = None;
                self.registry.for_apps(Some(pid), |e| {
                    found = Some((e.worker, e.name));
                    1
                });
                found
                    .map(Some)
                    .ok_or_else(|| format!("no live worker with pid {pid}"))
            }
            (Endpoint::App, None) => match self.registry.for_apps(None, |_| 1) {
                0 => Err("no live app worker".to_string()),
                _ => Ok(None),
            },
            (Endpoint::Parent, _) => match &*self.parent.borrow() {
                ParentSink::None => Err("the master has no parent".to_string()),
                _ => Ok(None),
            },
            (Endpoint::Master, _) => {
                Err("the master answers no requests: address a worker or the parent".into())
            }
        }
    }

    /// Sends `map` (a reply, its `replyTo` already the asker's id) to `asker`.
    fn answer(&self, asker: Asker, map: Map<String, Value>) -> Outcome {
        let out = match asker {
            Asker::Worker(w) => {
                let line = serde_json::to_vec(&map).expect("a JSON map serializes");
                Outcome::Routed(
                    self.registry
                        .with_worker(w, |e| e.map_or(0, |e| self.push(e, &[&line]))),
                )
            }
            Asker::Parent => {
                let line = serde_json::to_vec(&map).expect("a JSON map serializes");
                return self.deliver(Endpoint::Parent, None, &[&line]);
            }
            Asker::Handle(tx) => match serde_json::from_value::<Message>(Value::Object(map)) {
                Ok(msg) => Outcome::Routed(tx.send(msg).is_ok() as usize),
                Err(e) => return Outcome::Bad(format!("a reply that is not a message: {e}")),
            },
        };
        match out {
            Outcome::Routed(0) => self.metrics.dropped(DropReason::NoRoute),
            _ => self.metrics.routed(),
        }
        out
    }

    /// Answers `asker`'s request `asker_id` with `{"action", "replyTo", "error"}`.
    fn error_reply(&self, asker: Asker, asker_id: Value, action: String, why: String) {
        tracing::debug!("request `{action}` failed: {why}");
        let mut map = Map::new();
        map.insert("action".into(), action.into());
        map.insert("from".into(), "master".into());
        map.insert("replyTo".into(), asker_id);
        map.insert("error".into(), why.into());
        self.answer(asker, map);
    }

    /// `worker` is gone: the requests it had not answered get an error reply, it
    /// subscribes no more, and its monitor figures are dropped.
    pub fn gone(&self, worker: WorkerId) {
        let failed = self.requests.borrow_mut().gone(worker);
        for p in failed {
            let why = match p.target {
                Some((_, name)) => format!("{name} exited before answering"),
                None => "the receiver exited before answering".to_string(),
            };
            self.error_reply(p.asker, p.asker_id, p.action, why);
        }
        self.watchdog.gone(worker);
        self.monitor.forget(worker);
    }

    /// `worker` subscribes to membership: it gets the members now, and every change.
    pub(crate) fn subscribe(&self, worker: WorkerId, core: &Core) {
        let snapshot = self.watchdog.subscribe(worker, core);
        self.send_to_worker(worker, &snapshot);
    }

    /// The core published a change: tells subscribers what changed in membership.
    pub(crate) fn members_changed(&self, core: &Core) {
        if self.watchdog.is_idle() {
            return;
        }
        let events = self.watchdog.changes(core);
        if events.is_empty() {
            return;
        }
        for worker in self.watchdog.subscribers() {
            for event in &events {
                self.send_to_worker(worker, event);
            }
        }
    }

    /// Sends a message from the master to one worker.
    fn send_to_worker(&self, worker: WorkerId, msg: &Message) {
        let mut msg = msg.clone();
        msg.from = Some(Endpoint::Master);
        let mut line = Vec::with_capacity(128);
        msg.write_line(&mut line);
        line.pop();
        self.registry
            .with_worker(worker, |e| e.map(|e| self.push(e, &[&line])));
    }

    /// A bare JSON string `"x"` is `{"action":"x","data":"x"}`.
    fn route_bare(&self, src: &Source, text: &str) -> Outcome {
        let action: String = match serde_json::from_str(text) {
            Ok(a) => a,
            Err(e) => return Outcome::Bad(format!("invalid JSON: {e}")),
        };
        if src.worker.is_some_and(|w| action == w.role.ready_action()) {
            return Outcome::Ready;
        }
        self.metrics.action(&action);
        let mut msg = Message::new(action.clone(), serde_json::Value::String(action));
        msg.from = Some(src.endpoint);
        let mut line = Vec::new();
        msg.write_line(&mut line);
        line.pop();
        self.deliver(src.endpoint.default_to(), None, &[&line])
    }

    fn deliver(&self, to: Endpoint, receiver_pid: Option<u32>, parts: &[&[u8]]) -> Outcome {
        let out = match to {
            Endpoint::Agent => self.registry.with_agent(|agent| match agent {
                Some(e) => Outcome::Routed(self.push(e, parts)),
                None => {
                    tracing::debug!("message to the agent dropped: there is no agent");
                    Outcome::Routed(0)
                }
            }),
            Endpoint::App => {
                let n = self
                    .registry
                    .for_apps(receiver_pid, |e| self.push(e, parts));
                if n == 0 {
                    match receiver_pid {
                        Some(pid) => tracing::debug!(
                            "message to pid {pid} dropped: no live app worker has it"
                        ),
                        None => tracing::debug!("message to app workers dropped: none is live"),
                    }
                }
                Outcome::Routed(n)
            }
            Endpoint::Parent => match &*self.parent.borrow() {
                ParentSink::None => {
                    tracing::debug!(
                        "message to the parent dropped: the master has no parent channel"
                    );
                    Outcome::Routed(0)
                }
                ParentSink::Channel(outbox) => {
                    let ok = outbox.push(parts).is_ok();
                    Outcome::Routed(ok as usize)
                }
                ParentSink::Handle(tx) => match parse_parts(parts) {
                    Ok(msg) => Outcome::Routed(Self::to_handle(tx, msg) as usize),
                    Err(e) => Outcome::Bad(format!("invalid JSON: {e}")),
                },
            },
            Endpoint::Master => match parse_parts(parts) {
                Ok(msg) => Outcome::ToMaster(msg),
                Err(e) => Outcome::Bad(format!("invalid message: {e}")),
            },
        };
        match out {
            Outcome::Routed(0) => self.metrics.dropped(DropReason::NoRoute),
            Outcome::Routed(_) | Outcome::ToMaster(_) => self.metrics.routed(),
            _ => {}
        }
        out
    }

    /// Queues `msg` for the in-process handle; a handle that stopped reading loses what
    /// does not fit (counted), it never makes the master grow.
    fn to_handle(tx: &mpsc::Sender<Message>, msg: Message) -> bool {
        match tx.try_send(msg) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!("the Master handle is not reading its messages; one dropped");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn push(&self, peer: &Entry, parts: &[&[u8]]) -> usize {
        match peer.outbox.push(parts) {
            Ok(()) => {
                if peer.outbox.queued() > HIGH_WATER {
                    *self.congested.borrow_mut() = Some(peer.outbox.clone());
                }
                1
            }
            Err(Refused::Closed) => 0,
            Err(Refused::Full(dropped)) => {
                self.metrics.dropped(DropReason::Full);
                if dropped == 1 || dropped.is_power_of_two() {
                    tracing::warn!(
                        "{} is not reading its channel: {dropped} message(s) to it dropped so far",
                        peer.name
                    );
                }
                0
            }
        }
    }

    /// Hands a message addressed to the master to the in-process handle, if there is one.
    pub fn deliver_to_handle(&self, msg: Message) {
        if let ParentSink::Handle(tx) = &*self.parent.borrow() {
            Self::to_handle(tx, msg);
        }
    }

    /// Node's internal messages: a handle a Node child sends the master is acknowledged (and
    /// closed, as clutch has no use for it); acknowledgements of the master's handles go to
    /// the handoff; the rest need no answer.
    fn node_internal(&self, src: &Source, header: &Header<'_>) -> Outcome {
        match header.cmd.as_deref() {
            Some("NODE_HANDLE") => {
                if let Some(outbox) = &src.outbox {
                    let _ = outbox.push_control(&[br#"{"cmd":"NODE_HANDLE_ACK"}"#]);
                }
                Outcome::NodeInternal
            }
            Some("NODE_HANDLE_ACK") => Outcome::NodeAck,
            Some("NODE_HANDLE_NACK") => Outcome::NodeNack,
            _ => Outcome::NodeInternal,
        }
    }
}

#[derive(serde::Deserialize)]
struct AckLine {
    data: usize,
}

fn parse_parts(parts: &[&[u8]]) -> Result<Message, serde_json::Error> {
    let line: Vec<u8> = parts.concat();
    Message::from_line(&line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::worker::Role;

    fn peer(role: Role, id: u32, pid: u32) -> (Entry, Rc<Outbox>) {
        let outbox = Rc::new(Outbox::new());
        let name = WorkerName { role, id, pid };
        (
            Entry {
                worker: crate::master::worker::WorkerId(pid as u64),
                name,
                outbox: outbox.clone(),
                heard: std::cell::Cell::new(std::time::Instant::now()),
            },
            outbox,
        )
    }

    fn source(role: Role, id: u32, pid: u32) -> Source {
        Source {
            endpoint: match role {
                Role::Agent => Endpoint::Agent,
                Role::App => Endpoint::App,
            },
            worker: Some(WorkerName { role, id, pid }),
            outbox: None,
        }
    }

    /// An agent (pid 10) and two app workers (pids 11, 12), with their outboxes.
    fn table() -> (Messenger, Rc<Outbox>, Rc<Outbox>, Rc<Outbox>) {
        let m = Messenger::new(ParentSink::None, Rc::default(), Rc::default());
        let (a, agent) = peer(Role::Agent, 0, 10);
        let (p1, app1) = peer(Role::App, 1, 11);
        let (p2, app2) = peer(Role::App, 2, 12);
        m.registry().add(a);
        m.registry().add(p1);
        m.registry().add(p2);
        (m, agent, app1, app2)
    }

    #[test]
    fn from_is_stamped_when_absent_and_default_route_is_app_to_agent() {
        let (m, agent, app1, _) = table();
        let out = m.route(
            &source(Role::App, 1, 11),
            br#"{"action":"hi","data":[1,{"x":"y"}]}"#,
        );
        assert_eq!(out, Outcome::Routed(1));
        let got = Outbox::drain_for_test(&agent);
        assert_eq!(got[0]["from"], "app");
        assert_eq!(got[0]["data"][1]["x"], "y");
        assert!(Outbox::drain_for_test(&app1).is_empty());
    }

    #[test]
    fn a_spoofed_from_is_rewritten() {
        let (m, agent, _, _) = table();
        m.route(
            &source(Role::App, 1, 11),
            br#"{"action":"hi","from":"master","to":"agent"}"#,
        );
        assert_eq!(Outbox::drain_for_test(&agent)[0]["from"], "app");
    }

    #[test]
    fn a_null_or_odd_from_is_rewritten_too() {
        let (m, agent, _, _) = table();
        m.route(&source(Role::App, 1, 11), br#"{"action":"a","from":null}"#);
        m.route(
            &source(Role::App, 1, 11),
            br#"{"action":"b","from":"\u0061pp"}"#,
        );
        m.route(&source(Role::App, 1, 11), br#"{"action":"c","from":7}"#);
        let got = Outbox::drain_for_test(&agent);
        assert_eq!(got.len(), 3);
        for v in got {
            assert_eq!(v["from"], "app", "{v}");
        }
    }

    #[test]
    fn clutch_actions_are_not_routed() {
        let (m, _, app1, _) = table();
        let forged =
            br#"{"action":"clutch:connection","to":"app","data":{"remoteAddress":"6.6.6.6"}}"#;
        assert!(matches!(
            m.route(&source(Role::Agent, 0, 10), forged),
            Outcome::Bad(_)
        ));
        assert!(Outbox::drain_for_test(&app1).is_empty());
        let ack = br#"{"action":"clutch:ack","data":3}"#;
        assert_eq!(
            m.route(&source(Role::App, 1, 11), ack),
            Outcome::HandoffAck(3)
        );
        assert!(matches!(
            m.route(&source(Role::Agent, 0, 10), ack),
            Outcome::Bad(_)
        ));
    }

    #[test]
    fn receiver_pid_picks_one_app_worker() {
        let (m, _, app1, app2) = table();
        let out = m.route(
            &source(Role::Agent, 0, 10),
            br#"{"action":"x","to":"app","receiverPid":"12"}"#,
        );
        assert_eq!(out, Outcome::Routed(1));
        assert!(Outbox::drain_for_test(&app1).is_empty());
        assert_eq!(Outbox::drain_for_test(&app2)[0]["from"], "agent");
        let out = m.route(
            &source(Role::Agent, 0, 10),
            br#"{"action":"x","to":"app","receiverPid":99}"#,
        );
        assert_eq!(out, Outcome::Routed(0));
    }

    #[test]
    fn receiver_pid_without_to_reaches_that_process() {
        let (m, agent, app1, app2) = table();
        let src = source(Role::App, 1, 11);
        assert_eq!(
            m.route(&src, br#"{"action":"x","receiverPid":12}"#),
            Outcome::Routed(1)
        );
        assert_eq!(Outbox::drain_for_test(&app2)[0]["from"], "app");
        assert!(Outbox::drain_for_test(&agent).is_empty());
        m.route(&src, br#"{"action":"x","receiverPid":"10"}"#);
        assert_eq!(Outbox::drain_for_test(&agent).len(), 1);
        let me = std::process::id();
        let line = format!(r#"{{"action":"x","receiverPid":{me}}}"#);
        assert!(matches!(
            m.route(&src, line.as_bytes()),
            Outcome::ToMaster(_)
        ));
        assert!(Outbox::drain_for_test(&app1).is_empty());
    }

    #[test]
    fn monitor_pushes_and_subscriptions_are_told_not_routed() {
        let (m, agent, _, _) = table();
        let src = source(Role::App, 1, 11);
        let out = m.route(&src, br#"{"action":"clutch:monitor","data":{"qps":3}}"#);
        assert!(matches!(out, Outcome::Monitor(d) if d["qps"] == 3));
        let out = m.route(&src, br#"{"action":"clutch:monitor","data":{"q":[3]}}"#);
        assert!(matches!(out, Outcome::Bad(_)));
        assert_eq!(
            m.route(&src, br#"{"action":"clutch:subscribe"}"#),
            Outcome::Subscribe
        );
        assert_eq!(
            m.route(&src, br#"{"action":"clutch:heartbeat"}"#),
            Outcome::Heartbeat
        );
        assert!(matches!(
            m.route(&src, br#"{"action":"clutch:anything-else"}"#),
            Outcome::Bad(_)
        ));
        assert!(Outbox::drain_for_test(&agent).is_empty());
    }

    #[test]
    fn a_reply_goes_back_to_the_asker_with_its_own_id() {
        let (m, agent, app1, app2) = table();
        // Both app workers ask the agent with the same id.
        m.route(
            &source(Role::App, 1, 11),
            br#"{"action":"q","to":"agent","requestId":1}"#,
        );
        m.route(
            &source(Role::App, 2, 12),
            br#"{"action":"q","to":"agent","requestId":1}"#,
        );
        let got = Outbox::drain_for_test(&agent);
        assert_eq!(got.len(), 2);
        assert_ne!(got[0]["requestId"], got[1]["requestId"]);
        assert_eq!(m.requests_in_flight(), 2);
        // The agent answers the second first; `to` does not matter.
        let reply = format!(
            r#"{{"action":"q","replyTo":{},"data":"two","to":"parent"}}"#,
            got[1]["requestId"]
        );
        assert_eq!(
            m.route(&source(Role::Agent, 0, 10), reply.as_bytes()),
            Outcome::Routed(1)
        );
        let at2 = Outbox::drain_for_test(&app2);
        assert_eq!(at2[0]["replyTo"], 1);
        assert_eq!(at2[0]["data"], "two");
        assert_eq!(at2[0]["from"], "agent");
        assert!(Outbox::drain_for_test(&app1).is_empty());
        // Answered once: a second reply with that id is dropped.
        assert_eq!(
            m.route(&source(Role::Agent, 0, 10), reply.as_bytes()),
            Outcome::Routed(0)
        );
        assert_eq!(m.requests_in_flight(), 1);
    }

    #[test]
    fn a_request_to_nobody_or_to_a_worker_that_dies_gets_an_error_reply() {
        let (m, agent, app1, _) = table();
        let src = source(Role::App, 1, 11);
        m.route(&src, br#"{"action":"q","receiverPid":99,"requestId":"a"}"#);
        let got = Outbox::drain_for_test(&app1);
        assert_eq!(got[0]["replyTo"], "a");
        assert_eq!(got[0]["error"], "no live worker with pid 99");
        assert_eq!(got[0]["from"], "master");
        m.route(&src, br#"{"action":"q","to":"agent","requestId":"b"}"#);
        assert_eq!(Outbox::drain_for_test(&agent).len(), 1);
        m.gone(crate::master::worker::WorkerId(10));
        let got = Outbox::drain_for_test(&app1);
        assert_eq!(got[0]["replyTo"], "b");
        assert_eq!(got[0]["error"], "agent (pid 10) exited before answering");
        assert_eq!(m.requests_in_flight(), 0);
    }

    #[test]
    fn bare_string_gets_action_data_and_from() {
        let (m, _, app1, app2) = table();
        assert_eq!(
            m.route(&source(Role::Agent, 0, 10), br#" { }"#),
            Outcome::Bad("no `action`".into())
        );
        m.route(&source(Role::Agent, 0, 10), br#""ping""#);
        for o in [&app1, &app2] {
            let got = o.drain_for_test();
            assert_eq!(got.len(), 1);
            assert_eq!(
                got[0],
                serde_json::json!({"action": "ping", "data": "ping", "from": "agent"})
            );
        }
    }

    #[test]
    fn readiness_is_told_not_routed() {
        let (m, agent, _, _) = table();
        let out = m.route(
            &source(Role::App, 1, 11),
            br#"{"action":"app-start","to":"master"}"#,
        );
        assert_eq!(out, Outcome::Ready);
        assert!(Outbox::drain_for_test(&agent).is_empty());
    }

    #[test]
    fn garbage_is_refused_and_never_panics() {
        let (m, agent, app1, app2) = table();
        let src = source(Role::App, 1, 11);
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut bytes = Vec::new();
        for round in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.clear();
            let len = (seed % 64) as usize;
            let alphabet: &[u8] = if round % 2 == 0 {
                br#"{}[]":,0123456789.-eE tfnul\ax"#
            } else {
                &[]
            };
            for i in 0..len {
                let r = seed.rotate_left(i as u32 * 7) as usize;
                bytes.push(if alphabet.is_empty() {
                    r as u8
                } else {
                    alphabet[r % alphabet.len()]
                });
            }
            bytes.retain(|b| *b != b'\n');
            let _ = m.route(&src, &bytes);
        }
        for line in [
            &b"\xff\xfe"[..],
            b"[1,2]",
            b"42",
            b"{\"action\":1}",
            b"{\"to\":\"agent\"}",
            b"{\"action\":\"a\",\"to\":\"nowhere\"}",
        ] {
            assert!(
                matches!(m.route(&src, line), Outcome::Bad(_)),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        // Whatever got through is valid JSON with the right `from`.
        for o in [&agent, &app1, &app2] {
            for v in o.drain_for_test() {
                assert_eq!(v["from"], "app");
            }
        }
    }
}
