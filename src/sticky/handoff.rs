//! Handing accepted connections to app workers: pick the slot by client address, send the
//! socket over the slot's channel, and keep the master's copy until the worker
//! acknowledges it, so that a connection whose worker died before taking it goes to the
//! next live slot instead of being lost.
//!
//! Two dialects. **clutch**: one `clutch:connection` line per socket; the worker library
//! answers `{"action":"clutch:ack","data":N}` for the N sockets it got in one read.
//! **node**: Node's own handle protocol, one `NODE_HANDLE` in flight at a time, answered by
//! `NODE_HANDLE_ACK` (or `NACK`: resent, at most [`MAX_RETRANSMISSIONS`] times, as Node
//! does); plain messages to that worker wait behind an unacknowledged handle.
//!
//! A slot that is down is skipped by the rendezvous hash ([`super::affinity`]); when no
//! slot is live, connections wait (up to [`MAX_WAITING`]) for the first one to return.

use crate::channel::{Outbox, Refused};
use crate::config::Dialect;
use crate::sticky::affinity;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

/// The action of a handed-over connection.
pub const CONNECTION_ACTION: &str = "clutch:connection";
/// The action a clutch worker acknowledges handed-over sockets with.
pub const ACK_ACTION: &str = "clutch:ack";
/// Node gives up on a handle after this many NACKs.
pub const MAX_RETRANSMISSIONS: u8 = 3;
/// Connections held while no slot is live; past it they are closed.
pub const MAX_WAITING: usize = 65_536;

/// One accepted connection on its way to a worker.
#[derive(Debug)]
pub struct Pending {
    pub fd: OwnedFd,
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
            fd,
            peer,
            local,
            nacks: 0,
        }
    }
}

#[derive(Default)]
struct Slot {
    outbox: Option<Rc<Outbox>>,
    /// Sent, not yet acknowledged (in order).
    unacked: VecDeque<Pending>,
    /// Node dialect: waiting for the handle in flight to be acknowledged.
    held: VecDeque<Pending>,
}

/// Counters, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Connections sent to a worker.
    pub handed: u64,
    /// Connections moved to another slot because theirs went down before acknowledging.
    pub rerouted: u64,
    /// Connections closed: no slot came back in time, or Node refused them repeatedly.
    pub dropped: u64,
    /// Connections closed for a bad, missing or slow PROXY header.
    pub proxy_rejected: u64,
}

/// The master's connection router.
pub struct Handoff {
    dialect: Dialect,
    /// Node dialect: a JSON string sent as the handle's message instead of the
    /// `clutch:connection` object.
    node_message: Option<String>,
    slots: RefCell<Vec<Slot>>,
    live: RefCell<Vec<bool>>,
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
            slots: RefCell::new((0..workers).map(|_| Slot::default()).collect()),
            live: RefCell::new(vec![false; workers]),
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

    /// Counts a connection closed for its PROXY header.
    pub fn proxy_rejected(&self) {
        self.count(|s| s.proxy_rejected += 1);
    }

    /// Slot `id` has a ready worker reading `outbox`: it takes connections from now on,
    /// starting with those that waited for any slot.
    pub fn attach(&self, id: u32, outbox: Rc<Outbox>) {
        let i = id as usize - 1;
        self.slots.borrow_mut()[i].outbox = Some(outbox);
        self.live.borrow_mut()[i] = true;
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        for p in waiting {
            self.dispatch(p);
        }
    }

    /// Slot `id` went down: what it had not acknowledged goes to the other slots.
    pub fn detach(&self, id: u32) {
        let i = id as usize - 1;
        self.live.borrow_mut()[i] = false;
        let orphans: Vec<Pending> = {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[i];
            slot.outbox = None;
            slot.unacked.drain(..).chain(slot.held.drain(..)).collect()
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
        let pick = affinity::pick_slot(p.peer.ip(), &self.live.borrow());
        match pick {
            Some(id) => self.send(id, p),
            None => {
                let mut waiting = self.waiting.borrow_mut();
                if waiting.len() < MAX_WAITING {
                    waiting.push_back(p);
                } else {
                    self.count(|s| s.dropped += 1);
                    tracing::warn!(
                        "no app worker is up and {MAX_WAITING} connections wait already; closing one"
                    );
                }
            }
        }
    }

    fn send(&self, id: u32, p: Pending) {
        let i = id as usize - 1;
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[i];
        let Some(outbox) = slot.outbox.clone() else {
            drop(slots);
            self.live.borrow_mut()[i] = false;
            return self.dispatch(p);
        };
        if self.dialect == Dialect::Node && !slot.unacked.is_empty() {
            slot.held.push_back(p);
            return;
        }
        let mut line = self.line.borrow_mut();
        self.write_line(&mut line, &p);
        match outbox.push_with_fd(&line, p.fd.as_raw_fd()) {
            Ok(()) => {
                if self.dialect == Dialect::Node {
                    outbox.gate();
                }
                slot.unacked.push_back(p);
                self.count(|s| s.handed += 1);
            }
            Err(Refused::Closed) | Err(Refused::Full(_)) => {
                drop(line);
                drop(slots);
                self.live.borrow_mut()[i] = false;
                self.dispatch(p);
            }
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

    /// A clutch worker in slot `id` took `n` sockets: the master's copies close.
    pub fn on_ack(&self, id: u32, n: usize) {
        let mut slots = self.slots.borrow_mut();
        let Some(slot) = slots.get_mut(id as usize - 1) else {
            return;
        };
        let n = n.min(slot.unacked.len());
        slot.unacked.drain(..n);
    }

    /// A Node worker in slot `id` took the handle in flight: send the next one, or let
    /// plain messages flow again.
    pub fn on_node_ack(&self, id: u32) {
        let next = {
            let mut slots = self.slots.borrow_mut();
            let Some(slot) = slots.get_mut(id as usize - 1) else {
                return;
            };
            slot.unacked.pop_front();
            match slot.held.pop_front() {
                Some(p) => Some(p),
                None => {
                    if let Some(o) = &slot.outbox {
                        o.ungate();
                    }
                    None
                }
            }
        };
        if let Some(p) = next {
            self.send(id, p);
        }
    }

    /// A Node worker in slot `id` could not take the handle in flight: resend it, or give
    /// up after [`MAX_RETRANSMISSIONS`] as Node does.
    pub fn on_node_nack(&self, id: u32) {
        let resend = {
            let mut slots = self.slots.borrow_mut();
            let Some(slot) = slots.get_mut(id as usize - 1) else {
                return;
            };
            slot.unacked.pop_front()
        };
        let Some(mut p) = resend else { return };
        p.nacks += 1;
        if p.nacks > MAX_RETRANSMISSIONS {
            tracing::warn!(
                "app worker {id} refused a connection {MAX_RETRANSMISSIONS} times; closing it"
            );
            self.count(|s| s.dropped += 1);
            return self.on_node_ack_after_drop(id);
        }
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[id as usize - 1];
        let Some(outbox) = slot.outbox.clone() else {
            return;
        };
        let mut line = self.line.borrow_mut();
        self.write_line(&mut line, &p);
        if outbox.push_with_fd(&line, p.fd.as_raw_fd()).is_ok() {
            slot.unacked.push_front(p);
        }
    }

    fn on_node_ack_after_drop(&self, id: u32) {
        let next = {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[id as usize - 1];
            let next = slot.held.pop_front();
            if next.is_none()
                && let Some(o) = &slot.outbox
            {
                o.ungate();
            }
            next
        };
        if let Some(p) = next {
            self.send(id, p);
        }
    }

    /// Connections sent to slot `id` and not yet acknowledged (for tests).
    pub fn unacked(&self, id: u32) -> usize {
        self.slots.borrow()[id as usize - 1].unacked.len()
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
        h.attach(2, b);
        for i in 0..20 {
            h.dispatch(conn(&format!("10.0.0.{i}:1000")));
        }
        let on1 = h.unacked(1);
        assert!(on1 > 0 && h.unacked(2) > 0);
        h.detach(1);
        assert_eq!(h.unacked(2), 20);
        assert_eq!(h.stats().rerouted as usize, on1);
        h.on_ack(2, 20);
        assert_eq!(h.unacked(2), 0);
    }

    #[test]
    fn node_dialect_keeps_one_handle_in_flight() {
        let h = Handoff::new(1, Dialect::Node);
        let o = Rc::new(Outbox::new());
        h.attach(1, o.clone());
        h.dispatch(conn("10.0.0.1:1"));
        h.dispatch(conn("10.0.0.2:1"));
        assert_eq!(h.stats().handed, 1);
        h.on_node_ack(1);
        assert_eq!(h.stats().handed, 2);
        h.on_node_nack(1);
        assert_eq!(h.unacked(1), 1);
        h.on_node_ack(1);
        assert_eq!(h.unacked(1), 0);
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
