//! `cargo bench --bench http`: what `--http` costs the master, for BENCHMARKS.md.
//!
//! The `clutch` binary runs 64 fixture app workers (`clutch-fixture`), no agent:
//! 1. the cost of one `/metrics` scrape: 100 scrapes one after another (after 5 to warm
//!    up), the time each takes as the client sees it, and the master's CPU time over them
//!    (utime + stime from /proc/<pid>/stat, and schedstat's time on CPU, every thread);
//! 2. the master's CPU over 30 s once ready: without `--http`, with it and not scraped, and
//!    with it scraped every second.
//!
//! `BENCH_SECONDS` and `BENCH_WORKERS` change the defaults.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{cpu_seconds, on_cpu_seconds};

fn cpu(pid: u32) -> (f64, f64) {
    (cpu_seconds(pid), on_cpu_seconds(pid))
}

/// Starts the master and waits until its workers are ready; its HTTP port, if `http`.
fn start(workers: usize, http: bool) -> (Child, Option<u16>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clutch"));
    cmd.args([
        "start",
        "--no-control",
        "--no-agent",
        "-w",
        &workers.to_string(),
    ]);
    if http {
        cmd.args(["--http", "127.0.0.1:0"]);
    }
    let mut child = cmd
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_clutch-fixture"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let mut port = None;
    while err.read_line(&mut line).unwrap() > 0 {
        if let Some(i) = line.find("http on 127.0.0.1:") {
            let rest = &line[i + "http on 127.0.0.1:".len()..];
            port = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|p| p.parse().ok());
        }
        if line.contains("ready") && line.contains(&format!("{workers} app worker")) {
            break;
        }
        line.clear();
    }
    // Keep reading its stderr so that it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    assert!(!http || port.is_some(), "no `http on` line");
    (child, port)
}

fn stop(mut child: Child) {
    // SAFETY: kill(2) on the child this program started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
}

/// One `GET /metrics`; the body's length.
fn scrape(port: u16) -> usize {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    out.len()
}

fn scrape_cost(workers: usize) {
    let (child, port) = start(workers, true);
    let (pid, port) = (child.id(), port.unwrap());
    // Let the monitor sample every worker once, so that every series is there.
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..5 {
        scrape(port);
    }
    // The master's CPU while idle (the monitor samples 64 workers every second), taken
    // out of the scrapes' figure.
    let idle = Duration::from_secs(3);
    let (before, t) = (cpu(pid), Instant::now());
    std::thread::sleep(idle);
    let (after, idle_secs) = (cpu(pid), t.elapsed().as_secs_f64());
    let idle_rate = (
        (after.0 - before.0) / idle_secs,
        (after.1 - before.1) / idle_secs,
    );
    let n = 100;
    let started = Instant::now();
    let before = cpu(pid);
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let t = Instant::now();
        bytes = scrape(port);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let after = cpu(pid);
    let took = started.elapsed().as_secs_f64();
    stop(child);
    let per_scrape = |after: f64, before: f64, idle: f64| {
        ((after - before) - idle * took).max(0.0) * 1000.0 / n as f64
    };
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "/metrics with {workers} app workers ({bytes} bytes): {n} scrapes one after another, \
         per scrape: median {:.2} ms, p90 {:.2} ms, max {:.2} ms (client-side); master CPU \
         per scrape, its idle CPU taken out: {:.2} ms (utime+stime) / {:.2} ms (schedstat)",
        times[n / 2],
        times[n * 9 / 10],
        times[n - 1],
        per_scrape(after.0, before.0, idle_rate.0),
        per_scrape(after.1, before.1, idle_rate.1),
    );
}

/// The master's CPU over `secs` once ready: without `--http` (`None`), or with it, scraped
/// every `scrape_every` (never, with `Some(None)`).
fn idle_cost(workers: usize, secs: u64, http: Option<Option<Duration>>) -> (f64, f64) {
    let (child, port) = start(workers, http.is_some());
    let pid = child.id();
    let before = cpu(pid);
    let end = Instant::now() + Duration::from_secs(secs);
    let every = http.flatten();
    while Instant::now() < end {
        if let (Some(port), Some(_)) = (port, every) {
            scrape(port);
        }
        std::thread::sleep(every.unwrap_or(Duration::from_secs(1)));
    }
    let after = cpu(pid);
    stop(child);
    (after.0 - before.0, after.1 - before.1)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: u64 = std::env::var("BENCH_SECONDS").map_or(30, |s| s.parse().unwrap());
    let workers: usize = std::env::var("BENCH_WORKERS").map_or(64, |s| s.parse().unwrap());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {}; load average: {}",
        common::machine(),
        load.trim()
    );
    scrape_cost(workers);
    let runs = [
        ("without --http", idle_cost(workers, secs, None)),
        ("--http, not scraped", idle_cost(workers, secs, Some(None))),
        (
            "--http scraped every 1 s",
            idle_cost(workers, secs, Some(Some(Duration::from_secs(1)))),
        ),
    ];
    for (what, pick) in [
        (
            "utime+stime",
            (|c: (f64, f64)| c.0) as fn((f64, f64)) -> f64,
        ),
        ("schedstat", |c: (f64, f64)| c.1),
    ] {
        let figures: Vec<String> = runs
            .iter()
            .map(|(name, c)| {
                let s = pick(*c);
                format!(
                    "{name} {:.1} ms ({:.3} %)",
                    s * 1000.0,
                    s / secs as f64 * 100.0
                )
            })
            .collect();
        println!(
            "master CPU over {secs} s, {workers} app workers ({what}): {}",
            figures.join(", ")
        );
    }
}
