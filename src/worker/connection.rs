//! A connection handed over by a sticky master, with the client's address.

use std::net::SocketAddr;

/// An accepted TCP connection the master passed to this worker.
#[derive(Debug)]
pub struct Connection {
    /// The socket, ready to read the client's first bytes.
    pub stream: tokio::net::TcpStream,
    /// The client (from a PROXY header when the master reads one).
    pub remote: Option<SocketAddr>,
    /// The address the client connected to.
    pub local: Option<SocketAddr>,
}
