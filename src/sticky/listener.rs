//! The sticky master's accept loop: accept every connection, read its PROXY header when
//! asked, and give it to the [`Handoff`].
//!
//! Sockets are accepted with `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)` straight off an
//! `AsyncFd`, so the master never registers a handed-off socket with its own poller and
//! never reads a byte of it (but for a PROXY header, which it consumes exactly).

use crate::sticky::handoff::{Handoff, Pending};
use crate::sticky::proxy_protocol;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;

/// Accepts until the task is aborted. `proxy`: read a PROXY header within this time.
pub async fn accept_loop(listener: TcpListener, handoff: Rc<Handoff>, proxy: Option<Duration>) {
    let fixed_local = listener
        .local_addr()
        .ok()
        .filter(|a| !a.ip().is_unspecified());
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
                            tokio::task::spawn_local(with_proxy_header(
                                fd,
                                peer,
                                local,
                                timeout,
                                handoff.clone(),
                            ));
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

async fn with_proxy_header(
    fd: OwnedFd,
    peer: SocketAddr,
    local: SocketAddr,
    timeout: Duration,
    handoff: Rc<Handoff>,
) {
    let std = std::net::TcpStream::from(fd);
    let Ok(mut stream) = tokio::net::TcpStream::from_std(std) else {
        return;
    };
    match proxy_protocol::read_header(&mut stream, timeout).await {
        Ok(h) => {
            let (peer, local) = h.addresses.unwrap_or((peer, local));
            match stream.into_std() {
                Ok(std) => handoff.dispatch(Pending::new(OwnedFd::from(std), peer, local)),
                Err(e) => tracing::debug!("cannot hand over a connection from {peer}: {e}"),
            }
        }
        Err(e) => {
            let n = handoff.proxy_rejected();
            if n == 1 || n.is_power_of_two() {
                tracing::warn!(
                    "closed a connection from {peer} for its PROXY header: {e} ({n} so far; \
                     --proxy-protocol expects every connection to start with one)"
                );
            }
        }
    }
}
