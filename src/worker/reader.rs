//! The worker's two channel tasks: read and parse what the master sends, write what this
//! side queues.

use super::{Connection, Shared};
use crate::protocol::Message;
use crate::protocol::codec::LineBuffer;
use crate::sys::fdpass;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use crate::sticky::handoff::ACK_ACTION;

/// Sockets taken before an ack goes at once.
const ACK_BATCH: usize = 32;
/// The longest a taken socket waits to be acknowledged.
const ACK_DELAY: std::time::Duration = std::time::Duration::from_millis(5);

pub(crate) async fn read_loop(
    stream: Arc<UnixStream>,
    messages: mpsc::UnboundedSender<Message>,
    connections: mpsc::UnboundedSender<Connection>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    shared: Arc<Shared>,
) {
    let mut lines = LineBuffer::new(usize::MAX / 2);
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut pending: VecDeque<OwnedFd> = VecDeque::new();
    let mut unacked = 0usize;
    let mut ack_due: Option<tokio::time::Instant> = None;
    let ack = |n: &mut usize, due: &mut Option<tokio::time::Instant>| {
        let _ = out.send(format!("{{\"action\":\"{ACK_ACTION}\",\"data\":{n}}}\n").into_bytes());
        *n = 0;
        *due = None;
    };
    loop {
        let n = loop {
            let ready = match ack_due {
                Some(due) => tokio::select! {
                    r = stream.readable() => r,
                    _ = tokio::time::sleep_until(due) => {
                        ack(&mut unacked, &mut ack_due);
                        continue;
                    }
                },
                None => stream.readable().await,
            };
            if ready.is_err() {
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
        pending.extend(fds.drain(..));
        let mut taken = 0usize;
        while let Ok(Some(line)) = lines.next_line() {
            // Only the master writes this exact start (it never routes `clutch:` actions
            // from others, and routed lines carry a `from`).
            if line.starts_with(HANDOFF_PREFIX)
                && let Ok(handed) = serde_json::from_slice::<Handed>(line)
            {
                if let Some(fd) = pending.pop_front() {
                    taken += 1;
                    if let Some(conn) = connection(fd, &handed.data) {
                        let _ = connections.send(conn);
                    }
                }
                continue;
            }
            let msg = match Message::from_line(line) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!(
                        "clutch worker: dropped a message the master sent that is not valid JSON: {e}"
                    );
                    continue;
                }
            };
            if msg.action == "cluster-pids"
                && let Ok(pids) = serde_json::from_value::<Vec<u32>>(msg.data.clone())
            {
                *shared.cluster_pids.lock().expect("cluster pids lock") = pids;
            }
            let _ = messages.send(msg);
        }
        // The master holds its copy of each socket until told, so that one this process
        // never took can go to another worker. Acks are batched: each one wakes the master.
        unacked += taken;
        if unacked >= ACK_BATCH {
            ack(&mut unacked, &mut ack_due);
        } else if unacked > 0 && ack_due.is_none() {
            ack_due = Some(tokio::time::Instant::now() + ACK_DELAY);
        }
    }
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

pub(crate) async fn write_loop(stream: Arc<UnixStream>, mut out: mpsc::UnboundedReceiver<Vec<u8>>) {
    let mut batch = Vec::with_capacity(64 * 1024);
    while let Some(first) = out.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < 64 * 1024 {
            match out.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if write_all(&stream, &batch).await.is_err() {
            break;
        }
    }
}
