//! The master's mirror of the kernel's `SO_REUSEPORT` group: one listening socket per app
//! slot, their positions in the group, and the steering program attached to it.
//!
//! The kernel indexes the group by **`listen()` order**. When a member leaves (its last
//! reference is closed, or anyone holding it, a worker included, calls `shutdown()`), the
//! kernel moves the last member into its place. So the master keeps every slot's socket for
//! its whole life (a slot that goes away is steered around, never closed), notices a member
//! that left (`SO_ACCEPTCONN` reads 0 on its own copy), mirrors the move, listens on it
//! again (it joins at the end) and attaches a program compiled for the new order.
//!
//! # Caveats
//! - Two members that leave between two checks leave the group in an order the master
//!   cannot see; the mirror assumes the lower position left first. Steering is then off for
//!   the moved sockets until the next change re-attaches.
//! - Any process of the same uid that holds a member socket can attach its own program
//!   (`SO_LOCK_FILTER` does not stop it): the steering is as trustworthy as the workers.

use crate::sticky::steering::{self, BUCKETS};
use crate::sys::reuseport;
use socket2::{Domain, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

/// Backlog of each slot's socket (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// The sockets of a kernel-steered sticky port.
pub struct SocketGroup {
    addr: SocketAddr,
    /// Bound, never listening, `SO_REUSEPORT`: holds the port number when the group was
    /// asked for port 0, so a member that leaves and listens again cannot lose it.
    _reservation: OwnedFd,
    /// Each slot's socket, by slot id − 1.
    sockets: Vec<OwnedFd>,
    /// The slot id at each position of the kernel's group.
    order: Vec<u32>,
    /// The bucket → position table of the program attached last.
    attached: Option<Vec<u32>>,
    /// The live slots and the order it was compiled for (the table is not computed again
    /// while they stay the same).
    steered_for: (Vec<u32>, Vec<u32>),
}

impl SocketGroup {
    /// Binds `slots` sockets on `addr` (port 0: a free one), all `SO_REUSEPORT`, and
    /// listens on them in slot order. No program is attached yet: see [`steer`](Self::steer).
    pub fn bind(addr: SocketAddr, slots: usize) -> io::Result<SocketGroup> {
        let reservation = new_socket(addr)?;
        reservation.bind(&addr.into())?;
        let port = reservation
            .local_addr()?
            .as_socket()
            .map_or(addr.port(), |a| a.port());
        let mut group = SocketGroup {
            addr: SocketAddr::new(addr.ip(), port),
            _reservation: reservation.into(),
            sockets: Vec::new(),
            order: Vec::new(),
            attached: None,
            steered_for: (Vec::new(), Vec::new()),
        };
        group.grow(slots)?;
        Ok(group)
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Slot `slot`'s socket, the one its workers inherit at fd 3.
    pub fn socket(&self, slot: u32) -> Option<&OwnedFd> {
        self.sockets.get((slot as usize).checked_sub(1)?)
    }

    /// How many slots have a socket.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether no slot has a socket.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// The slot ids in the kernel's order.
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    /// How many buckets the attached program sends to the socket at `position`.
    pub fn buckets_at(&self, position: usize) -> usize {
        self.attached
            .as_ref()
            .map_or(0, |t| t.iter().filter(|&&i| i as usize == position).count())
    }

    /// Makes sockets for slots up to `slots`; each new one listens, so it joins the group at
    /// the end and takes no connection until a program that names it is attached.
    pub fn grow(&mut self, slots: usize) -> io::Result<()> {
        while self.sockets.len() < slots {
            let socket = new_socket(self.addr)?;
            socket.bind(&self.addr.into())?;
            socket.listen(BACKLOG)?;
            self.sockets.push(socket.into());
            self.order.push(self.sockets.len() as u32);
        }
        Ok(())
    }

    /// Finds members that left the group (shut down by some holder), mirrors the kernel's
    /// move of the last member into each one's place, and listens on them again (they join
    /// at the end). Returns the slots that left.
    pub fn check_members(&mut self) -> Vec<u32> {
        let mut left = Vec::new();
        let mut pos = 0;
        while pos < self.order.len() {
            let slot = self.order[pos];
            let socket = &self.sockets[slot as usize - 1];
            if reuseport::is_listening(socket.as_fd()).unwrap_or(true) {
                pos += 1;
                continue;
            }
            self.order.swap_remove(pos);
            left.push(slot);
        }
        for &slot in &left {
            let socket = socket2::SockRef::from(&self.sockets[slot as usize - 1]);
            match socket.listen(BACKLOG) {
                Ok(()) => self.order.push(slot),
                Err(e) => tracing::error!(
                    "the listening socket of app worker {slot} was shut down and cannot listen \
                     again ({e}); its clients go to the other workers"
                ),
            }
        }
        left
    }

    /// Attaches the program that sends each bucket to its owner among `live` slots (all
    /// slots when none is live), unless the one attached already does exactly that.
    /// Returns whether it attached.
    pub fn steer(&mut self, live: &[u32]) -> io::Result<bool> {
        if self.attached.is_some() && self.steered_for.0 == live && self.steered_for.1 == self.order
        {
            return Ok(false);
        }
        let present: Vec<u32> = live
            .iter()
            .copied()
            .filter(|s| self.order.contains(s))
            .collect();
        let owners = if present.is_empty() {
            steering::table(&self.order)
        } else {
            steering::table(&present)
        };
        if owners.is_empty() {
            return Ok(false);
        }
        let index: Vec<u32> = owners
            .iter()
            .map(|slot| self.order.iter().position(|s| s == slot).unwrap_or(0) as u32)
            .collect();
        debug_assert_eq!(index.len(), BUCKETS);
        if self.attached.as_ref() == Some(&index) {
            self.steered_for = (live.to_vec(), self.order.clone());
            return Ok(false);
        }
        let program = steering::compile(&index);
        let first = &self.sockets[self.order[0] as usize - 1];
        reuseport::attach_cbpf(first.as_fd(), &program)?;
        self.attached = Some(index);
        self.steered_for = (live.to_vec(), self.order.clone());
        Ok(true)
    }
}

fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    Ok(socket)
}
