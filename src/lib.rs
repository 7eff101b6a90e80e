//! # clutch: a multi-process supervisor
//!
//! A **master** process starts one **agent** worker, then **N app workers**, talks to each
//! over its own IPC channel, routes messages between them, restarts what dies, and stops
//! everything cleanly on a signal. This page is the map; `docs/PROTOCOL.md` is the wire.
//!
//! ## Process model
//! ```text
//!   parent (optional: whoever started clutch with an IPC fd, or the Master handle)
//!     │ channel
//!   master ─── guard (forked; SIGKILLs worker groups if the master dies unannounced)
//!     ├── channel ── agent        (CLUTCH_ROLE=agent, CLUTCH_WORKER_ID=0)
//!     ├── channel ── app worker 1 (CLUTCH_ROLE=app,   CLUTCH_WORKER_ID=1)
//!     └── channel ── app worker N
//! ```
//! - The agent starts first; when it says `agent-start` the app workers start; when every
//!   one has said `app-start` the cluster is ready and `cluster-ready` goes to everyone.
//!   ([`config::ReadyMode`] lets wrapped binaries that cannot speak be ready on spawn or
//!   after a delay.)
//! - Each app worker has a slot id 1..N that a restarted worker keeps.
//! - Each child runs in its own process group (signals go to the group, so grandchildren
//!   go too), gets SIGKILL when the master's thread dies (`PR_SET_PDEATHSIG`), and the
//!   guard process ([`sys::guard`]) kills the groups if the master is SIGKILLed.
//!
//! ## Who owns what
//! - The master runs on one thread with a current-thread tokio runtime; every channel side,
//!   child and timer is a task on it, and the run loop ([`master::lifecycle`]) alone
//!   decides: [`master::launch`] starts a worker and its tasks, [`master::restart`] says
//!   whether and when a dead one comes back, [`master::shutdown`] stops the apps then the
//!   agent. That thread forks every child.
//! - Per child: the master holds one end of a `socketpair`; the child inherits the other at
//!   `CLUTCH_CHANNEL_FD` (also `NODE_CHANNEL_FD`, so Node's `process.send` works as is).
//!   [`master::tasks::wait_child`] is the only reaper of a child.
//! - With `--port`, the master binds the port before any worker starts ([`listen`]):
//!   shared (app workers inherit the listening socket from fd 3, `LISTEN_FDS`; the channel
//!   comes after it), sticky (the master accepts; see below) or reuseport (workers bind it
//!   with `SO_REUSEPORT`; the master only reserves it).
//!
//! ## Message flow
//! bytes on a channel → [`protocol::codec::LineBuffer`] cuts lines →
//! [`master::messenger::Messenger::route`] reads only the routing fields, stamps `from` with
//! the channel's endpoint → each destination's [`channel::Outbox`] → its writer task. The
//! lifecycle loop only hears of what concerns it (readiness, messages to the master,
//! channels closing, exits). Nothing reaches back up.
//!
//! ## Connection flow (sticky mode)
//! a connection arrives on the listener → [`sticky::listener::accept_loop`] accepts it
//! non-blocking (reading a PROXY header first with `--proxy-protocol`) →
//! [`sticky::handoff::Handoff`] picks the slot ([`sticky::affinity`], a rendezvous hash of
//! client IP and slot id) → the slot's outbox carries the fd (`SCM_RIGHTS`) on a
//! `clutch:connection` line, or Node's `NODE_HANDLE` → the worker acknowledges it and the
//! master closes its copy. Until then the master holds the socket, so a connection whose
//! worker died goes to the next live slot.
//!
//! ## Library
//! - [`Master`] (built with [`Master::builder`], see [`master::builder`]) runs a cluster from Rust: await
//!   [`Master::ready`], exchange messages as the parent, and drop it or call
//!   [`Master::shutdown`]; no process is left behind.
//! - [`worker::Worker`] is the child side for Rust workers.
//!
//! ## Caveats
//! - A grandchild that leaves its process group (`setsid`) escapes the group signals and
//!   the guard.
//! - A connection a worker acknowledged is its own: if that worker then dies, the
//!   connection dies with it.
//! - Process groups are signalled by number. The run loop stops signalling a worker's group
//!   as soon as the worker is reaped, and the reaping task kills what is left of the group
//!   at that moment; a grandchild that outlives that instant in another group is out of
//!   reach.

pub mod channel;
pub mod config;
pub mod demo;
pub mod error;
pub mod listen;
pub mod log;
pub mod master;
pub mod protocol;
pub mod sticky;
pub mod sys;
pub mod worker;

pub use config::{ReadyMode, RestartPolicy, Settings};
pub use error::Error;
pub use master::{ClusterInfo, Master, MasterBuilder, Role, State, WorkerInfo};
pub use protocol::{Endpoint, Message};
