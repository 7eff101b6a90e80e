//! What the master knows of a worker: its role, slot id and pid, and how to name it.

use std::fmt;

pub use crate::protocol::Role;

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
    /// Whether it said it is ready (and was not asked to stop since).
    pub ready: bool,
    /// The generation it was started at (`CLUTCH_GENERATION`).
    pub generation: u64,
}

/// A worker's identity for the master: monotonic, never reused, never a pid or a slot.
/// Two workers can share a slot (the old and the new generation during a restart); they
/// never share an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(pub u64);

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
