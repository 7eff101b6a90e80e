//! The page's live updates: a server-sent event stream (`text/event-stream`) fed by a task
//! that forwards the control plane's `watch` events and, every [`TICK`], the `list`.
//!
//! hyper is used without a framework here (its server runs on the master's thread, with
//! `!Send` state), so the stream is a body over a bounded channel rather than axum's `Sse`.

use super::TICK;
use super::routes::{Console, ask};
use crate::control::{Answer, Caller, Cmd};
use crate::master::lifecycle::Event;
use hyper::body::{Body, Bytes, Frame};
use std::convert::Infallible;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::sync::mpsc::UnboundedSender;

/// Messages queued for a slow page before the stream waits for it.
const QUEUE: usize = 64;

/// A response body that yields what the feeding task sends, and ends when it stops.
pub struct EventStream(mpsc::Receiver<Bytes>);

impl Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

fn message(event: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// Opens the stream for the session of `token`; the feeding task ends when the page goes,
/// the session ends or the master stops.
pub fn open(
    console: Rc<Console>,
    events: UnboundedSender<Event>,
    token: String,
    user: String,
) -> EventStream {
    let (tx, rx) = mpsc::channel(QUEUE);
    console.streams.set(console.streams.get() + 1);
    tokio::task::spawn_local(async move {
        feed(&console, &events, &token, &user, &tx).await;
        console.streams.set(console.streams.get() - 1);
    });
    EventStream(rx)
}

async fn feed(
    console: &Console,
    events: &UnboundedSender<Event>,
    token: &str,
    user: &str,
    tx: &mpsc::Sender<Bytes>,
) {
    let caller = Caller::web(user);
    let Some(Answer::Watch {
        snapshot,
        events: mut watch,
    }) = ask(events, Cmd::Watch, &caller).await
    else {
        return;
    };
    if tx
        .send(message("list", &snapshot.to_string()))
        .await
        .is_err()
    {
        return;
    }
    let mut tick = tokio::time::interval(TICK);
    tick.tick().await;
    loop {
        let out = tokio::select! {
            ev = watch.recv() => match ev {
                Ok(ev) => message("cluster", &ev),
                Err(RecvError::Lagged(missed)) => {
                    message("cluster", &format!("{{\"event\":\"lagged\",\"missed\":{missed}}}"))
                }
                Err(RecvError::Closed) => message("end", "\"the master stopped\""),
            },
            _ = tick.tick() => {
                let live = console
                    .sessions
                    .borrow()
                    .peek(token, Instant::now())
                    .is_some_and(|s| console.still_valid(s));
                if !live {
                    let _ = tx.try_send(message("end", "\"the session ended: log in again\""));
                    return;
                }
                match ask(events, Cmd::List, &caller).await {
                    Some(Answer::Done(Ok(list))) => message("list", &list.to_string()),
                    _ => message("end", "\"the master stopped\""),
                }
            }
            _ = tx.closed() => return,
        };
        let end = out.starts_with(b"event: end");
        // Never waits: a page that stopped reading (its queue full) would otherwise hold
        // this stream, and one of the few streams and connections, for the master's life,
        // past the end of its session. Its browser reconnects if it is still there.
        if tx.try_send(out).is_err() || end {
            return;
        }
    }
}
