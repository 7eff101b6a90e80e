//! `cargo bench --bench sticky`: what the sticky master costs, beside workers that accept
//! for themselves.
//!
//! The same cluster three ways: `clutch start -w 2 --no-agent -p 0 --host 127.0.0.1` running
//! the demo HTTP worker (`clutch demo-worker`), with `--reuseport` (each worker accepts on
//! its own SO_REUSEPORT socket; the kernel spreads connections: the direct ceiling), with
//! `--sticky --sticky-mode kernel` (a socket per worker, a BPF program in the kernel picks
//! it by client address: the master does nothing per connection) and with `--sticky
//! --sticky-mode handoff` (the master accepts every connection and hands it to a worker over
//! its channel with SCM_RIGHTS).
//!
//! 1. New connections per second: client threads in this process loop on a fresh TCP
//!    connection per request (connect, `GET /`, read the whole response, close with
//!    SO_LINGER 0 so no TIME_WAIT piles up). Sources rotate over 1,024 addresses spread
//!    over 127/8, so the sticky hashes spread them over both workers.
//! 2. CPU per connection: utime + stime from `/proc/<pid>/stat` of the master, of its
//!    workers and of this process, sampled around the measured interval; beside it, how
//!    busy the rest of the box was (`/proc/stat`), since that load skews the rates.
//!
//! Each mode runs twice (direct, kernel, handoff, handoff, kernel, direct: 1 s warm-up, 4 s
//! measured, a fresh cluster each time); the totals pool both. `STICKY_BENCH_CLIENTS=N`
//! changes the number of client threads.
//!
//! 3. Affinity stability (kernel steering, 4 demo workers run by the library's `Master`):
//!    which worker each of 1,024 client addresses reaches, before and after slot 2 stops,
//!    after it starts again, and after scaling to 5; the fraction of clients that changed
//!    worker each time.
//!
//! 3. Node workers (when `node` is on PATH): the sticky master in Node's handle dialect
//!    (`NODE_HANDLE`, one in flight, `NODE_HANDLE_ACK`), with
//!    fixtures/node_sticky_worker.js (a worker written as for egg-cluster's sticky mode),
//!    twice more. `STICKY_BENCH_ONLY=node` runs only these; `STICKY_BENCH_ONLY=rust` skips
//!    them.
//!
//! Caveat: on a small machine the load generator, the workers and the master share the
//! cores, so the figures are those of the whole box, not of clutch alone. CPU times come
//! in clock ticks (usually 10 ms); the tick count is printed beside each per-connection
//! figure so its resolution shows.

#[path = "sticky/affinity.rs"]
mod affinity;
mod common;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const WARMUP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(4);
/// Each mode twice, in an order that cancels a steady drift of the box's other load.
const ORDER: [Mode; 6] = [
    Mode::Direct,
    Mode::Kernel,
    Mode::Handoff,
    Mode::Handoff,
    Mode::Kernel,
    Mode::Direct,
];
/// Client threads; `STICKY_BENCH_CLIENTS` overrides it.
const CLIENTS: usize = 4;
const WORKERS: usize = 2;
const READY_DEADLINE: Duration = Duration::from_secs(20);
const STOP_DEADLINE: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
/// Client source addresses, spread over 127/8 by [`source`].
const SOURCES: usize = 1024;

const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPED: u8 = 2;

#[derive(Clone, Copy)]
enum Mode {
    Direct,
    Kernel,
    Handoff,
    /// `--sticky` (master handoff) with Node workers: the master speaks Node's handle
    /// dialect.
    HandoffNode,
}

impl Mode {
    fn flags(self) -> &'static [&'static str] {
        match self {
            Mode::Direct => &["--reuseport"],
            Mode::Kernel => &["--sticky", "--sticky-mode", "kernel"],
            Mode::Handoff | Mode::HandoffNode => &["--sticky", "--sticky-mode", "handoff"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Direct => "direct (reuseport)",
            Mode::Kernel => "sticky, kernel-steered",
            Mode::Handoff => "sticky, master handoff",
            Mode::HandoffNode => "sticky, master handoff, Node workers",
        }
    }
}

/// The `i`-th client address: 127.a.b.c, spread over 127/8 (never .0 nor .255).
fn source(i: usize) -> Ipv4Addr {
    let n = (i as u32).wrapping_mul(2_654_435_761);
    Ipv4Addr::new(127, (n >> 24) as u8, (n >> 16) as u8, (n % 250) as u8 + 2)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let clients = std::env::var("STICKY_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CLIENTS);
    println!("machine: {}", common::machine());
    println!(
        "cluster: {WORKERS} demo app workers, --no-agent; load: {clients} client threads, a new \
         connection per request, {:.0} s warm-up, {:.0} s measured",
        WARMUP.as_secs_f64(),
        MEASURE.as_secs_f64()
    );
    println!(
        "note: the load generator runs on the same cores as the master and the workers; it \
         competes with them for CPU, so rates are those of the whole box"
    );
    let only = std::env::var("STICKY_BENCH_ONLY").ok();
    let node = only.as_deref() != Some("rust") && have_node();
    let mut order: Vec<Mode> = if only.as_deref() == Some("node") {
        Vec::new()
    } else {
        ORDER.to_vec()
    };
    if node {
        order.extend([Mode::HandoffNode, Mode::HandoffNode]);
    }
    let mut direct = Vec::new();
    let mut kernel = Vec::new();
    let mut handoff = Vec::new();
    let mut handoff_node = Vec::new();
    for (round, mode) in order.into_iter().enumerate() {
        let f = run(round + 1, mode, clients);
        match mode {
            Mode::Direct => direct.push(f),
            Mode::Kernel => kernel.push(f),
            Mode::Handoff => handoff.push(f),
            Mode::HandoffNode => handoff_node.push(f),
        }
    }
    if !handoff_node.is_empty() {
        let n = Figures::total(&handoff_node);
        println!(
            "total, master handoff with Node workers: {:.0} conn/s; master CPU per handed-off \
             connection {:.2} us (target < 15 us)",
            n.rate(),
            n.master_us()
        );
        if only.as_deref() == Some("node") {
            println!("failed requests: {}", n.errors);
            return;
        }
    }
    let direct = Figures::total(&direct);
    let kernel = Figures::total(&kernel);
    let handoff = Figures::total(&handoff);
    println!(
        "total: direct {:.0} conn/s, kernel-steered {:.0} conn/s ({:.2} of direct, target >= \
         0.95), master handoff {:.0} conn/s ({:.2} of direct)",
        direct.rate(),
        kernel.rate(),
        kernel.rate() / direct.rate(),
        handoff.rate(),
        handoff.rate() / direct.rate()
    );
    println!(
        "master CPU per connection: kernel-steered {:.3} us (target ~0), master handoff {:.2} \
         us, reuseport {:.3} us",
        kernel.master_us(),
        handoff.master_us(),
        direct.master_us()
    );
    let errors =
        direct.errors + kernel.errors + handoff.errors + Figures::total(&handoff_node).errors;
    println!("failed requests: {errors}");
    affinity::run();
}

/// One run's figures, or the sum of several.
#[derive(Default)]
struct Figures {
    completed: u64,
    errors: u64,
    elapsed: Duration,
    master_ticks: u64,
    /// The master's on-CPU time in ns, from the scheduler (`/proc/<pid>/task/*/schedstat`):
    /// exact, where ticks are sampled.
    master_ns: u64,
    workers_ticks: u64,
    load_ticks: u64,
    /// Busy ticks of the whole box, all cores.
    box_ticks: u64,
}

impl Figures {
    fn total(runs: &[Figures]) -> Figures {
        let mut t = Figures::default();
        for f in runs {
            t.completed += f.completed;
            t.errors += f.errors;
            t.elapsed += f.elapsed;
            t.master_ticks += f.master_ticks;
            t.master_ns += f.master_ns;
            t.workers_ticks += f.workers_ticks;
            t.load_ticks += f.load_ticks;
            t.box_ticks += f.box_ticks;
        }
        t
    }

    fn rate(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64()
    }

    fn per_conn_us(&self, ticks: u64) -> f64 {
        ticks as f64 / clock_ticks_per_sec() * 1e6 / self.completed.max(1) as f64
    }

    fn master_us(&self) -> f64 {
        self.master_ns as f64 / 1e3 / self.completed.max(1) as f64
    }

    /// Cores kept busy by `ticks` over the interval.
    fn cores(&self, ticks: u64) -> f64 {
        ticks as f64 / clock_ticks_per_sec() / self.elapsed.as_secs_f64()
    }
}

fn run(round: usize, mode: Mode, clients: usize) -> Figures {
    let cluster = Cluster::start(mode);
    let workers = worker_pids(cluster.pid);
    let phase = AtomicU8::new(WARMING);
    let (loads, before, after, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|t| {
                let phase = &phase;
                let port = cluster.port;
                s.spawn(move || client(t, clients, port, phase))
            })
            .collect();
        std::thread::sleep(WARMUP);
        let before = Cpu::sample(cluster.pid, &workers);
        let start = Instant::now();
        phase.store(MEASURING, Ordering::SeqCst);
        std::thread::sleep(MEASURE);
        phase.store(STOPPED, Ordering::SeqCst);
        let elapsed = start.elapsed();
        let after = Cpu::sample(cluster.pid, &workers);
        let loads: Vec<Load> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (loads, before, after, elapsed)
    });
    let notes = cluster.notes();
    let status = cluster.stop();

    let mut total = Load::default();
    for l in loads {
        total.completed += l.completed;
        total.errors += l.errors;
        for (a, b) in total.by_worker.iter_mut().zip(l.by_worker) {
            *a += b;
        }
        total.first_error = total.first_error.or(l.first_error);
    }
    let f = Figures {
        completed: total.completed,
        errors: total.errors,
        elapsed,
        master_ticks: after.master - before.master,
        master_ns: after.master_ns - before.master_ns,
        workers_ticks: after.workers - before.workers,
        load_ticks: after.load - before.load,
        box_ticks: after.busy - before.busy,
    };
    let spread: Vec<String> = total
        .by_worker
        .iter()
        .map(|n| format!("{:.0}%", 100.0 * *n as f64 / f.completed.max(1) as f64))
        .collect();
    let ours = f.master_ticks + f.workers_ticks + f.load_ticks;
    println!(
        "run {round}, {}: {:.0} conn/s ({} in {:.2} s), errors {}, workers' shares {}",
        mode.name(),
        f.rate(),
        f.completed,
        f.elapsed.as_secs_f64(),
        f.errors,
        spread.join("/")
    );
    println!(
        "  CPU per connection: master {:.2} us (schedstat; {:.2} us by {} ticks), workers {:.2} us, \
         load generator {:.2} us; cores busy: {:.2} by the bench, {:.2} by the rest of the box",
        f.master_us(),
        f.per_conn_us(f.master_ticks),
        f.master_ticks,
        f.per_conn_us(f.workers_ticks),
        f.per_conn_us(f.load_ticks),
        f.cores(ours),
        f.cores(f.box_ticks.saturating_sub(ours))
    );
    if let Some(e) = total.first_error {
        println!("  first error: {e}");
    }
    for n in notes {
        println!("  clutch said: {n}");
    }
    match status {
        Some(s) if s.success() => {}
        Some(s) => println!("  clutch exited with {s}"),
        None => println!("  clutch did not stop within {STOP_DEADLINE:?} of SIGTERM; killed"),
    }
    f
}

// The load generator.

#[derive(Default)]
struct Load {
    /// Requests answered while measuring.
    completed: u64,
    /// Failed requests, in any phase.
    errors: u64,
    /// Answered while measuring, by the worker id in the body.
    by_worker: [u64; WORKERS],
    first_error: Option<String>,
}

/// Requests one connection at a time until the phase is `STOPPED`.
fn client(t: usize, clients: usize, port: u16, phase: &AtomicU8) -> Load {
    let mut load = Load::default();
    let mut buf = vec![0u8; 4096];
    // Threads start spread over the sources so they do not walk them in lockstep.
    let mut i = t * SOURCES / clients;
    loop {
        let now = phase.load(Ordering::Relaxed);
        if now == STOPPED {
            return load;
        }
        let src = source(i % SOURCES);
        i += 1;
        match request(port, src, &mut buf) {
            Ok(id) => {
                if phase.load(Ordering::Relaxed) == MEASURING {
                    load.completed += 1;
                    if let Some(n) = (id as usize)
                        .checked_sub(1)
                        .and_then(|k| load.by_worker.get_mut(k))
                    {
                        *n += 1;
                    }
                }
            }
            Err(e) => {
                load.errors += 1;
                load.first_error.get_or_insert(format!("from {src}: {e}"));
            }
        }
    }
}

/// One `GET /` on a fresh connection from `src`; the worker id in the answer.
pub(crate) fn request(port: u16, src: Ipv4Addr, buf: &mut [u8]) -> Result<u32, String> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| format!("socket: {e}"))?;
    s.set_linger(Some(Duration::ZERO))
        .map_err(|e| format!("SO_LINGER: {e}"))?;
    bind_address_no_port(&s).map_err(|e| format!("IP_BIND_ADDRESS_NO_PORT: {e}"))?;
    s.bind(&SockAddr::from(SocketAddrV4::new(src, 0)))
        .map_err(|e| format!("bind: {e}"))?;
    s.connect(&SockAddr::from(SocketAddrV4::new(
        Ipv4Addr::LOCALHOST,
        port,
    )))
    .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
    let mut s = TcpStream::from(s);
    s.write_all(REQUEST).map_err(|e| format!("write: {e}"))?;
    let mut filled = 0;
    let mut want = None;
    loop {
        if let Some(w) = want
            && filled >= w
        {
            break;
        }
        if filled == buf.len() {
            return Err(format!("response longer than {} bytes", buf.len()));
        }
        match s.read(&mut buf[filled..]) {
            Ok(0) => return Err(format!("closed after {filled} bytes")),
            Ok(n) => filled += n,
            Err(e) => return Err(format!("read after {filled} bytes: {e}")),
        }
        if want.is_none()
            && let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n")
        {
            want = Some(end + 4 + content_length(&buf[..end])?);
        }
    }
    let text = String::from_utf8_lossy(&buf[..filled]);
    if !text.starts_with("HTTP/1.1 200 ") {
        return Err(format!("unexpected response: {text:?}"));
    }
    // The demo worker says `hello from app worker N `; the Node fixture answers `{"id":N,...`.
    let id = text
        .split_once("hello from app worker ")
        .or_else(|| text.split_once("{\"id\":"))
        .and_then(|(_, r)| r.split([' ', ',']).next())
        .and_then(|id| id.parse().ok());
    Ok(id.unwrap_or(0))
}

/// Whether `node` runs here (the Node rounds are skipped otherwise, and say so).
fn have_node() -> bool {
    let ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("node is not on PATH: the rounds with Node workers are skipped");
    }
    ok
}

fn content_length(head: &[u8]) -> Result<usize, String> {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| "response without a content-length".to_string())
}

/// Lets `connect` pick the source port, so `bind` to an address does not reserve one.
fn bind_address_no_port(s: &Socket) -> std::io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid socket fd and an int option of the size given.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

// The cluster under test.

/// A running `clutch start`; stopped with SIGTERM when dropped (SIGKILL if it lingers), so
/// a panicking bench leaves no process behind. The master's guard kills its workers.
struct Cluster {
    child: Child,
    pid: u32,
    port: u16,
    /// Warnings and errors clutch logged after it was ready.
    notes: Arc<Mutex<Vec<String>>>,
}

impl Cluster {
    fn start(mode: Mode) -> Cluster {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clutch"));
        // SAFETY: only prctl, async-signal-safe, runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // A bench killed outright still takes its clutch along.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        cmd.args([
            "start",
            "--no-control",
            "-w",
            &WORKERS.to_string(),
            "--no-agent",
        ])
        .args(mode.flags())
        .args(["-p", "0", "--host", "127.0.0.1"]);
        if let Mode::HandoffNode = mode {
            let script = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/node_sticky_worker.js"
            );
            cmd.args(["--", "node", script]);
        }
        let mut child = cmd
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("CLUTCH_CHANNEL_FD")
            .env_remove("NODE_CHANNEL_FD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run the clutch binary");
        let pid = child.id();
        let stderr = child.stderr.take().unwrap();
        let notes = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let sink = notes.clone();
        std::thread::spawn(move || drain(stderr, ready_tx, sink));
        let mut cluster = Cluster {
            child,
            pid,
            port: 0,
            notes,
        };
        match ready_rx.recv_timeout(READY_DEADLINE) {
            Ok(Ok(port)) => cluster.port = port,
            Ok(Err(before)) => panic!("clutch {} never got ready; stderr:\n{before}", mode.name()),
            Err(_) => panic!("clutch {} not ready within {READY_DEADLINE:?}", mode.name()),
        }
        cluster
    }

    fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }

    /// SIGTERM, then waits; `None` if it had to be killed.
    fn stop(mut self) -> Option<ExitStatus> {
        self.terminate()
    }

    fn terminate(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(s)) = self.child.try_wait() {
            return Some(s);
        }
        // SAFETY: a signal to our own child, not yet reaped, so its pid is still ours.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        let end = Instant::now() + STOP_DEADLINE;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Reads clutch's stderr to the end: sends the port of the `ready at` line (or, if the pipe
/// closes first, all that was said), then keeps warnings and errors.
fn drain(
    stderr: impl Read,
    ready: mpsc::Sender<Result<u16, String>>,
    notes: Arc<Mutex<Vec<String>>>,
) {
    const NEEDLE: &str = "ready at 127.0.0.1:";
    let mut r = BufReader::new(stderr);
    let mut before = String::new();
    let mut line = String::new();
    let mut ready = Some(ready);
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if ready.is_some() {
            before.push_str(&line);
            let port = line
                .split_once(NEEDLE)
                .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|p| p.parse::<u16>().ok());
            if let Some(port) = port {
                let _ = ready.take().unwrap().send(Ok(port));
            }
        } else if line.contains("WARN") || line.contains("ERROR") {
            let mut notes = notes.lock().unwrap();
            if notes.len() < 10 {
                notes.push(line.trim_end().to_string());
            }
        }
    }
    if let Some(ready) = ready {
        let _ = ready.send(Err(before));
    }
}

// CPU time from /proc.

struct Cpu {
    master: u64,
    master_ns: u64,
    workers: u64,
    load: u64,
    /// Non-idle ticks of every core (`/proc/stat`).
    busy: u64,
}

impl Cpu {
    fn sample(master: u32, workers: &[u32]) -> Cpu {
        Cpu {
            master: ticks(&master.to_string()),
            master_ns: on_cpu_ns(master),
            workers: workers.iter().map(|p| ticks(&p.to_string())).sum(),
            load: ticks("self"),
            busy: box_busy(),
        }
    }
}

/// user + nice + system + irq + softirq + steal of the `cpu` line of `/proc/stat`.
fn box_busy() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| v.get(i)).sum()
}

/// utime + stime of `/proc/<pid>/stat`, in clock ticks (0 if it is gone).
fn ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name (which may hold spaces) start at field 3, the state.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// Time on CPU in ns of every thread of `pid` (the first field of each task's schedstat).
fn on_cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum()
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf reads a constant.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// The master's children that run the demo worker (not its guard).
fn worker_pids(master: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let mut args = cmdline.split(|b| *b == 0);
        // Not the guard, a clutch process whose arguments name the program too.
        let node = args.next().is_some_and(|a| a.ends_with(b"node"));
        let worker = |a: &[u8]| a == b"demo-worker" || (node && a.ends_with(b".js"));
        if ppid == Some(master) && args.any(worker) {
            out.push(pid);
        }
    }
    assert_eq!(
        out.len(),
        WORKERS,
        "expected {WORKERS} app workers under master {master}, found {out:?}"
    );
    out
}
