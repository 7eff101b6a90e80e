//! Serves the control socket on the master's thread: one task per connection, each request
//! checked against the caller's role and then answered by the run loop.

use super::auth::{Caller, Users};
use super::protocol::{self, MAX_CONNECTIONS, MAX_REQUEST, Request};
use super::socket::Bound;
use super::{Answer, Call, Cmd, Target};
use crate::master::lifecycle::Event;
use crate::master::output::LogLine;
use crate::protocol::codec::LineBuffer;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tokio::task::spawn_local;

/// A connection that sends no complete request for this long is closed (one that watches
/// is not idle).
const IDLE: Duration = Duration::from_secs(60);

/// What the control server needs: the bound socket and who may use it.
#[derive(Debug)]
pub struct Control {
    pub bound: Bound,
    pub users: Users,
}

/// Accepts control connections until the master's thread ends (dropping the listener
/// removes the socket file).
pub(crate) async fn serve(control: Control, events: UnboundedSender<Event>) {
    let Control { bound, users } = control;
    let path = bound.path.clone();
    let listener =
        match interprocess::os::unix::uds_local_socket::tokio::Listener::try_from(bound.listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(
                    "cannot serve the control socket {}: {e}; clutch ctl cannot reach this master",
                    path.display()
                );
                return;
            }
        };
    tracing::info!("control socket: {}", path.display());
    let users = Rc::new(users);
    let open = Rc::new(Cell::new(0usize));
    loop {
        let stream = match listener.inner().accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and the like: wait rather than spin.
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.get() >= MAX_CONNECTIONS {
            spawn_local(async move {
                let mut s = stream;
                let line = protocol::error_line(
                    0,
                    &format!("too many control connections (at most {MAX_CONNECTIONS}); try again"),
                );
                let _ = tokio::time::timeout(Duration::from_secs(1), s.write_all(&line)).await;
            });
            continue;
        }
        open.set(open.get() + 1);
        let (users, events, open) = (users.clone(), events.clone(), open.clone());
        spawn_local(async move {
            connection(stream, &users, &events).await;
            open.set(open.get() - 1);
        });
    }
}

async fn connection(mut stream: UnixStream, users: &Users, events: &UnboundedSender<Event>) {
    let caller = match stream.peer_cred() {
        Ok(c) => Caller::new(c.uid(), c.gid()),
        Err(e) => {
            tracing::warn!("control connection with no peer credentials ({e}); closed");
            return;
        }
    };
    let mut lines = LineBuffer::new(MAX_REQUEST);
    loop {
        let request = loop {
            match lines.next_line() {
                Ok(Some(line)) if line.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(Some(line)) => break Request::parse(line),
                Ok(None) => {}
                Err(e) => {
                    let msg = format!("request too long: {e}; closing");
                    let _ = stream.write_all(&protocol::error_line(0, &msg)).await;
                    return;
                }
            }
            match tokio::time::timeout(IDLE, stream.read(lines.spare())).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                Ok(Ok(n)) => lines.filled(n),
            }
        };
        let reply = match request {
            Err(e) => protocol::error_line(0, &e),
            Ok(req) => match answer(&req, &caller, users, events).await {
                Reply::Line(line) => line,
                Reply::Watch(snapshot, rx) => {
                    watch(&mut stream, &mut lines, req.id, snapshot, rx).await;
                    return;
                }
                Reply::Reload(rx) => {
                    reload(&mut stream, req.id, rx).await;
                    return;
                }
                Reply::Answered(rx, timeout) => reply_line(req.id, rx, timeout).await,
                Reply::Logs(lines, follow) => {
                    logs(&mut stream, req.id, lines, follow).await;
                    return;
                }
            },
        };
        if stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

enum Reply {
    Line(Vec<u8>),
    Watch(
        serde_json::Value,
        tokio::sync::broadcast::Receiver<std::sync::Arc<str>>,
    ),
    Reload(tokio::sync::mpsc::UnboundedReceiver<crate::master::ReloadEvent>),
    Answered(oneshot::Receiver<crate::Message>, Duration),
    Logs(
        Vec<Arc<LogLine>>,
        Option<(Target, broadcast::Receiver<Arc<LogLine>>)>,
    ),
}

async fn answer(
    req: &Request,
    caller: &Caller,
    users: &Users,
    events: &UnboundedSender<Event>,
) -> Reply {
    let cmd = match req.command() {
        Ok(c) => c,
        Err(e) => return Reply::Line(protocol::error_line(req.id, &e)),
    };
    if let Err(e) = allowed(&cmd, caller, users) {
        if cmd.changes_state() {
            tracing::info!(target: "clutch::audit", "audit: {caller} {}: refused: {e}", cmd.name());
        }
        return Reply::Line(protocol::error_line(req.id, &e));
    }
    let (tx, rx) = oneshot::channel();
    let call = Call {
        cmd,
        caller: caller.clone(),
    };
    let gone = || Reply::Line(protocol::error_line(req.id, "the master is stopping"));
    if events.send(Event::Control(call, tx)).is_err() {
        return gone();
    }
    match rx.await {
        Ok(Answer::Done(Ok(v))) => Reply::Line(protocol::ok_line(req.id, v)),
        Ok(Answer::Done(Err(e))) => Reply::Line(protocol::error_line(req.id, &e)),
        Ok(Answer::Watch { snapshot, events }) => Reply::Watch(snapshot, events),
        Ok(Answer::Reload(progress)) => Reply::Reload(progress),
        Ok(Answer::Reply { reply, timeout }) => Reply::Answered(reply, timeout),
        Ok(Answer::Logs { lines, follow }) => Reply::Logs(lines, follow),
        Err(_) => gone(),
    }
}

/// Whether `caller` may run `cmd`; the refusal says what it lacks and what to do.
fn allowed(cmd: &Cmd, caller: &Caller, users: &Users) -> Result<(), String> {
    let needs = cmd.needs();
    match users.role_of(caller) {
        Some(role) if role >= needs => Ok(()),
        has => Err(format!(
            "permission denied: {caller} may not `{}` (it needs the {} role; {}); the \
             cluster's owner can grant roles with --control-users",
            cmd.name(),
            needs.as_str(),
            match has {
                Some(r) => format!("{caller} is a {}", r.as_str()),
                None => format!("{caller} has no role here"),
            }
        )),
    }
}

/// Streams a reload's progress: one event line per step, then the result line (an error
/// line when it was aborted).
async fn reload(
    stream: &mut UnixStream,
    id: u64,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<crate::master::ReloadEvent>,
) {
    use crate::master::ReloadEvent;
    while let Some(event) = rx.recv().await {
        let json = crate::master::reload_json(&event);
        let line = match &event {
            ReloadEvent::Completed { .. } => protocol::ok_line(id, json),
            ReloadEvent::Aborted { reason, .. } => protocol::error_line(id, reason),
            _ => protocol::event_line(id, &json.to_string()),
        };
        if stream.write_all(&line).await.is_err() {
            return;
        }
        if matches!(
            event,
            ReloadEvent::Completed { .. } | ReloadEvent::Aborted { .. }
        ) {
            return;
        }
    }
    let _ = stream
        .write_all(&protocol::error_line(
            id,
            "the master stopped during the reload",
        ))
        .await;
}

/// Streams the snapshot, then each event, until the client leaves or the master stops.
async fn watch(
    stream: &mut UnixStream,
    lines: &mut LineBuffer,
    id: u64,
    snapshot: serde_json::Value,
    mut rx: tokio::sync::broadcast::Receiver<std::sync::Arc<str>>,
) {
    let first = serde_json::json!({"seq": 0, "event": "snapshot", "snapshot": snapshot});
    if stream
        .write_all(&protocol::event_line(id, &first.to_string()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        let line = tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => protocol::event_line(id, &ev),
                Err(RecvError::Lagged(missed)) => protocol::lagged_line(id, missed),
                Err(RecvError::Closed) => {
                    let _ = stream
                        .write_all(&protocol::ok_line(id, "the master stopped".into()))
                        .await;
                    return;
                }
            },
            // Whatever the client sends meanwhile is ignored; its end of file ends the watch.
            n = stream.read(lines.spare()) => match n {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    *lines = LineBuffer::new(MAX_REQUEST);
                    continue;
                }
            },
        };
        if stream.write_all(&line).await.is_err() {
            return;
        }
    }
}

/// The answer to `request`: its reply, or why there is none. A reply the receiver (or the
/// master) marked with `error` is a failure; the reply goes with it.
async fn reply_line(id: u64, rx: oneshot::Receiver<crate::Message>, timeout: Duration) -> Vec<u8> {
    match tokio::time::timeout(timeout, rx).await {
        Err(_) => protocol::error_line(id, &format!("no reply within {} ms", timeout.as_millis())),
        Ok(Err(_)) => protocol::error_line(id, "the master stopped before the reply came"),
        Ok(Ok(reply)) => {
            let json = serde_json::to_value(&reply).unwrap_or_default();
            match &reply.error {
                Some(e) => {
                    let line = serde_json::json!({"id": id, "ok": false, "error": e,
                                                  "reply": json});
                    let mut out = serde_json::to_vec(&line).unwrap_or_default();
                    out.push(b'\n');
                    out
                }
                None => protocol::ok_line(id, json),
            }
        }
    }
}

/// Streams the kept lines, then (following) each new line of the target until the client
/// leaves or the master stops; not following, ends with a result line.
async fn logs(
    stream: &mut UnixStream,
    id: u64,
    lines: Vec<Arc<LogLine>>,
    follow: Option<(Target, broadcast::Receiver<Arc<LogLine>>)>,
) {
    for l in &lines {
        if stream.write_all(&log_event(id, l)).await.is_err() {
            return;
        }
    }
    let Some((target, mut rx)) = follow else {
        let _ = stream
            .write_all(&protocol::ok_line(
                id,
                serde_json::json!({"lines": lines.len()}),
            ))
            .await;
        return;
    };
    let mut scratch = [0u8; 512];
    loop {
        let line = tokio::select! {
            l = rx.recv() => match l {
                Ok(l) if l.is_of(target) => log_event(id, &l),
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => protocol::lagged_line(id, missed),
                Err(RecvError::Closed) => {
                    let _ = stream
                        .write_all(&protocol::ok_line(id, "the master stopped".into()))
                        .await;
                    return;
                }
            },
            // Whatever the client sends is ignored; its end of file ends the follow.
            n = stream.read(&mut scratch) => match n {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
        };
        if stream.write_all(&line).await.is_err() {
            return;
        }
    }
}

fn log_event(id: u64, l: &LogLine) -> Vec<u8> {
    let ev = serde_json::json!({"event": "log", "role": l.role.as_str(), "slot": l.slot,
                                "pid": l.pid, "stream": if l.stderr { "stderr" } else { "stdout" },
                                "line": l.prefixed()});
    protocol::event_line(id, &ev.to_string())
}
