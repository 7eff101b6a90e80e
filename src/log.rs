//! The master's log: nothing stderr does may stop or kill the master.
//!
//! Lines go through a bounded queue to a writer thread ([`tracing_appender`]'s lossy
//! non-blocking writer): when stderr is a full pipe nobody reads, the thread blocks, not the
//! master, and lines past the queue are dropped. When stderr is closed (EPIPE), the failed
//! write is swallowed. Both are counted in [`dropped_lines`]. SIGPIPE is ignored, so a
//! closed stderr is an error to swallow rather than a death.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, WorkerGuard};

/// Lines the queue holds while stderr does not take them; past it they are dropped. Bounds
/// the memory a blocked stderr can cost (lines are a few hundred bytes).
const QUEUED_LINES: usize = 4096;

/// Lines whose write to stderr failed (closed, or any other error).
static FAILED_WRITES: AtomicU64 = AtomicU64::new(0);

struct Log {
    writer: NonBlocking,
    dropped: ErrorCounter,
    guard: Mutex<Option<WorkerGuard>>,
}

static LOG: OnceLock<Log> = OnceLock::new();

/// stderr for the writer thread: a failed write is counted and swallowed, never returned
/// (the appender would drop it silently, uncounted).
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if io::stderr().write_all(buf).is_err() {
            FAILED_WRITES.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Installs the process-wide log on stderr, filtered by `RUST_LOG` (default `info`), with
/// colours only on a terminal and without `NO_COLOR`; ignores SIGPIPE. For a program that
/// owns its process (the `clutch` binary): a library leaves both to its embedder. Call
/// [`finish`] before exit so the last lines are written. A second call does nothing.
pub fn init() {
    use std::io::IsTerminal;
    ignore_sigpipe();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("clutch-log")
        .finish(Stderr);
    let log = Log {
        dropped: writer.error_counter(),
        writer: writer.clone(),
        guard: Mutex::new(Some(guard)),
    };
    if LOG.set(log).is_err() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_ansi(io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(writer)
        .log_internal_errors(false)
        .try_init();
}

/// Lines the log dropped so far: the queue was full (stderr not read) or the write failed
/// (stderr closed).
pub fn dropped_lines() -> u64 {
    let queue = LOG.get().map_or(0, |l| l.dropped.dropped_lines() as u64);
    queue + FAILED_WRITES.load(Ordering::Relaxed)
}

/// Writes `text` and a newline to stderr as the log does (queued, never blocking, a
/// failure counted): for the messages a command prints as is. Before [`init`], written
/// directly, a failure ignored.
pub fn line(text: &str) {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    match LOG.get() {
        Some(l) => {
            let _ = l.writer.clone().write_all(&bytes);
        }
        None => {
            let _ = io::stderr().write_all(&bytes);
        }
    }
}

/// Writes what is queued, waiting at most `timeout`: a stderr nobody reads must not keep
/// the process from exiting. Lines logged after this may be lost.
pub fn finish(timeout: Duration) {
    let dropped = dropped_lines();
    if dropped > 0 {
        line(&format!(
            "clutch: {dropped} log lines were dropped (stderr was full or closed)"
        ));
    }
    let Some(guard) = LOG
        .get()
        .and_then(|l| l.guard.lock().ok().and_then(|mut g| g.take()))
    else {
        return;
    };
    // Dropping the guard waits for the writer thread (a bounded wait, but it may print to
    // stdout when the queue is full, which can block too): so it is dropped on a thread of
    // its own, and this one waits no longer than `timeout`.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("clutch-log-flush".into())
        .spawn(move || {
            drop(guard);
            let _ = done_tx.send(());
        });
    if spawned.is_ok() {
        let _ = done_rx.recv_timeout(timeout);
    }
}

fn ignore_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_IGN installs no handler code. Children get SIGPIPE back to its default
    // before exec (std's Command does it; `sys::process::reset_signal_dispositions` too).
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}
