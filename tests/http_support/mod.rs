//! What the `--http` tests share: starting clutch with `--http 127.0.0.1:0` and finding
//! the port it logged, raw requests, and parsing `/metrics` with a real OpenMetrics parser
//! (the Python `prometheus_client` package's, which `.ci/run` installs).
#![allow(dead_code)]

use crate::common::net::{Response, get_from, source};
use crate::common::{Clutch, DEADLINE, clutch_start, fixture};
use serde_json::Value;
use std::io::{Read, Write};
use std::time::Duration;

/// `clutch start -w WORKERS --http 127.0.0.1:0` plus `flags`, with the fixture as the app
/// (with `app_args`) and no agent, and a parent channel; waited until ready. Returns clutch
/// and the HTTP port it logged.
pub fn start_with_http(workers: usize, flags: &[&str], app_args: &[&str]) -> (Clutch, u16) {
    let w = workers.to_string();
    let mut args = vec!["-w", &w, "--no-agent", "--http", "127.0.0.1:0"];
    args.extend_from_slice(flags);
    args.push("--");
    args.push(fixture());
    args.extend_from_slice(app_args);
    let mut c = Clutch::spawn_with_parent(clutch_start(&args));
    c.expect_ready(DEADLINE);
    let port = http_port(&c);
    (c, port)
}

/// The port in clutch's `http on 127.0.0.1:PORT` log line.
pub fn http_port(c: &Clutch) -> u16 {
    let line = c
        .stderr
        .wait_for_line(DEADLINE, |l| l.contains("http on 127.0.0.1:"))
        .unwrap_or_else(|| panic!("no `http on` line; stderr:\n{}", c.stderr.text()));
    let rest = &line[line.find("http on 127.0.0.1:").unwrap() + "http on 127.0.0.1:".len()..];
    rest.split(|ch: char| !ch.is_ascii_digit())
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

/// `GET path` on a fresh connection.
pub fn get(port: u16, path: &str) -> Response {
    get_from(source(1), port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Sends `request` as is on a fresh connection and returns everything the server wrote
/// until it closed.
pub fn raw(port: u16, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type, "unit": f.unit,
                   "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out))
"#;

/// `text` parsed by prometheus_client's OpenMetrics parser (strict: it refuses what
/// Prometheus would): family name → `{"type", "unit", "samples": [[name, labels, value]]}`.
pub fn parse_openmetrics(text: &str) -> Value {
    let mut child = std::process::Command::new("python3")
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("this test needs `python3` on PATH");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "this test needs the Python package prometheus_client (Debian: python3-prometheus-client; \
         or pip install prometheus-client)"
    );
    assert!(out.status.success(), "the OpenMetrics parser refused /metrics: {stderr}\n{text}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `/metrics`, checked and parsed.
pub fn scrape(port: u16) -> Value {
    let r = get(port, "/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"),
        "{}",
        r.head
    );
    parse_openmetrics(&r.body)
}

/// The samples of `family` named `sample` whose labels include `labels` (none when the
/// family is missing).
pub fn values(m: &Value, family: &str, sample: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    let Some(f) = m.get(family) else {
        return Vec::new();
    };
    f["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s[0] == sample && labels.iter().all(|(k, v)| s[1][*k] == *v))
        .map(|s| s[2].as_f64().unwrap())
        .collect()
}

/// The one sample of `family` named `sample` with exactly these labels' values.
pub fn value(m: &Value, family: &str, sample: &str, labels: &[(&str, &str)]) -> f64 {
    let v = values(m, family, sample, labels);
    assert_eq!(
        v.len(),
        1,
        "{family} {sample} {labels:?}: {v:?}; families: {:?}",
        m.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    v[0]
}

/// Polls `/metrics` until `cond` holds on it, or panics naming `what`.
pub fn scrape_until(port: u16, what: &str, mut cond: impl FnMut(&Value) -> bool) -> Value {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let m = scrape(port);
        if cond(&m) {
            return m;
        }
        assert!(std::time::Instant::now() < end, "no {what} within {DEADLINE:?}: {m}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
