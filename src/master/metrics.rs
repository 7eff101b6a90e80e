//! The master's counters, in one object handed to every task that counts something (the
//! Messenger, the channel readers, the handoff, the core), ready for `ctl stats` and
//! `/metrics`.
//!
//! Everything runs on the master's one thread, so a counter is a `Cell`: counting costs an
//! add, no atomic and no lock on the hot paths. Readers on that thread take a
//! [`Snapshot`].

use std::cell::Cell;

/// Why a line was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not a valid message (bad UTF-8, bad JSON, no action, bad `to`, reserved action).
    Invalid,
    /// A line over `--max-message-size`; the sender's channel was closed.
    TooLong,
    /// The destination's outbox was full (it stopped reading).
    Full,
    /// Nobody matched the route (no agent, no live app with that pid).
    NoRoute,
}

impl DropReason {
    /// Every reason, in the order of [`Snapshot::dropped`].
    pub const ALL: [DropReason; 4] = [
        DropReason::Invalid,
        DropReason::TooLong,
        DropReason::Full,
        DropReason::NoRoute,
    ];

    /// The label value, as in `clutch_messages_dropped_total{reason="..."}`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Invalid => "invalid",
            DropReason::TooLong => "too_long",
            DropReason::Full => "full",
            DropReason::NoRoute => "no_route",
        }
    }
}

/// Why a worker was started again in its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartReason {
    /// It died and the restart policy brought it back.
    Crash,
    /// An operator (or the handle) asked for a restart.
    Operator,
    /// It was alive but replaced: no heartbeat, too much memory, too old.
    Recycle,
}

impl RestartReason {
    /// Every reason, in the order of [`Snapshot::restarts`].
    pub const ALL: [RestartReason; 3] = [
        RestartReason::Crash,
        RestartReason::Operator,
        RestartReason::Recycle,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartReason::Crash => "crash",
            RestartReason::Operator => "operator",
            RestartReason::Recycle => "recycle",
        }
    }
}

/// Why a worker exited, judged by the intent the master recorded first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// Nobody asked it to: a crash (or a clean exit nobody asked for).
    Unexpected,
    /// It was asked to stop (shutdown, `stop`).
    Stopped,
    /// A new worker took its slot (restart, reload).
    Replaced,
    /// Its slot was scaled away.
    Retired,
    /// The master stopped it for cause (not ready in time, abuse of its channel).
    Recovered,
    /// A replacement that never became ready.
    Abandoned,
}

impl ExitReason {
    /// Every reason, in the order of [`Snapshot::exits`].
    pub const ALL: [ExitReason; 6] = [
        ExitReason::Unexpected,
        ExitReason::Stopped,
        ExitReason::Replaced,
        ExitReason::Retired,
        ExitReason::Recovered,
        ExitReason::Abandoned,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Unexpected => "unexpected",
            ExitReason::Stopped => "stopped",
            ExitReason::Replaced => "replaced",
            ExitReason::Retired => "retired",
            ExitReason::Recovered => "recovered",
            ExitReason::Abandoned => "abandoned",
        }
    }
}

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    routed: Cell<u64>,
    dropped: [Cell<u64>; 4],
    handed_off: Cell<u64>,
    restarts: [Cell<u64>; 3],
    exits: [Cell<u64>; 6],
}

/// The counters at one moment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Lines delivered to at least one destination.
    pub routed: u64,
    /// Lines dropped, by [`DropReason::ALL`].
    pub dropped: [u64; 4],
    /// Connections handed to a worker.
    pub handed_off: u64,
    /// Restarts, by [`RestartReason::ALL`].
    pub restarts: [u64; 3],
    /// Exits, by [`ExitReason::ALL`].
    pub exits: [u64; 6],
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

impl Metrics {
    /// A line was delivered.
    pub fn routed(&self) {
        bump(&self.routed);
    }

    /// A line was dropped.
    pub fn dropped(&self, why: DropReason) {
        bump(&self.dropped[why as usize]);
    }

    /// A connection was handed to a worker.
    pub fn handed_off(&self) {
        bump(&self.handed_off);
    }

    /// A slot got a new worker.
    pub fn restarted(&self, why: RestartReason) {
        bump(&self.restarts[why as usize]);
    }

    /// A worker exited.
    pub fn exited(&self, why: ExitReason) {
        bump(&self.exits[why as usize]);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            routed: self.routed.get(),
            dropped: self.dropped.each_ref().map(Cell::get),
            handed_off: self.handed_off.get(),
            restarts: self.restarts.each_ref().map(Cell::get),
            exits: self.exits.each_ref().map(Cell::get),
        }
    }
}
