//! A client that sends a login and hangs up does not free its place among the password
//! checks running at once while its check still runs: a flood of such logins cannot pile
//! up argon2 checks (each a blocking-pool thread and ~19 MiB) in the master.

mod common;
mod console_support;
mod http_support;
use common::net::stop_cleanly;
use common::*;
use console_support::*;
use std::io::Write;
use std::time::{Duration, Instant};

fn threads(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

#[test]
fn logins_that_hang_up_still_count_against_the_check_limit() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(&dir, &[("ann", "admin")]);
    let (c, port) = start_console(1, &users, &[]);
    let before = threads(c.pid());

    let body = serde_json::json!({"user": "ann", "password": "not the password"}).to_string();
    let text = format!(
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut most = before;
    let flood_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < flood_until {
        for _ in 0..10 {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(text.as_bytes()).unwrap();
            // Hang up without waiting for the answer.
            drop(s);
        }
        most = most.max(threads(c.pid()));
        std::thread::sleep(Duration::from_millis(20));
    }
    // At most two checks at once: two blocking-pool threads beside what ran before, and a
    // few more when a check starts before the pool's last thread is idle again (tokio then
    // starts another). Without the limit the flood took it past 50.
    assert!(
        most <= before + 8,
        "the master went from {before} to {most} threads under logins that hang up"
    );
    // A real login still gets through once the flood is over.
    assert!(
        wait_until(DEADLINE, || try_login(port, "ann", PASSWORD).status == 200),
        "no login after the flood"
    );
    stop_cleanly(c);
}
