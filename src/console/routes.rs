//! The console's paths: the page and its assets, login and logout, and the JSON API
//! (`/api/session`, `/api/state`, `/api/events`, `/api/command`).

use super::SharedUsers;
use super::assets;
use super::password;
use super::sessions::{Session, Sessions, same_secret};
use super::stream;
use super::{FAILED_LOGIN_DELAY, Setup};
use crate::control::protocol::Request as CtlRequest;
use crate::control::{Answer, Call, Caller, Cmd, ControlRole};
use crate::master::lifecycle::Event;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

/// A response body: whole, or a stream of server-sent events.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

const COOKIE: &str = "clutch_session";
/// The largest request body read (a login or a command).
const MAX_BODY: usize = 16 * 1024;
/// How long a request body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// Password checks running at once (each takes ~19 MiB and tens of ms of a core); past
/// this a login is told to try again.
const MAX_VERIFYING: usize = 2;
/// Open event streams (pages) at once.
const MAX_STREAMS: usize = 16;
/// How long a command may take before its answer says it is still running.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a list or watch may wait for the run loop.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// The commands the console offers.
const COMMANDS: [&str; 5] = ["restart", "stop", "start", "scale", "reload"];

/// The console's state on the master's thread.
pub(crate) struct Console {
    users: Option<SharedUsers>,
    pub(super) sessions: RefCell<Sessions>,
    /// Served over TLS: cookies are `Secure`, origins `https://`.
    secure: bool,
    /// Password checks running on the blocking pool; counted down by the check itself, so
    /// a client that hangs up mid-check does not free its place while it still runs.
    verifying: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub(super) streams: Cell<usize>,
}

impl Console {
    pub(crate) fn new(setup: Option<&Setup>) -> Console {
        Console {
            users: setup.and_then(|s| s.users.clone()),
            sessions: RefCell::default(),
            secure: setup.is_some_and(|s| s.tls.is_some()),
            verifying: Default::default(),
            streams: Cell::new(0),
        }
    }

    pub(crate) fn is_on(&self) -> bool {
        self.users.is_some()
    }

    /// `name` as the users file says now (it is re-read on a reload).
    fn user(&self, name: &str) -> Option<super::users::User> {
        let users = self.users.as_ref()?.read().ok()?;
        users.get(name).cloned()
    }

    /// Whether `session`'s user is still in the users file with the role and password it
    /// logged in with.
    pub(super) fn still_valid(&self, session: &Session) -> bool {
        self.user(&session.user)
            .is_some_and(|u| u.role == session.role && u.hash == session.hash)
    }
}

/// Whether `path` is the console's (served even when the console is off, to say so).
pub(crate) fn serves(path: &str) -> bool {
    path == "/"
        || path == "/login"
        || path == "/logout"
        || path.starts_with("/api/")
        || path.starts_with("/console/")
}

/// What the connection must know about a response: an event stream or a long command
/// outlives the endpoint's connection limit.
pub(crate) struct Handled {
    pub response: Response<Body>,
    pub long: bool,
}

fn whole(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

fn html(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = whole(status, "text/html; charset=utf-8", body);
    r.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}

fn json_reply(status: StatusCode, v: &Value) -> Response<Body> {
    whole(status, "application/json", v.to_string())
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_reply(status, &json!({"ok": false, "error": message}))
}

fn redirect(to: &'static str) -> Response<Body> {
    let mut r = whole(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

fn short(response: Response<Body>) -> Handled {
    Handled {
        response,
        long: false,
    }
}

/// Answers a request for one of the console's paths.
pub(crate) async fn respond(
    console: &Rc<Console>,
    events: &UnboundedSender<Event>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Handled {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if console.users.is_none() {
        return short(html(StatusCode::NOT_FOUND, assets::OFF_HTML));
    }
    let get = method == Method::GET || method == Method::HEAD;
    match (path.as_str(), get) {
        ("/console/console.js", true) => {
            return short(whole(
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                assets::CONSOLE_JS,
            ));
        }
        ("/console/login.js", true) => {
            return short(whole(
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                assets::LOGIN_JS,
            ));
        }
        ("/console/console.css", true) => {
            return short(whole(
                StatusCode::OK,
                "text/css; charset=utf-8",
                assets::CONSOLE_CSS,
            ));
        }
        ("/login", true) => return short(html(StatusCode::OK, assets::LOGIN_HTML)),
        ("/login", false) if method == Method::POST => {
            return short(login(console, req, peer).await);
        }
        _ => {}
    }
    let token = cookie(req.headers()).unwrap_or_default();
    let session = console
        .sessions
        .borrow_mut()
        .touch(&token, Instant::now())
        .filter(|s| {
            let valid = console.still_valid(s);
            if !valid {
                tracing::info!(
                    target: "clutch::audit",
                    "audit: web user {}'s session ended: the users file changed",
                    s.user
                );
            }
            valid
        });
    let Some(session) = session else {
        console.sessions.borrow_mut().close(&token);
        return short(match (path.as_str(), get) {
            ("/", true) => redirect("/login"),
            _ => error(StatusCode::UNAUTHORIZED, "log in first: POST /login"),
        });
    };
    if !get {
        if method != Method::POST {
            return short(error(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST"));
        }
        if let Err(why) = cross_site(req.headers(), console.secure, &session) {
            tracing::info!(
                target: "clutch::audit",
                "audit: web user {} {path} from {peer}: refused: {why}",
                session.user
            );
            return short(error(StatusCode::FORBIDDEN, &why));
        }
    }
    let caller = Caller::web(&session.user);
    match (path.as_str(), get) {
        ("/", true) => short(html(StatusCode::OK, assets::INDEX_HTML)),
        ("/api/session", true) => short(json_reply(
            StatusCode::OK,
            &json!({
                "user": session.user,
                "role": session.role.as_str(),
                "csrf": session.csrf,
                "commands": COMMANDS.iter().filter(|c| may(session.role, c)).collect::<Vec<_>>(),
            }),
        )),
        ("/api/state", true) => short(match ask(events, Cmd::List, &caller).await {
            Some(Answer::Done(Ok(v))) => json_reply(StatusCode::OK, &v),
            _ => error(StatusCode::SERVICE_UNAVAILABLE, "the master did not answer"),
        }),
        ("/api/events", true) => {
            if console.streams.get() >= MAX_STREAMS {
                return short(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("too many open consoles (at most {MAX_STREAMS}); close one"),
                ));
            }
            let body = stream::open(console.clone(), events.clone(), token, session.user);
            let mut r = Response::new(BodyExt::boxed_unsync(body));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Handled {
                response: r,
                long: true,
            }
        }
        ("/api/command", false) => Handled {
            response: command(events, req, &session, &caller).await,
            long: true,
        },
        ("/logout", false) => {
            console.sessions.borrow_mut().close(&token);
            tracing::info!(target: "clutch::audit", "audit: web user {} logged out from {peer}", session.user);
            let mut r = json_reply(StatusCode::OK, &json!({"ok": true}));
            r.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&set_cookie("", console.secure, 0)).expect("ascii"),
            );
            short(r)
        }
        _ => short(error(StatusCode::NOT_FOUND, "not a console path")),
    }
}

/// Whether a user of `role` may run the console command `name` (for the page's buttons;
/// each request is checked again with the command's own [`Cmd::needs`]).
fn may(role: ControlRole, name: &str) -> bool {
    let sample = json!({"target": "all", "workers": "+1"});
    command_of(name, &sample).is_ok_and(|c| role >= c.needs())
}

/// Parses a console command with the control protocol's own parser.
fn command_of(name: &str, args: &Value) -> Result<Cmd, String> {
    if !COMMANDS.contains(&name) {
        return Err(format!(
            "`{name}` is not a console command; use {} (the others are for clutch ctl)",
            COMMANDS.join(", ")
        ));
    }
    CtlRequest {
        id: 0,
        cmd: name.to_string(),
        args: args.clone(),
    }
    .command()
}

/// Sends `cmd` to the run loop as `caller` and waits for its answer (a bounded time).
pub(super) async fn ask(
    events: &UnboundedSender<Event>,
    cmd: Cmd,
    caller: &Caller,
) -> Option<Answer> {
    let (tx, rx) = oneshot::channel();
    let wait = if cmd.changes_state() {
        COMMAND_TIMEOUT
    } else {
        ASK_TIMEOUT
    };
    let call = Call {
        cmd,
        caller: caller.clone(),
    };
    events.send(Event::Control(call, tx)).ok()?;
    tokio::time::timeout(wait, rx).await.ok()?.ok()
}

#[derive(Deserialize)]
struct CommandBody {
    cmd: String,
    #[serde(default)]
    args: Value,
}

async fn command(
    events: &UnboundedSender<Event>,
    req: Request<Incoming>,
    session: &Session,
    caller: &Caller,
) -> Response<Body> {
    let body: CommandBody = match read_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let cmd = match command_of(&body.cmd, &body.args) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    if session.role < cmd.needs() {
        let e = format!(
            "permission denied: web user {} may not `{}` (it needs the {} role; {} is a {})",
            session.user,
            cmd.name(),
            cmd.needs().as_str(),
            session.user,
            session.role.as_str()
        );
        tracing::info!(target: "clutch::audit", "audit: {caller} {}: refused: {e}", cmd.name());
        return error(StatusCode::FORBIDDEN, &e);
    }
    match ask(events, cmd, caller).await {
        Some(Answer::Done(Ok(v))) => json_reply(StatusCode::OK, &json!({"ok": true, "result": v})),
        Some(Answer::Done(Err(e))) => error(StatusCode::CONFLICT, &e),
        // The reload goes on; its steps arrive on the event stream (reload.* events).
        Some(Answer::Reload(_progress)) => json_reply(
            StatusCode::ACCEPTED,
            &json!({"ok": true, "result": "reload started"}),
        ),
        Some(Answer::Watch { .. } | Answer::Reply { .. } | Answer::Logs { .. }) => {
            error(StatusCode::BAD_REQUEST, "not a command")
        }
        None => error(
            StatusCode::GATEWAY_TIMEOUT,
            "no answer yet: the command may still be running; watch the events",
        ),
    }
}

#[derive(Deserialize)]
struct LoginBody {
    user: String,
    password: String,
}

async fn login(console: &Rc<Console>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    if let Err(why) = foreign_origin(req.headers(), console.secure) {
        tracing::info!(target: "clutch::audit", "audit: web login from {peer}: refused: {why}");
        return error(StatusCode::FORBIDDEN, &why);
    }
    let body: LoginBody = match read_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    use std::sync::atomic::Ordering;
    // Counted down when the check ends, on the blocking pool: dropping this future (the
    // client hung up) does not stop the check, so it must not free the place either.
    struct Verifying(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Verifying {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    if console
        .verifying
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < MAX_VERIFYING).then_some(n + 1)
        })
        .is_err()
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many logins at once; try again in a moment",
        );
    }
    let counted = Verifying(console.verifying.clone());
    let user = console.user(&body.user);
    let hash = user
        .as_ref()
        .map_or_else(|| password::decoy().to_string(), |u| u.hash.clone());
    let password_given = body.password;
    let ok = tokio::task::spawn_blocking(move || {
        let _counted = counted;
        password::verify(&password_given, &hash)
    })
    .await
    .unwrap_or(false);
    let shown: String = body.user.chars().take(64).collect();
    match user {
        Some(u) if ok => {
            let token =
                console
                    .sessions
                    .borrow_mut()
                    .open(&body.user, u.role, &u.hash, Instant::now());
            tracing::info!(
                target: "clutch::audit",
                "audit: web user {shown} logged in from {peer} as {}",
                u.role.as_str()
            );
            let mut r = json_reply(
                StatusCode::OK,
                &json!({"ok": true, "user": body.user, "role": u.role.as_str()}),
            );
            let max_age = super::sessions::ABSOLUTE.as_secs();
            r.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&set_cookie(&token, console.secure, max_age)).expect("hex"),
            );
            r
        }
        _ => {
            tracing::warn!(
                target: "clutch::audit",
                "audit: web login as {shown:?} from {peer}: refused: wrong user name or password"
            );
            tokio::time::sleep(FAILED_LOGIN_DELAY).await;
            error(StatusCode::UNAUTHORIZED, "wrong user name or password")
        }
    }
}

fn set_cookie(token: &str, secure: bool, max_age: u64) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The session token from the `Cookie` headers.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Refuses a POST that a page of another site could have sent: a foreign `Origin`, or no
/// CSRF token of this session.
fn cross_site(headers: &HeaderMap, secure: bool, session: &Session) -> Result<(), String> {
    foreign_origin(headers, secure)?;
    let token = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .ok_or("no X-CSRF-Token header: reload the page")?;
    if !same_secret(token, &session.csrf) {
        return Err("the X-CSRF-Token is not this session's: reload the page".into());
    }
    Ok(())
}

/// An `Origin` (browsers send it on every POST) must be this server's own, as the `Host`
/// header names it.
fn foreign_origin(headers: &HeaderMap, secure: bool) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            None | Some("same-origin") | Some("none") => Ok(()),
            Some(other) => Err(format!("a {other} request is refused")),
        };
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or("no Host header")?;
    let scheme = if secure { "https" } else { "http" };
    if origin.to_str().ok() == Some(&format!("{scheme}://{host}")) {
        Ok(())
    } else {
        Err(format!(
            "a request from origin {:?} is refused: the console only takes requests from its own pages",
            origin
        ))
    }
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes, sent as `application/json` (which a
/// cross-site form cannot send without a CORS preflight).
async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<T, Response<Body>> {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as application/json",
        ));
    }
    let collected = tokio::time::timeout(
        BODY_TIMEOUT,
        Limited::new(req.into_body(), MAX_BODY).collect(),
    )
    .await;
    let bytes = match collected {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(_)) => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is over {MAX_BODY} bytes"),
            ));
        }
        Err(_) => {
            return Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "the body came too slowly",
            ));
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("bad JSON body: {e}")))
}
