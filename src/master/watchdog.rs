//! The watchdog (Pomelo's): workers that sent `clutch:subscribe` get the cluster's members
//! at once (`cluster-members`), then `member-added` / `member-changed` / `member-removed`
//! on every change.
//!
//! Changes are found by comparing the core's workers with the last list sent, each time
//! the core publishes a change: with no subscriber that is one `is_empty` check, and no
//! list is kept.

use crate::master::core::{Core, Phase};
use crate::master::worker::WorkerId;
use crate::protocol::Message;
use crate::protocol::actions::{
    MEMBER_ADDED_ACTION, MEMBER_CHANGED_ACTION, MEMBER_REMOVED_ACTION, MEMBERS_ACTION,
};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// One member as subscribers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The slot id (0 for the agent).
    pub id: u32,
    /// `agent` or `app`.
    pub role: &'static str,
    pub pid: u32,
    /// `starting`, `ready` or `stopping`.
    pub state: &'static str,
}

/// The cluster's workers that have a process, by [`WorkerId`].
pub fn members(core: &Core) -> BTreeMap<WorkerId, Member> {
    core.workers()
        .filter_map(|w| {
            Some((
                w.id,
                Member {
                    id: w.slot,
                    role: w.role.as_str(),
                    pid: w.pid?,
                    state: match w.phase {
                        Phase::Starting => "starting",
                        Phase::Ready => "ready",
                        Phase::Stopping => "stopping",
                    },
                },
            ))
        })
        .collect()
}

/// The subscribers, and the members they were last told of.
#[derive(Default)]
pub struct Watchdog {
    subscribers: RefCell<Vec<WorkerId>>,
    /// Kept only while someone subscribes.
    last: RefCell<BTreeMap<WorkerId, Member>>,
}

impl Watchdog {
    /// Adds `worker` as a subscriber (once); returns the snapshot to send it.
    pub fn subscribe(&self, worker: WorkerId, core: &Core) -> Message {
        let mut subs = self.subscribers.borrow_mut();
        if subs.is_empty() {
            *self.last.borrow_mut() = members(core);
        }
        if !subs.contains(&worker) {
            subs.push(worker);
        }
        let list: Vec<Member> = self.last.borrow().values().copied().collect();
        Message::new(MEMBERS_ACTION, serde_json::json!(list))
    }

    /// Whether anyone subscribes.
    pub fn is_idle(&self) -> bool {
        self.subscribers.borrow().is_empty()
    }

    /// The subscribers now.
    pub fn subscribers(&self) -> Vec<WorkerId> {
        self.subscribers.borrow().clone()
    }

    /// The core published a change: the events to send every subscriber, in order.
    pub fn changes(&self, core: &Core) -> Vec<Message> {
        if self.is_idle() {
            return Vec::new();
        }
        let now = members(core);
        let mut last = self.last.borrow_mut();
        let mut events = Vec::new();
        for (w, m) in last.iter() {
            if !now.contains_key(w) {
                events.push(event(MEMBER_REMOVED_ACTION, m));
            }
        }
        for (w, m) in &now {
            match last.get(w) {
                None => events.push(event(MEMBER_ADDED_ACTION, m)),
                Some(old) if old != m => events.push(event(MEMBER_CHANGED_ACTION, m)),
                Some(_) => {}
            }
        }
        *last = now;
        events
    }

    /// `worker` is gone: it subscribes no more.
    pub fn gone(&self, worker: WorkerId) {
        let mut subs = self.subscribers.borrow_mut();
        subs.retain(|w| *w != worker);
        if subs.is_empty() {
            self.last.borrow_mut().clear();
        }
    }
}

fn event(action: &str, m: &Member) -> Message {
    Message::new(action, serde_json::json!(m))
}
