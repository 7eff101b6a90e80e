//! The web console (`--http-users FILE`, served at `/` on `--http`): Pomelo's
//! admin-console-web for clutch. A live page of the cluster (workers, CPU and memory
//! charts, the event stream) with restart / stop / start / scale / reload buttons for the
//! users whose role allows them. See docs/CONSOLE.md.
//!
//! **One command path.** The console is another client of the control plane: what it
//! shows comes from the same `list` and `watch` answers `clutch ctl` gets, and a button
//! sends the same [`Cmd`](crate::control::Cmd), parsed by the same code, as an
//! `Event::Control` to the run loop, with a [`Caller::web`](crate::control::Caller::web)
//! as who asks. So the one-at-a-time rule, the audit lines and the `ctl.command` events are
//! those of `clutch ctl`; only the role comes from the users file instead of the uid.
//!
//! **Deny by default.** No users file, no console (`/` says so, 404). Every page but the
//! login form and the static assets needs a session; every POST needs the session's CSRF
//! token in `X-CSRF-Token` and, when the browser sends one, an `Origin` equal to the
//! `Host`; the role is checked per command on the server. Passwords are only ever argon2
//! PHC hashes, checked off the master's thread; a failed login is answered after
//! [`FAILED_LOGIN_DELAY`] (a sleep on a task, not a blocked thread) and audit-logged.
//! Sessions are 256-bit random tokens in an `HttpOnly`, `SameSite=Strict` cookie
//! (`Secure` under TLS) with an idle and an absolute expiry ([`sessions`]).
//!
//! **TLS.** With the console on, an `--http` address that is not loopback is refused at
//! start unless `--http-tls-cert` and `--http-tls-key` are given ([`prepare`]).
//!
//! **Cost.** Nothing is done for the console unless a page is open: each open page's event
//! stream asks the run loop for `list` every [`TICK`] and forwards `watch` events.
//!
//! # Caveats
//! The CPU and memory charts start when the page is opened: the history is kept by the
//! page, not by the master. Sessions live in the master's memory: a restart of the master
//! logs everyone out.

mod assets;
pub mod password;
mod routes;
pub mod sessions;
mod stream;
pub mod tls;
pub mod users;

pub(crate) use routes::{Body, Console, respond, serves};
pub use users::WebUsers;

/// The console's users, replaced when a reload re-reads the users file.
pub type SharedUsers = std::sync::Arc<std::sync::RwLock<WebUsers>>;

use crate::config::{ConfigError, Settings};
use std::net::SocketAddr;
use std::time::Duration;

/// How long a failed login waits before its answer.
pub const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);
/// How often an open page's event stream refreshes the worker list.
pub const TICK: Duration = Duration::from_secs(2);

/// What `--http` serves besides its read-only paths, read before any worker starts.
pub struct Setup {
    /// The console's users; `None`: the console is off. Shared with the run loop, which
    /// re-reads the file on a reload.
    pub users: Option<SharedUsers>,
    /// Serve over TLS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field(
                "users",
                &self.users.as_ref().map(|u| u.read().map_or(0, |u| u.len())),
            )
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Reads the users file and the TLS files, and refuses a console that would be reachable
/// from the network in clear text.
pub fn prepare(
    settings: &Settings,
    http: Option<SocketAddr>,
) -> Result<Option<Setup>, ConfigError> {
    let refuse = |key: &str, message: String| ConfigError::Value {
        key: key.into(),
        message,
    };
    let Some(addr) = http else {
        if settings.http_users.is_some() || settings.http_tls_cert.is_some() {
            return Err(refuse(
                "--http-users",
                "the console and TLS are served on --http: give --http ADDR too".into(),
            ));
        }
        return Ok(None);
    };
    let users = settings
        .http_users
        .as_deref()
        .map(WebUsers::load)
        .transpose()?;
    if let (Some(u), Some(path)) = (&users, &settings.http_users)
        && u.is_empty()
    {
        return Err(refuse(
            "--http-users",
            format!(
                "{} lists no user: nobody could log in; add one (see `clutch passwd`) or \
                 leave --http-users out",
                path.display()
            ),
        ));
    }
    let tls = match (&settings.http_tls_cert, &settings.http_tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        (None, None) => None,
        (Some(_), None) => {
            return Err(refuse(
                "--http-tls-key",
                "--http-tls-cert needs its key: give --http-tls-key FILE".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(refuse(
                "--http-tls-cert",
                "--http-tls-key needs its certificate: give --http-tls-cert FILE".into(),
            ));
        }
    };
    if users.is_some() && tls.is_none() && !addr.ip().is_loopback() {
        return Err(refuse(
            "--http",
            format!(
                "the web console (--http-users) on {addr}, which is not a loopback address, \
                 needs TLS: give --http-tls-cert and --http-tls-key, or bind --http to \
                 127.0.0.1 (or [::1]) and reach it through an SSH tunnel or a TLS proxy"
            ),
        ));
    }
    let users = users.map(|u| std::sync::Arc::new(std::sync::RwLock::new(u)));
    Ok(Some(Setup { users, tls }))
}
