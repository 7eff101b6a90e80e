//! The master's counters, in one object handed to every task that counts something (the
//! Messenger, the channel readers, the handoff, the core), ready for `ctl stats` and
//! `/metrics`.
//!
//! Everything runs on the master's one thread, so a counter is a `Cell`: counting costs an
//! add, no atomic and no lock on the hot paths. Readers on that thread take a
//! [`Snapshot`].
//!
//! Messages are also counted per action ([`Metrics::action`]): a table keyed by the
//! action's text, which allocates only the first time an action is seen; past
//! [`MAX_ACTIONS`] distinct actions the rest are counted together as "other", so a worker
//! that invents a new action per message cannot grow the master. The action counted last
//! is compared first: a run of one action (the common case) costs a short `memcmp`, not a
//! hash.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Distinct actions counted by name; messages with any further action count as "other".
pub const MAX_ACTIONS: usize = 256;

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
    actions: RefCell<Actions>,
    other_actions: Cell<u64>,
}

/// Counts by action: each action's count in `counts`, found through `index`.
#[derive(Debug, Default)]
struct Actions {
    counts: Vec<(Box<str>, u64)>,
    index: HashMap<Box<str>, usize>,
    /// Where the last action counted is in `counts`.
    last: usize,
}

/// Messages per action, most first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ActionCounts {
    /// The `top` most frequent actions and their counts, most first (ties by name).
    pub top: Vec<(String, u64)>,
    /// How many distinct actions are counted by name (at most [`MAX_ACTIONS`]).
    pub distinct: usize,
    /// Messages whose action came after [`MAX_ACTIONS`] others.
    pub other: u64,
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

    /// A message with `action` is being routed. No allocation but the first time an
    /// action is seen.
    pub fn action(&self, action: &str) {
        let mut a = self.actions.borrow_mut();
        let a = &mut *a;
        if let Some((name, n)) = a.counts.get_mut(a.last)
            && **name == *action
        {
            *n += 1;
            return;
        }
        if let Some(&i) = a.index.get(action) {
            a.counts[i].1 += 1;
            a.last = i;
        } else if a.counts.len() < MAX_ACTIONS {
            a.last = a.counts.len();
            a.counts.push((action.into(), 1));
            a.index.insert(action.into(), a.last);
        } else {
            bump(&self.other_actions);
        }
    }

    /// The `top` most frequent actions.
    pub fn actions(&self, top: usize) -> ActionCounts {
        let a = self.actions.borrow();
        let mut all: Vec<(String, u64)> =
            a.counts.iter().map(|(a, n)| (a.to_string(), *n)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(top);
        ActionCounts {
            top: all,
            distinct: a.counts.len(),
            other: self.other_actions.get(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_counted_by_name_up_to_the_bound_then_as_other() {
        let m = Metrics::default();
        for _ in 0..3 {
            m.action("b");
        }
        m.action("a");
        m.action("c");
        m.action("c");
        let got = m.actions(2);
        assert_eq!(got.top, vec![("b".into(), 3), ("c".into(), 2)]);
        assert_eq!(got.distinct, 3);
        for i in 0..MAX_ACTIONS + 10 {
            m.action(&format!("x{i}"));
        }
        let got = m.actions(1);
        assert_eq!(got.distinct, MAX_ACTIONS);
        assert_eq!(got.other, 13);
        assert_eq!(got.top, vec![("b".into(), 3)]);
        m.action("b");
        assert_eq!(
            m.actions(1).top[0].1,
            4,
            "a known action still counts by name"
        );
        m.action("c");
        m.action("b");
        assert_eq!(m.actions(2).top, vec![("b".into(), 5), ("c".into(), 3)]);
    }
}
