//! The owner of one child: the only task that signals it and the only one that reaps it.
//!
//! The run loop sends it [`Order`]s; it escalates a stop from SIGTERM to SIGKILL itself
//! after the grace period. When the child exits, the owner first waits without reaping
//! (the zombie keeps the process group id from being reused), kills whatever is left in
//! the group (a grandchild that ignored SIGTERM), and only then reaps, tells the guard the
//! group is gone, lets the channel's reader route what the child wrote before exiting (for
//! a short while), aborts the reader (a grandchild that kept the channel fd must not speak
//! for a dead worker), and reports [`Event::Exited`] exactly once. No signal can reach a
//! recycled process group: after the reap there is nobody left to send one.

use crate::master::lifecycle::Event;
use crate::master::output::{self, Output, Writer};
use crate::master::worker::{WorkerId, WorkerName};
use crate::sys::guard::Guard;
use crate::sys::process::{Exit, Signal, signal_group};
use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// How long an exited worker's channel may take to reach end of file, so that what it
/// wrote before exiting is routed before its death is announced.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// What the run loop asks of a child's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// SIGTERM to the group now, SIGKILL after `grace` if it is still there.
    Stop { grace: Duration },
    /// SIGKILL to the group now.
    Kill,
    /// `signal` to the group (`group`) or to the child alone, now (`clutch ctl kill` and
    /// `signal`). The exit it may cause carries no intent: the restart policy judges it.
    Signal { signal: Signal, group: bool },
}

/// The channel's reader, as the owner holds it: how to stop it, and how to know it read
/// to the end.
pub struct Reader {
    pub abort: AbortHandle,
    pub done: oneshot::Receiver<()>,
}

/// The read ends of a child's stdout and stderr (`--output prefix`), and where their lines
/// go. The owner reads them with tasks of its own, and ends those after the child.
pub struct Pipes {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub output: Rc<Output>,
}

/// Owns `child` until it is reaped. `orders` closing changes nothing: the child is still
/// waited for.
#[allow(clippy::too_many_arguments)] // one owner per child holds everything of it
pub async fn own(
    mut child: std::process::Child,
    worker: WorkerId,
    name: WorkerName,
    mut orders: mpsc::UnboundedReceiver<Order>,
    reader: Option<Reader>,
    pipes: Option<Pipes>,
    guard: Rc<RefCell<Guard>>,
    events: mpsc::UnboundedSender<Event>,
) {
    let pid = name.pid;
    let pipe_readers = pipes.map(|p| read_pipes(p, name)).unwrap_or_default();
    let exited = crate::sys::pidfd::exited(pid);
    tokio::pin!(exited);
    let mut kill_at: Option<(Instant, Duration)> = None;
    loop {
        let deadline = kill_at.map(|(at, _)| at);
        tokio::select! {
            r = &mut exited => {
                if let Err(e) = r {
                    tracing::error!("cannot watch {name}: {e}; waiting for it");
                }
                break;
            }
            Some(order) = orders.recv() => match order {
                Order::Stop { grace } => {
                    if kill_at.is_none() {
                        tracing::debug!("sending SIGTERM to {name}");
                        let _ = signal_group(pid, Signal::SIGTERM);
                        kill_at = Some((Instant::now() + grace, grace));
                    }
                }
                Order::Kill => {
                    let _ = signal_group(pid, Signal::SIGKILL);
                }
                Order::Signal { signal, group: true } => {
                    let _ = signal_group(pid, signal);
                }
                Order::Signal { signal, group: false } => {
                    // Not reaped yet (this task reaps it), so the pid is still this child's.
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
                }
            },
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let grace = kill_at.map(|(_, g)| g).unwrap_or_default();
                tracing::warn!(
                    "{name} still running {} ms after SIGTERM; sending SIGKILL",
                    grace.as_millis()
                );
                let _ = signal_group(pid, Signal::SIGKILL);
                kill_at = None;
            }
        }
    }
    // The zombie still holds the group id: what is left of the group dies with it.
    let _ = signal_group(pid, Signal::SIGKILL);
    // A zombie is reaped at the first try; polling only covers a watch that failed.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => break Err(e),
        }
    };
    let exit = match status {
        Ok(status) => Exit::from_status(status),
        Err(e) => {
            tracing::error!("cannot reap {name}: {e}");
            Exit {
                code: None,
                signal: None,
            }
        }
    };
    guard.borrow_mut().forget(pid);
    let drained = Instant::now() + DRAIN_AFTER_EXIT;
    if let Some(reader) = reader {
        let _ = tokio::time::timeout_at(drained, reader.done).await;
        reader.abort.abort();
    }
    // What it printed last is read too, within the same half second; a grandchild (out of
    // its group) that keeps a pipe open must not keep its reader alive.
    for r in pipe_readers {
        let abort = r.abort_handle();
        let _ = tokio::time::timeout_at(drained, r).await;
        abort.abort();
    }
    let _ = events.send(Event::Exited { worker, exit });
}

/// Starts a reader per pipe; a pipe that cannot be registered is closed (the child then
/// gets EPIPE or SIGPIPE writing to it) and said so.
fn read_pipes(p: Pipes, name: WorkerName) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (fd, stderr) in [(p.stdout, false), (p.stderr, true)] {
        match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
            Ok(pipe) => {
                let who = Writer {
                    role: name.role,
                    slot: name.id,
                    pid: name.pid,
                    stderr,
                };
                tasks.push(tokio::task::spawn_local(output::read(
                    pipe,
                    who,
                    p.output.clone(),
                )));
            }
            Err(e) => tracing::error!("cannot read {name}'s output: {e}"),
        }
    }
    tasks
}
