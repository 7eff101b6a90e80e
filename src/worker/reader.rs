//! The worker's two channel tasks: read and parse what the master sends, write what this
//! side queues.

use super::{Connection, Shared};
use crate::protocol::Message;
use crate::protocol::codec::LineBuffer;
use crate::sys::fdpass;
use serde_json::Value;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc};

use crate::protocol::actions::ACK_ACTION;

/// What a message waiting for `recv` costs of the inbox budget beyond its line: the parsed
/// value takes more room than its text, and an empty line must cost something.
const MESSAGE_OVERHEAD: usize = 256;

/// The channel's write side, shared by the writer task and the reader's acknowledgements.
/// Whole lines go out under the lock, so an ack never lands inside another line.
pub(crate) struct ChannelWriter {
    stream: Arc<UnixStream>,
    lock: Mutex<()>,
}

impl ChannelWriter {
    pub(crate) fn new(stream: Arc<UnixStream>) -> ChannelWriter {
        ChannelWriter {
            stream,
            lock: Mutex::new(()),
        }
    }

    /// Writes `bytes` (whole lines) into the socket: done once this returns.
    pub(crate) async fn write_lines(&self, bytes: &[u8]) -> std::io::Result<()> {
        let _turn = self.lock.lock().await;
        write_all(&self.stream, bytes).await
    }
}

/// Where the reader puts what the master sends: messages for `recv`, each holding its share
/// of `budget` until taken, and connections for `take_handoffs`.
pub(crate) struct Inbox {
    pub messages: mpsc::UnboundedSender<(Message, OwnedSemaphorePermit)>,
    pub budget: Arc<Semaphore>,
    pub budget_bytes: usize,
    pub connections: mpsc::Sender<Connection>,
}

pub(crate) async fn read_loop(
    stream: Arc<UnixStream>,
    writer: Arc<ChannelWriter>,
    inbox: Inbox,
    shared: Arc<Shared>,
) {
    let mut lines = LineBuffer::new(usize::MAX / 2);
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut pending: VecDeque<OwnedFd> = VecDeque::new();
    loop {
        let n = loop {
            if stream.readable().await.is_err() {
                break 0;
            }
            match stream.try_io(Interest::READABLE, || {
                fdpass::recv_with_fds(stream.as_raw_fd(), lines.spare(), &mut fds)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => break 0,
            }
        };
        if n == 0 {
            break;
        }
        lines.filled(n);
        if !fds.is_empty() {
            // The master keeps its copy of each socket until told, and passes an
            // unacknowledged one to another worker if this one dies. So the ack is in the
            // channel before user code can read a byte of these sockets: once it could have,
            // the master must not pass them on.
            let ack = format!("{{\"action\":\"{ACK_ACTION}\",\"data\":{}}}\n", fds.len());
            if writer.write_lines(ack.as_bytes()).await.is_err() {
                break;
            }
            pending.extend(fds.drain(..));
        }
        while let Ok(Some(line)) = lines.next_line() {
            // Only the master writes this exact start (it never routes `clutch:` actions
            // from others, and routed lines carry a `from`).
            if line.starts_with(HANDOFF_PREFIX)
                && let Ok(handed) = serde_json::from_slice::<Handed>(line)
            {
                if let Some(conn) = pending
                    .pop_front()
                    .and_then(|fd| connection(fd, &handed.data))
                {
                    // Waits while the user has not taken the connections queued: the
                    // channel is not read meanwhile.
                    let _ = inbox.connections.send(conn).await;
                }
                continue;
            }
            let cost = (line.len() + MESSAGE_OVERHEAD).min(inbox.budget_bytes);
            let msg = match Message::from_line(line) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!(
                        "clutch worker: dropped a message the master sent that is not valid JSON: {e}"
                    );
                    continue;
                }
            };
            if let Some(id) = msg.reply_to.as_ref().and_then(Value::as_u64) {
                let waiting = shared.requests.lock().expect("requests lock").remove(&id);
                if let Some(tx) = waiting {
                    let _ = tx.send(msg);
                    continue;
                }
            }
            if msg.action == "cluster-pids"
                && let Ok(pids) = serde_json::from_value::<Vec<u32>>(msg.data.clone())
            {
                *shared.cluster_pids.lock().expect("cluster pids lock") = pids;
            }
            // Waits while messages not yet taken by `recv` fill the budget: the channel is
            // not read meanwhile, and the master holds (and past its cap drops) what it
            // has for this worker.
            let Ok(permit) = inbox.budget.clone().acquire_many_owned(cost as u32).await else {
                break;
            };
            let _ = inbox.messages.send((msg, permit));
        }
    }
    // Requests still waiting end now (`RequestError::Closed`), not at their timeout.
    shared.requests.lock().expect("requests lock").clear();
    if shared.exit_on_disconnect.load(Ordering::Relaxed) {
        std::process::exit(0);
    }
}

async fn write_all(stream: &UnixStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        stream.writable().await?;
        match stream.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How the master's `clutch:connection` lines start.
const HANDOFF_PREFIX: &[u8] = br#"{"action":"clutch:connection","data":"#;

/// A `clutch:connection` line, read without building a generic message.
#[derive(serde::Deserialize)]
struct Handed<'a> {
    #[serde(borrow)]
    data: Addresses<'a>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Addresses<'a> {
    #[serde(borrow)]
    remote_address: Option<&'a str>,
    remote_port: Option<u16>,
    #[serde(borrow)]
    local_address: Option<&'a str>,
    local_port: Option<u16>,
}

fn connection(fd: OwnedFd, a: &Addresses<'_>) -> Option<Connection> {
    let addr = |ip: Option<&str>, port: Option<u16>| -> Option<SocketAddr> {
        let ip: IpAddr = ip?.parse().ok()?;
        Some(SocketAddr::new(ip, port?))
    };
    // The master accepted it non-blocking (the flag belongs to the shared file description).
    let std = std::net::TcpStream::from(fd);
    Some(Connection {
        stream: tokio::net::TcpStream::from_std(std).ok()?,
        remote: addr(a.remote_address, a.remote_port),
        local: addr(a.local_address, a.local_port),
    })
}

/// Writes what `send*` queued, a socket buffer's worth of lines at a time; each line's
/// permit (its share of the send budget) is given back once it is written.
pub(crate) async fn write_loop(
    writer: Arc<ChannelWriter>,
    mut out: mpsc::UnboundedReceiver<(Vec<u8>, OwnedSemaphorePermit)>,
) {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut permits = Vec::new();
    while let Some((first, permit)) = out.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        permits.push(permit);
        while batch.len() < 64 * 1024 {
            match out.try_recv() {
                Ok((more, permit)) => {
                    batch.extend_from_slice(&more);
                    permits.push(permit);
                }
                Err(_) => break,
            }
        }
        if writer.write_lines(&batch).await.is_err() {
            break;
        }
        permits.clear();
        if batch.capacity() > 1 << 20 {
            // One huge message must not pin its buffer for the worker's life.
            batch = Vec::with_capacity(64 * 1024);
        }
    }
}
