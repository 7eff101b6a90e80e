//! One end of a channel in the master: an [`Outbox`] that queues lines (and the fds that
//! travel with them) for a writer task, and [`read_some`] to fill a [`LineBuffer`].
//!
//! Routing appends to the destination's outbox and wakes its writer; the writer sends as
//! much as the socket takes in one call, so a burst of messages costs one syscall per
//! socket-buffer's worth rather than one per message. An fd always goes with the first
//! byte of its line (`sendmsg` with `SCM_RIGHTS`), after every byte queued before it.

use crate::protocol::codec::LineBuffer;
use crate::sys::fdpass;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::sync::Notify;

/// Past this many queued bytes, senders to this outbox are paused (see [`Outbox::wait_drained`]).
pub const HIGH_WATER: usize = 1 << 20;
const LOW_WATER: usize = 256 << 10;
/// Past this many queued bytes (a worker that never reads), new messages are dropped.
pub const HARD_CAP: usize = 64 << 20;
const SHRINK_ABOVE: usize = 1 << 20;
const SHRINK_TO: usize = 64 << 10;

/// Lines waiting to be written to one channel.
#[derive(Debug, Default)]
pub struct Outbox {
    inner: RefCell<Queue>,
    wake_writer: Notify,
    drained: Notify,
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
    }
}

/// Why a line was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The channel is closed.
    Closed,
    /// More than [`HARD_CAP`] bytes wait already; carries how many lines were dropped so far.
    Full(u64),
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Queues one line made of `parts` and a newline (behind held lines while gated).
    pub fn push(&self, parts: &[&[u8]]) -> Result<(), Refused> {
        let mut q = self.inner.borrow_mut();
        Self::admit(&mut q)?;
        let was_empty = q.queued() == 0;
        let dest = if q.gated { &mut q.held } else { &mut q.buf };
        for p in parts {
            dest.extend_from_slice(p);
        }
        dest.push(b'\n');
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
        Self::admit(&mut q)?;
        q.append_with_fd(line, fd);
        drop(q);
        self.wake_writer.notify_one();
        Ok(())
    }

    /// Queues a Node handle: sent at once and the outbox gated if nothing is in flight,
    /// else held in order behind what waits already.
    pub fn push_handle(&self, line: &[u8], fd: Rc<OwnedFd>) -> Result<(), Refused> {
        let mut q = self.inner.borrow_mut();
        Self::admit(&mut q)?;
        if q.gated {
            let at = q.held.len();
            q.held.extend_from_slice(line);
            q.held_fds.push_back((at, fd));
            return Ok(());
        }
        q.append_with_fd(line, fd);
        q.gated = true;
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
        self.wake_writer.notify_one();
    }

    /// Sends `line` with `fd` again, ahead of what is held (a Node NACK).
    pub fn resend(&self, line: &[u8], fd: Rc<OwnedFd>) -> Result<(), Refused> {
        let mut q = self.inner.borrow_mut();
        if q.closed {
            return Err(Refused::Closed);
        }
        q.append_with_fd(line, fd);
        drop(q);
        self.wake_writer.notify_one();
        Ok(())
    }

    fn admit(q: &mut Queue) -> Result<(), Refused> {
        if q.closed {
            return Err(Refused::Closed);
        }
        if q.queued() + q.held.len() > HARD_CAP {
            q.dropped += 1;
            return Err(Refused::Full(q.dropped));
        }
        Ok(())
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
        q.fds.clear();
        q.held_fds.clear();
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
            q.buf.clear();
            q.head = 0;
            if q.buf.capacity() > SHRINK_ABOVE {
                // One burst (a 16 MiB message) must not pin its buffer for the worker's life.
                q.buf.shrink_to(SHRINK_TO);
            }
        } else {
            q.make_room();
        }
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
        match stream.try_io(Interest::READABLE, || {
            fdpass::recv_with_fds(stream.as_raw_fd(), lines.spare(), fds)
        }) {
            Ok(n) => {
                lines.filled(n);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
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
}
