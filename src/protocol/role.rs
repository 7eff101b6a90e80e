//! The two kinds of worker, as the wire names them (`CLUTCH_ROLE`, the ready action).

/// The two kinds of worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
