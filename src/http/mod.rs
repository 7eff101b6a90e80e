//! The HTTP endpoint (`--http ADDR`): `/metrics` (Prometheus), `/livez` and `/readyz`.
//!
//! It is served on the master's thread, by one task on its `LocalSet` (hyper's HTTP/1
//! server, one task per connection), so it shares the run loop's `Rc` state without a lock.
//! Every path is mapped to its answer in one function, `server::route`: the web console's
//! paths go to [`crate::console`], the read-only ones to `server::respond`. (hyper rather than axum: axum's handlers must be `Send`, and the state
//! read here is the run loop's `Rc`s.)
//!
//! **How a request reads the cluster.** Each request sends one [`Event`] to the run loop
//! and awaits its answer, a [`View`]: the core's phase and, per slot, its current worker
//! (ready, start time, restarts). Why an event rather than a snapshot the run loop
//! publishes on every change:
//! - it costs nothing while nobody asks: the run loop copies a few dozen small rows per
//!   scrape instead of on every worker transition, scraped or not;
//! - the answer is the core's state at one moment, in order with everything else the run
//!   loop handles: once it has handled SIGTERM (the stop begins by closing the listener),
//!   `/readyz` answers 503, with no flag of its own to keep in step;
//! - `/livez` means just that: the run loop answered within [`ASK_TIMEOUT`].
//!
//! The run loop does no formatting and no I/O for it: the counters ([`Metrics`]), the
//! monitor's samples (/proc figures taken every `--monitor-interval`, and what workers
//! pushed) and the reload statistics are read here, from their `Rc`s, and the text is
//! built here. A scrape never reads /proc for a worker; it reads `/proc/self` for the
//! master's own `process_*` figures.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections (more are closed at once), one request
//! per connection (no keep-alive), request heads of at most 8 KiB read within 5 s, a
//! connection closed after [`CONNECTION_LIMIT`] unless its answer is long-lived (the
//! console's event stream, a console command waiting to be done); only `GET` and `HEAD` on
//! the read-only paths (the console's own rules are in [`crate::console`]).
//!
//! [`Metrics`]: crate::master::metrics::Metrics
//! [`Event`]: crate::master::lifecycle::Event

mod exposition;
mod process;
mod pushed;
mod reloads;
mod server;
mod view;

pub use reloads::Reloads;
pub(crate) use server::serve;
pub(crate) use view::View;

use crate::config::ConfigError;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::time::Duration;

/// Connections served at once; past this a new one is closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a connection may live, whatever it does.
pub const CONNECTION_LIMIT: Duration = Duration::from_secs(10);
/// How long a request waits for the run loop's answer before `/livez` (and the others)
/// answer 503.
pub const ASK_TIMEOUT: Duration = Duration::from_millis(500);

/// The endpoint's socket, bound before any worker starts.
#[derive(Debug)]
pub struct Bound {
    pub(crate) listener: TcpListener,
    /// The address it is bound to (the real port when 0 was asked).
    pub addr: SocketAddr,
}

/// Reads `--http`'s HOST:PORT (a name is resolved; its first address is taken).
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let usage = "use HOST:PORT, as in 127.0.0.1:9100 or [::1]:9100";
    if !text.contains(':') {
        return Err(format!("`{text}` has no port; {usage}"));
    }
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("`{text}` resolves to no address; {usage}")),
        Err(e) => Err(format!("`{text}` is not an address ({e}); {usage}")),
    }
}

/// Binds `--http`'s address: an address that cannot be bound is a start error naming it.
pub fn bind(text: &str) -> Result<Bound, ConfigError> {
    let refuse = |message: String| ConfigError::Value {
        key: "--http".into(),
        message,
    };
    let addr = parse_addr(text).map_err(refuse)?;
    let listener = TcpListener::bind(addr).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (another process is using the port: stop it, or pick another --http port)"
            }
            std::io::ErrorKind::PermissionDenied => {
                " (ports below 1024 need privileges: pick a higher port)"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                " (the address is not on this machine: use one of its addresses)"
            }
            _ => "",
        };
        refuse(format!("cannot listen on {text}: {e}{hint}"))
    })?;
    let fail = |e: std::io::Error| refuse(format!("cannot set up the socket on {text}: {e}"));
    listener.set_nonblocking(true).map_err(fail)?;
    let addr = listener.local_addr().map_err(fail)?;
    Ok(Bound { listener, addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_mistakes_are_explained() {
        assert_eq!(
            parse_addr("127.0.0.1:9100").unwrap(),
            "127.0.0.1:9100".parse().unwrap()
        );
        assert!(parse_addr("[::1]:0").is_ok());
        assert!(parse_addr("localhost:0").is_ok());
        assert!(parse_addr("9100").unwrap_err().contains("no port"));
        assert!(parse_addr("nope:x").unwrap_err().contains("HOST:PORT"));
    }

    #[test]
    fn a_taken_address_is_refused_naming_the_flag_and_the_address() {
        let first = bind("127.0.0.1:0").unwrap();
        let text = first.addr.to_string();
        let e = bind(&text).unwrap_err().to_string();
        assert!(e.starts_with("--http: ") && e.contains(&text), "{e}");
    }
}
