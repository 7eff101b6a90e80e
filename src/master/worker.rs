//! What the master knows of a worker: its role, slot id and pid, and how to name it.

use std::fmt;

/// The two kinds of worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The one agent, started first.
    Agent,
    /// An app worker, one per slot.
    App,
}

impl Role {
    /// `agent` or `app`, as in `CLUTCH_ROLE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::App => "app",
        }
    }

    /// The message a worker of this role sends when ready.
    pub fn ready_action(self) -> &'static str {
        match self {
            Role::Agent => "agent-start",
            Role::App => "app-start",
        }
    }
}

/// A worker named for people: `agent (pid 12)` or `app worker 3 (pid 15)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerName {
    pub role: Role,
    pub id: u32,
    pub pid: u32,
}

impl fmt::Display for WorkerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.role {
            Role::Agent => write!(f, "agent (pid {})", self.pid),
            Role::App => write!(f, "app worker {} (pid {})", self.id, self.pid),
        }
    }
}

/// A snapshot of one live worker, for the [`crate::Master`] handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerInfo {
    pub role: Role,
    /// Slot id (0 for the agent).
    pub id: u32,
    pub pid: u32,
    /// Whether it said it is ready.
    pub ready: bool,
}
