//! The tasks that serve one channel or one child: reading and routing, writing, and
//! waiting for the exit. They report to the lifecycle loop through [`Event`]s.

use crate::channel::{self, Outbox};
use crate::master::lifecycle::Event;
use crate::master::messenger::{Messenger, Outcome, Source};
use crate::protocol::Endpoint;
use crate::protocol::codec::LineBuffer;
use crate::sticky::handoff::Handoff;
use crate::sys::process::{Exit, Signal, signal_group};
use std::rc::Rc;
use std::time::Duration;
use tokio::net::UnixStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

/// How long a reader waits for a congested destination before reading on.
const CONGESTION_WAIT: Duration = Duration::from_millis(50);

/// Why a channel's reader stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// End of file or a socket error: the other side is gone.
    Eof,
    /// The master closed it because of what was sent (the reason).
    Abuse(String),
}

/// Reads `stream`, routes every line, and reports readiness, messages to the master and
/// the end of the channel. `pid` is 0 for the parent channel.
pub async fn read_channel(
    stream: Rc<UnixStream>,
    src: Source,
    messenger: Rc<Messenger>,
    handoff: Option<Rc<Handoff>>,
    events: UnboundedSender<Event>,
    max_line: usize,
    done: Option<oneshot::Sender<()>>,
) {
    let pid = src.worker.map_or(0, |w| w.pid);
    let slot = src.worker.map_or(0, |w| w.id);
    // Only app workers receive connections, so only they can acknowledge one.
    let app_handoff = handoff.as_deref().filter(|_| src.endpoint == Endpoint::App);
    let who = match src.worker {
        Some(w) => w.to_string(),
        None => "the parent channel".to_string(),
    };
    let mut lines = LineBuffer::new(max_line);
    let mut fds = Vec::new();
    let mut bad = 0u64;
    let closed = loop {
        match channel::read_some(&stream, &mut lines, &mut fds).await {
            Ok(0) | Err(_) => break Closed::Eof,
            Ok(_) => {}
        }
        let too_long = loop {
            match lines.next_line() {
                Ok(Some(line)) => match messenger.route(&src, line) {
                    Outcome::Routed(_) | Outcome::NodeInternal | Outcome::Blank => {}
                    Outcome::HandoffAck(n) => {
                        if let (Some(h), Some(o)) = (app_handoff, &src.outbox) {
                            h.on_ack(slot, n, o);
                        }
                    }
                    Outcome::NodeAck => {
                        if let (Some(h), Some(o)) = (app_handoff, &src.outbox) {
                            h.on_node_ack(slot, o);
                        }
                    }
                    Outcome::NodeNack => {
                        if let (Some(h), Some(o)) = (app_handoff, &src.outbox) {
                            h.on_node_nack(slot, o);
                        }
                    }
                    Outcome::Ready => {
                        let _ = events.send(Event::Ready { pid });
                    }
                    Outcome::ToMaster(msg) => {
                        let _ = events.send(Event::ToMaster(msg));
                    }
                    Outcome::Bad(why) => {
                        bad += 1;
                        if bad == 1 || bad.is_power_of_two() {
                            tracing::warn!(
                                "{who} sent a bad message ({why}); dropped ({bad} so far)"
                            );
                        }
                    }
                },
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        // Descriptors a worker sends are not wanted (a Node handle was acknowledged above).
        fds.clear();
        if let Some(e) = too_long {
            break Closed::Abuse(e.to_string());
        }
        if let Some(outbox) = messenger.take_congested() {
            let _ = tokio::time::timeout(CONGESTION_WAIT, outbox.wait_drained()).await;
        }
    };
    if let Some(outbox) = &src.outbox {
        outbox.close();
    }
    if let Closed::Abuse(why) = &closed {
        tracing::warn!("{who} sent {why}; closing its channel");
        let _ = nix::sys::socket::shutdown(
            std::os::fd::AsRawFd::as_raw_fd(&*stream),
            nix::sys::socket::Shutdown::Both,
        );
    }
    let _ = events.send(Event::ChannelClosed { pid, closed });
    if let Some(done) = done {
        let _ = done.send(());
    }
}

/// Writes what is routed to `outbox` onto `stream`.
pub async fn write_channel(stream: Rc<UnixStream>, outbox: Rc<Outbox>) {
    let _ = channel::write_loop(&stream, &outbox).await;
    outbox.close();
}

/// How long an exited worker's channel may take to reach end of file, so that what it
/// wrote before exiting is routed before its death is announced.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// Owns the child: the only task that reaps it. When it exits, whatever it left in its
/// process group (a grandchild that ignored SIGTERM, say) is killed with it, and its
/// channel is read to the end (`channel_done`) before the exit is reported.
pub async fn wait_child(
    mut child: tokio::process::Child,
    pid: u32,
    events: UnboundedSender<Event>,
    channel_done: Option<oneshot::Receiver<()>>,
) {
    let exit = match child.wait().await {
        Ok(status) => Exit::from_status(status),
        Err(e) => {
            tracing::error!("cannot wait for pid {pid}: {e}");
            Exit {
                code: None,
                signal: None,
            }
        }
    };
    let _ = signal_group(pid, Signal::SIGKILL);
    let _ = events.send(Event::Reaped { pid });
    if let Some(done) = channel_done {
        let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, done).await;
    }
    let _ = events.send(Event::Exited { pid, exit });
}
