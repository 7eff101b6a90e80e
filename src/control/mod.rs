//! The control plane: the local socket `clutch ctl` talks to, who may do what on it, and
//! the JSON-lines protocol (docs/CONTROL.md).
//!
//! The master binds the socket in `MasterBuilder::prepare` ([`socket::bind`]), so a path
//! that is taken is a start error before any worker starts; [`server::serve`] then runs on
//! the master's thread. Each request becomes one [`Call`] for the run loop
//! (`Event::Control`), which answers from the core's state (src/master/control_handler.rs):
//! there is one source of truth and no lock. Who asks is known from `SO_PEERCRED`
//! ([`auth`]), checked per command before the run loop sees it.

pub mod auth;
pub mod client;
pub mod procinfo;
pub mod protocol;
pub mod server;
pub mod socket;
pub mod target;

use crate::sys::process::Signal;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast;

pub use auth::{Caller, ControlRole, Users};
pub use target::Target;

/// What the caller asks of the run loop, already checked against its role.
#[derive(Debug, Clone)]
pub struct Call {
    pub cmd: Cmd,
    pub caller: Caller,
}

/// A control command, parsed.
#[derive(Debug, Clone)]
pub enum Cmd {
    List,
    Inspect(Target),
    /// Cluster counters, with the `top` most frequent message actions.
    Stats {
        top: usize,
    },
    Watch,
    /// The last `lines` lines each targeted worker wrote (`--output prefix`); with
    /// `follow`, then every new line.
    Logs {
        target: Target,
        lines: usize,
        follow: bool,
    },
    Restart(Target),
    Stop(Target),
    Start(Target),
    Scale(Scale),
    /// Signal each worker's process group (`kill`): a crash for the restart policy.
    Kill(Target, Signal),
    /// Signal each worker's process only (`signal`).
    Signal(Signal, Target),
    /// Route a message line as the parent would.
    Send(Vec<u8>),
    /// Rolling reload, `batch` slots at a time, at most `surge` extra workers alive (`None`:
    /// the master's `--surge`).
    Reload {
        batch: Batch,
        surge: Option<usize>,
    },
    /// Route a request (a message line with a `requestId`) as the parent, and answer with
    /// its reply, or an error after `timeout`.
    Request {
        line: Vec<u8>,
        timeout: std::time::Duration,
    },
    Shutdown,
}

/// How many slots a reload replaces at once: a count, or a percentage of the app slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    Count(usize),
    Percent(u8),
}

impl Batch {
    /// The count for a cluster of `workers` app slots (at least 1).
    pub fn of(self, workers: usize) -> usize {
        match self {
            Batch::Count(n) => n.max(1),
            Batch::Percent(p) => (workers * usize::from(p)).div_ceil(100).max(1),
        }
    }
}

impl std::str::FromStr for Batch {
    type Err = String;
    fn from_str(s: &str) -> Result<Batch, String> {
        let bad = || format!("`{s}` is not a batch; use a count (2) or a percentage (25%)");
        match s.strip_suffix('%') {
            Some(p) => match p.parse::<u8>() {
                Ok(p) if (1..=100).contains(&p) => Ok(Batch::Percent(p)),
                _ => Err(bad()),
            },
            None => match s.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Batch::Count(n)),
                _ => Err(bad()),
            },
        }
    }
}

impl Cmd {
    /// The command's name on the wire and in audit lines.
    pub fn name(&self) -> &'static str {
        match self {
            Cmd::List => "list",
            Cmd::Inspect(_) => "inspect",
            Cmd::Stats { .. } => "stats",
            Cmd::Watch => "watch",
            Cmd::Logs { .. } => "logs",
            Cmd::Restart(_) => "restart",
            Cmd::Stop(_) => "stop",
            Cmd::Start(_) => "start",
            Cmd::Scale(_) => "scale",
            Cmd::Kill(..) => "kill",
            Cmd::Signal(..) => "signal",
            Cmd::Send(_) => "send",
            Cmd::Reload { .. } => "reload",
            Cmd::Request { .. } => "request",
            Cmd::Shutdown => "shutdown",
        }
    }

    /// Whether it changes the cluster (and is audited).
    pub fn changes_state(&self) -> bool {
        !matches!(
            self,
            Cmd::List | Cmd::Inspect(_) | Cmd::Stats { .. } | Cmd::Watch | Cmd::Logs { .. }
        )
    }

    /// The least role that may run it.
    pub fn needs(&self) -> ControlRole {
        match self {
            Cmd::List | Cmd::Inspect(_) | Cmd::Stats { .. } | Cmd::Watch | Cmd::Logs { .. } => {
                ControlRole::Viewer
            }
            Cmd::Kill(..) | Cmd::Shutdown => ControlRole::Admin,
            _ => ControlRole::Operator,
        }
    }
}

/// `scale N`, `scale +K`, `scale -K`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    To(usize),
    Up(usize),
    Down(usize),
}

impl std::str::FromStr for Scale {
    type Err = String;
    fn from_str(s: &str) -> Result<Scale, String> {
        let bad = || format!("`{s}` is not a worker count; use N, +K or -K");
        let n = |t: &str| t.parse::<usize>().map_err(|_| bad());
        match s.as_bytes().first() {
            Some(b'+') => n(&s[1..]).map(Scale::Up),
            Some(b'-') => n(&s[1..]).map(Scale::Down),
            _ => n(s).map(Scale::To),
        }
    }
}

/// What the run loop answers.
#[derive(Debug)]
pub enum Answer {
    /// The result, or why it failed.
    Done(Result<Value, String>),
    /// `watch`: the snapshot, then every event from `events`.
    Watch {
        snapshot: Value,
        events: broadcast::Receiver<Arc<str>>,
    },
    /// `reload`: its progress as it goes, to the end (completed or aborted).
    Reload(tokio::sync::mpsc::UnboundedReceiver<crate::master::ReloadEvent>),
    /// `request`: the reply (or the master's error reply) when it comes; the server waits
    /// for it at most `timeout`.
    Reply {
        reply: tokio::sync::oneshot::Receiver<crate::Message>,
        timeout: std::time::Duration,
    },
    /// `logs`: the lines kept, then (with `follow`) every new line of the targeted
    /// workers.
    Logs {
        lines: Vec<Arc<crate::master::output::LogLine>>,
        follow: Option<(
            Target,
            broadcast::Receiver<Arc<crate::master::output::LogLine>>,
        )>,
    },
}
