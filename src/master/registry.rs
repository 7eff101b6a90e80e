//! The registry: one table of the workers whose channels are open, keyed by [`WorkerId`].
//! The Messenger routes through it, the run loop adds a worker when it spawns it and
//! removes it when its channel closes or it exits; nothing else keeps a copy of who is
//! live. (The core's state is the decision side of the same workers; this is the I/O
//! side: names and outboxes.)

use crate::channel::Outbox;
use crate::master::worker::{Role, WorkerId, WorkerName};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

/// A worker the Messenger can deliver to.
pub struct Entry {
    pub worker: WorkerId,
    pub name: WorkerName,
    pub outbox: Rc<Outbox>,
    /// When it last said it is still working (`clutch:heartbeat`), or was spawned.
    pub heard: Cell<Instant>,
}

/// The live workers' channels, in spawn order.
#[derive(Default)]
pub struct Registry {
    entries: RefCell<Vec<Entry>>,
}

impl Registry {
    /// Adds a worker whose channel just opened.
    pub fn add(&self, entry: Entry) {
        self.entries.borrow_mut().push(entry);
    }

    /// Removes a worker (its channel closed or it exited); closes its outbox.
    pub fn remove(&self, worker: WorkerId) {
        let mut entries = self.entries.borrow_mut();
        if let Some(i) = entries.iter().position(|e| e.worker == worker) {
            entries.remove(i).outbox.close();
        }
    }

    /// The outbox of `worker`, while its channel is open.
    pub fn outbox(&self, worker: WorkerId) -> Option<Rc<Outbox>> {
        self.entries
            .borrow()
            .iter()
            .find(|e| e.worker == worker)
            .map(|e| e.outbox.clone())
    }

    /// `worker` said it is still working.
    pub fn heard(&self, worker: WorkerId) {
        if let Some(e) = self.entries.borrow().iter().find(|e| e.worker == worker) {
            e.heard.set(Instant::now());
        }
    }

    /// When `worker` was last heard from, while its channel is open.
    pub fn last_heard(&self, worker: WorkerId) -> Option<Instant> {
        self.entries
            .borrow()
            .iter()
            .find(|e| e.worker == worker)
            .map(|e| e.heard.get())
    }

    /// Runs `f` on `worker`'s entry, while its channel is open.
    pub fn with_worker<R>(&self, worker: WorkerId, f: impl FnOnce(Option<&Entry>) -> R) -> R {
        let entries = self.entries.borrow();
        f(entries.iter().find(|e| e.worker == worker))
    }

    /// The worker whose pid is `pid`, while its channel is open.
    pub fn id_of(&self, pid: u32) -> Option<WorkerId> {
        self.entries
            .borrow()
            .iter()
            .find(|e| e.name.pid == pid)
            .map(|e| e.worker)
    }

    /// Runs `f` on every entry, in spawn order.
    pub fn each(&self, mut f: impl FnMut(&Entry)) {
        self.entries.borrow().iter().for_each(&mut f);
    }

    /// Runs `f` on the newest agent (during an agent's replacement, the new one).
    pub fn with_agent<R>(&self, f: impl FnOnce(Option<&Entry>) -> R) -> R {
        let entries = self.entries.borrow();
        f(entries.iter().rev().find(|e| e.name.role == Role::Agent))
    }

    /// Runs `f` on every app worker whose pid is `pid` (every one when `None`); returns
    /// what the calls added up to.
    pub fn for_apps(&self, pid: Option<u32>, mut f: impl FnMut(&Entry) -> usize) -> usize {
        self.entries
            .borrow()
            .iter()
            .filter(|e| e.name.role == Role::App && pid.is_none_or(|p| e.name.pid == p))
            .map(&mut f)
            .sum()
    }
}
