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
//! ## Who decides, who owns what
//! - The master runs on one thread with a current-thread tokio runtime; every channel side,
//!   child and timer is a task on it. That thread forks every child.
//! - **Decisions** are a state machine that performs no I/O: [`master::core`]'s `Core`
//!   takes an input (a worker spawned, ready, exited; a timer; a signal; an operator's
//!   command) with the time, and returns effects (spawn, stop, kill, arm a timer, send a
//!   lifecycle message, who takes connections). Its unit tests need no process.
//! - **State is explicit.** Each worker has a monotonic `WorkerId` (never a pid or a
//!   slot) and, once the master asks it to go, an **intent** (stop, replace, retire,
//!   recover, abandon). An exit is judged by that intent first; only an exit nobody asked
//!   for goes through the restart policy ([`master::restart`]), so an operator's restart
//!   never counts as a crash. Each slot holds its goal (running, stopped, removed), its
//!   current worker, a replacement that is starting, the workers it drains, and its
//!   restart bookkeeping. The number of app slots is runtime state: it can be scaled.
//! - **The run loop** ([`master::lifecycle`]) is the I/O shell: it turns task events into
//!   core inputs and carries out the effects ([`master::launch`] spawns a worker and its
//!   tasks).
//! - **One owner task per child** ([`master::owner`]) holds the child and is the only one
//!   that signals it (SIGTERM, then SIGKILL after the grace it was given) and reaps it: it
//!   waits on a pidfd without reaping, kills what is left of the process group while the
//!   zombie still pins the group id, reaps, tells the guard, lets the channel reader route
//!   what the child wrote last, aborts the reader, and reports the exit once.
//! - **One registry** ([`master::registry`]) of live workers' channels, keyed by
//!   `WorkerId`: the Messenger routes through it; the handoff tracks sockets per
//!   `WorkerId`, so an old and a new worker of one slot are apart.
//! - **One metrics object** ([`master::metrics`]) that the Messenger, the readers, the
//!   handoff and the core count into: routed and dropped lines, handoffs, restarts and
//!   exits by reason, and messages per action (at most 256 actions by name, the rest as
//!   `other`; the action counted last is compared first, so a run of one action costs no
//!   hash).
//! - **Rolling reload and recycling** are core transitions too (`master/reload.rs`,
//!   `master/recycle.rs`): the generation goes up and slots are replaced a batch at a time,
//!   a new worker first; a failing new worker aborts the reload. A reload may bring new
//!   settings: the CLI re-reads `--config` under its flags
//!   (`MasterBuilder::reread_on_reload`), [`config::diff`] compares them with the running
//!   ones, and the core takes them for the new generation, or refuses the reload with
//!   nothing changed when only a restart of the master can apply one (port, name, listener
//!   mode, control socket). `--surge` bounds the workers alive during a reload, old ones
//!   still stopping included; an aborted reload puts the settings from before it back. [`master::liveness`] (the
//!   shell side) turns missing heartbeats and `--max-rss` into recycle inputs.
//! - **The control plane** ([`control`]): a private Unix socket, `SO_PEERCRED` and roles
//!   checked per command, served on the master's thread; each request is one
//!   `Event::Control` that the run loop answers from the core (`master/control_handler.rs`),
//!   so it never races the core and costs the hot paths nothing.
//! - **Beyond routing**, the Messenger holds three small tables: the monitor
//!   ([`master::monitor`]: /proc samples every `--monitor-interval` plus each worker's last
//!   `clutch:monitor` push), the watchdog (membership subscribers, diffed against the core
//!   on each publish; nothing kept without subscribers) and the requests in flight
//!   (`requestId` → asker, at most 4096, answered with an error when their one receiver is
//!   gone).
//! - **egg.js** ([`egg`], [`node`]): `clutch egg` builds egg-cluster's options and runs its
//!   own workers under the egg dialect of lifecycle names (`master/names.rs`); Node app
//!   workers get a `--require` preload that makes `listen(PORT)` take the inherited socket.
//! - **The HTTP endpoint** ([`http`], `--http ADDR`): hyper's HTTP/1 server on the master's
//!   thread, one task per connection, every path mapped in one function
//!   (`http::server::route`; TLS with rustls when given a certificate). Each request sends `Event::Http` to the run loop, which
//!   answers with a `View` (the core's phase and one small row per slot): `/livez` is that
//!   answer arriving within 500 ms and `/readyz` is judged from it; `/metrics` is built
//!   outside the run loop from the `View`, the metrics object's counters, the monitor's
//!   samples and the reload statistics. The message and handoff paths do nothing more.
//! - **The web console** ([`console`]) is one more client of the control plane: served on
//!   the `--http` endpoint, it asks the run loop for `list` and `watch` like `clutch ctl`,
//!   and sends the very same `Cmd` as an `Event::Control` with a web caller as who asks,
//!   so the one-at-a-time rule, audit lines and events are shared. Its users come from
//!   `--http-users` (argon2 hashes, checked on the blocking pool, never on the master's
//!   thread); sessions and CSRF tokens live in the master's memory, and nothing is
//!   computed for the console while no page is open.
//! - **A service's main process** (`MasterBuilder::main_process`, as `clutch start` is):
//!   `master::systemd` tells the service manager how the cluster stands (`sd_notify`, only
//!   when `NOTIFY_SOCKET` is set; the watchdog ping is sent by the run loop itself), and
//!   `listen::take_passed` adopts a listening socket passed by socket activation
//!   (`LISTEN_FDS`) as the public port instead of binding `--port`. As PID 1 or a child
//!   subreaper (`--subreaper`), `master::orphans` reaps processes re-parented to the
//!   master: it lists the master's children and waits by pid only for those the guard does
//!   not know as its own, so each worker's exit status still reaches its owner task.
//! - **Worker output** ([`master::output`], `--output prefix`): the owner task also starts
//!   the readers of the child's stdout and stderr pipes and ends them with the channel
//!   reader after the exit; each line goes, prefixed with the worker's name, to a writer
//!   thread that drops rather than blocks, and into the slot's bounded ring for
//!   `clutch ctl logs`.
//! - Per child: the master holds one end of a `socketpair`; the child inherits the other at
//!   `CLUTCH_CHANNEL_FD` (also `NODE_CHANNEL_FD`, so Node's `process.send` works as is).
//! - With `--port`, the master binds the port before any worker starts ([`listen`]):
//!   shared (app workers inherit the listening socket from fd 3, `LISTEN_FDS`; the channel
//!   comes after it), sticky (kernel-steered: a listening socket per app slot, slot k's
//!   workers inherit the k-th at fd 3, and a BPF program attached to the `SO_REUSEPORT`
//!   group picks the socket by client address, see [`sticky::steering`] and
//!   [`sticky::group`]; or the master accepts, see below) or reuseport (workers bind it
//!   with `SO_REUSEPORT`; the master only reserves it).
//!
//! ## Message flow
//! bytes on a channel → [`protocol::codec::LineBuffer`] cuts lines →
//! [`master::messenger::Messenger::route`] reads only the routing fields (a one-pass
//! validating scanner, `protocol::header_scan`; any line it is not sure of goes to
//! serde_json, whose answer stands, so it never accepts what serde_json rejects), stamps
//! `from` with the channel's endpoint → each destination's [`channel::Outbox`] → its writer task. The
//! lifecycle loop only hears of what concerns it (readiness, messages to the master,
//! channels closing, exits). Nothing reaches back up.
//!
//! ## Connection flow (sticky mode)
//! Kernel-steered (the default for workers that accept on fd 3): the kernel runs the
//! program on each SYN and queues the connection on its slot's socket; the master does
//! nothing per connection. After each core step the run loop ([`sticky::steered`])
//! re-attaches a program that spreads the buckets of slots with no accepting worker over
//! the live ones, and drains a down slot's socket into the handoff below. The master
//! handoff (`--sticky-mode handoff`, `--proxy-protocol`, egg and Node workers):
//! a connection arrives on the listener → [`sticky::listener::accept_loop`] accepts it
//! non-blocking (reading a PROXY header first with `--proxy-protocol`, parsed by the `ppp`
//! crate and taken off the socket to its last byte and no further) →
//! [`sticky::handoff::Handoff`] picks the slot ([`sticky::affinity`], a rendezvous hash of
//! client IP and slot id) → the slot's outbox carries the fd (`SCM_RIGHTS`) on a
//! `clutch:connection` line, or Node's `NODE_HANDLE` → the worker acknowledges it and the
//! master closes its copy. Until then the master holds the socket, so a connection whose
//! worker died goes to the next live slot, unless someone already read from it (the
//! kernel's count of bytes received against what is still queued): that one is closed, as
//! a request must never be served twice or cut in half. A worker told to stop takes no
//! new connections.
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
//! - Process groups are signalled by number, only by the child's owner and only before it
//!   reaps the leader; what is left of the group is killed while the zombie leader still
//!   pins the number. A grandchild in another group (`setsid`) is out of reach.
//! - Readiness is what a worker says: with `--ready notify`, any local process of the same
//!   uid can write `READY=1` to the worker's abstract `NOTIFY_SOCKET`.
//! - The guard: between a guard's death and its replacement (milliseconds, longer while
//!   fork fails and the supervisor backs off), a master that dies leaves its workers'
//!   children behind. The guard holds at most 4096 process groups.
//! - The program is looked up on the worker's `PATH` before fork; a script without a `#!`
//!   line is not run through `/bin/sh` as `execvp` would.
//! - Logging: the master never waits on stderr. When nobody reads it, lines past a queue of
//!   4096 are dropped and counted ([`log::dropped_lines`]).
//! - Memory is bounded per channel (`--max-message-size` per line, 64 MiB queued per
//!   outbox) and across all outboxes by one process-wide budget ([`channel::Budget`],
//!   256 MiB). A line past a bound is dropped and counted; the sender is not told. An
//!   outbox under 256 KiB still takes one line while the budget is spent, so the master can
//!   pass the budget by at most one line per worker.
//! - With `--proxy-protocol`, at most 1024 connections wait for the rest of their header;
//!   past that they are closed. A Rust worker that stops calling `recv()` or taking its
//!   handoffs stops reading its channel once 16 MiB of messages or 256 connections wait.
//! - A request sent to every app worker (`to: app` without `receiverPid`) gets only its
//!   first answer; a request is answered with an error on the receiver's exit only when it
//!   went to exactly one worker.
//! - `clutch ctl list` reads `/proc` on the master's thread (about 30 µs per worker); naming
//!   a caller is a user-database lookup there too, which can block if NSS is remote.
//! - `clutch egg -p 0` picks a free port before the master binds it (egg's workers need the
//!   number in their options); another process may take it in between. egg workers that
//!   fail at startup exit with code 0, so `--restart on-failure` never restarts them.
//! - Spawning forks from the master's thread; the child makes only async-signal-safe calls
//!   before exec, with argv and envp built before fork.
//! - Kernel steering: any process of the master's uid holding a slot socket can replace the
//!   program (`SO_LOCK_FILTER` does not prevent it); clients behind one address share one
//!   worker; two group members that leave between two checks leave an order the master
//!   guesses; past 256 app slots, the extra slots get no connections (256 buckets).
//! - With `--output prefix`, worker output the master's stdout or stderr does not take at
//!   once is dropped (counted per chunk of up to 64 KiB), and a worker flooding its output
//!   takes the master thread's time to read it.

pub mod channel;
pub mod config;
pub mod console;
pub mod control;
pub mod egg;
pub mod error;
pub mod http;
pub(crate) mod listen;
pub mod log;
pub mod master;
pub mod node;
pub mod protocol;
pub mod sticky;
pub mod sys;
pub mod worker;

pub use config::{ReadyMode, RestartPolicy, Settings};
pub use error::Error;
pub use master::{ClusterInfo, Master, MasterBuilder, ReloadEvent, Role, State, WorkerInfo};
pub use protocol::{Endpoint, Message};
