//! The tasks that serve one channel: reading and routing, and writing. They report to the
//! run loop through [`Event`]s. (The child itself has its owner: [`super::owner`].)

use crate::channel::{self, Outbox};
use crate::master::lifecycle::Event;
use crate::master::messenger::{Messenger, Outcome, Source};
use crate::master::metrics::DropReason;
use crate::master::worker::WorkerId;
use crate::protocol::Endpoint;
use crate::protocol::codec::LineBuffer;
use crate::sticky::handoff::Handoff;
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
/// the end of the channel. `worker` is `None` for the parent channel.
#[allow(clippy::too_many_arguments)]
pub async fn read_channel(
    stream: Rc<UnixStream>,
    src: Source,
    worker: Option<WorkerId>,
    messenger: Rc<Messenger>,
    handoff: Option<Rc<Handoff>>,
    events: UnboundedSender<Event>,
    max_line: usize,
    done: Option<oneshot::Sender<()>>,
) {
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
                    Outcome::Heartbeat => {
                        if let Some(w) = worker {
                            messenger.registry().heard(w);
                        }
                    }
                    Outcome::HandoffAck(n) => {
                        if let (Some(h), Some(w)) = (app_handoff, worker) {
                            h.on_ack(w, n);
                        }
                    }
                    Outcome::NodeAck => {
                        if let (Some(h), Some(w)) = (app_handoff, worker) {
                            h.on_node_ack(w);
                        }
                    }
                    Outcome::NodeNack => {
                        if let (Some(h), Some(w)) = (app_handoff, worker) {
                            h.on_node_nack(w);
                        }
                    }
                    Outcome::Ready => {
                        if let Some(worker) = worker {
                            let _ = events.send(Event::Ready { worker });
                        }
                    }
                    Outcome::ToMaster(msg) => {
                        let _ = events.send(Event::ToMaster(msg));
                    }
                    Outcome::Monitor(data) => {
                        if let (Some(w), Some(name)) = (worker, src.worker) {
                            messenger.monitor().push(w, name.pid, data);
                        }
                    }
                    Outcome::Subscribe => {
                        if let Some(worker) = worker {
                            let _ = events.send(Event::Subscribe { worker });
                        }
                    }
                    Outcome::Bad(why) => {
                        messenger.metrics().dropped(DropReason::Invalid);
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
            messenger.metrics().dropped(DropReason::TooLong);
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
    let _ = events.send(Event::ChannelClosed { worker, closed });
    if let Some(done) = done {
        let _ = done.send(());
    }
}

/// Writes what is routed to `outbox` onto `stream`.
pub async fn write_channel(stream: Rc<UnixStream>, outbox: Rc<Outbox>) {
    let _ = channel::write_loop(&stream, &outbox).await;
    outbox.close();
}
