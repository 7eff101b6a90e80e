//! `cargo bench --bench monitor`: what the monitor costs the master, for BENCHMARKS.md.
//!
//! The `clutch` binary runs 64 fixture app workers (`clutch-fixture`) and no agent, once
//! with `--monitor-interval 0` (off) and once with `1000` (1 s); over 30 s once ready, the
//! master's own CPU time is compared: utime + stime from /proc/<pid>/stat (10 ms ticks),
//! and the time on CPU from /proc/<pid>/schedstat (nanoseconds), summed over its threads.
//! `BENCH_SECONDS` and `BENCH_WORKERS` change the defaults.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{cpu_seconds, on_cpu_seconds};

fn master_cpu(workers: usize, interval_ms: u64, secs: u64) -> (f64, f64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clutch"))
        .args([
            "start",
            "--no-control",
            "--no-agent",
            "-w",
            &workers.to_string(),
        ])
        .args(["--monitor-interval", &interval_ms.to_string(), "--"])
        .arg(env!("CARGO_BIN_EXE_clutch-fixture"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        if line.contains("ready") && line.contains(&format!("{workers} app worker")) {
            break;
        }
        line.clear();
    }
    // Keep reading its stderr so that it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let pid = child.id();
    let (before, before_ns) = (cpu_seconds(pid), on_cpu_seconds(pid));
    std::thread::sleep(Duration::from_secs(secs));
    let used = (cpu_seconds(pid) - before, on_cpu_seconds(pid) - before_ns);
    // SAFETY: kill(2) on the child this function started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    child.wait().unwrap();
    used
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: u64 = std::env::var("BENCH_SECONDS").map_or(30, |s| s.parse().unwrap());
    let workers: usize = std::env::var("BENCH_WORKERS").map_or(64, |s| s.parse().unwrap());
    println!("machine: {}", common::machine());
    let off = master_cpu(workers, 0, secs);
    let on = master_cpu(workers, 1000, secs);
    let ms = |s: f64| s * 1000.0;
    for (what, off, on) in [("utime+stime", off.0, on.0), ("schedstat", off.1, on.1)] {
        println!(
            "master CPU over {secs} s, {workers} app workers ({what}): monitor off {:.1} ms ({:.3} %), monitor every 1 s {:.1} ms ({:.3} %); {:.2} ms per sampling of {workers} workers",
            ms(off),
            off / secs as f64 * 100.0,
            ms(on),
            on / secs as f64 * 100.0,
            ms(on - off) / secs as f64
        );
    }
}
