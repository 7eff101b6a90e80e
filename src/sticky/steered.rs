//! The run loop's side of kernel steering: which slots take connections, the program that
//! matches, and the master draining the socket of a slot that is down.
//!
//! A slot is live while one of its workers takes connections (the core's
//! `Effect::Accepting` / `NotAccepting`). After each core step the loop calls
//! [`Steered::sync`]: if the set of live slots (or the group's order) changed, a program
//! spreading the buckets of the slots that are down over the live ones is attached, and the
//! master accepts what was already queued on a down slot's socket and hands it to a live
//! worker ([`Handoff`]), so no client waits for a restart. When the slot is live again its
//! buckets come back. During a rolling reload, old and new worker of a slot share its
//! socket: the slot stays live and nothing moves.
//!
//! The master does nothing per connection while every slot is live.

use crate::master::worker::WorkerId;
use crate::sticky::group::SocketGroup;
use crate::sticky::handoff::Handoff;
use crate::sticky::listener::accept_loop;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use tokio::task::{JoinHandle, spawn_local};

/// The master draining one down slot's socket.
struct Drain {
    task: JoinHandle<()>,
    /// `O_NONBLOCK` before the master set it to drain: the flag belongs to the open file,
    /// shared with the workers' copies, so it is put back as their last worker left it.
    was_nonblocking: bool,
}

/// Kernel steering, as the run loop drives it.
pub struct Steered {
    group: SocketGroup,
    handoff: Rc<Handoff>,
    /// Workers that take connections, and their slot.
    accepting: HashMap<WorkerId, u32>,
    drains: BTreeMap<u32, Drain>,
    /// Slots that have had a live worker. Only those are drained when down: at the start a
    /// slot's queue waits for its own first worker, and its socket's `O_NONBLOCK` is left
    /// as that worker sets it.
    served: BTreeSet<u32>,
    /// Workers spawned in a slot that do not take connections yet. Their slot is not
    /// drained: the drain's `O_NONBLOCK` is shared with the fd 3 they inherit, and a worker
    /// that accepts in blocking mode would get `EAGAIN` (and the master would race it for
    /// its own connections).
    starting: HashMap<WorkerId, u32>,
    /// The cluster is stopping: no more draining.
    closed: bool,
}

impl Steered {
    /// Steering over `group`; a down slot's queued connections go through `handoff`.
    pub fn new(group: SocketGroup, handoff: Rc<Handoff>) -> Steered {
        Steered {
            group,
            handoff,
            accepting: HashMap::new(),
            drains: BTreeMap::new(),
            served: BTreeSet::new(),
            starting: HashMap::new(),
            closed: false,
        }
    }

    /// Makes slot `slot`'s socket if the cluster scaled past the sockets it has (it joins
    /// the group at the end and takes nothing until a program names it).
    pub fn prepare(&mut self, slot: u32) {
        if let Err(e) = self.group.grow(slot as usize) {
            tracing::error!("cannot make the listening socket of app worker {slot}: {e}");
        }
    }

    /// Slot `slot`'s socket, the one its workers inherit at fd 3.
    pub fn socket(&self, slot: u32) -> Option<&OwnedFd> {
        self.group.socket(slot)
    }

    /// `worker` is about to be spawned in `slot` and inherit its socket: the master stops
    /// draining that socket and puts its `O_NONBLOCK` back first (the caller forks after).
    pub fn starting(&mut self, worker: WorkerId, slot: u32) {
        self.starting.insert(worker, slot);
        self.stop_drain(slot);
    }

    /// `worker` of `slot` takes connections.
    pub fn accepting(&mut self, worker: WorkerId, slot: u32) {
        self.starting.remove(&worker);
        self.accepting.insert(worker, slot);
        self.served.insert(slot);
    }

    /// `worker` takes no more connections (or never will: it is gone).
    pub fn not_accepting(&mut self, worker: WorkerId) {
        self.starting.remove(&worker);
        self.accepting.remove(&worker);
    }

    fn stop_drain(&mut self, slot: u32) {
        if let Some(d) = self.drains.remove(&slot) {
            d.task.abort();
            if let Some(fd) = self.group.socket(slot) {
                let _ = socket2::SockRef::from(fd).set_nonblocking(d.was_nonblocking);
            }
        }
    }

    /// The cluster stops: the master stops draining.
    pub fn close(&mut self) {
        self.closed = true;
        self.sync();
    }

    /// The slots that take connections.
    pub fn live(&self) -> BTreeSet<u32> {
        self.accepting.values().copied().collect()
    }

    /// For `ctl inspect`: whether `slot` takes connections, its socket's position in the
    /// kernel's group, and how many of the 256 buckets the attached program sends it.
    pub fn slot_view(&self, slot: u32) -> (bool, Option<usize>, usize) {
        let live = self.accepting.values().any(|&s| s == slot);
        let position = self.group.order().iter().position(|&s| s == slot);
        let buckets = position.map_or(0, |p| self.group.buckets_at(p));
        (live, position, buckets)
    }

    /// Brings the program and the drains in line with the live slots and the group.
    pub fn sync(&mut self) {
        let left = self.group.check_members();
        if !left.is_empty() {
            tracing::warn!(
                "the listening socket of app worker(s) {left:?} was shut down by a process \
                 holding it; it listens again and the steering follows the new order"
            );
        }
        let live: Vec<u32> = self.live().into_iter().collect();
        match self.group.steer(&live) {
            Ok(true) => tracing::debug!("sticky: steering attached for live slots {live:?}"),
            Ok(false) => {}
            Err(e) => tracing::error!(
                "cannot attach the steering program ({e}); new connections follow the \
                 previous one"
            ),
        }
        let drain: Vec<u32> = if self.closed || live.is_empty() {
            Vec::new()
        } else {
            let starting: BTreeSet<u32> = self.starting.values().copied().collect();
            self.served
                .iter()
                .copied()
                .filter(|s| !live.contains(s) && !starting.contains(s))
                .collect()
        };
        let ended: Vec<u32> = self
            .drains
            .keys()
            .copied()
            .filter(|slot| !drain.contains(slot))
            .collect();
        for slot in ended {
            self.stop_drain(slot);
        }
        for slot in drain {
            if self.drains.contains_key(&slot) {
                continue;
            }
            let Some(fd) = self.group.socket(slot) else {
                continue;
            };
            let was_nonblocking = socket2::SockRef::from(fd).nonblocking().unwrap_or(false);
            match fd.as_fd().try_clone_to_owned() {
                Ok(copy) => {
                    let listener = std::net::TcpListener::from(copy);
                    let task = spawn_local(accept_loop(listener, self.handoff.clone(), None));
                    self.drains.insert(
                        slot,
                        Drain {
                            task,
                            was_nonblocking,
                        },
                    );
                }
                Err(e) => tracing::error!(
                    "cannot take the connections queued for app worker {slot}, which is down \
                     ({e}); they wait for its restart"
                ),
            }
        }
    }
}
