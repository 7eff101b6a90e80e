//! `cargo bench --bench messenger`: the figures in BENCHMARKS.md.
//!
//! 1. Routed throughput: an app worker blasts small messages (~60 bytes of JSON) `to: agent`
//!    through the master; the agent counts them. Beside it, the same blaster and counter
//!    over a direct socketpair: the ceiling. Both counters time from their first byte to
//!    their last message.
//! 2. Round trip app → agent → app through the master (library workers on both ends).
//! 3. Startup: `start()` to `cluster-ready`, an agent and 4 trivial workers.
//! 4. Master RSS with 16 workers (the `clutch` binary, its VmRSS once ready).
//! 5. Request/reply round trip app -> agent -> app through the master (`Worker::request`,
//!    `Worker::reply`).
//!
//! `BENCH_ONLY=throughput,request` (any of throughput, rtt, startup, rss, request) runs a
//! subset; `BENCH_ONLY=header` times `Header::parse` of the throughput line alone, in
//! process (the master's per-line parse, without sockets or scheduling noise).
//!
//! The bench re-executes itself as the workers (`BENCH_ROLE` in the environment).

mod common;

use clutch::worker::Worker;
use clutch::{Endpoint, Master, Message};
use hdrhistogram::Histogram;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MESSAGES: u64 = 5_000_000;
const ROUND_TRIPS: u64 = 20_000;
const STARTUPS: usize = 30;

/// ~60 bytes of JSON, as an app worker would send it (the master adds `"from":"app",`).
const LINE: &[u8] =
    b"{\"action\":\"tick\",\"data\":{\"seq\":123456,\"ok\":true},\"to\":\"agent\"}\n";

fn main() {
    match std::env::var("BENCH_ROLE").as_deref() {
        Ok("throughput") if std::env::var("CLUTCH_ROLE").as_deref() == Ok("app") => {
            return blast_worker();
        }
        Ok("throughput") => return count_worker(),
        Ok("direct-blast") => return direct_blast(),
        Ok("direct-count") => return direct_count(),
        Ok("echo") => return rtt_worker(),
        Ok("trivial") => return trivial_worker(),
        Ok("request") => return request_worker(),
        _ => {}
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("header") {
        return header_parse();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("machine: {}", common::machine());
    println!(
        "message size: {} bytes (routed: {} bytes with the master's from stamp)",
        LINE.len(),
        LINE.len() + 13
    );
    let only = std::env::var("BENCH_ONLY").ok();
    let run = |what: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|x| x == what))
    };
    if run("throughput") {
        let direct = rt.block_on(direct_throughput());
        let routed = rt.block_on(routed_throughput());
        println!(
            "throughput: routed {:.0} msg/s, direct socketpair {:.0} msg/s, routed/direct {:.2}",
            routed,
            direct,
            routed / direct
        );
    }
    if run("rtt") {
        rt.block_on(round_trip());
    }
    if run("startup") {
        rt.block_on(startup());
    }
    if run("rss") {
        rss_with_16_workers();
    }
    if run("request") {
        rt.block_on(request_round_trip());
    }
}

/// Agent: answers every request. App: on `go`, asks the agent [`ROUND_TRIPS`] times in a
/// row and reports the latencies.
fn request_worker() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut w = Worker::from_env().unwrap();
        w.ready();
        while let Some(m) = w.recv().await {
            if m.request_id.is_some() {
                w.reply(&m, json!(null));
                continue;
            }
            if m.action != "go" {
                continue;
            }
            let mut h = Histogram::<u64>::new(3).unwrap();
            for i in 0..ROUND_TRIPS {
                let t = Instant::now();
                let q = Message::new("q", json!(i)).to(Endpoint::Agent);
                w.request(q, Duration::from_secs(10)).await.unwrap();
                h.record(t.elapsed().as_nanos() as u64).unwrap();
            }
            let data = json!({"p50": h.value_at_quantile(0.5), "p99": h.value_at_quantile(0.99), "max": h.max()});
            w.send_to_parent("rtt", data);
        }
    });
}

async fn request_round_trip() {
    let mut m = bench_cluster(1, "request").await;
    m.send(&Message::new("go", json!(null)).to(Endpoint::App));
    let r = m
        .recv_action("rtt", Duration::from_secs(120))
        .await
        .expect("rtt");
    let us = |k: &str| r.data[k].as_u64().unwrap() as f64 / 1000.0;
    println!(
        "request/reply app->agent->app through the master ({ROUND_TRIPS} sequential): p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        us("p50"),
        us("p99"),
        us("max")
    );
    m.shutdown().await.unwrap();
}

fn me() -> String {
    std::env::current_exe()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn channel() -> UnixStream {
    let fd: i32 = std::env::var("CLUTCH_CHANNEL_FD").unwrap().parse().unwrap();
    // SAFETY: the master handed this fd to the process.
    let s = unsafe { UnixStream::from_raw_fd(fd) };
    s.set_nonblocking(false).unwrap();
    s
}

/// Reads lines until one contains `needle`.
fn wait_for(r: &mut impl BufRead, needle: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 {
            std::process::exit(0);
        }
        if line.contains(needle) {
            return;
        }
    }
}

fn batch() -> Vec<u8> {
    let per = 64 * 1024 / LINE.len();
    LINE.repeat(per)
}

fn send_batches(w: &mut impl Write, total: u64) {
    let b = batch();
    let per = (b.len() / LINE.len()) as u64;
    let mut sent = 0;
    while sent + per <= total {
        w.write_all(&b).unwrap();
        sent += per;
    }
    w.write_all(&LINE.repeat((total - sent) as usize)).unwrap();
}

/// Counts `total` newlines from `r`; the time from the first byte to the last line.
fn count_lines(r: &mut impl Read, total: u64) -> Duration {
    let mut buf = vec![0u8; 256 * 1024];
    let mut seen = 0u64;
    let mut start = None;
    while seen < total {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            panic!("channel closed after {seen} of {total} lines");
        }
        start.get_or_insert_with(Instant::now);
        seen += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
    start.unwrap().elapsed()
}

fn blast_worker() {
    let mut ch = channel();
    ch.write_all(b"{\"action\":\"app-start\",\"to\":\"master\"}\n")
        .unwrap();
    let mut r = BufReader::new(ch.try_clone().unwrap());
    wait_for(&mut r, "\"go\"");
    send_batches(&mut ch, MESSAGES);
    wait_for(&mut r, "never");
}

fn count_worker() {
    let mut ch = channel();
    ch.write_all(b"{\"action\":\"agent-start\",\"to\":\"master\"}\n")
        .unwrap();
    let mut r = BufReader::new(ch.try_clone().unwrap());
    wait_for(&mut r, "\"arm\"");
    ch.write_all(b"{\"action\":\"armed\",\"to\":\"parent\"}\n")
        .unwrap();
    let took = count_lines(&mut r, MESSAGES);
    let done = format!(
        "{{\"action\":\"done\",\"to\":\"parent\",\"data\":{}}}\n",
        took.as_nanos()
    );
    ch.write_all(done.as_bytes()).unwrap();
    wait_for(&mut r, "never");
}

fn direct_blast() {
    // SAFETY: fd 3 is the socketpair end the bench passed.
    let mut s = unsafe { UnixStream::from_raw_fd(3) };
    send_batches(&mut s, MESSAGES);
}

fn direct_count() {
    // SAFETY: fd 3 is the socketpair end the bench passed.
    let mut s = unsafe { UnixStream::from_raw_fd(3) };
    let took = count_lines(&mut s, MESSAGES);
    println!("{}", took.as_nanos());
}

async fn direct_throughput() -> f64 {
    use command_fds::{CommandFdExt, FdMapping};
    let (a, b) = UnixStream::pair().unwrap();
    let mut counter = Command::new(me());
    counter
        .env("BENCH_ROLE", "direct-count")
        .stdout(Stdio::piped());
    counter
        .fd_mappings(vec![FdMapping {
            parent_fd: b.into(),
            child_fd: 3,
        }])
        .unwrap();
    let counter = counter.spawn().unwrap();
    let mut blaster = Command::new(me());
    blaster.env("BENCH_ROLE", "direct-blast");
    blaster
        .fd_mappings(vec![FdMapping {
            parent_fd: a.into(),
            child_fd: 3,
        }])
        .unwrap();
    let mut blaster = blaster.spawn().unwrap();
    let out = counter.wait_with_output().unwrap();
    blaster.wait().unwrap();
    let nanos: u64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    MESSAGES as f64 / (nanos as f64 / 1e9)
}

/// A ready cluster of this bench as the agent and `workers` app workers, in `role`.
async fn bench_cluster(workers: usize, role: &str) -> Master {
    let mut m = Master::builder()
        .workers(workers)
        .app([me()])
        .agent([me()])
        .env("BENCH_ROLE", role)
        .start()
        .unwrap();
    m.ready().await.unwrap();
    m
}

async fn routed_throughput() -> f64 {
    let mut m = bench_cluster(1, "throughput").await;
    m.send(&Message::new("arm", json!(null)).to(Endpoint::Agent));
    m.recv_action("armed", Duration::from_secs(10))
        .await
        .expect("armed");
    m.send(&Message::new("go", json!(null)).to(Endpoint::App));
    let done = m
        .recv_action("done", Duration::from_secs(120))
        .await
        .expect("done");
    let nanos = done.data.as_u64().unwrap();
    m.shutdown().await.unwrap();
    MESSAGES as f64 / (nanos as f64 / 1e9)
}

fn rtt_worker() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut w = Worker::from_env().unwrap();
        w.ready();
        match w.role() {
            clutch::Role::Agent => {
                while let Some(m) = w.recv().await {
                    if m.action == "req" {
                        let pid = m.data.as_u64().unwrap() as u32;
                        w.send_to(pid, "res", json!(null));
                    }
                }
            }
            clutch::Role::App => {
                while let Some(m) = w.recv().await {
                    if m.action != "go" {
                        continue;
                    }
                    let mut h = Histogram::<u64>::new(3).unwrap();
                    let me = std::process::id();
                    for _ in 0..ROUND_TRIPS {
                        let t = Instant::now();
                        w.send_to_agent("req", json!(me));
                        loop {
                            let r = w.recv().await.unwrap();
                            if r.action == "res" {
                                break;
                            }
                        }
                        h.record(t.elapsed().as_nanos() as u64).unwrap();
                    }
                    let data = json!({"p50": h.value_at_quantile(0.5), "p99": h.value_at_quantile(0.99), "max": h.max()});
                    w.send_to_parent("rtt", data);
                }
            }
        }
    });
}

async fn round_trip() {
    let mut m = bench_cluster(1, "echo").await;
    m.send(&Message::new("go", json!(null)).to(Endpoint::App));
    let r = m
        .recv_action("rtt", Duration::from_secs(120))
        .await
        .expect("rtt");
    let us = |k: &str| r.data[k].as_u64().unwrap() as f64 / 1000.0;
    println!(
        "round trip app->agent->app through the master ({ROUND_TRIPS} sequential): p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        us("p50"),
        us("p99"),
        us("max")
    );
    m.shutdown().await.unwrap();
}

fn trivial_worker() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut w = Worker::from_env().unwrap();
        w.ready();
        while w.recv().await.is_some() {}
    });
}

async fn startup() {
    let mut times = Vec::new();
    for _ in 0..STARTUPS {
        let t = Instant::now();
        let m = bench_cluster(4, "trivial").await;
        times.push(t.elapsed());
        m.shutdown().await.unwrap();
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "startup to cluster-ready, agent + 4 workers ({STARTUPS} runs): median {:.2} ms, min {:.2} ms, max {:.2} ms",
        ms(times[STARTUPS / 2]),
        ms(times[0]),
        ms(times[STARTUPS - 1])
    );
}

fn rss_with_16_workers() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clutch"))
        .args(["start", "--no-control", "-w", "16", "--no-agent", "--"])
        .arg(me())
        .env("BENCH_ROLE", "trivial")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        if line.contains("ready") && line.contains("16 app worker") {
            break;
        }
        line.clear();
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or("VmRSS: ?")
        .to_string();
    println!(
        "master RSS with 16 app workers: {}",
        rss.trim_start_matches("VmRSS:").trim()
    );
    // SAFETY: SIGTERM to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    child.wait().unwrap();
}

/// The master's per-line parse alone (`Header::parse` of the throughput line), in process.
fn header_parse() {
    let text = std::str::from_utf8(&LINE[..LINE.len() - 1]).unwrap();
    let n = 5_000_000u32;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n {
            let h = clutch::protocol::message::Header::parse(std::hint::black_box(text)).unwrap();
            std::hint::black_box(&h);
        }
        best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    println!(
        "Header::parse of the {}-byte line: {best:.1} ns (best of 5 x {n})",
        text.len()
    );
}
