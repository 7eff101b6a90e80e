//! The public port when the master owns it: one listening socket, bound once and shared
//! by every app worker (systemd's `LISTEN_FDS` protocol).

use crate::error::Error;
use socket2::{Domain, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// Backlog of the shared socket (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// Binds `host:port` (port 0: any free one) and returns the socket and its real port.
pub fn bind_shared(host: &str, port: u16) -> Result<(OwnedFd, u16), Error> {
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
    socket.bind(&addr.into()).map_err(listen_err)?;
    socket.listen(BACKLOG).map_err(listen_err)?;
    let bound = socket
        .local_addr()
        .map_err(listen_err)?
        .as_socket()
        .map_or(port, |a| a.port());
    Ok((OwnedFd::from(socket), bound))
}
