//! What the web console tests share: a users file with real argon2 hashes, a master with
//! `--http 127.0.0.1:0 --http-users FILE`, raw HTTP requests with cookies, and logging in.
#![allow(dead_code)]

pub mod cdp;

use crate::common::{Clutch, DEADLINE, clutch_start, fixture};
use crate::http_support::http_port;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;

/// The password of every test user.
pub const PASSWORD: &str = "correct horse battery staple";

/// Writes a users file (JSON) with `users` (name, role), each with [`PASSWORD`].
pub fn users_file(dir: &tempfile::TempDir, users: &[(&str, &str)]) -> PathBuf {
    let hash = clutch::console::password::hash(PASSWORD).unwrap();
    let list: Vec<Value> = users
        .iter()
        .map(|(name, role)| serde_json::json!({"name": name, "role": role, "hash": hash}))
        .collect();
    let path = dir.path().join("users.json");
    std::fs::write(&path, serde_json::json!({ "users": list }).to_string()).unwrap();
    path
}

/// `clutch start -w WORKERS --http 127.0.0.1:0 --http-users FILE` plus `flags` (fixture
/// app, no agent), waited until ready; returns it and the port.
pub fn start_console(workers: usize, users: &std::path::Path, flags: &[&str]) -> (Clutch, u16) {
    let w = workers.to_string();
    let users = users.to_str().unwrap();
    let mut args = vec![
        "-w",
        &w,
        "--no-agent",
        "--http",
        "127.0.0.1:0",
        "--http-users",
        users,
    ];
    args.extend_from_slice(flags);
    args.push("--");
    args.push(fixture());
    let mut c = Clutch::spawn_with_parent(clutch_start(&args));
    c.expect_ready(DEADLINE);
    let port = http_port(&c);
    (c, port)
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// A header's value (the first), by lower-case name.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
        })
    }
}

/// Sends one request (`headers` as `Name: value` lines) and reads the answer to the end.
pub fn request(port: u16, method: &str, path: &str, headers: &[String], body: &str) -> Answer {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut text =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    text.push_str(body);
    s.write_all(text.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse(&out)
}

pub fn parse(out: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)
    } else {
        body.to_string()
    };
    Answer {
        status,
        head: head.to_string(),
        body,
    }
}

fn unchunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `POST /login`; the answer.
pub fn try_login(port: u16, user: &str, password: &str) -> Answer {
    let body = serde_json::json!({"user": user, "password": password}).to_string();
    request(
        port,
        "POST",
        "/login",
        &["Content-Type: application/json".into()],
        &body,
    )
}

/// A logged-in session: its cookie header and CSRF token.
pub struct Login {
    pub cookie: String,
    pub csrf: String,
}

/// Logs `user` in with [`PASSWORD`].
pub fn login(port: u16, user: &str) -> Login {
    let a = try_login(port, user, PASSWORD);
    assert_eq!(a.status, 200, "{a:?}");
    let set = a.header("set-cookie").expect("a session cookie");
    let cookie = format!("Cookie: {}", set.split(';').next().unwrap());
    let s = request(
        port,
        "GET",
        "/api/session",
        std::slice::from_ref(&cookie),
        "",
    );
    assert_eq!(s.status, 200, "{s:?}");
    Login {
        cookie,
        csrf: s.json()["csrf"].as_str().unwrap().to_string(),
    }
}

impl Login {
    /// `POST /api/command` with this session's cookie and CSRF token, plus `extra` headers.
    pub fn command(&self, port: u16, cmd: &str, args: Value, extra: &[String]) -> Answer {
        let mut headers = vec![
            self.cookie.clone(),
            format!("X-CSRF-Token: {}", self.csrf),
            "Content-Type: application/json".to_string(),
        ];
        headers.extend_from_slice(extra);
        let body = serde_json::json!({"cmd": cmd, "args": args}).to_string();
        request(port, "POST", "/api/command", &headers, &body)
    }

    /// `GET /api/state`: the same JSON as `clutch ctl list --json`.
    pub fn state(&self, port: u16) -> Value {
        let a = request(
            port,
            "GET",
            "/api/state",
            std::slice::from_ref(&self.cookie),
            "",
        );
        assert_eq!(a.status, 200, "{a:?}");
        a.json()
    }
}

/// The pid of slot `slot` in a `list`.
pub fn pid_of(list: &Value, slot: u64) -> Option<u64> {
    list["workers"]
        .as_array()?
        .iter()
        .find(|w| w["id"] == slot && w["state"] == "ready")
        .and_then(|w| w["pid"].as_u64())
}
