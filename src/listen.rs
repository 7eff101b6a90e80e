//! The public port, bound by the master before any worker starts: one listening socket
//! shared by every app worker (systemd's `LISTEN_FDS` protocol), the sticky master's own
//! listener, or (reuseport) a bound, non-listening socket that reserves the port.
//!
//! Socket activation: when the CLI's master was itself given a listening TCP socket by a
//! service manager (`LISTEN_FDS`, with `LISTEN_PID` naming this very process, as systemd
//! and `systemd-socket-activate` pass it), that socket is the public port instead of one
//! bound from `--port`: shared among the app workers, or accepted on by the sticky master.
//! The port and host are read from it. Workers get their own `LISTEN_FDS` from clutch;
//! the master's are never passed on (`master/spawn.rs` drops them).

use crate::config::{ListenMode, Settings};
use crate::error::Error;
use socket2::{Domain, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Backlog of the shared socket (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// The port as `settings` ask: the socket a service manager passed when there is one
/// (then `settings` take its port and address), else bound from `--port`.
pub fn bind_or_adopt(settings: &mut Settings, passed: Option<Passed>) -> Result<PortPlan, Error> {
    match passed {
        Some(passed) => adopt(settings, passed),
        None => bind(settings),
    }
}

/// Binds the port as `settings` ask.
pub fn bind(settings: &Settings) -> Result<PortPlan, Error> {
    let Some(port) = settings.port else {
        if settings.listen != ListenMode::Shared {
            // Settings::validate let it through for a passed socket this master did not take.
            return Err(crate::config::ConfigError::Value {
                key: mode_key(settings.listen).into(),
                message: "needs a port (--port)".into(),
            }
            .into());
        }
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

fn mode_key(mode: ListenMode) -> &'static str {
    match mode {
        ListenMode::Shared => "port",
        ListenMode::Sticky => "sticky",
        ListenMode::ReusePort => "reuseport",
    }
}

/// A listening TCP socket a service manager passed to this process.
#[derive(Debug)]
pub struct Passed {
    socket: Socket,
    addr: SocketAddr,
}

impl Passed {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The socket itself (close-on-exec, in the blocking mode the service manager left it
    /// in), for a listen mode that serves it its own way.
    pub fn into_socket(self) -> Socket {
        self.socket
    }
}

/// The fd passed sockets start at (`SD_LISTEN_FDS_START`).
const FIRST_PASSED_FD: i32 = 3;

/// Set once the passed socket is owned, so that fd 3 is never owned twice.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Whether a service manager passed sockets to this very process (`LISTEN_PID` is its
/// pid and `LISTEN_FDS` at least 1). Only reads the environment.
pub fn socket_passed() -> bool {
    let pid = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok());
    let fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<u32>().ok());
    pid == Some(std::process::id()) && fds.is_some_and(|n| n > 0) && !TAKEN.load(Ordering::Relaxed)
}

/// Takes the socket a service manager passed to this process, if it did: exactly one
/// listening TCP socket, at fd 3. Every listen mode gets its activated listener here, once
/// per process (a second call returns `None`). Every passed fd is made close-on-exec (`sd-notify` does
/// it), so no worker inherits the master's. An error names what was passed and what to
/// change.
pub fn take_passed() -> Result<Option<Passed>, Error> {
    if !socket_passed() {
        return Ok(None);
    }
    let bad = |message: String| -> Error {
        crate::config::ConfigError::Value {
            key: "LISTEN_FDS".into(),
            message,
        }
        .into()
    };
    let fds: Vec<(i32, String)> = sd_notify::listen_fds_with_names()
        .map_err(|e| {
            bad(format!(
                "cannot read the sockets the service manager passed: {e}"
            ))
        })?
        .collect();
    if fds.len() != 1 {
        let names: Vec<&str> = fds.iter().map(|(_, n)| n.as_str()).collect();
        return Err(bad(format!(
            "{} sockets were passed ({}); clutch serves one: give the socket unit a single \
             ListenStream=",
            fds.len(),
            names.join(", ")
        )));
    }
    let fd = fds[0].0;
    debug_assert_eq!(fd, FIRST_PASSED_FD);
    if TAKEN.swap(true, Ordering::Relaxed) {
        return Ok(None);
    }
    // SAFETY: fd 3 was passed to this process to own (LISTEN_PID is ours), and TAKEN makes
    // this the only owner.
    let socket = Socket::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let is_tcp_listener = socket.r#type().ok() == Some(Type::STREAM)
        && matches!(socket.domain(), Ok(d) if d == Domain::IPV4 || d == Domain::IPV6)
        && socket.is_listener().unwrap_or(false);
    let addr = socket.local_addr().ok().and_then(|a| a.as_socket());
    match (is_tcp_listener, addr) {
        (true, Some(addr)) => Ok(Some(Passed { socket, addr })),
        _ => Err(bad(format!(
            "the socket passed at fd {fd} is not a listening TCP socket; clutch serves TCP: \
             use ListenStream=PORT or ListenStream=ADDRESS:PORT in the socket unit"
        ))),
    }
}

/// Serves `passed` as `settings` ask, and records its port and address in them.
fn adopt(settings: &mut Settings, passed: Passed) -> Result<PortPlan, Error> {
    let addr = passed.addr();
    let socket = passed.into_socket();
    let port = addr.port();
    if let Some(asked) = settings.port
        && asked != 0
        && asked != port
    {
        tracing::warn!(
            "--port {asked} is not used: the service manager passed a socket on {addr}, \
             which clutch serves instead"
        );
    }
    settings.port = Some(port);
    settings.host = addr.ip().to_string();
    let in_use = |e: std::io::Error| Error::Listen {
        addr: addr.to_string(),
        source: Arc::new(e),
    };
    Ok(match settings.listen {
        ListenMode::Shared => {
            // Workers inherit it as if clutch had bound it: blocking, as a program that
            // calls accept() on an inherited socket expects (systemd passes it
            // non-blocking, and never accepts on it while the service runs).
            socket.set_nonblocking(false).map_err(in_use)?;
            tracing::info!("serving the socket the service manager passed, on {addr}");
            PortPlan::Shared {
                fd: OwnedFd::from(socket),
                port,
            }
        }
        ListenMode::Sticky => {
            // Kernel steering needs a socket per slot; the service manager passed one.
            tracing::info!(
                "sticky: master handoff (accepting on the socket the service manager passed, \
                 on {addr}; kernel steering needs a socket per slot)"
            );
            PortPlan::Sticky {
                listener: Some(std::net::TcpListener::from(socket)),
                port,
            }
        }
        ListenMode::ReusePort => {
            return Err(crate::config::ConfigError::Value {
                key: "reuseport".into(),
                message: format!(
                    "the service manager passed a listening socket on {addr} (LISTEN_FDS), \
                     and --reuseport workers would bind the port beside it, where it takes \
                     connections nobody accepts: serve it in shared mode (drop --reuseport) \
                     or with --sticky"
                ),
            }
            .into());
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
