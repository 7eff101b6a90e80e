//! The sticky master's accept loop: accept every connection, read its PROXY header when
//! asked, and give it to the [`Handoff`].
//!
//! Sockets are accepted with `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)` straight off an
//! `AsyncFd`, so the master never registers a handed-off socket with its own poller and
//! never reads a byte of it (but for a PROXY header, which it consumes exactly).
//!
//! With `--proxy-protocol`, the listener defers accepting a connection until its first
//! bytes arrive (TCP_DEFER_ACCEPT), and a connection whose whole header is there when it is
//! accepted is handed off at once. One whose header is still on its way is waited on (on
//! readiness, see [`HeaderRead`]), but at most [`MAX_HEADER_READS`] at a time: past that,
//! such a connection is closed and counted (`Stats::proxy_over_capacity`), so a flood of
//! idle connections cannot pin the master's fds (each waits up to `--proxy-timeout`) while
//! connections that bring their header are still served.

use crate::sticky::handoff::{Handoff, Pending};
use crate::sticky::proxy_protocol::{HeaderRead, ProxyError, ProxyHeader};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// With a PROXY header expected first, the kernel holds a connection until its first bytes
/// arrive (or about this long), so a load balancer's connection is accepted with its header
/// already there and needs no waiting (nor one of the [`MAX_HEADER_READS`] permits).
const DEFER_ACCEPT_SECS: u32 = 1;

/// Unfinished PROXY headers waited on at once; connections past this whose header is not
/// complete on arrival are closed.
pub const MAX_HEADER_READS: usize = 1024;

/// Accepts until the task is aborted. `proxy`: read a PROXY header within this time.
pub async fn accept_loop(listener: TcpListener, handoff: Rc<Handoff>, proxy: Option<Duration>) {
    let fixed_local = listener
        .local_addr()
        .ok()
        .filter(|a| !a.ip().is_unspecified());
    if proxy.is_some()
        && let Err(e) = crate::sys::socket::defer_accept(listener.as_fd(), DEFER_ACCEPT_SECS)
    {
        tracing::warn!(
            "cannot defer accepting until a connection's first bytes arrive (TCP_DEFER_ACCEPT): \
             {e}; connections accepted past {MAX_HEADER_READS} unfinished PROXY headers are \
             closed even if their header was on its way"
        );
    }
    if let Err(e) = listener.set_nonblocking(true) {
        tracing::error!("cannot use the sticky listener: {e}");
        return;
    }
    // SAFETY: the AsyncFd owns the listener, whose fd stays open and the same until it drops.
    let listener =
        match unsafe { AsyncFd::register_with_interest(listener, tokio::io::Interest::READABLE) } {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot use the sticky listener: {e}");
                return;
            }
        };
    let header_reads = Arc::new(Semaphore::new(MAX_HEADER_READS));
    let mut errors = 0u64;
    loop {
        let mut guard = match listener.readable().await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!("the sticky listener failed: {e}");
                return;
            }
        };
        loop {
            match crate::sys::socket::accept(listener.get_ref().as_raw_fd()) {
                Ok((fd, peer)) => {
                    let local = match fixed_local {
                        Some(l) => l,
                        None => match crate::sys::socket::local_addr(&fd) {
                            Ok(l) => l,
                            Err(_) => continue,
                        },
                    };
                    match proxy {
                        None => handoff.dispatch(Pending::new(fd, peer, local)),
                        Some(timeout) => {
                            take_proxy_header(fd, peer, local, timeout, &header_reads, &handoff)
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    guard.clear_ready();
                    break;
                }
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                Err(e) => {
                    // Out of fds (EMFILE) and the like: back off a little, say so once in a while.
                    errors += 1;
                    if errors == 1 || errors.is_power_of_two() {
                        let hint = if e.raw_os_error() == Some(libc::EMFILE) {
                            " (the master holds a socket per connection until a worker takes \
                             it: raise the open-file limit, ulimit -n)"
                        } else {
                            ""
                        };
                        tracing::warn!("accept failed ({errors} times so far): {e}{hint}");
                    }
                    drop(guard);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    break;
                }
            }
        }
    }
}

/// Hands `fd` off if its header is already whole; otherwise waits for the rest on a task of
/// its own if a permit is free, or closes it.
fn take_proxy_header(
    fd: OwnedFd,
    peer: SocketAddr,
    local: SocketAddr,
    timeout: Duration,
    header_reads: &Arc<Semaphore>,
    handoff: &Rc<Handoff>,
) {
    let mut read = HeaderRead::default();
    match read.advance(fd.as_fd()) {
        Ok(Some(header)) => dispatch(fd, header, peer, local, handoff),
        Err(e) => rejected(peer, &e, handoff),
        Ok(None) => match header_reads.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::task::spawn_local(wait_for_header(
                    fd,
                    read,
                    (peer, local),
                    timeout,
                    handoff.clone(),
                    permit,
                ));
            }
            Err(_) => {
                let n = handoff.proxy_over_capacity();
                if n == 1 || n.is_power_of_two() {
                    tracing::warn!(
                        "closed a connection from {peer}: {MAX_HEADER_READS} connections are \
                         waiting for the rest of their PROXY header already ({n} closed so \
                         far); a lower --proxy-timeout frees idle ones sooner"
                    );
                }
            }
        },
    }
}

async fn wait_for_header(
    fd: OwnedFd,
    read: HeaderRead,
    (peer, local): (SocketAddr, SocketAddr),
    timeout: Duration,
    handoff: Rc<Handoff>,
    _permit: OwnedSemaphorePermit,
) {
    let std = std::net::TcpStream::from(fd);
    let Ok(stream) = tokio::net::TcpStream::from_std(std) else {
        return;
    };
    match read.finish(&stream, timeout).await {
        Ok(header) => match stream.into_std() {
            Ok(std) => dispatch(OwnedFd::from(std), header, peer, local, &handoff),
            Err(e) => tracing::debug!("cannot hand over a connection from {peer}: {e}"),
        },
        Err(e) => rejected(peer, &e, &handoff),
    }
}

fn dispatch(
    fd: OwnedFd,
    header: ProxyHeader,
    peer: SocketAddr,
    local: SocketAddr,
    handoff: &Handoff,
) {
    let (peer, local) = header.addresses.unwrap_or((peer, local));
    handoff.dispatch(Pending::new(fd, peer, local).with_proxy_bytes(header.len));
}

fn rejected(peer: SocketAddr, e: &ProxyError, handoff: &Handoff) {
    let n = handoff.proxy_rejected();
    if n == 1 || n.is_power_of_two() {
        tracing::warn!(
            "closed a connection from {peer} for its PROXY header: {e} ({n} so far; \
             --proxy-protocol expects every connection to start with one)"
        );
    }
}
