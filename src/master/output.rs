//! Worker output with `--output prefix`: the master reads each child's stdout and stderr
//! through pipes, writes each line to its own stdout or stderr prefixed with the worker's
//! name (`[app 2] ...`, `[agent] ...`, as foreman and docker compose do), and keeps the
//! last lines of each slot for `clutch ctl logs`.
//!
//! Nothing a child writes may block or grow the master:
//! - The pipes are read by tasks that the child's owner starts and aborts
//!   ([`super::owner`]), a chunk of at most [`CHUNK`] bytes at a time; a line is cut at
//!   [`MAX_LINE`] bytes (the rest of it, up to its newline, is skipped).
//! - Each chunk's lines go as one write to a writer thread (`tracing_appender`'s lossy
//!   non-blocking writer, as the master's own log does): a slow or full stdout blocks that
//!   thread, never the master, and past [`QUEUED_CHUNKS`] queued chunks a chunk is dropped
//!   and counted ([`dropped_lines`]). A closed stdout is counted and swallowed.
//! - Each slot keeps its last [`RING_LINES`] lines or [`RING_BYTES`] bytes, whichever is
//!   less. The ring is the slot's, not the worker's: it is kept across a restart of the
//!   slot, so `ctl logs` shows what a crashed worker said last before its replacement's
//!   lines (each line knows its pid). A slot scaled away loses its ring.
//! - `ctl logs -f` hears new lines on a broadcast channel that is not written to while
//!   nobody follows.

use crate::master::worker::Role;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::broadcast;
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, WorkerGuard};

/// Lines kept per slot, at most.
pub const RING_LINES: usize = 1000;
/// Bytes of text kept per slot, at most.
pub const RING_BYTES: usize = 256 * 1024;
/// The longest line kept or written; the rest of a longer one is skipped.
pub const MAX_LINE: usize = 8 * 1024;
/// How much of a pipe is read at once.
const CHUNK: usize = 64 * 1024;
/// Chunks queued for a writer thread before new ones are dropped: at most a few MiB.
const QUEUED_CHUNKS: usize = 64;
/// New lines a slow `ctl logs -f` may fall behind by before it is told it missed some.
const FOLLOW_BACKLOG: usize = 4096;

/// One line a worker wrote.
#[derive(Debug)]
pub struct LogLine {
    pub role: Role,
    pub slot: u32,
    pub pid: u32,
    /// Written on stderr (else stdout).
    pub stderr: bool,
    /// Without its newline; invalid UTF-8 replaced; cut at [`MAX_LINE`].
    pub text: Box<str>,
}

impl LogLine {
    /// `[app 2]` or `[agent]`.
    pub fn label(&self) -> String {
        label(self.role, self.slot)
    }

    /// Whether `target` names the worker that wrote it.
    pub fn is_of(&self, target: crate::control::Target) -> bool {
        use crate::control::Target;
        match target {
            Target::All => true,
            Target::App => self.role == Role::App,
            Target::Agent => self.role == Role::Agent,
            Target::Slot(id) => self.slot == id,
            Target::Pid(pid) => self.pid == pid,
        }
    }

    /// The line as printed: `[app 2] text`.
    pub fn prefixed(&self) -> String {
        format!("{} {}", self.label(), self.text)
    }
}

fn label(role: Role, slot: u32) -> String {
    match role {
        Role::Agent => "[agent]".to_string(),
        Role::App => format!("[app {slot}]"),
    }
}

#[derive(Default)]
struct Ring {
    lines: VecDeque<Arc<LogLine>>,
    bytes: usize,
}

impl Ring {
    fn push(&mut self, line: Arc<LogLine>) {
        self.bytes += line.text.len();
        self.lines.push_back(line);
        while self.lines.len() > RING_LINES || self.bytes > RING_BYTES {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.text.len(),
                None => break,
            }
        }
    }
}

/// The master's side of captured output: the rings and the followers.
pub struct Output {
    rings: RefCell<HashMap<u32, Ring>>,
    follow: broadcast::Sender<Arc<LogLine>>,
}

impl Default for Output {
    fn default() -> Output {
        Output {
            rings: RefCell::default(),
            follow: broadcast::channel(FOLLOW_BACKLOG).0,
        }
    }
}

impl Output {
    /// The last `n` lines of each slot `keep` accepts, slot by slot (the agent first).
    pub fn last(&self, n: usize, keep: impl Fn(&LogLine) -> bool) -> Vec<Arc<LogLine>> {
        let rings = self.rings.borrow();
        let mut slots: Vec<&u32> = rings.keys().collect();
        slots.sort();
        let mut out = Vec::new();
        for slot in slots {
            let lines: Vec<&Arc<LogLine>> = rings[slot].lines.iter().filter(|l| keep(l)).collect();
            out.extend(
                lines[lines.len().saturating_sub(n)..]
                    .iter()
                    .map(|l| (*l).clone()),
            );
        }
        out
    }

    /// Every new line from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogLine>> {
        self.follow.subscribe()
    }

    /// Forgets the rings of slots `live` says are gone (scaled away).
    pub fn retain_slots(&self, live: impl Fn(u32) -> bool) {
        self.rings.borrow_mut().retain(|slot, _| live(*slot));
    }

    fn keep(&self, line: Arc<LogLine>) {
        if self.follow.receiver_count() > 0 {
            let _ = self.follow.send(line.clone());
        }
        self.rings
            .borrow_mut()
            .entry(line.slot)
            .or_default()
            .push(line);
    }
}

/// Who writes on a pipe.
#[derive(Debug, Clone, Copy)]
pub struct Writer {
    pub role: Role,
    pub slot: u32,
    pub pid: u32,
    pub stderr: bool,
}

/// Reads `pipe` to its end: each line to the master's stdout (or stderr) with its prefix,
/// and into the slot's ring.
pub async fn read(mut pipe: pipe::Receiver, who: Writer, output: Rc<Output>) {
    let mut buf = vec![0u8; CHUNK];
    let mut cut = LineCutter::default();
    let prefix = label(who.role, who.slot);
    let mut batch = Vec::new();
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        batch.clear();
        cut.feed(&buf[..n], |line| {
            emit(&output, who, &prefix, line, &mut batch);
        });
        sink(who.stderr).write(&batch);
    }
    batch.clear();
    if let Some(line) = cut.finish() {
        emit(&output, who, &prefix, &line, &mut batch);
        sink(who.stderr).write(&batch);
    }
}

fn emit(output: &Output, who: Writer, prefix: &str, line: &[u8], batch: &mut Vec<u8>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text: Box<str> = String::from_utf8_lossy(line).into();
    batch.extend_from_slice(prefix.as_bytes());
    batch.push(b' ');
    batch.extend_from_slice(text.as_bytes());
    batch.push(b'\n');
    output.keep(Arc::new(LogLine {
        role: who.role,
        slot: who.slot,
        pid: who.pid,
        stderr: who.stderr,
        text,
    }));
}

/// Cuts bytes into lines of at most [`MAX_LINE`] bytes: a longer line is cut there and
/// the rest of it, up to its newline, skipped.
#[derive(Default)]
struct LineCutter {
    partial: Vec<u8>,
    skipping: bool,
}

impl LineCutter {
    fn feed(&mut self, mut bytes: &[u8], mut line: impl FnMut(&[u8])) {
        while !bytes.is_empty() {
            let end = memchr::memchr(b'\n', bytes);
            let piece = &bytes[..end.unwrap_or(bytes.len())];
            if !self.skipping {
                let room = MAX_LINE - self.partial.len();
                if piece.len() > room {
                    self.partial.extend_from_slice(&piece[..room]);
                    line(&self.partial);
                    self.partial.clear();
                    self.skipping = true;
                } else if end.is_some() && self.partial.is_empty() {
                    line(piece);
                } else {
                    self.partial.extend_from_slice(piece);
                    if end.is_some() {
                        line(&self.partial);
                        self.partial.clear();
                    }
                }
            }
            match end {
                Some(i) => {
                    self.skipping = false;
                    bytes = &bytes[i + 1..];
                }
                None => break,
            }
        }
    }

    /// What is left after the end of file: a last line without its newline.
    fn finish(self) -> Option<Vec<u8>> {
        (!self.partial.is_empty()).then_some(self.partial)
    }
}

/// One of the master's own outputs, written by a thread of its own.
struct Sink {
    writer: NonBlocking,
    dropped: ErrorCounter,
    guard: Mutex<Option<WorkerGuard>>,
}

static STDOUT: OnceLock<Sink> = OnceLock::new();
static STDERR: OnceLock<Sink> = OnceLock::new();
/// Chunks whose write failed (stdout or stderr closed).
static FAILED: AtomicU64 = AtomicU64::new(0);

/// stdout or stderr for a writer thread: a failed write is counted and swallowed.
struct Std(bool);

impl Write for Std {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = if self.0 {
            io::stderr().write_all(buf)
        } else {
            io::stdout().write_all(buf)
        };
        if r.is_err() {
            FAILED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn sink(stderr: bool) -> &'static Sink {
    let cell = if stderr { &STDERR } else { &STDOUT };
    cell.get_or_init(|| {
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(QUEUED_CHUNKS)
            .thread_name(if stderr {
                "clutch-out-err"
            } else {
                "clutch-out"
            })
            .finish(Std(stderr));
        Sink {
            dropped: writer.error_counter(),
            writer,
            guard: Mutex::new(Some(guard)),
        }
    })
}

impl Sink {
    fn write(&self, bytes: &[u8]) {
        if !bytes.is_empty() {
            let _ = self.writer.clone().write_all(bytes);
        }
    }
}

/// Chunks of worker output dropped so far: the master's stdout or stderr was full (not
/// read fast enough) or closed. A chunk holds the lines of one read, up to 64 KiB.
pub fn dropped_chunks() -> u64 {
    let queued: u64 = [&STDOUT, &STDERR]
        .iter()
        .filter_map(|s| s.get())
        .map(|s| s.dropped.dropped_lines() as u64)
        .sum();
    queued + FAILED.load(Ordering::Relaxed)
}

/// Writes the worker output still queued, waiting at most `timeout` in all.
pub fn finish(timeout: Duration) {
    let guards: Vec<WorkerGuard> = [&STDOUT, &STDERR]
        .iter()
        .filter_map(|s| s.get())
        .filter_map(|s| s.guard.lock().ok().and_then(|mut g| g.take()))
        .collect();
    if guards.is_empty() {
        return;
    }
    // Dropping a guard waits for its thread, which may be blocked on a full pipe.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("clutch-out-flush".into())
        .spawn(move || {
            drop(guards);
            let _ = done_tx.send(());
        });
    if spawned.is_ok() {
        let _ = done_rx.recv_timeout(timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(chunks: &[&[u8]]) -> Vec<String> {
        let mut c = LineCutter::default();
        let mut out = Vec::new();
        for ch in chunks {
            c.feed(ch, |l| out.push(String::from_utf8_lossy(l).into_owned()));
        }
        if let Some(l) = c.finish() {
            out.push(String::from_utf8_lossy(&l).into_owned());
        }
        out
    }

    #[test]
    fn lines_are_cut_across_chunks_and_long_ones_are_bounded() {
        assert_eq!(cut(&[b"a\nb", b"c\n\nd"]), ["a", "bc", "", "d"]);
        let long = vec![b'x'; MAX_LINE * 3];
        let got = cut(&[&long[..MAX_LINE / 2], &long[MAX_LINE / 2..], b"\nnext\n"]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), MAX_LINE);
        assert_eq!(got[1], "next");
    }

    #[test]
    fn a_ring_keeps_the_last_lines_within_its_bounds() {
        let o = Output::default();
        let line = |slot, text: String| {
            Arc::new(LogLine {
                role: Role::App,
                slot,
                pid: 1,
                stderr: false,
                text: text.into(),
            })
        };
        for i in 0..RING_LINES + 5 {
            o.keep(line(1, format!("{i}")));
        }
        o.keep(line(2, "x".repeat(MAX_LINE)));
        let one = o.last(usize::MAX, |l| l.slot == 1);
        assert_eq!(one.len(), RING_LINES);
        assert_eq!(&*one[0].text, "5");
        assert_eq!(o.last(2, |_| true).len(), 3);
        for _ in 0..100 {
            o.keep(line(2, "y".repeat(MAX_LINE)));
        }
        let two = o.last(usize::MAX, |l| l.slot == 2);
        assert_eq!(two.len(), RING_BYTES / MAX_LINE);
        o.retain_slots(|s| s == 2);
        assert!(o.last(10, |l| l.slot == 1).is_empty());
    }
}
