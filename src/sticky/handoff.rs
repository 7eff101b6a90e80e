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
use crate::master::metrics::Metrics;
use crate::master::worker::WorkerId;
use crate::sticky::affinity;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

pub use crate::protocol::actions::{ACK_ACTION, CONNECTION_ACTION};
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
    /// Bytes of a PROXY header the master itself read from the socket.
    proxy_bytes: u32,
}

impl Pending {
    /// A connection from `peer` to `local`.
    pub fn new(fd: OwnedFd, peer: SocketAddr, local: SocketAddr) -> Pending {
        Pending {
            fd: Rc::new(fd),
            peer,
            local,
            nacks: 0,
            proxy_bytes: 0,
        }
    }

    /// The master read `n` bytes of PROXY header from it before handing it over.
    pub fn with_proxy_bytes(mut self, n: usize) -> Pending {
        self.proxy_bytes = n as u32;
        self
    }

    /// Whether anyone but the master's PROXY reader took bytes from the socket: then it
    /// cannot go to another worker. When the kernel cannot say, it is taken as read, so a
    /// request is never served twice or cut in half.
    fn read_by_someone(&self) -> bool {
        crate::sys::socket::peer_bytes_consumed(self.fd.as_fd(), u64::from(self.proxy_bytes))
            .unwrap_or(true)
    }
}

/// One worker's side of the handoff: its channel and what it has not acknowledged.
struct WorkerQueue {
    slot: u32,
    outbox: Rc<Outbox>,
    /// Sent or queued, not yet acknowledged, in order.
    unacked: VecDeque<Pending>,
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
    /// Connections closed rather than moved, because their worker had read from them
    /// before it went down.
    pub consumed: u64,
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
    /// The worker taking each slot's new connections (index: slot id − 1); grows when
    /// the cluster scales up.
    slots: RefCell<Vec<Option<WorkerId>>>,
    /// Every worker that holds sockets or takes them, by id: the old and the new worker
    /// of one slot are apart.
    workers: RefCell<HashMap<WorkerId, WorkerQueue>>,
    /// Scratch for the hash: which slots can take a connection now.
    open: RefCell<Vec<bool>>,
    waiting: RefCell<VecDeque<Pending>>,
    line: RefCell<Vec<u8>>,
    stats: Cell<Stats>,
    metrics: Rc<Metrics>,
}

impl Handoff {
    /// A router for `workers` slots speaking `dialect` (already resolved: node or clutch).
    pub fn new(workers: usize, dialect: Dialect) -> Handoff {
        Handoff {
            dialect,
            node_message: None,
            slots: RefCell::new(vec![None; workers]),
            workers: RefCell::new(HashMap::new()),
            open: RefCell::new(vec![false; workers]),
            waiting: RefCell::new(VecDeque::new()),
            line: RefCell::new(Vec::with_capacity(256)),
            stats: Cell::new(Stats::default()),
            metrics: Rc::default(),
        }
    }

    /// Node dialect: send `message` (a plain string, as egg-cluster's
    /// `sticky-session:connection`) with each handle instead of the connection object.
    pub fn with_node_message(mut self, message: Option<&str>) -> Handoff {
        self.node_message = message.map(|m| serde_json::to_string(m).expect("a string serializes"));
        self
    }

    /// Counts handoffs into the master's metrics too.
    pub fn with_metrics(mut self, metrics: Rc<Metrics>) -> Handoff {
        self.metrics = metrics;
        self
    }

    /// The counters so far.
    #[cfg_attr(not(test), allow(dead_code))] // read by the control plane
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

    /// Worker `worker` of slot `slot` is ready and reads `outbox`: it takes the slot's new
    /// connections from now on, starting with those that waited for any slot.
    pub fn attach(&self, slot: u32, worker: WorkerId, outbox: Rc<Outbox>) {
        let Some(i) = (slot as usize).checked_sub(1) else {
            return;
        };
        {
            let mut slots = self.slots.borrow_mut();
            if slots.len() <= i {
                slots.resize(i + 1, None);
                self.open.borrow_mut().resize(i + 1, false);
            }
            slots[i] = Some(worker);
        }
        self.workers
            .borrow_mut()
            .entry(worker)
            .or_insert_with(|| WorkerQueue {
                slot,
                outbox,
                unacked: VecDeque::new(),
            });
        self.retry_waiting();
    }

    /// `worker` takes no new connections (it was told to stop, or its channel closed); what
    /// it was sent stays its own until it acknowledges it or is [`gone`](Self::gone).
    pub fn stop_sending(&self, worker: WorkerId) {
        let slot = self.workers.borrow().get(&worker).map(|q| q.slot);
        if let Some(slot) = slot {
            let mut slots = self.slots.borrow_mut();
            let i = slot as usize - 1;
            if slots[i] == Some(worker) {
                slots[i] = None;
            }
        }
    }

    /// `worker` exited: what it had not acknowledged goes to the other slots, unless
    /// someone already read from it (the request is gone with the worker: moving the
    /// socket would hand another worker a connection cut in the middle).
    pub fn gone(&self, worker: WorkerId) {
        self.stop_sending(worker);
        let Some(q) = self.workers.borrow_mut().remove(&worker) else {
            return;
        };
        if !q.unacked.is_empty() {
            tracing::debug!(
                "app worker {} left {} connection(s) unacknowledged; moving them",
                q.slot,
                q.unacked.len()
            );
        }
        for mut p in q.unacked {
            if p.read_by_someone() {
                self.count(|s| s.consumed += 1);
                continue;
            }
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
                let workers = self.workers.borrow();
                let mut open = self.open.borrow_mut();
                for (i, (o, w)) in open.iter_mut().zip(slots.iter()).enumerate() {
                    *o = w
                        .and_then(|w| workers.get(&w))
                        .is_some_and(|q| q.unacked.len() < MAX_IN_FLIGHT)
                        && !tried.contains(&i);
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

    /// Queues `p` on the channel of slot `i`'s worker; gives it back when the channel
    /// refuses it.
    fn send(&self, i: usize, p: Pending) -> Result<(), Pending> {
        let Some(worker) = self.slots.borrow()[i] else {
            return Err(p);
        };
        let Some(outbox) = self.workers.borrow().get(&worker).map(|q| q.outbox.clone()) else {
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
                if let Some(q) = self.workers.borrow_mut().get_mut(&worker) {
                    q.unacked.push_back(p);
                }
                self.count(|s| s.handed += 1);
                self.metrics.handed_off();
                Ok(())
            }
            Err(Refused::Closed) => {
                // The worker is going; its `gone` will move what it had not taken.
                self.stop_sending(worker);
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

    /// Runs `f` on `worker`'s queue.
    fn with_worker<R>(&self, worker: WorkerId, f: impl FnOnce(&mut WorkerQueue) -> R) -> Option<R> {
        self.workers.borrow_mut().get_mut(&worker).map(f)
    }

    /// A clutch worker took `n` sockets: the master's copies close.
    pub fn on_ack(&self, worker: WorkerId, n: usize) {
        if self.dialect == Dialect::Node {
            return;
        }
        let freed = self.with_worker(worker, |q| {
            let n = n.min(q.unacked.len());
            q.unacked.drain(..n);
            n > 0
        });
        if freed == Some(true) {
            self.retry_waiting_if_any();
        }
    }

    /// A Node worker took the handle in flight: the next line or handle goes.
    pub fn on_node_ack(&self, worker: WorkerId) {
        if self.dialect != Dialect::Node {
            return;
        }
        let done = self.with_worker(worker, |q| {
            q.unacked.pop_front().is_some().then(|| q.outbox.clone())
        });
        if let Some(Some(outbox)) = done {
            outbox.release();
            self.retry_waiting_if_any();
        }
    }

    /// A Node worker could not take the handle in flight: resend it, or give up after
    /// [`MAX_RETRANSMISSIONS`] as Node does.
    pub fn on_node_nack(&self, worker: WorkerId) {
        if self.dialect != Dialect::Node {
            return;
        }
        let Some(Some((mut p, outbox, slot))) = self.with_worker(worker, |q| {
            q.unacked.pop_front().map(|p| (p, q.outbox.clone(), q.slot))
        }) else {
            return;
        };
        p.nacks += 1;
        if p.nacks > MAX_RETRANSMISSIONS {
            tracing::warn!(
                "app worker {slot} refused a connection {MAX_RETRANSMISSIONS} times; closing it"
            );
            self.count(|s| s.dropped += 1);
            outbox.release();
            return;
        }
        let resent = {
            let mut line = self.line.borrow_mut();
            self.write_line(&mut line, &p);
            outbox.resend(&line, p.fd.clone())
        };
        match resent {
            Ok(()) => {
                self.with_worker(worker, |q| q.unacked.push_front(p));
            }
            Err(_) => self.route(p, &mut vec![slot as usize - 1]),
        }
    }

    fn retry_waiting_if_any(&self) {
        if !self.waiting.borrow().is_empty() {
            self.retry_waiting();
        }
    }

    /// Connections sent to the worker taking slot `id`'s connections and not yet
    /// acknowledged (for tests).
    #[cfg(test)]
    pub fn unacked(&self, id: u32) -> usize {
        let Some(Some(w)) = self.slots.borrow().get(id as usize - 1).copied() else {
            return 0;
        };
        self.workers.borrow().get(&w).map_or(0, |q| q.unacked.len())
    }
}

/// An IPv4-mapped IPv6 address shown as the IPv4 address it is.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::worker::WorkerId as W;
    use std::net::{TcpListener, TcpStream};

    /// A real accepted TCP socket (its client already gone), said to come from `peer`.
    fn conn(peer: &str) -> Pending {
        let (accepted, _client) = tcp_pair();
        Pending::new(
            OwnedFd::from(accepted),
            peer.parse().unwrap(),
            "127.0.0.1:7001".parse().unwrap(),
        )
    }

    fn tcp_pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        (l.accept().unwrap().0, client)
    }

    #[test]
    fn a_connection_its_worker_read_from_is_closed_not_moved() {
        use std::io::{Read, Write};
        let h = Handoff::new(2, Dialect::Clutch);
        let (a, b) = (Rc::new(Outbox::new()), Rc::new(Outbox::new()));
        h.attach(1, W(1), a);
        h.attach(2, W(2), b);
        let (accepted, mut client) = tcp_pair();
        let mut worker_side = accepted.try_clone().unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        // A client address that picks slot 1.
        let peer = (0..255)
            .map(|i| format!("10.0.0.{i}:1000"))
            .find(|p| {
                affinity::pick_slot(p.parse::<SocketAddr>().unwrap().ip(), &[true, true]) == Some(1)
            })
            .unwrap();
        h.dispatch(Pending::new(
            OwnedFd::from(accepted),
            peer.parse().unwrap(),
            "127.0.0.1:7001".parse().unwrap(),
        ));
        assert_eq!(h.unacked(1), 1);
        let mut byte = [0u8; 1];
        worker_side.read_exact(&mut byte).unwrap();
        h.gone(W(1));
        assert_eq!(h.stats().consumed, 1);
        assert_eq!(h.stats().rerouted, 0);
        assert_eq!(h.unacked(2), 0);
    }

    #[test]
    fn a_stopping_worker_gets_no_new_connections_but_keeps_what_it_has() {
        let h = Handoff::new(1, Dialect::Clutch);
        let (old, new) = (Rc::new(Outbox::new()), Rc::new(Outbox::new()));
        h.attach(1, W(1), old.clone());
        h.dispatch(conn("10.0.0.1:1"));
        h.stop_sending(W(1));
        h.dispatch(conn("10.0.0.2:1"));
        assert_eq!(
            Outbox::drain_for_test(&old).len(),
            1,
            "only the first went to the old worker"
        );
        h.attach(1, W(2), new.clone());
        assert_eq!(
            Outbox::drain_for_test(&new).len(),
            1,
            "the second waited for the new one"
        );
        h.on_ack(W(1), 1);
        assert_eq!(h.workers.borrow()[&W(1)].unacked.len(), 0);
    }

    #[test]
    fn connections_wait_for_a_slot_and_go_when_one_attaches() {
        let h = Handoff::new(2, Dialect::Clutch);
        h.dispatch(conn("10.0.0.1:1000"));
        assert_eq!(h.stats().handed, 0);
        let o = Rc::new(Outbox::new());
        h.attach(1, W(1), o.clone());
        assert_eq!(h.stats().handed, 1);
        assert!(o.queued() > 0);
    }

    #[test]
    fn unacknowledged_connections_move_when_their_slot_goes_down() {
        let h = Handoff::new(2, Dialect::Clutch);
        let (a, b) = (Rc::new(Outbox::new()), Rc::new(Outbox::new()));
        h.attach(1, W(1), a);
        h.attach(2, W(2), b.clone());
        for i in 0..20 {
            h.dispatch(conn(&format!("10.0.0.{i}:1000")));
        }
        let on1 = h.unacked(1);
        assert!(on1 > 0 && h.unacked(2) > 0);
        h.gone(W(1));
        assert_eq!(h.unacked(2), 20);
        assert_eq!(h.stats().rerouted as usize, on1);
        h.on_ack(W(2), 20);
        assert_eq!(h.unacked(2), 0);
    }

    #[test]
    fn acks_from_another_worker_or_dialect_are_ignored() {
        let h = Handoff::new(1, Dialect::Clutch);
        let current = Rc::new(Outbox::new());
        h.attach(1, W(1), current.clone());
        h.dispatch(conn("10.0.0.1:1"));
        h.on_ack(W(9), 1);
        h.on_node_ack(W(1));
        assert_eq!(h.unacked(1), 1);
        h.on_ack(W(1), 5);
        assert_eq!(h.unacked(1), 0);
    }

    #[test]
    fn an_early_ack_cannot_close_a_socket_still_queued() {
        let h = Handoff::new(1, Dialect::Clutch);
        let o = Rc::new(Outbox::new());
        h.attach(1, W(1), o.clone());
        let p = conn("10.0.0.1:1");
        let weak = Rc::downgrade(&p.fd);
        h.dispatch(p);
        h.on_ack(W(1), 1);
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
        h.attach(1, W(1), a);
        h.attach(2, W(2), b);
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
        h.attach(1, W(1), o.clone());
        h.dispatch(conn("10.0.0.1:1"));
        o.push(&[br#"{"action":"between"}"#]).unwrap();
        h.dispatch(conn("10.0.0.2:1"));
        let sent = Outbox::drain_for_test(&o);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["cmd"], "NODE_HANDLE");
        h.on_node_ack(W(1));
        let sent = Outbox::drain_for_test(&o);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(sent[0]["action"], "between");
        assert_eq!(sent[1]["msg"]["data"]["remoteAddress"], "10.0.0.2");
        h.on_node_nack(W(1));
        assert_eq!(
            Outbox::drain_for_test(&o).len(),
            1,
            "a NACK resends the handle"
        );
        assert_eq!(h.unacked(1), 1);
        h.on_node_ack(W(1));
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
            h.attach(i as u32 + 1, W(i as u64 + 1), o.clone());
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
        h.attach(1, W(1), o.clone());
        for i in 0..(MAX_IN_FLIGHT + 3) {
            h.dispatch(conn(&format!("10.9.{}.{}:1", i / 256, i % 256)));
        }
        assert_eq!(h.waiting.borrow().len(), 3);
        let first_waiting = h.waiting.borrow()[0].peer;
        h.on_node_ack(W(1));
        assert_eq!(h.waiting.borrow().len(), 2);
        assert_eq!(
            h.workers.borrow()[&W(1)].unacked.back().map(|p| p.peer),
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
