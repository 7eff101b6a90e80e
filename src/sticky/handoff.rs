//! Handing accepted connections to app workers: pick the slot by client address, send the
//! socket over the slot's channel, and keep the master's copy until the worker
//! acknowledges it, so that a connection whose worker died before taking it goes to the
//! next live slot instead of being lost.
//!
//! Two dialects. **clutch**: one `clutch:connection` line per socket; the worker library
//! answers `{"action":"clutch:ack","data":N}` for the sockets it took. **node**: Node's own
//! handle protocol, one `NODE_HANDLE` in flight at a time, answered by `NODE_HANDLE_ACK`
//! (or `NACK`: resent, at most [`MAX_RETRANSMISSIONS`] times, as Node does); every other
//! line to that worker waits behind an unacknowledged handle, in order (the outbox's gate).
//!
//! The socket is shared (`Rc<OwnedFd>`) between the outbox, until it is written, and the
//! slot's unacknowledged list, until the worker says it took it: an early or forged
//! acknowledgement can close neither before the kernel has it.
//!
//! A slot that is down, or has [`MAX_IN_FLIGHT`] sockets unacknowledged (a worker that
//! stopped reading), is skipped by the rendezvous hash ([`super::affinity`]); when no slot
//! can take a connection, it waits (up to [`MAX_WAITING`]) for one to return.

use crate::channel::{Outbox, Refused};
use crate::config::Dialect;
use crate::sticky::affinity;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;

/// The action of a handed-over connection.
pub const CONNECTION_ACTION: &str = "clutch:connection";
/// The action a clutch worker acknowledges handed-over sockets with.
pub const ACK_ACTION: &str = "clutch:ack";
/// Node gives up on a handle after this many NACKs.
pub const MAX_RETRANSMISSIONS: u8 = 3;
/// Connections held while no slot can take them; past it they are closed.
pub const MAX_WAITING: usize = 65_536;
/// Sockets one slot may hold unacknowledged before it is passed over.
pub const MAX_IN_FLIGHT: usize = 1024;

/// One accepted connection on its way to a worker.
#[derive(Debug)]
pub struct Pending {
    fd: Rc<OwnedFd>,
    /// The client (from the PROXY header when there is one).
    pub peer: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    nacks: u8,
}

impl Pending {
    /// A connection from `peer` to `local`.
    pub fn new(fd: OwnedFd, peer: SocketAddr, local: SocketAddr) -> Pending {
        Pending {
            fd: Rc::new(fd),
            peer,
            local,
            nacks: 0,
        }
    }
}

#[derive(Default)]
struct SlotQueue {
    outbox: Option<Rc<Outbox>>,
    /// Sent or queued, not yet acknowledged, in order.
    unacked: VecDeque<Pending>,
}

impl SlotQueue {
    fn can_take(&self) -> bool {
        self.outbox.is_some() && self.unacked.len() < MAX_IN_FLIGHT
    }
}

/// Counters, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Connections sent to a worker.
    pub handed: u64,
    /// Connections moved to another slot because theirs went down before acknowledging.
    pub rerouted: u64,
    /// Connections closed: none could take them in time, or Node refused them repeatedly.
    pub dropped: u64,
    /// Connections closed for a bad, missing or slow PROXY header.
    pub proxy_rejected: u64,
    /// Connections closed on arrival, their PROXY header unfinished, because
    /// `sticky::listener::MAX_HEADER_READS` others were waiting for theirs already.
    pub proxy_over_capacity: u64,
}

/// The master's connection router.
pub struct Handoff {
    dialect: Dialect,
    /// Node dialect: a JSON string sent as the handle's message instead of the
    /// `clutch:connection` object.
    node_message: Option<String>,
    slots: RefCell<Vec<SlotQueue>>,
    /// Scratch for the hash: which slots can take a connection now.
    open: RefCell<Vec<bool>>,
    waiting: RefCell<VecDeque<Pending>>,
    line: RefCell<Vec<u8>>,
    stats: Cell<Stats>,
}

impl Handoff {
    /// A router for `workers` slots speaking `dialect` (already resolved: node or clutch).
    pub fn new(workers: usize, dialect: Dialect) -> Handoff {
        Handoff {
            dialect,
            node_message: None,
            slots: RefCell::new((0..workers).map(|_| SlotQueue::default()).collect()),
            open: RefCell::new(vec![false; workers]),
            waiting: RefCell::new(VecDeque::new()),
            line: RefCell::new(Vec::with_capacity(256)),
            stats: Cell::new(Stats::default()),
        }
    }

    /// Node dialect: send `message` (a plain string, as egg-cluster's
    /// `sticky-session:connection`) with each handle instead of the connection object.
    pub fn with_node_message(mut self, message: Option<&str>) -> Handoff {
        self.node_message = message.map(|m| serde_json::to_string(m).expect("a string serializes"));
        self
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.stats.get()
    }

    fn count(&self, f: impl FnOnce(&mut Stats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Counts a connection closed for its PROXY header; returns the count so far.
    pub fn proxy_rejected(&self) -> u64 {
        self.count(|s| s.proxy_rejected += 1);
        self.stats.get().proxy_rejected
    }

    /// Counts a connection closed because too many PROXY headers were being waited on;
    /// returns the count so far.
    pub fn proxy_over_capacity(&self) -> u64 {
        self.count(|s| s.proxy_over_capacity += 1);
        self.stats.get().proxy_over_capacity
    }

    fn index(&self, id: u32) -> Option<usize> {
        let i = (id as usize).checked_sub(1)?;
        (i < self.slots.borrow().len()).then_some(i)
    }

    /// Slot `id` has a ready worker reading `outbox`: it takes connections from now on,
    /// starting with those that waited for any slot.
    pub fn attach(&self, id: u32, outbox: Rc<Outbox>) {
        let Some(i) = self.index(id) else { return };
        self.slots.borrow_mut()[i].outbox = Some(outbox);
        self.retry_waiting();
    }

    /// Slot `id` went down: what it had not acknowledged goes to the other slots.
    pub fn detach(&self, id: u32) {
        let Some(i) = self.index(id) else { return };
        let orphans: Vec<Pending> = {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[i];
            slot.outbox = None;
            slot.unacked.drain(..).collect()
        };
        if !orphans.is_empty() {
            tracing::debug!(
                "app worker {id} left {} connection(s) unacknowledged; moving them",
                orphans.len()
            );
        }
        for mut p in orphans {
            p.nacks = 0;
            self.count(|s| s.rerouted += 1);
            self.dispatch(p);
        }
    }

    /// Sends a connection to the slot its client address picks.
    pub fn dispatch(&self, p: Pending) {
        self.route(p, &mut Vec::new());
    }

    /// Tries the picked slot, then the next best, skipping those in `tried`; waits when
    /// none can take it.
    fn route(&self, p: Pending, tried: &mut Vec<usize>) {
        if let Err(p) = self.try_route(p, tried) {
            self.wait(p);
        }
    }

    /// As [`route`](Self::route), but gives the connection back when no slot can take it.
    fn try_route(&self, mut p: Pending, tried: &mut Vec<usize>) -> Result<(), Pending> {
        loop {
            let pick = {
                let slots = self.slots.borrow();
                let mut open = self.open.borrow_mut();
                for (i, (o, s)) in open.iter_mut().zip(slots.iter()).enumerate() {
                    *o = s.can_take() && !tried.contains(&i);
                }
                affinity::pick_slot(p.peer.ip(), &open)
            };
            let Some(id) = pick else {
                return Err(p);
            };
            let i = id as usize - 1;
            match self.send(i, p) {
                Ok(()) => return Ok(()),
                Err(back) => {
                    p = back;
                    tried.push(i);
                }
            }
        }
    }

    fn wait(&self, p: Pending) {
        let mut waiting = self.waiting.borrow_mut();
        if waiting.len() < MAX_WAITING {
            waiting.push_back(p);
            return;
        }
        drop(waiting);
        self.count(|s| s.dropped += 1);
        let dropped = self.stats.get().dropped;
        if dropped == 1 || dropped.is_power_of_two() {
            tracing::warn!(
                "no app worker can take connections and {MAX_WAITING} wait already: closed \
                 {dropped} connection(s) so far (are the app workers crashing or not reading \
                 their channel?)"
            );
        }
    }

    /// Connections that waited for any slot get another chance.
    /// Connections that waited for any slot get another chance, in order. Whether a slot
    /// can take one does not depend on the client, so the first that must wait again
    /// stops the round: an ack under a backlog costs the connections it lets through,
    /// not a rescan of the whole queue.
    fn retry_waiting(&self) {
        loop {
            let Some(p) = self.waiting.borrow_mut().pop_front() else {
                return;
            };
            if let Err(p) = self.try_route(p, &mut Vec::new()) {
                self.waiting.borrow_mut().push_front(p);
                return;
            }
        }
    }

    /// Queues `p` on slot `i`'s channel; gives it back when the channel refuses it.
    fn send(&self, i: usize, p: Pending) -> Result<(), Pending> {
        let Some(outbox) = self.slots.borrow()[i].outbox.clone() else {
            return Err(p);
        };
        let pushed = {
            let mut line = self.line.borrow_mut();
            self.write_line(&mut line, &p);
            match self.dialect {
                Dialect::Node => outbox.push_handle(&line, p.fd.clone()),
                _ => outbox.push_with_fd(&line, p.fd.clone()),
            }
        };
        match pushed {
            Ok(()) => {
                self.slots.borrow_mut()[i].unacked.push_back(p);
                self.count(|s| s.handed += 1);
                Ok(())
            }
            Err(Refused::Closed) => {
                // The worker is going; its detach will move what it had not taken.
                self.slots.borrow_mut()[i].outbox = None;
                Err(p)
            }
            Err(Refused::Full(_)) => Err(p),
        }
    }

    fn write_line(&self, line: &mut Vec<u8>, p: &Pending) {
        line.clear();
        if self.dialect == Dialect::Node {
            line.extend_from_slice(br#"{"cmd":"NODE_HANDLE","type":"net.Socket","msg":"#);
            if let Some(m) = &self.node_message {
                line.extend_from_slice(m.as_bytes());
                line.extend_from_slice(b"}\n");
                return;
            }
        }
        let peer = canonical(p.peer);
        let local = canonical(p.local);
        let _ = write!(
            line,
            r#"{{"action":"{CONNECTION_ACTION}","data":{{"remoteAddress":"{}","remotePort":{},"localAddress":"{}","localPort":{}}}}}"#,
            peer.ip(),
            peer.port(),
            local.ip(),
            local.port()
        );
        if self.dialect == Dialect::Node {
            line.push(b'}');
        }
        line.push(b'\n');
    }

    /// Runs `f` on slot `id` if `from` is its current outbox: an answer from a channel
    /// the slot no longer uses (a dead worker's, still open) must not touch the new one.
    fn with_slot<R>(
        &self,
        id: u32,
        from: &Rc<Outbox>,
        f: impl FnOnce(&mut SlotQueue) -> R,
    ) -> Option<R> {
        let i = self.index(id)?;
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[i];
        slot.outbox.as_ref().filter(|o| Rc::ptr_eq(o, from))?;
        Some(f(slot))
    }

    /// A clutch worker in slot `id` took `n` sockets: the master's copies close.
    pub fn on_ack(&self, id: u32, n: usize, from: &Rc<Outbox>) {
        if self.dialect == Dialect::Node {
            return;
        }
        let freed = self.with_slot(id, from, |slot| {
            let n = n.min(slot.unacked.len());
            slot.unacked.drain(..n);
            n > 0
        });
        if freed == Some(true) {
            self.retry_waiting_if_any();
        }
    }

    /// A Node worker in slot `id` took the handle in flight: the next line or handle goes.
    pub fn on_node_ack(&self, id: u32, from: &Rc<Outbox>) {
        if self.dialect != Dialect::Node {
            return;
        }
        let done = self.with_slot(id, from, |slot| slot.unacked.pop_front().is_some());
        if done == Some(true) {
            from.release();
            self.retry_waiting_if_any();
        }
    }

    /// A Node worker in slot `id` could not take the handle in flight: resend it, or give
    /// up after [`MAX_RETRANSMISSIONS`] as Node does.
    pub fn on_node_nack(&self, id: u32, from: &Rc<Outbox>) {
        if self.dialect != Dialect::Node {
            return;
        }
        let Some(Some(mut p)) = self.with_slot(id, from, |slot| slot.unacked.pop_front()) else {
            return;
        };
        p.nacks += 1;
        if p.nacks > MAX_RETRANSMISSIONS {
            tracing::warn!(
                "app worker {id} refused a connection {MAX_RETRANSMISSIONS} times; closing it"
            );
            self.count(|s| s.dropped += 1);
            from.release();
            return;
        }
        let resent = {
            let mut line = self.line.borrow_mut();
            self.write_line(&mut line, &p);
            from.resend(&line, p.fd.clone())
        };
        match resent {
            Ok(()) => {
                if let Some(i) = self.index(id) {
                    self.slots.borrow_mut()[i].unacked.push_front(p);
                }
            }
            Err(_) => self.route(p, &mut self.index(id).into_iter().collect()),
        }
    }

    fn retry_waiting_if_any(&self) {
        if !self.waiting.borrow().is_empty() {
            self.retry_waiting();
        }
    }

    /// Connections sent to slot `id` and not yet acknowledged (for tests).
    pub fn unacked(&self, id: u32) -> usize {
        self.index(id)
            .map_or(0, |i| self.slots.borrow()[i].unacked.len())
    }
}

/// An IPv4-mapped IPv6 address shown as the IPv4 address it is.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn conn(peer: &str) -> Pending {
        // Any open fd will do for routing; a listener is the cheapest to make.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        Pending::new(
            OwnedFd::from(l),
            peer.parse().unwrap(),
            "127.0.0.1:7001".parse().unwrap(),
        )
    }

    #[test]
    fn connections_wait_for_a_slot_and_go_when_one_attaches() {
        let h = Handoff::new(2, Dialect::Clutch);
        h.dispatch(conn("10.0.0.1:1000"));
        assert_eq!(h.stats().handed, 0);
        let o = Rc::new(Outbox::new());
        h.attach(1, o.clone());
        assert_eq!(h.stats().handed, 1);
        assert!(o.queued() > 0);
    }

    #[test]
    fn unacknowledged_connections_move_when_their_slot_goes_down() {
        let h = Handoff::new(2, Dialect::Clutch);
        let (a, b) = (Rc::new(Outbox::new()), Rc::new(Outbox::new()));
        h.attach(1, a);
        h.attach(2, b.clone());
        for i in 0..20 {
            h.dispatch(conn(&format!("10.0.0.{i}:1000")));
        }
        let on1 = h.unacked(1);
        assert!(on1 > 0 && h.unacked(2) > 0);
        h.detach(1);
        assert_eq!(h.unacked(2), 20);
        assert_eq!(h.stats().rerouted as usize, on1);
        h.on_ack(2, 20, &b);
        assert_eq!(h.unacked(2), 0);
    }

    #[test]
    fn acks_from_another_channel_or_dialect_are_ignored() {
        let h = Handoff::new(1, Dialect::Clutch);
        let (current, stale) = (Rc::new(Outbox::new()), Rc::new(Outbox::new()));
        h.attach(1, current.clone());
        h.dispatch(conn("10.0.0.1:1"));
        h.on_ack(1, 1, &stale);
        h.on_node_ack(1, &current);
        h.on_ack(0, 1, &current);
        assert_eq!(h.unacked(1), 1);
        h.on_ack(1, 5, &current);
        assert_eq!(h.unacked(1), 0);
    }

    #[test]
    fn an_early_ack_cannot_close_a_socket_still_queued() {
        let h = Handoff::new(1, Dialect::Clutch);
        let o = Rc::new(Outbox::new());
        h.attach(1, o.clone());
        let p = conn("10.0.0.1:1");
        let weak = Rc::downgrade(&p.fd);
        h.dispatch(p);
        h.on_ack(1, 1, &o);
        assert!(
            weak.upgrade().is_some(),
            "the outbox still holds the socket"
        );
        o.close();
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn a_slot_full_of_unacknowledged_sockets_is_passed_over() {
        let h = Handoff::new(2, Dialect::Clutch);
        let (a, b) = (Rc::new(Outbox::new()), Rc::new(Outbox::new()));
        h.attach(1, a);
        h.attach(2, b);
        for i in 0..(3 * MAX_IN_FLIGHT) {
            h.dispatch(conn(&format!("10.{}.{}.1:1", i / 256, i % 256)));
        }
        assert_eq!(h.unacked(1), MAX_IN_FLIGHT);
        assert_eq!(h.unacked(2), MAX_IN_FLIGHT);
        assert_eq!(h.waiting.borrow().len(), MAX_IN_FLIGHT);
    }

    #[test]
    fn node_dialect_keeps_one_handle_in_flight_and_lines_in_order() {
        let h = Handoff::new(1, Dialect::Node);
        let o = Rc::new(Outbox::new());
        h.attach(1, o.clone());
        h.dispatch(conn("10.0.0.1:1"));
        o.push(&[br#"{"action":"between"}"#]).unwrap();
        h.dispatch(conn("10.0.0.2:1"));
        let sent = Outbox::drain_for_test(&o);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["cmd"], "NODE_HANDLE");
        h.on_node_ack(1, &o);
        let sent = Outbox::drain_for_test(&o);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(sent[0]["action"], "between");
        assert_eq!(sent[1]["msg"]["data"]["remoteAddress"], "10.0.0.2");
        h.on_node_nack(1, &o);
        assert_eq!(
            Outbox::drain_for_test(&o).len(),
            1,
            "a NACK resends the handle"
        );
        assert_eq!(h.unacked(1), 1);
        h.on_node_ack(1, &o);
        assert_eq!(h.unacked(1), 0);
        o.push(&[br#"{"action":"after"}"#]).unwrap();
        assert_eq!(
            Outbox::drain_for_test(&o)[0]["action"],
            "after",
            "the gate is lifted"
        );
    }

    #[test]
    fn clutch_line_starts_as_the_worker_library_expects() {
        let h = Handoff::new(1, Dialect::Clutch);
        let mut line = Vec::new();
        h.write_line(&mut line, &conn("10.0.0.1:1"));
        assert!(line.starts_with(br#"{"action":"clutch:connection","data":"#));
    }

    #[test]
    fn closed_channels_are_skipped_without_looping() {
        let h = Handoff::new(3, Dialect::Clutch);
        let outboxes: Vec<_> = (0..3).map(|_| Rc::new(Outbox::new())).collect();
        for (i, o) in outboxes.iter().enumerate() {
            h.attach(i as u32 + 1, o.clone());
        }
        outboxes[0].close();
        outboxes[1].close();
        for i in 0..50 {
            h.dispatch(conn(&format!("10.0.1.{i}:1")));
        }
        assert_eq!(h.unacked(3), 50);
        outboxes[2].close();
        h.dispatch(conn("10.0.2.1:1"));
        assert_eq!(
            h.waiting.borrow().len(),
            1,
            "with every channel closed, it waits"
        );
    }

    #[test]
    fn a_backlog_drains_in_order_as_acks_free_room() {
        let h = Handoff::new(1, Dialect::Node);
        let o = Rc::new(Outbox::new());
        h.attach(1, o.clone());
        for i in 0..(MAX_IN_FLIGHT + 3) {
            h.dispatch(conn(&format!("10.9.{}.{}:1", i / 256, i % 256)));
        }
        assert_eq!(h.waiting.borrow().len(), 3);
        let first_waiting = h.waiting.borrow()[0].peer;
        h.on_node_ack(1, &o);
        assert_eq!(h.waiting.borrow().len(), 2);
        assert_eq!(
            h.slots.borrow()[0].unacked.back().map(|p| p.peer),
            Some(first_waiting)
        );
    }

    #[test]
    fn node_message_can_be_egg_clusters_string() {
        let h = Handoff::new(1, Dialect::Node).with_node_message(Some("sticky-session:connection"));
        let mut line = Vec::new();
        h.write_line(&mut line, &conn("10.0.0.1:1"));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["msg"], "sticky-session:connection");
    }

    #[test]
    fn node_handle_line_wraps_the_connection_message() {
        let h = Handoff::new(1, Dialect::Node);
        let mut line = Vec::new();
        h.write_line(&mut line, &conn("[::ffff:10.1.2.3]:4000"));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["cmd"], "NODE_HANDLE");
        assert_eq!(v["type"], "net.Socket");
        assert_eq!(v["msg"]["action"], CONNECTION_ACTION);
        assert_eq!(v["msg"]["data"]["remoteAddress"], "10.1.2.3");
        assert_eq!(v["msg"]["data"]["remotePort"], 4000);
    }
}
