//! One end of a channel in the master: an [`Outbox`] that queues lines (and the fds that
//! travel with them) for a writer task, and [`read_some`] to fill a [`LineBuffer`].
//!
//! Routing appends to the destination's outbox and wakes its writer; the writer sends as
//! much as the socket takes in one call, so a burst of messages costs one syscall per
//! socket-buffer's worth rather than one per message. An fd always goes with the first
//! byte of its line (`sendmsg` with `SCM_RIGHTS`), after every byte queued before it.
//!
//! Memory is bounded twice: each outbox refuses lines past [`HARD_CAP`], and every outbox
//! charges one shared [`Budget`] (by default [`Budget::global`], [`DEFAULT_BUDGET`] for the
//! whole process), so many workers that stop reading cannot add up to more than it. A
//! refused line is dropped and counted; the sender is not told.

use crate::protocol::codec::LineBuffer;
use crate::sys::fdpass;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::sync::Notify;

/// Past this many queued bytes, senders to this outbox are paused (see [`Outbox::wait_drained`]).
pub const HIGH_WATER: usize = 1 << 20;
const LOW_WATER: usize = 256 << 10;
/// Past this many queued bytes (a worker that never reads), new messages are dropped.
pub const HARD_CAP: usize = 64 << 20;
/// The default [`Budget`]: bytes queued in all outboxes of the process together.
pub const DEFAULT_BUDGET: usize = 256 << 20;
const SHRINK_ABOVE: usize = 1 << 20;
const SHRINK_TO: usize = 64 << 10;
/// Fd queues rarely hold more than a few; past this capacity an empty one is given back.
const FDS_SHRINK_ABOVE: usize = 1024;

/// Bytes queued across many outboxes, with a limit. Past the limit, an outbox that holds
/// [`LOW_WATER`] bytes or more refuses new lines: the workers that read their channel (and
/// so have short queues) still get theirs, and the ones that do not cannot make the master
/// grow past the limit plus one line each.
#[derive(Debug)]
pub struct Budget {
    limit: AtomicUsize,
    used: AtomicUsize,
    dropped: AtomicU64,
}

static GLOBAL: LazyLock<Arc<Budget>> = LazyLock::new(|| Arc::new(Budget::new(DEFAULT_BUDGET)));

impl Budget {
    /// A budget of `limit` bytes, nothing charged yet.
    pub const fn new(limit: usize) -> Budget {
        Budget {
            limit: AtomicUsize::new(limit),
            used: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// The process-wide budget that [`Outbox::new`] charges ([`DEFAULT_BUDGET`] until
    /// [`set_limit`](Self::set_limit) says otherwise).
    pub fn global() -> Arc<Budget> {
        GLOBAL.clone()
    }

    /// Changes the limit; lines already queued stay queued.
    pub fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Bytes queued now in the outboxes charging this budget.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Lines refused because this budget was spent, since it was made.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn admits(&self, len: usize) -> bool {
        self.used().saturating_add(len) <= self.limit()
    }
}

/// Lines waiting to be written to one channel.
#[derive(Debug)]
pub struct Outbox {
    inner: RefCell<Queue>,
    budget: Arc<Budget>,
    wake_writer: Notify,
    drained: Notify,
}

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox::new_with_budget(Budget::global())
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let charged = self.inner.get_mut().charged;
        self.budget.used.fetch_sub(charged, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct Queue {
    buf: Vec<u8>,
    head: usize,
    /// Offsets into `buf` where an fd must go out with the byte there, in order. The outbox
    /// shares ownership of each fd until it has sent it, so the fd number cannot be closed
    /// and reused while queued, whatever the handoff decides meanwhile.
    fds: VecDeque<(usize, Rc<OwnedFd>)>,
    /// While `gated` (a Node worker has a handle to acknowledge), every line waits here, in
    /// order, handles included; [`Outbox::release`] lets them go one handle at a time.
    held: Vec<u8>,
    held_fds: VecDeque<(usize, Rc<OwnedFd>)>,
    gated: bool,
    closed: bool,
    dropped: u64,
    /// Bytes charged to the budget: `queued() + held.len()` once settled.
    charged: usize,
}

impl Queue {
    fn queued(&self) -> usize {
        self.buf.len() - self.head
    }

    fn append_with_fd(&mut self, line: &[u8], fd: Rc<OwnedFd>) {
        self.make_room();
        let at = self.buf.len();
        self.buf.extend_from_slice(line);
        self.fds.push_back((at, fd));
    }

    fn make_room(&mut self) {
        if self.head > 0 && self.head * 2 >= self.buf.len() {
            self.buf.drain(..self.head);
            for (off, _) in &mut self.fds {
                *off -= self.head;
            }
            self.head = 0;
        }
        // A queue that never empties (a steady stream after a burst) would otherwise keep
        // the burst's capacity for good.
        if self.head == 0
            && self.buf.capacity() > SHRINK_ABOVE
            && self.buf.len() * 4 < self.buf.capacity()
        {
            self.buf.shrink_to((self.buf.len() * 2).max(SHRINK_TO));
        }
    }

    /// Gives back what a burst left allocated once the queue is empty.
    fn release_memory(&mut self) {
        let mut released = false;
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
            if self.buf.capacity() > SHRINK_ABOVE {
                // One burst (a 16 MiB message) must not pin its buffer for the worker's life.
                self.buf.shrink_to(SHRINK_TO);
                released = true;
            }
        }
        if self.held.is_empty() && self.held.capacity() > SHRINK_ABOVE {
            self.held.shrink_to(SHRINK_TO);
            released = true;
        }
        if released {
            crate::sys::memory::released_a_large_buffer();
        }
        if self.fds.is_empty() && self.fds.capacity() > FDS_SHRINK_ABOVE {
            self.fds.shrink_to_fit();
        }
        if self.held_fds.is_empty() && self.held_fds.capacity() > FDS_SHRINK_ABOVE {
            self.held_fds.shrink_to_fit();
        }
    }
}

/// Why a line was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The channel is closed.
    Closed,
    /// More than [`HARD_CAP`] bytes wait already, or the [`Budget`] is spent and this
    /// outbox is not nearly empty; carries how many lines it dropped so far.
    Full(u64),
}

impl Outbox {
    /// An empty outbox charging the process-wide [`Budget::global`].
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// An empty outbox charging `budget`.
    pub fn new_with_budget(budget: Arc<Budget>) -> Outbox {
        Outbox {
            inner: RefCell::default(),
            budget,
            wake_writer: Notify::new(),
            drained: Notify::new(),
        }
    }

    /// Queues one line made of `parts` and a newline (behind held lines while gated).
    pub fn push(&self, parts: &[&[u8]]) -> Result<(), Refused> {
        self.push_line(parts, false)
    }

    /// Queues a control line made of `parts` and a newline that must not wait for the
    /// handle in flight (Node exempts `NODE_HANDLE_ACK`/`NACK` from its own queue, so the
    /// master's answer to a handle a worker sent cannot wait behind the worker's answer to
    /// the master's handle).
    pub fn push_control(&self, parts: &[&[u8]]) -> Result<(), Refused> {
        self.push_line(parts, true)
    }

    fn push_line(&self, parts: &[&[u8]], control: bool) -> Result<(), Refused> {
        let len = parts.iter().map(|p| p.len()).sum::<usize>() + 1;
        let mut q = self.inner.borrow_mut();
        self.admit(&mut q, len)?;
        let was_empty = q.queued() == 0;
        let dest = if q.gated && !control {
            &mut q.held
        } else {
            &mut q.buf
        };
        for p in parts {
            dest.extend_from_slice(p);
        }
        dest.push(b'\n');
        self.settle(&mut q);
        drop(q);
        if was_empty {
            self.wake_writer.notify_one();
        }
        Ok(())
    }

    /// Queues `line` (which ends in a newline) with `fd` attached to its first byte (the
    /// clutch dialect: no gate).
    pub fn push_with_fd(&self, line: &[u8], fd: Rc<OwnedFd>) -> Result<(), Refused> {
        let mut q = self.inner.borrow_mut();
        self.admit(&mut q, line.len())?;
        q.append_with_fd(line, fd);
        self.settle(&mut q);
        drop(q);
        self.wake_writer.notify_one();
        Ok(())
    }

    /// Queues a Node handle: sent at once and the outbox gated if nothing is in flight,
    /// else held in order behind what waits already.
    pub fn push_handle(&self, line: &[u8], fd: Rc<OwnedFd>) -> Result<(), Refused> {
        let mut q = self.inner.borrow_mut();
        self.admit(&mut q, line.len())?;
        if q.gated {
            let at = q.held.len();
            q.held.extend_from_slice(line);
            q.held_fds.push_back((at, fd));
            self.settle(&mut q);
            return Ok(());
        }
        q.append_with_fd(line, fd);
        q.gated = true;
        self.settle(&mut q);
        drop(q);
        self.wake_writer.notify_one();
        Ok(())
    }

    /// The handle in flight was answered: let held lines go, up to and including the next
    /// held handle (which is then in flight), or all of them and lift the gate.
    pub fn release(&self) {
        let mut q = self.inner.borrow_mut();
        let q = &mut *q;
        match q.held_fds.pop_front() {
            Some((at, fd)) => {
                let end = memchr::memchr(b'\n', &q.held[at..]).map_or(q.held.len(), |i| at + i + 1);
                q.make_room();
                let base = q.buf.len();
                q.buf.extend_from_slice(&q.held[..end]);
                q.fds.push_back((base + at, fd));
                q.held.drain(..end);
                for (off, _) in &mut q.held_fds {
                    *off -= end;
                }
            }
            None => {
                q.buf.extend_from_slice(&q.held);
                q.held.clear();
                q.gated = false;
            }
        }
        q.release_memory();
        // Usually nothing was held behind the handle (one connection per ack): then the
        // writer has nothing new and is left asleep.
        if q.queued() > 0 {
            self.wake_writer.notify_one();
        }
    }

    /// Sends `line` with `fd` again, ahead of what is held (a Node NACK).
    pub fn resend(&self, line: &[u8], fd: Rc<OwnedFd>) -> Result<(), Refused> {
        let mut q = self.inner.borrow_mut();
        if q.closed {
            return Err(Refused::Closed);
        }
        q.append_with_fd(line, fd);
        self.settle(&mut q);
        drop(q);
        self.wake_writer.notify_one();
        Ok(())
    }

    /// Whether a line of `len` bytes may be queued; counts it as dropped if not.
    fn admit(&self, q: &mut Queue, len: usize) -> Result<(), Refused> {
        if q.closed {
            return Err(Refused::Closed);
        }
        let waiting = q.queued() + q.held.len();
        let over_budget = waiting >= LOW_WATER && !self.budget.admits(len);
        if waiting > HARD_CAP || over_budget {
            q.dropped += 1;
            if over_budget {
                self.budget.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return Err(Refused::Full(q.dropped));
        }
        Ok(())
    }

    /// Brings the budget's charge for this outbox in line with what it holds.
    fn settle(&self, q: &mut Queue) {
        let now = q.queued() + q.held.len();
        if now > q.charged {
            self.budget
                .used
                .fetch_add(now - q.charged, Ordering::Relaxed);
        } else {
            self.budget
                .used
                .fetch_sub(q.charged - now, Ordering::Relaxed);
        }
        q.charged = now;
    }

    /// Lines this outbox refused for lack of room (its cap or the budget).
    pub fn dropped(&self) -> u64 {
        self.inner.borrow().dropped
    }

    /// Bytes waiting.
    pub fn queued(&self) -> usize {
        self.inner.borrow().queued()
    }

    /// Resolves once the queue is back under the low-water mark (or closed).
    pub async fn wait_drained(&self) {
        loop {
            let notified = self.drained.notified();
            {
                let q = self.inner.borrow();
                if q.closed || q.queued() <= LOW_WATER {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Resolves once everything queued has been written (or the outbox closed).
    pub async fn flushed(&self) {
        loop {
            let notified = self.drained.notified();
            {
                let q = self.inner.borrow();
                if q.closed || (q.queued() == 0 && q.held.is_empty()) {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Refuses further lines, drops what is queued, and stops the writer.
    pub fn close(&self) {
        let mut q = self.inner.borrow_mut();
        q.closed = true;
        q.buf = Vec::new();
        q.held = Vec::new();
        q.head = 0;
        q.fds = VecDeque::new();
        q.held_fds = VecDeque::new();
        self.settle(&mut q);
        drop(q);
        self.wake_writer.notify_one();
        self.drained.notify_waiters();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.borrow().closed
    }

    /// Takes the lines queued (not those held), parsed, as a peer would read them (for tests
    /// of the routing above).
    #[cfg(test)]
    pub fn drain_for_test(&self) -> Vec<serde_json::Value> {
        let mut q = self.inner.borrow_mut();
        let out = q.buf[q.head..]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("queued lines are JSON"))
            .collect();
        q.buf.clear();
        q.head = 0;
        q.fds.clear();
        self.settle(&mut q);
        out
    }

    /// One non-blocking write of what is queued, up to the next fd boundary.
    fn write_some(&self, sock: RawFd) -> io::Result<usize> {
        let mut q = self.inner.borrow_mut();
        let q = &mut *q;
        let start = q.head;
        let (n, sent_fds) = match q.fds.front() {
            Some((at, _)) if *at == start => {
                // Consecutive sockets go out together: one sendmsg carries up to
                // MAX_FDS_PER_READ of them with the bytes of their lines; the receiver pairs
                // them with their lines in order.
                let n = q.fds.len().min(fdpass::MAX_FDS_PER_READ);
                let end = q.fds.get(n).map_or(q.buf.len(), |(next, _)| *next);
                let mut raw = [0 as RawFd; fdpass::MAX_FDS_PER_READ];
                for (slot, (_, fd)) in raw.iter_mut().zip(q.fds.iter()) {
                    *slot = fd.as_raw_fd();
                }
                (
                    fdpass::send_with_fds(sock, &q.buf[start..end], &raw[..n])?,
                    n,
                )
            }
            next => {
                let end = next.map_or(q.buf.len(), |(at, _)| *at);
                let bytes = &q.buf[start..end];
                // SAFETY: send on a socket we own, from a live buffer.
                let n = unsafe {
                    libc::send(sock, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL)
                };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                (n as usize, 0)
            }
        };
        q.fds.drain(..sent_fds);
        q.head += n;
        if q.head == q.buf.len() {
            q.release_memory();
        } else {
            q.make_room();
        }
        self.settle(q);
        Ok(n)
    }
}

/// Writes `outbox` to `stream` until the outbox is closed or the socket fails.
pub async fn write_loop(stream: &UnixStream, outbox: &Outbox) -> io::Result<()> {
    loop {
        let (queued, closed) = {
            let q = outbox.inner.borrow();
            (q.queued(), q.closed)
        };
        if closed {
            return Ok(());
        }
        if queued == 0 {
            outbox.wake_writer.notified().await;
            continue;
        }
        stream.writable().await?;
        match stream.try_io(Interest::WRITABLE, || outbox.write_some(stream.as_raw_fd())) {
            Ok(_) => {
                if outbox.queued() <= LOW_WATER {
                    outbox.drained.notify_waiters();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads once from `stream` into `lines`; fds that arrive are appended to `fds`.
/// `Ok(0)` is end of file.
pub async fn read_some(
    stream: &UnixStream,
    lines: &mut LineBuffer,
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    loop {
        stream.readable().await?;
        let mut drained = None;
        match stream.try_io(Interest::READABLE, || {
            let spare = lines.spare();
            let room = spare.len();
            let had_fds = fds.len();
            let n = fdpass::recv_with_fds(stream.as_raw_fd(), spare, fds)?;
            // A Unix stream read returns every byte queued, up to the buffer's size, unless
            // it stops at a message that carried fds. So a short read without fds left the
            // socket empty: answering WouldBlock makes tokio forget the readiness now, where
            // the next read would otherwise spend a recvmsg to learn it (EAGAIN). tokio's
            // own TcpStream reads do the same.
            if n > 0 && n < room && fds.len() == had_fds {
                drained = Some(n);
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        }) {
            Ok(n) => {
                lines.filled(n);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Some(n) = drained {
                    lines.filled(n);
                    return Ok(n);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream as StdStream;

    #[test]
    fn queued_fds_reach_the_peer_in_order_with_their_lines() {
        let (a, b) = StdStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let files: Vec<std::fs::File> = (0..20).map(|_| tempfile::tempfile().unwrap()).collect();
        let outbox = Outbox::new();
        outbox.push(&[b"{\"action\":\"plain\"}"]).unwrap();
        for f in &files {
            let fd = Rc::new(OwnedFd::from(f.try_clone().unwrap()));
            outbox.push_with_fd(b"{\"action\":\"fd\"}\n", fd).unwrap();
        }
        while outbox.queued() > 0 {
            outbox.write_some(a.as_raw_fd()).unwrap();
        }
        let mut lines = LineBuffer::new(1 << 20);
        let mut fds = Vec::new();
        let mut got = 0;
        while got < 21 {
            let n = fdpass::recv_with_fds(b.as_raw_fd(), lines.spare(), &mut fds).unwrap();
            lines.filled(n);
            while lines.next_line().unwrap().is_some() {
                got += 1;
            }
        }
        assert_eq!(fds.len(), 20);
        // Same open files, same order: compare inode numbers.
        use std::os::unix::fs::MetadataExt;
        for (fd, f) in fds.into_iter().zip(&files) {
            let got = std::fs::File::from(fd).metadata().unwrap().ino();
            assert_eq!(got, f.metadata().unwrap().ino());
        }
    }

    fn fd() -> Rc<OwnedFd> {
        Rc::new(OwnedFd::from(tempfile::tempfile().unwrap()))
    }

    /// Writes everything queued to a fresh socketpair and returns the lines the peer reads.
    fn sent_lines(outbox: &Outbox) -> Vec<String> {
        let (a, b) = StdStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        while outbox.queued() > 0 {
            outbox.write_some(a.as_raw_fd()).unwrap();
        }
        drop(a);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut &b, &mut text).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn a_control_line_does_not_wait_behind_the_handle_in_flight() {
        let outbox = Outbox::new_with_budget(Arc::new(Budget::new(1 << 20)));
        outbox
            .push_handle(b"{\"cmd\":\"NODE_HANDLE\"}\n", fd())
            .unwrap();
        outbox.push(&[b"{\"action\":\"held\"}"]).unwrap();
        outbox
            .push_control(&[b"{\"cmd\":\"NODE_HANDLE_ACK\"}"])
            .unwrap();
        assert_eq!(
            sent_lines(&outbox),
            [r#"{"cmd":"NODE_HANDLE"}"#, r#"{"cmd":"NODE_HANDLE_ACK"}"#],
            "the plain line waits for the worker's ACK; the master's own ACK does not"
        );
        outbox.release();
        assert_eq!(sent_lines(&outbox), [r#"{"action":"held"}"#]);
    }

    #[test]
    fn outboxes_past_a_shared_budget_refuse_lines_but_short_queues_still_get_theirs() {
        let budget = Arc::new(Budget::new(4 * LOW_WATER));
        let stuck = Outbox::new_with_budget(budget.clone());
        let reading = Outbox::new_with_budget(budget.clone());
        let line = vec![b'x'; LOW_WATER / 2];
        let mut refused = 0;
        for _ in 0..64 {
            match stuck.push(&[&line]) {
                Ok(()) => {}
                Err(Refused::Full(n)) => refused = n,
                Err(Refused::Closed) => unreachable!(),
            }
        }
        assert!(
            budget.used() <= budget.limit(),
            "{} > {}",
            budget.used(),
            budget.limit()
        );
        assert_eq!(refused, stuck.dropped());
        assert!(refused > 0);
        assert_eq!(budget.dropped(), refused);
        // A queue under the low-water mark is a reader keeping up: it is not starved.
        reading.push(&[&line]).unwrap();
        assert!(budget.used() > budget.limit());

        sent_lines(&reading);
        assert_eq!(budget.used(), stuck.queued());
        stuck.close();
        assert_eq!(budget.used(), 0);
        stuck.push(&[&line]).unwrap_err();
        reading.push(&[&line]).unwrap();
        drop(reading);
        assert_eq!(budget.used(), 0, "a dropped outbox gives its charge back");
    }

    #[test]
    fn an_outbox_gives_back_its_memory_once_a_burst_is_written() {
        let outbox = Outbox::new_with_budget(Arc::new(Budget::new(usize::MAX)));
        outbox
            .push_handle(b"{\"cmd\":\"NODE_HANDLE\"}\n", fd())
            .unwrap();
        let line = vec![b'x'; 1 << 20];
        for _ in 0..8 {
            outbox.push(&[&line]).unwrap();
            outbox
                .push_handle(b"{\"cmd\":\"NODE_HANDLE\"}\n", fd())
                .unwrap();
        }
        for _ in 0..2000 {
            outbox.push_with_fd(b"{}\n", fd()).unwrap();
        }
        let (a, b) = StdStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let mut sink = vec![0u8; 1 << 20];
        let mut fds = Vec::new();
        for _ in 0..9 {
            while outbox.queued() > 0 {
                let _ = outbox.write_some(a.as_raw_fd());
                while let Ok(n) = fdpass::recv_with_fds(b.as_raw_fd(), &mut sink, &mut fds) {
                    if n == 0 {
                        break;
                    }
                    fds.clear();
                }
            }
            outbox.release();
        }
        let q = outbox.inner.borrow();
        assert_eq!(q.queued() + q.held.len(), 0);
        assert!(q.buf.capacity() <= SHRINK_ABOVE, "{}", q.buf.capacity());
        assert!(q.held.capacity() <= SHRINK_ABOVE, "{}", q.held.capacity());
        assert!(q.fds.capacity() <= FDS_SHRINK_ABOVE, "{}", q.fds.capacity());
    }
}
