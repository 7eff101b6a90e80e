//! The public port, bound by the master before any worker starts: one listening socket
//! shared by every app worker (systemd's `LISTEN_FDS` protocol), the sticky master's own
//! listener, or (reuseport) a bound, non-listening socket that reserves the port.

use crate::config::{ListenMode, Settings};
use crate::error::Error;
use socket2::{Domain, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// Backlog of the shared socket (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// Binds the port as `settings` ask.
pub fn bind(settings: &Settings) -> Result<PortPlan, Error> {
    let Some(port) = settings.port else {
        return Ok(PortPlan::None);
    };
    let host = &settings.host;
    Ok(match settings.listen {
        ListenMode::Shared => {
            let (fd, port) = bind_socket(host, port, false)?;
            PortPlan::Shared { fd, port }
        }
        ListenMode::Sticky => {
            if let Some(plan) = crate::sticky::mode::bind_steered(settings, port)? {
                return Ok(plan);
            }
            let (fd, port) = bind_socket(host, port, false)?;
            PortPlan::Sticky {
                listener: Some(std::net::TcpListener::from(fd)),
                port,
            }
        }
        ListenMode::ReusePort => {
            let (fd, port) = bind_socket(host, port, true)?;
            PortPlan::ReusePort {
                _reservation: fd,
                port,
            }
        }
    })
}

/// What to try when binding failed this way, as a parenthesis for the error message; empty
/// when there is nothing more useful to say than the error itself.
pub fn bind_hint(kind: std::io::ErrorKind) -> &'static str {
    use std::io::ErrorKind::*;
    match kind {
        AddrInUse => " (another process is using the port: stop it, or pick another --port)",
        PermissionDenied => {
            " (ports below 1024 need privileges: pick a higher --port, or grant \
             CAP_NET_BIND_SERVICE)"
        }
        AddrNotAvailable => {
            " (the --host address is not on this machine: use one of its addresses, or 0.0.0.0)"
        }
        _ => "",
    }
}

/// Binds `host:port` (port 0: any free one) and returns the socket and its real port.
/// With `reserve_only` the socket has SO_REUSEPORT and does not listen.
pub(crate) fn bind_socket(
    host: &str,
    port: u16,
    reserve_only: bool,
) -> Result<(OwnedFd, u16), Error> {
    let addr_text = format!("{host}:{port}");
    let listen_err = |e: std::io::Error| Error::Listen {
        addr: addr_text.clone(),
        source: Arc::new(e),
    };
    let ip: IpAddr = host
        .parse()
        .map_err(|_| crate::config::ConfigError::Value {
            key: "host".into(),
            message: format!("`{host}` is not an IP address"),
        })?;
    let addr = SocketAddr::new(ip, port);
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(listen_err)?;
    socket.set_reuse_address(true).map_err(listen_err)?;
    if reserve_only {
        socket.set_reuse_port(true).map_err(listen_err)?;
    }
    socket.bind(&addr.into()).map_err(listen_err)?;
    if !reserve_only {
        socket.listen(BACKLOG).map_err(listen_err)?;
    }
    let bound = socket
        .local_addr()
        .map_err(listen_err)?
        .as_socket()
        .map_or(port, |a| a.port());
    Ok((OwnedFd::from(socket), bound))
}

/// The public port, bound by the master before any worker starts.
pub enum PortPlan {
    /// No port.
    None,
    /// One listening socket every app worker inherits (`LISTEN_FDS`).
    Shared { fd: OwnedFd, port: u16 },
    /// The master accepts and hands connections over (taken by the accept task).
    Sticky {
        listener: Option<std::net::TcpListener>,
        port: u16,
    },
    /// Sticky, steered by the kernel: a listening socket per slot (slot k's worker inherits
    /// the k-th; see [`crate::sticky::group`]).
    Steered {
        /// Taken by the run loop.
        group: Option<crate::sticky::group::SocketGroup>,
        port: u16,
    },
    /// Workers bind the port with SO_REUSEPORT; the master's bound, non-listening socket
    /// reserves it (so port 0 can name a free port).
    ReusePort { _reservation: OwnedFd, port: u16 },
}

impl PortPlan {
    /// The port, whichever way it is served.
    pub fn port(&self) -> Option<u16> {
        match self {
            PortPlan::None => None,
            PortPlan::Shared { port, .. }
            | PortPlan::Sticky { port, .. }
            | PortPlan::Steered { port, .. }
            | PortPlan::ReusePort { port, .. } => Some(*port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    fn message(kind: ErrorKind) -> String {
        Error::Listen {
            addr: "127.0.0.1:80".into(),
            source: Arc::new(kind.into()),
        }
        .to_string()
    }

    #[test]
    fn the_hint_fits_the_bind_error() {
        assert!(message(ErrorKind::AddrInUse).contains("another process"));
        let denied = message(ErrorKind::PermissionDenied);
        assert!(denied.contains("below 1024"), "{denied}");
        assert!(!denied.contains("another process"), "{denied}");
        let absent = message(ErrorKind::AddrNotAvailable);
        assert!(
            absent.contains("--host address is not on this machine"),
            "{absent}"
        );
        let other = message(ErrorKind::InvalidInput);
        assert!(
            !other.contains('('),
            "no hint for an error it does not explain: {other}"
        );
    }
}
