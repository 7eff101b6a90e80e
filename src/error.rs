//! What can stop a cluster from starting or running, each naming the thing at fault.

use crate::config::ConfigError;
use crate::master::worker::WorkerName;
use crate::sys::process::Exit;
use std::io;
use std::sync::Arc;

/// A cluster could not start, or the master could not run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A worker ended before the cluster was ready.
    #[error("{worker} exited with {exit} before the cluster was ready")]
    ExitedEarly { worker: WorkerName, exit: Exit },
    /// A worker did not say it was ready in time.
    #[error(
        "{worker} not ready after {ms} ms (raise --ready-timeout, or check that it {waiting_for})"
    )]
    NotReady {
        worker: WorkerName,
        ms: u128,
        /// What readiness means under the worker's `--ready` mode.
        waiting_for: String,
    },
    /// A worker's command could not be started.
    #[error("cannot start {what} `{command}`: {source}")]
    Spawn {
        what: String,
        command: String,
        source: Arc<io::Error>,
    },
    /// The public port could not be bound.
    #[error("cannot listen on {addr}: {source}{}", crate::listen::bind_hint(.source.kind()))]
    Listen {
        addr: String,
        source: Arc<io::Error>,
    },
    /// Bad settings.
    #[error("{0}")]
    Config(Arc<ConfigError>),
    /// Anything else the operating system refused.
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        source: Arc<io::Error>,
    },
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::Config(Arc::new(e))
    }
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: &'static str, source: io::Error) -> Error {
        Error::Io {
            context,
            source: Arc::new(source),
        }
    }
}
