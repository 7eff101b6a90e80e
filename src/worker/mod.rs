//! The child side, for Rust workers on tokio: connect to the master from the environment,
//! say you are ready, send and receive messages.
//!
//! ```no_run
//! # async fn demo() -> Result<(), clutch::worker::WorkerError> {
//! let mut w = clutch::worker::Worker::from_env()?;
//! w.ready();
//! w.send_to_agent("hello", serde_json::json!({"from": w.id()}));
//! while let Some(msg) = w.recv().await {
//!     println!("{} {}", msg.action, msg.data);
//! }
//! # Ok(()) }
//! ```
//!
//! A reader task parses what the master sends, and a writer task sends what this side
//! queues, so `send*` never blocks. When the channel reaches end of file (the master is
//! gone) the process exits with code 0, unless [`Worker::exit_on_disconnect`] turned that off.
//! What waits in either direction is bounded: see [`Worker`].

mod connection;
mod heartbeat;
mod reader;

pub use connection::Connection;

use crate::protocol::Role;
use crate::protocol::actions::MONITOR_ACTION;
use crate::protocol::message::RequestError;
use crate::protocol::{Endpoint, Message};
use serde_json::Value;
use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

/// Bytes of messages received and not yet taken by [`Worker::recv`] (each counted as its
/// line plus a little for the parsed value).
pub const INBOX_BYTES: usize = 16 << 20;
/// Handed-over connections not yet taken from [`Worker::take_handoffs`]'s receiver.
pub const PENDING_CONNECTIONS: usize = 256;
/// Bytes queued by `send*` and not yet written to the channel.
pub const OUTBOX_BYTES: usize = 64 << 20;

/// The worker's environment was not what the master sets.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0} is not set: this program must be started by clutch")]
    Missing(&'static str),
    #[error("{var} is `{value}`: {why}")]
    Bad {
        var: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("cannot use the channel fd: {0}")]
    Io(#[from] std::io::Error),
}

pub(crate) struct Shared {
    pub cluster_pids: Mutex<Vec<u32>>,
    pub exit_on_disconnect: AtomicBool,
    pub dropped_sends: AtomicU64,
    /// This worker's requests waiting for their reply, by `requestId`.
    pub requests: Mutex<HashMap<u64, oneshot::Sender<Message>>>,
    pub next_request: AtomicU64,
}

/// This process's end of its channel to the master.
///
/// # Bounds
/// Nothing this side holds grows without bound when the other side stops taking it:
/// - Messages received wait for [`recv`](Self::recv) up to [`INBOX_BYTES`]. At the bound the
///   library stops reading the channel until `recv` takes some: handed-over connections
///   then wait too, and the master queues what it has for this worker (up to its own
///   per-worker cap, past which it drops messages and logs it). A worker that never calls
///   `recv` thus stops receiving anything once the bound is reached.
/// - Handed-over connections wait in [`take_handoffs`](Self::take_handoffs)' receiver, at
///   most [`PENDING_CONNECTIONS`]; at the bound the channel is not read, as above. A sticky
///   worker must take its handoffs.
/// - Messages sent wait to be written up to [`OUTBOX_BYTES`] (the master reads them as they
///   come, so this fills only if it is stuck). Past that, `send*` drops the message, counts
///   it ([`dropped_sends`](Self::dropped_sends)) and says so on stderr, rather than block.
///
/// A connection is acknowledged to the master as soon as its fd arrives, before it is
/// queued for user code: from then on the master never passes it to another worker, even
/// if this one dies without serving it.
pub struct Worker {
    role: Role,
    id: u32,
    port: Option<u16>,
    out: mpsc::UnboundedSender<(Vec<u8>, OwnedSemaphorePermit)>,
    send_budget: Arc<Semaphore>,
    messages: mpsc::UnboundedReceiver<(Message, OwnedSemaphorePermit)>,
    connections: Option<mpsc::Receiver<Connection>>,
    shared: Arc<Shared>,
    listeners: Vec<OwnedFd>,
    seed: AtomicU64,
}

fn var(name: &'static str) -> Result<String, WorkerError> {
    std::env::var(name).map_err(|_| WorkerError::Missing(name))
}

fn number<T: std::str::FromStr>(name: &'static str, why: &'static str) -> Result<T, WorkerError> {
    let v = var(name)?;
    v.parse().map_err(|_| WorkerError::Bad {
        var: name,
        value: v,
        why,
    })
}

impl Worker {
    /// Connects from `CLUTCH_ROLE`, `CLUTCH_WORKER_ID`, `CLUTCH_CHANNEL_FD` (and takes the
    /// `LISTEN_FDS` sockets meant for this pid). Call once, inside a tokio runtime.
    pub fn from_env() -> Result<Worker, WorkerError> {
        let role = match var("CLUTCH_ROLE")?.as_str() {
            "agent" => Role::Agent,
            "app" => Role::App,
            other => {
                return Err(WorkerError::Bad {
                    var: "CLUTCH_ROLE",
                    value: other.into(),
                    why: "must be agent or app",
                });
            }
        };
        let id = number("CLUTCH_WORKER_ID", "must be a slot number")?;
        let fd: i32 = number("CLUTCH_CHANNEL_FD", "must be an fd number")?;
        let port = std::env::var("CLUTCH_PORT")
            .ok()
            .and_then(|p| p.parse().ok());
        // SAFETY: fcntl(F_GETFD) only checks that the fd is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(WorkerError::Bad {
                var: "CLUTCH_CHANNEL_FD",
                value: fd.to_string(),
                why: "no such open fd",
            });
        }
        // SAFETY: the master handed this fd to this process to own.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        crate::sys::fdpass::set_cloexec(&owned)?;
        let listeners = take_listen_fds();
        let std = std::os::unix::net::UnixStream::from(owned);
        std.set_nonblocking(true)?;
        let stream = Arc::new(tokio::net::UnixStream::from_std(std)?);
        let shared = Arc::new(Shared {
            cluster_pids: Mutex::new(Vec::new()),
            exit_on_disconnect: AtomicBool::new(true),
            dropped_sends: AtomicU64::new(0),
            requests: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
        });
        // Unbounded queues whose items each hold a share of a byte budget (a semaphore's
        // permits, given back when the item is taken): bounded by bytes, not by count.
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (msg_tx, msg_rx) = mpsc::unbounded_channel();
        let (conn_tx, conn_rx) = mpsc::channel(PENDING_CONNECTIONS);
        let writer = Arc::new(reader::ChannelWriter::new(stream.clone()));
        let inbox = reader::Inbox {
            messages: msg_tx,
            budget: Arc::new(Semaphore::new(INBOX_BYTES)),
            budget_bytes: INBOX_BYTES,
            connections: conn_tx,
        };
        tokio::spawn(reader::read_loop(
            stream,
            writer.clone(),
            inbox,
            shared.clone(),
        ));
        heartbeat::start(&writer);
        tokio::spawn(reader::write_loop(writer, out_rx));
        Ok(Worker {
            role,
            id,
            port,
            out: out_tx,
            send_budget: Arc::new(Semaphore::new(OUTBOX_BYTES)),
            messages: msg_rx,
            connections: Some(conn_rx),
            shared,
            listeners,
            seed: AtomicU64::new(std::process::id() as u64 ^ 0x9E37_79B9_7F4A_7C15),
        })
    }

    /// `agent` or `app`.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The slot id (0 for the agent).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The cluster's public port, if it has one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether the process exits when the master goes away (the default) or `recv`
    /// returns `None` instead.
    pub fn exit_on_disconnect(&self, exit: bool) {
        self.shared
            .exit_on_disconnect
            .store(exit, Ordering::Relaxed);
    }

    /// Tells the master this worker is ready (`agent-start` / `app-start`).
    pub fn ready(&self) {
        self.send(&Message::new(self.role.ready_action(), Value::Null).to(Endpoint::Master));
    }

    /// Sends a message as it is (the master stamps `from`); dropped if [`OUTBOX_BYTES`] wait
    /// to be written already.
    pub fn send(&self, msg: &Message) {
        let mut line = Vec::with_capacity(64);
        msg.write_line(&mut line);
        let cost = line.len().min(OUTBOX_BYTES) as u32;
        match self.send_budget.clone().try_acquire_many_owned(cost) {
            Ok(permit) => {
                let _ = self.out.send((line, permit));
            }
            Err(_) => {
                let n = self.shared.dropped_sends.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n.is_power_of_two() {
                    eprintln!(
                        "clutch worker: dropped a `{}` message: {} MiB wait to be written to \
                         the master already ({n} dropped so far)",
                        msg.action,
                        OUTBOX_BYTES >> 20
                    );
                }
            }
        }
    }

    /// Messages `send*` dropped because [`OUTBOX_BYTES`] waited to be written.
    pub fn dropped_sends(&self) -> u64 {
        self.shared.dropped_sends.load(Ordering::Relaxed)
    }

    /// To the agent.
    pub fn send_to_agent(&self, action: &str, data: Value) {
        self.send(&Message::new(action, data).to(Endpoint::Agent));
    }

    /// To every app worker (this one included, if it is an app worker).
    pub fn send_to_app(&self, action: &str, data: Value) {
        self.send(&Message::new(action, data).to(Endpoint::App));
    }

    /// To the app worker whose pid is `pid`.
    pub fn send_to(&self, pid: u32, action: &str, data: Value) {
        self.send(&Message::new(action, data).to_pid(pid));
    }

    /// To whoever started the master.
    pub fn send_to_parent(&self, action: &str, data: Value) {
        self.send(&Message::new(action, data).to(Endpoint::Parent));
    }

    /// To the master.
    pub fn send_to_master(&self, action: &str, data: Value) {
        self.send(&Message::new(action, data).to(Endpoint::Master));
    }

    /// To the agent and every app worker.
    pub fn broadcast(&self, action: &str, data: Value) {
        self.send_to_agent(action, data.clone());
        self.send_to_app(action, data);
    }

    /// Sends `msg` as a request (it must name its receiver: `to` and/or `receiverPid`)
    /// and waits up to `timeout` for the reply. The reply does not reach
    /// [`recv`](Self::recv). The master answers at once with an error
    /// ([`RequestError::Failed`]) when there is no such receiver, and when the receiver
    /// exits before answering; `timeout` covers the rest.
    pub async fn request(
        &self,
        mut msg: Message,
        timeout: Duration,
    ) -> Result<Message, RequestError> {
        let id = self.shared.next_request.fetch_add(1, Ordering::Relaxed);
        msg.request_id = Some(id.into());
        msg.reply_to = None;
        let (tx, rx) = oneshot::channel();
        self.shared
            .requests
            .lock()
            .expect("requests lock")
            .insert(id, tx);
        self.send(&msg);
        let out = tokio::time::timeout(timeout, rx).await;
        self.shared
            .requests
            .lock()
            .expect("requests lock")
            .remove(&id);
        match out {
            Err(_) => Err(RequestError::Timeout(timeout)),
            Ok(Err(_)) => Err(RequestError::Closed),
            Ok(Ok(reply)) => match &reply.error {
                Some(e) => Err(RequestError::Failed(e.clone())),
                None => Ok(reply),
            },
        }
    }

    /// Answers `request` (a message received with a `requestId`) with `data`; the master
    /// routes it to whoever asked. `false` when `request` is not a request.
    pub fn reply(&self, request: &Message, data: Value) -> bool {
        let Some(id) = &request.request_id else {
            return false;
        };
        let mut msg = Message::new(request.action.clone(), data);
        msg.reply_to = Some(id.clone());
        self.send(&msg);
        true
    }

    /// Pushes monitor figures to the master (`clutch:monitor`): a flat JSON object of
    /// numbers and strings, at most 64 keys and 4 KiB; the master keeps the latest one
    /// (anything else it drops and counts as invalid).
    pub fn report(&self, data: Value) {
        self.send(&Message::new(MONITOR_ACTION, data).to(Endpoint::Master));
    }

    /// To one worker picked at random from the last `cluster-pids` (for an app worker:
    /// the agent; for the agent: one app worker). Returns its pid, or `None` when the
    /// list is empty.
    pub fn send_random(&self, action: &str, data: Value) -> Option<u32> {
        let pids = self.cluster_pids();
        if pids.is_empty() {
            return None;
        }
        let r = self.next_random();
        let pid = pids[(r % pids.len() as u64) as usize];
        match self.role {
            Role::App => self.send_to_agent(action, data),
            Role::Agent => self.send_to(pid, action, data),
        }
        Some(pid)
    }

    fn next_random(&self) -> u64 {
        // xorshift64*: uniform enough to spread load, no dependency for it.
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The last `cluster-pids` the master sent.
    pub fn cluster_pids(&self) -> Vec<u32> {
        self.shared
            .cluster_pids
            .lock()
            .expect("cluster pids lock")
            .clone()
    }

    /// The next message; `None` when the channel closed (with exit-on-disconnect off).
    pub async fn recv(&mut self) -> Option<Message> {
        self.messages.recv().await.map(|(msg, _budget)| msg)
    }

    /// The connections a sticky master hands over, in order (once; `None` after); at most
    /// [`PENDING_CONNECTIONS`] wait in it (see [`Worker`]'s bounds).
    pub fn take_handoffs(&mut self) -> Option<mpsc::Receiver<Connection>> {
        self.connections.take()
    }

    /// This worker's listener on the cluster's port: the socket the master shares
    /// (`LISTEN_FDS`), or in reuseport mode one bound here with SO_REUSEPORT. `None` when
    /// the cluster has no port, or in sticky mode (see [`take_handoffs`](Self::take_handoffs)).
    pub fn listener(&mut self) -> std::io::Result<Option<tokio::net::TcpListener>> {
        if let Some(l) = self.take_listeners()?.into_iter().next() {
            return Ok(Some(l));
        }
        let (Some(port), Ok("1")) = (self.port, std::env::var("CLUTCH_REUSEPORT").as_deref())
        else {
            return Ok(None);
        };
        let host = std::env::var("CLUTCH_HOST").unwrap_or_else(|_| "0.0.0.0".into());
        let ip: std::net::IpAddr = host.parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("CLUTCH_HOST `{host}` is not an IP address"),
            )
        })?;
        let addr = std::net::SocketAddr::new(ip, port);
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(4096)?;
        tokio::net::TcpListener::from_std(socket.into()).map(Some)
    }

    /// Takes the listening sockets the master shares (`LISTEN_FDS`), as tokio listeners.
    pub fn take_listeners(&mut self) -> std::io::Result<Vec<tokio::net::TcpListener>> {
        std::mem::take(&mut self.listeners)
            .into_iter()
            .map(|fd| {
                let l = std::net::TcpListener::from(fd);
                l.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(l)
            })
            .collect()
    }
}

/// The sockets of systemd's `LISTEN_FDS` protocol, when `LISTEN_PID` is this process.
fn take_listen_fds() -> Vec<OwnedFd> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    let n: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if !for_us || n <= 0 {
        return Vec::new();
    }
    (3..3 + n)
        .filter_map(|fd| {
            // SAFETY: systemd's protocol hands fds 3..3+LISTEN_FDS to this process.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            crate::sys::fdpass::set_cloexec(&owned).ok().map(|_| owned)
        })
        .collect()
}
