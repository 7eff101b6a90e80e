//! With `--proxy-protocol`, connections that sent only the start of a header (`PROXY `) and
//! then nothing cost the master no CPU while they wait: it sleeps until bytes arrive
//! rather than looking at each socket again and again.

mod common;
use common::net::*;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Idle connections held open at once (the count can be raised with CLUTCH_IDLE_CONNECTIONS
/// to measure a figure).
const IDLE: usize = 500;
/// How long the master's CPU time is sampled.
const WINDOW: Duration = Duration::from_secs(2);
/// Share of one core the master may use meanwhile. Looking at 500 sockets every millisecond
/// costs most of a core; waiting on readiness costs next to nothing, so a loaded machine
/// stays far below this.
const MAX_SHARE: f64 = 0.20;

#[tokio::test]
async fn idle_proxy_connections_leave_the_master_idle() {
    let idle = std::env::var("CLUTCH_IDLE_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(IDLE);
    // Both ends of every connection live in this process (the master runs on a thread).
    raise_fd_limit(2 * idle + 256);
    let mut m = cluster(1, None, &["http"])
        .sticky()
        .port(0)
        .host("127.0.0.1")
        .proxy_protocol(Duration::from_secs(300))
        .start()
        .unwrap();
    let info = tokio::time::timeout(DEADLINE, m.ready())
        .await
        .expect("ready in time")
        .unwrap();
    let port = info.port.expect("a sticky cluster has a port");

    let mut held: Vec<TcpStream> = Vec::with_capacity(idle);
    for i in 0..idle {
        let mut s = connect_from(source(2 + (i % 100) as u8), port)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        s.write_all(b"PROXY ").unwrap();
        held.push(s);
    }
    // The master has accepted them all once this process's fd count holds still.
    settled_fd_count(std::process::id(), Duration::from_millis(300));

    let before = master_cpu_ticks();
    let started = Instant::now();
    std::thread::sleep(WINDOW);
    let ticks = master_cpu_ticks() - before;
    let elapsed = started.elapsed().as_secs_f64();
    // SAFETY: sysconf only reads a constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let share = ticks as f64 / per_second / elapsed;
    eprintln!(
        "master CPU with {idle} idle PROXY connections: {:.1}% of one core",
        share * 100.0
    );
    assert!(
        share < MAX_SHARE,
        "the master used {:.0}% of a core over {elapsed:.1} s with {idle} connections that \
         sent only `PROXY ` (at most {:.0}% expected)",
        share * 100.0,
        MAX_SHARE * 100.0
    );

    // Still serving: a complete header and a request get an answer.
    let response = get_behind_proxy_header(port);
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );

    drop(held);
    m.shutdown().await.unwrap();
}

/// User plus system CPU time of the master's thread(s), in clock ticks.
fn master_cpu_ticks() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != "clutch-master" {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces) start at field 3; utime and
        // stime are fields 14 and 15.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        total += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    assert!(
        total > 0 || master_thread_exists(),
        "no clutch-master thread"
    );
    total
}

fn master_thread_exists() -> bool {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .any(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim_end() == "clutch-master")
        })
}

/// Raises this process's soft open-file limit to at least `need` (up to the hard limit).
fn raise_fd_limit(need: usize) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        assert!(
            lim.rlim_max >= need as u64,
            "this test needs {need} open files; the hard limit is {} (raise ulimit -Hn)",
            lim.rlim_max
        );
        if lim.rlim_cur < need as u64 {
            lim.rlim_cur = lim.rlim_max;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
}
