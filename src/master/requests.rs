//! The requests in flight through the master (Pomelo's request, as opposed to notify).
//!
//! A request is a message with a `requestId`. The master gives it an id of its own (a
//! number, unique in this master) before passing it on, and records who asked with the
//! asker's own id; the answer carries the master's id in `replyTo`, so one look-up finds
//! the asker, whose id is put back. Askers thus pick their ids freely (two workers may
//! both count from 1). The table is bounded: past [`MAX_IN_FLIGHT`] the oldest request is
//! forgotten (its answer, if one comes, is dropped; the asker's timeout covers it).

use crate::master::worker::{WorkerId, WorkerName};
use crate::protocol::Message;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use tokio::sync::oneshot;

/// Requests in flight per master; past this the oldest is forgotten.
pub const MAX_IN_FLIGHT: usize = 4096;

/// Who asked: where the answer goes.
#[derive(Debug)]
pub enum Asker {
    Worker(WorkerId),
    /// The parent channel (or the in-process handle's plain `send`).
    Parent,
    /// [`crate::Master::request`]: the answer completes its future.
    Handle(oneshot::Sender<Message>),
}

/// One request in flight.
#[derive(Debug)]
pub struct Pending {
    pub asker: Asker,
    /// The `requestId` the asker wrote.
    pub asker_id: Value,
    pub action: String,
    /// The one worker it went to, so that its exit can be answered; `None` when it went
    /// to several app workers, or to the parent.
    pub target: Option<(WorkerId, WorkerName)>,
}

/// The table of requests in flight, keyed by the master's id.
#[derive(Default)]
pub struct Requests {
    /// Ids grow, so the first key is the oldest.
    pending: BTreeMap<u64, Pending>,
    next: u64,
    /// Requests per target worker, to answer them when it dies without scanning.
    by_target: HashMap<WorkerId, Vec<u64>>,
}

impl Requests {
    /// Records `p`; returns the master's id for it, and the request it evicted, if any.
    pub fn insert(&mut self, p: Pending) -> (u64, Option<Pending>) {
        let evicted = if self.pending.len() >= MAX_IN_FLIGHT {
            self.pending.pop_first().map(|(id, old)| {
                self.unlink(id, &old);
                old
            })
        } else {
            None
        };
        self.next += 1;
        let id = self.next;
        if let Some((w, _)) = p.target {
            self.by_target.entry(w).or_default().push(id);
        }
        self.pending.insert(id, p);
        (id, evicted)
    }

    /// Takes the request `reply_to` answers (the master's id as JSON text).
    pub fn take(&mut self, reply_to: &str) -> Option<Pending> {
        let id: u64 = reply_to.trim().parse().ok()?;
        let p = self.pending.remove(&id)?;
        self.unlink(id, &p);
        Some(p)
    }

    /// Forgets a request that could not be delivered.
    pub fn cancel(&mut self, id: u64) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        self.unlink(id, &p);
        Some(p)
    }

    /// `worker` is gone: takes the requests addressed to it (to be answered with an error)
    /// and forgets those it asked (nobody is left to answer).
    pub fn gone(&mut self, worker: WorkerId) -> Vec<Pending> {
        let ids = self.by_target.remove(&worker).unwrap_or_default();
        let taken = ids
            .into_iter()
            .filter_map(|id| self.pending.remove(&id))
            .collect();
        if self
            .pending
            .values()
            .any(|p| matches!(p.asker, Asker::Worker(w) if w == worker))
        {
            let asked: Vec<u64> = self
                .pending
                .iter()
                .filter(|(_, p)| matches!(p.asker, Asker::Worker(w) if w == worker))
                .map(|(id, _)| *id)
                .collect();
            for id in asked {
                self.cancel(id);
            }
        }
        taken
    }

    /// How many requests are in flight.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none is.
    #[cfg_attr(not(test), allow(dead_code))] // clippy's len_without_is_empty pairs it with len
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn unlink(&mut self, id: u64, p: &Pending) {
        if let Some((w, _)) = p.target
            && let Some(ids) = self.by_target.get_mut(&w)
        {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_target.remove(&w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::worker::Role;

    fn to(worker: u64) -> Pending {
        Pending {
            asker: Asker::Parent,
            asker_id: Value::from(worker),
            action: "q".into(),
            target: Some((
                WorkerId(worker),
                WorkerName {
                    role: Role::App,
                    id: 1,
                    pid: 100 + worker as u32,
                },
            )),
        }
    }

    #[test]
    fn the_oldest_is_evicted_past_the_bound() {
        let mut r = Requests::default();
        let (first, _) = r.insert(to(1));
        for _ in 1..MAX_IN_FLIGHT {
            assert!(r.insert(to(2)).1.is_none());
        }
        assert_eq!(r.len(), MAX_IN_FLIGHT);
        let (last, evicted) = r.insert(to(3));
        assert_eq!(evicted.unwrap().asker_id, Value::from(1));
        assert_eq!(r.len(), MAX_IN_FLIGHT);
        assert!(r.take(&first.to_string()).is_none());
        assert!(r.take(&last.to_string()).is_some());
        // The evicted one is no longer linked to its target either.
        assert!(r.gone(WorkerId(1)).is_empty());
    }

    #[test]
    fn a_reply_takes_its_request_once() {
        let mut r = Requests::default();
        let (id, _) = r.insert(to(1));
        assert!(r.take("\"nope\"").is_none());
        assert_eq!(r.take(&id.to_string()).unwrap().asker_id, Value::from(1));
        assert!(r.take(&id.to_string()).is_none());
        assert!(r.gone(WorkerId(1)).is_empty());
        assert!(r.is_empty());
    }

    #[test]
    fn a_dead_target_gives_back_its_requests_and_a_dead_asker_is_forgotten() {
        let mut r = Requests::default();
        r.insert(to(1));
        r.insert(to(1));
        r.insert(to(2));
        let mut asked = to(2);
        asked.asker = Asker::Worker(WorkerId(1));
        r.insert(asked);
        let failed = r.gone(WorkerId(1));
        assert_eq!(failed.len(), 2);
        // What worker 1 asked of worker 2 is forgotten; worker 2's other one stays.
        assert_eq!(r.len(), 1);
        assert_eq!(r.gone(WorkerId(2)).len(), 1);
        assert!(r.is_empty());
    }
}
