//! Serving the endpoint: hyper's HTTP/1 server, one `spawn_local` task per connection on
//! the master's thread (its state is `Rc`, so no `Send` server would do), and the three
//! routes; the web console's paths go to [`crate::console`], and with
//! `--http-tls-cert` every connection is TLS first (rustls).

use super::view::View;
use super::{ASK_TIMEOUT, Bound, CONNECTION_LIMIT, MAX_CONNECTIONS, Reloads};
use crate::master::lifecycle::Event;
use crate::master::messenger::Messenger;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tokio::task::spawn_local;

/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head read (hyper's smallest buffer).
const MAX_HEAD: usize = 8192;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// What every connection's task shares.
struct Shared {
    events: UnboundedSender<Event>,
    messenger: Rc<Messenger>,
    reloads: Rc<Reloads>,
    console: Rc<crate::console::Console>,
}

impl Shared {
    async fn ask(&self) -> Option<View> {
        ask(&self.events, ASK_TIMEOUT).await
    }
}

/// The run loop's answer, or `None` when it did not answer within `timeout` (or has
/// ended): what `/livez` reports.
async fn ask(events: &UnboundedSender<Event>, timeout: Duration) -> Option<View> {
    let (tx, rx) = oneshot::channel();
    events.send(Event::Http(tx)).ok()?;
    tokio::time::timeout(timeout, rx).await.ok()?.ok()
}

/// Counts a connection as open until dropped.
struct Open(Rc<Cell<usize>>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Serves `bound` for as long as the master runs.
pub(crate) async fn serve(
    bound: Bound,
    events: UnboundedSender<Event>,
    messenger: Rc<Messenger>,
    reloads: Rc<Reloads>,
    setup: Option<crate::console::Setup>,
) {
    let addr = bound.addr;
    let listener = match tokio::net::TcpListener::from_std(bound.listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot serve --http on {addr}: {e}; no /metrics, /livez or /readyz");
            return;
        }
    };
    let console = crate::console::Console::new(setup.as_ref());
    let tls = setup.and_then(|s| s.tls);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let paths = if console.is_on() {
        "/ (the web console), /metrics, /livez, /readyz"
    } else {
        "/metrics, /livez, /readyz (no web console: no --http-users)"
    };
    tracing::info!("http on {addr}: {scheme}://{addr} serves {paths}");
    let shared = Rc::new(Shared {
        events,
        messenger,
        reloads,
        console: Rc::new(console),
    });
    let open = Rc::new(Cell::new(0usize));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and the like: wait rather than spin.
                tracing::warn!("--http accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.get() >= MAX_CONNECTIONS {
            // Closed at once: a scraper retries, and the master stays bounded.
            continue;
        }
        open.set(open.get() + 1);
        let guard = Open(open.clone());
        let shared = shared.clone();
        let tls = tls.clone();
        spawn_local(async move {
            let _guard = guard;
            match tls {
                None => connection(stream, peer, shared).await,
                Some(tls) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(HEAD_TIMEOUT, tls.accept(stream)).await
                    {
                        connection(stream, peer, shared).await;
                    }
                }
            }
        });
    }
}

/// A response body: whole, or the console's event stream.
type Body = crate::console::Body;

/// Serves one connection: one request, within [`CONNECTION_LIMIT`] unless its answer is
/// long-lived (the console's event stream, or a command waiting to be done).
async fn connection<S>(stream: S, peer: std::net::SocketAddr, shared: Rc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let long = Rc::new(Cell::new(false));
    let is_long = long.clone();
    let service = service_fn(move |req| {
        let (shared, long) = (shared.clone(), long.clone());
        async move { Ok::<_, Infallible>(route(&shared, req, peer, &long).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .max_buf_size(MAX_HEAD)
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    if tokio::time::timeout(CONNECTION_LIMIT, conn.as_mut())
        .await
        .is_err()
        && is_long.get()
    {
        // The event stream ends with the session or the master; a command within its
        // own timeout.
        let _ = conn.await;
    }
}

/// The router: the console's paths go to [`crate::console`], the rest to [`respond`].
async fn route(
    shared: &Shared,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
    long: &Cell<bool>,
) -> Response<Body> {
    let path = req.uri().path();
    if crate::console::serves(path) {
        // Set first: the connection limit may run out while the answer is awaited.
        long.set(path == "/api/events" || path == "/api/command");
        let handled = crate::console::respond(&shared.console, &shared.events, req, peer).await;
        long.set(handled.long);
        return handled.response;
    }
    respond(shared, &req).await.map(|b| b.boxed_unsync())
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn no_answer() -> Response<Full<Bytes>> {
    reply(
        StatusCode::SERVICE_UNAVAILABLE,
        TEXT,
        format!(
            "the master's run loop did not answer within {} ms\n",
            ASK_TIMEOUT.as_millis()
        ),
    )
}

/// The read-only paths (`/metrics`, `/livez`, `/readyz`) and what answers them; [`route`]
/// sends the console's paths to [`crate::console`] first.
async fn respond(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/livez" | "/readyz") {
        return reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: clutch serves /metrics, /livez and /readyz\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "only GET and HEAD are served\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let Some(view) = shared.ask().await else {
        return no_answer();
    };
    match path {
        "/livez" => reply(StatusCode::OK, TEXT, "ok\n"),
        "/readyz" => match view.readiness() {
            Ok(()) => reply(StatusCode::OK, TEXT, "ready\n"),
            Err(why) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                format!("not ready: {why}\n"),
            ),
        },
        _ => {
            let m = &shared.messenger;
            let text = super::exposition::render(
                &view,
                &m.metrics().snapshot(),
                m.monitor(),
                &shared.reloads,
            );
            reply(StatusCode::OK, OPENMETRICS, text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn a_run_loop_that_does_not_answer_in_time_is_no_answer() {
        let (events, mut inbox) = tokio::sync::mpsc::unbounded_channel();
        runtime().block_on(async {
            // The loop takes the question and sits on it.
            let asked = ask(&events, Duration::from_millis(50)).await;
            assert!(asked.is_none());
            assert!(matches!(inbox.try_recv(), Ok(Event::Http(_))));
        });
    }

    #[test]
    fn a_run_loop_that_has_ended_is_no_answer() {
        let (events, inbox) = tokio::sync::mpsc::unbounded_channel::<Event>();
        drop(inbox);
        assert!(runtime().block_on(ask(&events, ASK_TIMEOUT)).is_none());
    }
}
