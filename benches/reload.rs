//! `cargo bench --bench reload`: rolling reloads under continuous load lose no request.
//!
//! For each listener mode (the shared listening socket of `-p 0`, sticky, reuseport;
//! `RELOAD_BENCH_MODES=shared,sticky` picks some) a cluster of
//! [`WORKERS`] `clutch-fixture http graceful` app workers (no agent) is started through the
//! library, and client threads in this process keep it busy:
//! - [`FRESH_LOOPS`] loops open a fresh connection per request (`connection: close`, read
//!   to the end, SO_LINGER 0 so no TIME_WAIT piles up);
//! - [`KEEPALIVE_LOOPS`] loops reuse one connection, and open another when a response says
//!   `connection: close` (as the graceful worker's responses do once it drains).
//!
//! A request fails when its connect fails, or when it was sent (or its sending failed) and
//! no complete `200` came back: nothing is retried. Sources rotate over
//! 127.0.0.2..=127.0.0.250 so the sticky hash spreads clients over every slot.
//!
//! After a warm-up, a baseline window without reloads gives p50/p99 latency and req/s;
//! then [`RELOADS`] consecutive `Master::reload(1)` run under the same load, then a short
//! tail while the last old workers drain. Printed: failed requests (target 0), requests
//! served, wall time per reload and per slot (`ReloadEvent::Slot::ready_in`), and p99
//! during the reloads against the baseline's (target ≤ 1.5×).
//!
//! Each mode runs twice: first saturating (every loop sends its next request as soon as
//! the last is answered: the load above), then paced at half the rate the saturating
//! baseline reached (each loop waits for its next tick), so that the cost of starting new
//! workers is not hidden behind cores already fully busy. Latency is counted from sending
//! (fresh: from connecting), per kind of loop and in all.
//!
//! `RELOAD_BENCH_WORKER="http"` runs the workers as plain `clutch-fixture http` (they die on
//! SIGTERM at once): the bench then shows what a worker that does not drain loses.
//!
//! The master runs in a process of its own (this bench re-run with `--master-child`), as
//! `clutch start` would: the load generator's threads then pay nothing for its forks.
//!
//! Caveat: the load generator, the master and the workers share the machine's cores, so
//! latency includes waiting for a core; the load average is printed with the figures.

mod common;

use clutch::{Master, ReloadEvent};
use hdrhistogram::Histogram;
use socket2::{Domain, SockAddr, Socket, Type};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

const WORKERS: usize = 4;
const FRESH_LOOPS: usize = 16;
const KEEPALIVE_LOOPS: usize = 4;
const RELOADS: usize = 10;
const WARMUP: Duration = Duration::from_secs(1);
const BASELINE: Duration = Duration::from_secs(3);
/// Load kept on after the last reload, while its old workers drain.
const TAIL: Duration = Duration::from_secs(1);
/// Every client loop stops after this many requests or this long, whatever happens.
const MAX_REQUESTS_PER_LOOP: u64 = 2_000_000;
const MAX_LOOP_TIME: Duration = Duration::from_secs(180);
const READY_DEADLINE: Duration = Duration::from_secs(30);
const RELOAD_DEADLINE: Duration = Duration::from_secs(30);
const STOP_DEADLINE: Duration = Duration::from_secs(20);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_SOURCE: u8 = 2;
const LAST_SOURCE: u8 = 250;
/// Failure reasons kept per mode, to say why requests failed.
const KEPT_REASONS: usize = 8;
/// The paced pass runs at this share of the saturating baseline's rate.
const PACED_SHARE: f64 = 0.5;
/// Kinds of client loop, for the latency split.
const FRESH: usize = 0;
const KEEPALIVE: usize = 1;

/// Which window a request started in.
const WARMING: u8 = 0;
const BEFORE: u8 = 1;
const DURING: u8 = 2;
const AFTER: u8 = 3;
const STOPPED: u8 = 4;
const WINDOWS: usize = 4;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Shared,
    Sticky,
    Reuseport,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Shared => "shared listener",
            Mode::Sticky => "sticky",
            Mode::Reuseport => "reuseport",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Mode::Shared => "shared",
            Mode::Sticky => "sticky",
            Mode::Reuseport => "reuseport",
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.iter().any(|a| a == "--list") {
        return;
    }
    if argv.get(1).map(String::as_str) == Some(MASTER_CHILD) {
        return master_child(&argv[2], &argv[3..]);
    }
    let worker = std::env::var("RELOAD_BENCH_WORKER").unwrap_or_else(|_| "http graceful".into());
    println!("machine: {}", common::machine());
    println!(
        "cluster: {WORKERS} `clutch-fixture {worker}` app workers, no agent; load: \
         {FRESH_LOOPS} fresh-connection loops + {KEEPALIVE_LOOPS} keep-alive loops; \
         {:.0} s warm-up, {:.0} s baseline, {RELOADS} x reload(1), {:.0} s tail",
        WARMUP.as_secs_f64(),
        BASELINE.as_secs_f64(),
        TAIL.as_secs_f64()
    );
    let mut results = Vec::new();
    let args: Vec<&str> = worker.split_whitespace().collect();
    let modes = match std::env::var("RELOAD_BENCH_MODES") {
        Ok(list) => list
            .split(',')
            .filter_map(|m| {
                [Mode::Shared, Mode::Sticky, Mode::Reuseport]
                    .into_iter()
                    .find(|x| x.flag() == m.trim())
            })
            .collect(),
        Err(_) => vec![Mode::Shared, Mode::Sticky, Mode::Reuseport],
    };
    for mode in modes {
        println!(
            "\n== {}, saturating (load average before: {})",
            mode.name(),
            loadavg()
        );
        let saturating = run(mode, &args, None);
        saturating.print();
        let per_loop =
            saturating.rate(BEFORE) * PACED_SHARE / (FRESH_LOOPS + KEEPALIVE_LOOPS) as f64;
        let pace = Duration::from_secs_f64(1.0 / per_loop.max(1.0));
        println!(
            "\n== {}, paced: {:.0} req/s in all, one request per {:.2} ms per loop (load average \
             before: {})",
            mode.name(),
            per_loop * (FRESH_LOOPS + KEEPALIVE_LOOPS) as f64,
            ms(pace),
            loadavg()
        );
        let paced = run(mode, &args, Some(pace));
        paced.print();
        results.push(saturating);
        results.push(paced);
    }
    println!("\nload average at the end: {}", loadavg());
    for pair in results.chunks(2) {
        println!("\n{}", summary(pair));
    }
}

/// What one mode measured.
struct Run {
    mode: Mode,
    paced: bool,
    clients: Clients,
    windows: [Duration; WINDOWS],
    /// Wall time of each `reload(1)` call, and the `took` it reported.
    reloads: Vec<(Duration, Duration)>,
    /// `ready_in` of every slot of every reload.
    slots: Vec<Duration>,
    reload_errors: Vec<String>,
    /// Old workers still alive at the end of the tail.
    draining_after_tail: usize,
    leftover: Vec<u32>,
}

fn run(mode: Mode, args: &[&str], pace: Option<Duration>) -> Run {
    let (mut master, port) = MasterProcess::start(mode, args);
    let mut pids: BTreeSet<u32> = master.workers().iter().map(|w| w.0).collect();

    let window = Arc::new(AtomicU8::new(WARMING));
    let threads: Vec<_> = (0..FRESH_LOOPS + KEEPALIVE_LOOPS)
        .map(|i| {
            let window = window.clone();
            let keepalive = i >= FRESH_LOOPS;
            std::thread::spawn(move || client_loop(i, keepalive, port, &window, pace))
        })
        .collect();

    let mut windows = [Duration::ZERO; WINDOWS];
    let mut mark = Instant::now();
    let mut next = |w: u8, windows: &mut [Duration; WINDOWS]| {
        let now = Instant::now();
        windows[window.load(Ordering::SeqCst) as usize] = now - mark;
        mark = now;
        window.store(w, Ordering::SeqCst);
    };
    std::thread::sleep(WARMUP);
    next(BEFORE, &mut windows);
    std::thread::sleep(BASELINE);
    next(DURING, &mut windows);
    let mut reloads = Vec::new();
    let mut slots = Vec::new();
    let mut reload_errors = Vec::new();
    for _ in 0..RELOADS {
        match master.reload() {
            Ok((wall, took, ready_in)) => {
                reloads.push((wall, took));
                slots.extend(ready_in);
            }
            Err(e) => reload_errors.push(e),
        }
        pids.extend(master.workers().iter().map(|w| w.0));
        if !reload_errors.is_empty() {
            break;
        }
    }
    next(AFTER, &mut windows);
    let workers = master.workers();
    let newest = workers.iter().map(|w| w.1).max().unwrap_or(0);
    let current: BTreeSet<u32> = workers
        .iter()
        .filter(|w| w.1 == newest)
        .map(|w| w.0)
        .collect();
    std::thread::sleep(TAIL);
    let draining_after_tail = pids
        .iter()
        .filter(|p| !current.contains(p) && alive(**p))
        .count();
    next(STOPPED, &mut windows);
    let mut clients = Clients::default();
    for t in threads {
        clients.merge(t.join().expect("a client thread"));
    }
    pids.extend(master.workers().iter().map(|w| w.0));
    pids.insert(master.child.id());
    master.stop();
    let deadline = Instant::now() + STOP_DEADLINE;
    let mut leftover: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    while !leftover.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        leftover.retain(|p| alive(*p));
    }
    Run {
        mode,
        paced: pace.is_some(),
        clients,
        windows,
        reloads,
        slots,
        reload_errors,
        draining_after_tail,
        leftover,
    }
}

/// The master, in a process of its own (this bench re-run with [`MASTER_CHILD`]), as
/// `clutch start` runs it: forked from the load generator's process, each new worker would
/// make its 20 client threads take copy-on-write faults, and the figures would be the
/// bench's. It takes one command a line on stdin and answers one line on stdout; at end of
/// file on stdin it shuts the cluster down.
struct MasterProcess {
    child: std::process::Child,
    to: std::process::ChildStdin,
    from: std::io::BufReader<std::process::ChildStdout>,
}

const MASTER_CHILD: &str = "--master-child";

impl MasterProcess {
    fn start(mode: Mode, args: &[&str]) -> (MasterProcess, u16) {
        use std::process::{Command, Stdio};
        let mut child = Command::new(std::env::current_exe().expect("this bench's path"))
            .arg(MASTER_CHILD)
            .arg(mode.flag())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the master process starts");
        let to = child.stdin.take().expect("piped");
        let from = std::io::BufReader::new(child.stdout.take().expect("piped"));
        let mut m = MasterProcess { child, to, from };
        let port = m
            .answer()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .expect("the master process says its port");
        (m, port)
    }

    fn answer(&mut self) -> String {
        use std::io::BufRead;
        let mut line = String::new();
        self.from
            .read_line(&mut line)
            .expect("the master process answers");
        assert!(!line.is_empty(), "the master process ended");
        line.trim_end().to_string()
    }

    fn ask(&mut self, command: &str) -> String {
        writeln!(self.to, "{command}").expect("the master process reads its commands");
        self.answer()
    }

    /// (wall time of `reload(1)`, the `took` it reported, each slot's `ready_in`).
    #[allow(clippy::type_complexity)]
    fn reload(&mut self) -> Result<(Duration, Duration, Vec<Duration>), String> {
        let line = self.ask("reload");
        let Some(rest) = line.strip_prefix("reloaded ") else {
            return Err(line);
        };
        let us: Vec<Duration> = rest
            .split_whitespace()
            .map(|n| Duration::from_micros(n.parse().expect("microseconds")))
            .collect();
        Ok((us[0], us[1], us[2..].to_vec()))
    }

    /// (pid, generation) of every live worker.
    fn workers(&mut self) -> Vec<(u32, u64)> {
        let line = self.ask("workers");
        line.split_whitespace()
            .skip(1)
            .filter_map(|w| {
                let (pid, generation) = w.split_once(':')?;
                Some((pid.parse().ok()?, generation.parse().ok()?))
            })
            .collect()
    }

    fn stop(mut self) {
        let _ = writeln!(self.to, "stop");
        let _ = self.answer();
        let _ = self.child.wait();
    }
}

/// The master process's side (see [`MasterProcess`]).
fn master_child(mode: &str, args: &[String]) {
    use std::io::BufRead;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (tx, mut commands) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rt.block_on(async move {
        let command =
            std::iter::once(env!("CARGO_BIN_EXE_clutch-fixture").to_string()).chain(args.to_vec());
        let mut b = Master::builder()
            .app(command)
            .workers(WORKERS)
            .port(0)
            .host("127.0.0.1")
            .ready_timeout(Duration::from_secs(20))
            .kill_timeout(Duration::from_secs(10));
        match mode {
            "sticky" => b = b.sticky(),
            "reuseport" => b = b.reuseport(),
            _ => {}
        }
        let mut m = b.start().expect("the cluster starts");
        let info = tokio::time::timeout(READY_DEADLINE, m.ready())
            .await
            .expect("the cluster is ready in time")
            .expect("the cluster is ready");
        println!("port {}", info.port.expect("a port"));
        while let Some(command) = commands.recv().await {
            match command.as_str() {
                "reload" => {
                    let started = Instant::now();
                    match tokio::time::timeout(RELOAD_DEADLINE, m.reload(1)).await {
                        Ok(Ok(events)) => {
                            let wall = started.elapsed();
                            let mut took = Duration::ZERO;
                            let mut slots = Vec::new();
                            for e in events {
                                match e {
                                    ReloadEvent::Slot { ready_in, .. } => slots.push(ready_in),
                                    ReloadEvent::Completed { took: t, .. } => took = t,
                                    _ => {}
                                }
                            }
                            let slots: Vec<String> =
                                slots.iter().map(|d| d.as_micros().to_string()).collect();
                            println!(
                                "reloaded {} {} {}",
                                wall.as_micros(),
                                took.as_micros(),
                                slots.join(" ")
                            );
                        }
                        Ok(Err(e)) => println!("failed {}", e.replace('\n', " ")),
                        Err(_) => println!("failed: no answer in {RELOAD_DEADLINE:?}"),
                    }
                }
                "workers" => {
                    let workers: Vec<String> = m
                        .workers()
                        .iter()
                        .map(|w| format!("{}:{}", w.pid, w.generation))
                        .collect();
                    println!("workers {}", workers.join(" "));
                }
                _ => break,
            }
        }
        if tokio::time::timeout(STOP_DEADLINE, m.shutdown())
            .await
            .is_err()
        {
            eprintln!("the cluster did not stop in {STOP_DEADLINE:?}; its workers are killed");
        }
        println!("stopped");
    });
}

fn alive(pid: u32) -> bool {
    // A zombie still answers kill(0); /proc says whether it is one.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// What the client loops saw, by window.
struct Clients {
    latency: Vec<Histogram<u64>>,
    ok: [u64; WINDOWS],
    failed: [u64; WINDOWS],
    reasons: Vec<String>,
    keepalive_ok: u64,
    reconnects: u64,
}

impl Default for Clients {
    fn default() -> Clients {
        Clients {
            latency: (0..WINDOWS * 2)
                .map(|_| Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds"))
                .collect(),
            ok: [0; WINDOWS],
            failed: [0; WINDOWS],
            reasons: Vec::new(),
            keepalive_ok: 0,
            reconnects: 0,
        }
    }
}

impl Clients {
    fn merge(&mut self, other: Clients) {
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            a.add(b).expect("same bounds");
        }
        for w in 0..WINDOWS {
            self.ok[w] += other.ok[w];
            self.failed[w] += other.failed[w];
        }
        for r in other.reasons {
            if self.reasons.len() < KEPT_REASONS {
                self.reasons.push(r);
            }
        }
        self.keepalive_ok += other.keepalive_ok;
        self.reconnects += other.reconnects;
    }

    /// Latency of the requests of `window`, of one kind of loop or (`None`) of all.
    fn latency(&self, window: u8, kind: Option<usize>) -> Histogram<u64> {
        let w = window as usize;
        match kind {
            Some(k) => self.latency[w * 2 + k].clone(),
            None => {
                let mut h = self.latency[w * 2].clone();
                h.add(&self.latency[w * 2 + 1]).expect("same bounds");
                h
            }
        }
    }

    fn record(&mut self, window: u8, kind: usize, started: Instant, result: Result<(), String>) {
        let w = window as usize;
        match result {
            Ok(()) => {
                self.ok[w] += 1;
                let us = started.elapsed().as_micros().max(1) as u64;
                let _ = self.latency[w * 2 + kind].record(us.min(60_000_000));
            }
            Err(why) => {
                self.failed[w] += 1;
                if self.reasons.len() < KEPT_REASONS {
                    let name = ["warm-up", "before", "during", "after"][w];
                    self.reasons.push(format!("{name}: {why}"));
                }
            }
        }
    }
}

/// One client loop, until the window says stop (or its own bounds).
fn client_loop(
    index: usize,
    keepalive: bool,
    port: u16,
    window: &AtomicU8,
    pace: Option<Duration>,
) -> Clients {
    let mut c = Clients::default();
    let started = Instant::now();
    let kind = if keepalive { KEEPALIVE } else { FRESH };
    // Paced loops start spread over one interval, so their ticks do not come together.
    let mut tick = pace.map(|p| Instant::now() + p.mul_f64(index as f64 / 20.0));
    let span = u32::from(LAST_SOURCE - FIRST_SOURCE) + 1;
    let mut source = index as u32;
    let mut next_source = move || {
        source = (source + 7) % span;
        FIRST_SOURCE + source as u8
    };
    let mut conn: Option<TcpStream> = None;
    for _ in 0..MAX_REQUESTS_PER_LOOP {
        let w = window.load(Ordering::SeqCst);
        if w == STOPPED || started.elapsed() > MAX_LOOP_TIME {
            break;
        }
        if let (Some(at), Some(p)) = (tick.as_mut(), pace) {
            let now = Instant::now();
            if *at > now {
                std::thread::sleep(*at - now);
            }
            // A late loop skips the ticks it missed rather than bursting to catch up.
            *at = (*at + p).max(Instant::now());
        }
        let w = window.load(Ordering::SeqCst);
        if w == STOPPED {
            break;
        }
        let t = Instant::now();
        if !keepalive {
            let r = fresh_request(next_source(), port);
            c.record(w, kind, t, r);
            continue;
        }
        if conn.is_none() {
            match connect(next_source(), port) {
                Ok(s) => {
                    c.reconnects += 1;
                    conn = Some(s);
                }
                Err(e) => {
                    c.record(w, kind, t, Err(format!("keep-alive connect: {e}")));
                    continue;
                }
            }
        }
        let stream = conn.as_mut().expect("connected above");
        match keepalive_request(stream) {
            Ok(keep) => {
                c.keepalive_ok += 1;
                c.record(w, kind, t, Ok(()));
                if !keep {
                    conn = None;
                }
            }
            Err(e) => {
                c.record(w, kind, t, Err(e));
                conn = None;
            }
        }
    }
    c
}

fn connect(from: u8, port: u16) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SockAddr::from(SocketAddrV4::new(
        Ipv4Addr::new(127, 0, 0, from),
        0,
    )))?;
    // RST on close: the loops open thousands of connections a second.
    socket.set_linger(Some(Duration::ZERO))?;
    socket.set_tcp_nodelay(true)?;
    let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    socket.connect_timeout(&SockAddr::from(to), IO_TIMEOUT)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// `GET /` on a fresh connection, read until the server closes.
fn fresh_request(from: u8, port: u16) -> Result<(), String> {
    let mut s = connect(from, port).map_err(|e| format!("connect: {e}"))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("fresh write: {e}"))?;
    let mut raw = Vec::with_capacity(256);
    s.read_to_end(&mut raw)
        .map_err(|e| format!("fresh read: {e} after {} bytes", raw.len()))?;
    let (_, body_at, length) = parse_head(&raw).ok_or_else(|| {
        format!(
            "fresh: no complete response ({} bytes: {:?})",
            raw.len(),
            String::from_utf8_lossy(&raw)
        )
    })?;
    if raw.len() - body_at != length {
        return Err(format!(
            "fresh: body of {} bytes, content-length {length}",
            raw.len() - body_at
        ));
    }
    Ok(())
}

/// `GET /` on a kept connection; whether the server keeps it open after.
fn keepalive_request(s: &mut TcpStream) -> Result<bool, String> {
    s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        .map_err(|e| format!("keep-alive write: {e}"))?;
    let mut raw = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some((close, body_at, length)) = parse_head(&raw)
            && raw.len() >= body_at + length
        {
            if raw.len() > body_at + length {
                return Err("keep-alive: bytes past the response".into());
            }
            return Ok(!close);
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                return Err(format!(
                    "keep-alive: closed after {} bytes of the response",
                    raw.len()
                ));
            }
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) => {
                return Err(format!(
                    "keep-alive read: {e} after {} bytes of the response",
                    raw.len()
                ));
            }
        }
    }
}

/// A `200` response head in `raw`: (says `connection: close`, where the body starts,
/// content-length).
fn parse_head(raw: &[u8]) -> Option<(bool, usize, usize)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200 ") {
        return None;
    }
    let mut length = None;
    let mut close = false;
    for line in head.lines().skip(1) {
        let (k, v) = line.split_once(':')?;
        match (k.trim(), v.trim()) {
            ("content-length", v) => length = v.parse().ok(),
            ("connection", "close") => close = true,
            _ => {}
        }
    }
    Some((close, end + 4, length?))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pct(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1e3
}

impl Run {
    fn name(&self) -> String {
        format!(
            "{}, {}",
            self.mode.name(),
            if self.paced { "paced" } else { "saturating" }
        )
    }

    fn rate(&self, w: u8) -> f64 {
        let w = w as usize;
        (self.clients.ok[w] + self.clients.failed[w]) as f64 / self.windows[w].as_secs_f64()
    }

    fn failed(&self) -> u64 {
        self.clients.failed.iter().sum()
    }

    fn p99(&self, w: u8) -> f64 {
        pct(&self.clients.latency(w, None), 0.99)
    }

    fn p99_ratio(&self) -> f64 {
        self.p99(DURING) / self.p99(BEFORE)
    }

    fn reload_mean(&self) -> Duration {
        let total: Duration = self.reloads.iter().map(|r| r.0).sum();
        total / self.reloads.len().max(1) as u32
    }

    fn reload_max(&self) -> Duration {
        self.reloads.iter().map(|r| r.0).max().unwrap_or_default()
    }

    fn slot_mean(&self) -> Duration {
        self.slots.iter().sum::<Duration>() / self.slots.len().max(1) as u32
    }

    fn print(&self) {
        let c = &self.clients;
        for (w, name) in [(BEFORE, "before (no reload)"), (DURING, "during reloads")] {
            println!(
                "  {name:<19} {:>5.2} s {:>7} ok {:>3} failed {:>6.0} req/s",
                self.windows[w as usize].as_secs_f64(),
                c.ok[w as usize],
                c.failed[w as usize],
                self.rate(w),
            );
            for (kind, label) in [
                (None, "all"),
                (Some(FRESH), "fresh"),
                (Some(KEEPALIVE), "keep-alive"),
            ] {
                let h = c.latency(w, kind);
                println!(
                    "      {label:<11} p50 {:>6.2} ms  p99 {:>6.2} ms  p99.9 {:>7.2} ms  max {:>7.2} ms",
                    pct(&h, 0.5),
                    pct(&h, 0.99),
                    pct(&h, 0.999),
                    h.max() as f64 / 1e3,
                );
            }
        }
        println!(
            "  failed: {} in all (warm-up {}, before {}, during {}, after {}); served {} \
             ({} on keep-alive connections, {} keep-alive connections opened)",
            self.failed(),
            c.failed[0],
            c.failed[1],
            c.failed[2],
            c.failed[3],
            c.ok.iter().sum::<u64>(),
            c.keepalive_ok,
            c.reconnects
        );
        for r in &c.reasons {
            println!("    {r}");
        }
        println!(
            "  reloads: {} of {RELOADS} completed; wall per reload mean {:.0} ms, max {:.0} ms \
             (the master's own `took`: mean {:.0} ms); per slot ready_in mean {:.1} ms, max \
             {:.1} ms ({} slots)",
            self.reloads.len(),
            ms(self.reload_mean()),
            ms(self.reload_max()),
            ms(self.reloads.iter().map(|r| r.1).sum::<Duration>()
                / self.reloads.len().max(1) as u32),
            ms(self.slot_mean()),
            self.slots.iter().max().map_or(0.0, |d| ms(*d)),
            self.slots.len()
        );
        println!(
            "  old workers still draining {:.0} s after the last reload: {}",
            TAIL.as_secs_f64(),
            self.draining_after_tail
        );
        for e in &self.reload_errors {
            println!("  reload error: {e}");
        }
        if !self.leftover.is_empty() {
            println!("  PROCESSES LEFT BEHIND: {:?}", self.leftover);
        }
    }
}

fn summary(runs: &[Run]) -> String {
    type Cell = fn(&Run) -> String;
    let lines: [(&str, Cell); 10] = [
        ("failed requests (target 0)", |r| r.failed().to_string()),
        ("served during the reloads", |r| {
            r.clients.ok[DURING as usize].to_string()
        }),
        ("req/s before / during", |r| {
            format!("{:.0} / {:.0}", r.rate(BEFORE), r.rate(DURING))
        }),
        ("p50 before / during (ms)", |r| {
            format!(
                "{:.2} / {:.2}",
                pct(&r.clients.latency(BEFORE, None), 0.5),
                pct(&r.clients.latency(DURING, None), 0.5)
            )
        }),
        ("p99 before / during (ms)", |r| {
            format!("{:.2} / {:.2}", r.p99(BEFORE), r.p99(DURING))
        }),
        ("p99 during / before (target <= 1.5)", |r| {
            format!("{:.2}", r.p99_ratio())
        }),
        ("reload of 4 slots, mean / max (ms)", |r| {
            format!("{:.0} / {:.0}", ms(r.reload_mean()), ms(r.reload_max()))
        }),
        ("per slot ready_in, mean (ms)", |r| {
            format!("{:.1}", ms(r.slot_mean()))
        }),
        ("old workers draining after 1 s", |r| {
            r.draining_after_tail.to_string()
        }),
        ("targets: 0 failed / <= 1 s / <= 1.5x", |r| {
            format!(
                "{} / {} / {}",
                yes(r.failed() == 0 && r.reload_errors.is_empty()),
                yes(r.reloads.len() == RELOADS && r.reload_max() <= Duration::from_secs(1)),
                yes(r.p99_ratio() <= 1.5)
            )
        }),
    ];
    let mut out = format!("| {:<37} |", "");
    for r in runs {
        out.push_str(&format!(" {:>26} |", r.name()));
    }
    out.push_str(&format!("\n|{:-<39}|", ""));
    for _ in runs {
        out.push_str(&format!("{:-<28}|", ""));
    }
    out.push('\n');
    for (name, cell) in lines {
        out.push_str(&format!("| {name:<37} |"));
        for r in runs {
            out.push_str(&format!(" {:>26} |", cell(r)));
        }
        out.push('\n');
    }
    out
}

fn yes(ok: bool) -> String {
    if ok { "yes".into() } else { "NO".into() }
}
