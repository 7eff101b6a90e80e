//! A rolling reload in shared-listener mode, under continuous load (two loops on fresh
//! connections, one on a kept connection), loses no request when the workers drain on
//! SIGTERM (`clutch-fixture http graceful`): every worker accepts on the same listening
//! socket, so what waits in its queue when an old worker stops accepting is taken by the
//! others, and a kept connection is closed only after a response that says so.

mod common;
use common::net::*;
use common::*;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Loops on fresh connections; one more keeps its connection.
const FRESH_CLIENTS: u8 = 2;
/// Each client loop stops after this many requests or this long, whatever happens.
const MAX_REQUESTS: usize = 20_000;
const MAX_TIME: Duration = Duration::from_secs(180);
const RELOAD_DEADLINE: Duration = Duration::from_secs(120);
const SLOW: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Seen {
    /// Pid of the worker that answered each request, in order.
    served_by: Vec<u32>,
    failures: Vec<String>,
}

#[tokio::test]
async fn reload_under_load_loses_no_request() {
    let mut m = start_ready(
        cluster(3, None, &["http", "graceful"])
            .port(0)
            .host("127.0.0.1")
            // The fixture drains within 4 s; a SIGKILL would cut requests in flight.
            .kill_timeout(Duration::from_secs(30)),
    )
    .await;
    let port = m.ready().await.unwrap().port.unwrap();
    let old: BTreeSet<u32> = live_app_pids(&m).into_iter().collect();

    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..=FRESH_CLIENTS)
        .map(|i| {
            let (seen, stop) = (seen.clone(), stop.clone());
            let keepalive = i == FRESH_CLIENTS;
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut kept: Option<TcpStream> = None;
                for n in 0..MAX_REQUESTS {
                    if stop.load(Ordering::SeqCst) || started.elapsed() > MAX_TIME {
                        return;
                    }
                    let from = source(10 + i * 50 + (n % 50) as u8);
                    let result = if keepalive {
                        kept_request(&mut kept, from, port)
                    } else {
                        get_from(from, port, "/")
                            .map_err(|e| e.to_string())
                            .and_then(|r| match r.status {
                                200 => Ok(Served::from(&r).pid),
                                s => Err(format!("status {s}: {r:?}")),
                            })
                    };
                    let mut seen = seen.lock().unwrap();
                    match result {
                        Ok(pid) => seen.served_by.push(pid),
                        Err(e) => seen
                            .failures
                            .push(format!("request {n} of client {i}: {e}")),
                    }
                }
            })
        })
        .collect();
    let served_by = |pids: &BTreeSet<u32>| {
        let seen = seen.lock().unwrap();
        seen.served_by.iter().filter(|p| pids.contains(p)).count()
    };

    assert!(
        wait_until_async(SLOW, || served_by(&old) >= 20).await,
        "the old workers served no load before the reload"
    );
    let events = tokio::time::timeout(RELOAD_DEADLINE, m.reload(1))
        .await
        .expect("the reload answers in time")
        .expect("the reload completes");
    assert!(
        matches!(events.last(), Some(clutch::ReloadEvent::Completed { .. })),
        "{events:?}"
    );
    let new: BTreeSet<u32> = live_app_pids(&m)
        .into_iter()
        .filter(|p| !old.contains(p))
        .collect();
    assert_eq!(new.len(), 3, "three new workers: {:?}", m.workers());
    // The load goes on until the new workers serve it and the old ones are gone.
    assert!(
        wait_until_async(SLOW, || served_by(&new) >= 20).await,
        "the new workers served no load after the reload"
    );
    assert!(
        wait_until_async(SLOW, || old.iter().all(|p| !alive(*p))).await,
        "the old workers never exited"
    );
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("a client thread");
    }
    let (failures, served) = {
        let seen = seen.lock().unwrap();
        (seen.failures.clone(), seen.served_by.len())
    };
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the reload: {failures:#?}",
        failures.len(),
        failures.len() + served,
    );
    m.shutdown().await.unwrap();
    for pid in new {
        assert!(!alive(pid), "worker {pid} outlived the shutdown");
    }
}

/// `GET /` on the kept connection (a new one from `from` when there is none): the pid that
/// answered. The connection is dropped after a response that says `connection: close`, or
/// when the request fails (no complete response: a lost request).
fn kept_request(
    kept: &mut Option<TcpStream>,
    from: std::net::IpAddr,
    port: u16,
) -> Result<u32, String> {
    if kept.is_none() {
        *kept = Some(connect_from(from, port).map_err(|e| format!("connect: {e}"))?);
    }
    let stream = kept.as_mut().expect("connected above");
    let answer = (|| {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: clutch-test\r\n\r\n")
            .map_err(|e| format!("write on a kept connection: {e}"))?;
        let mut raw = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| format!("no content-length: {text:?}"))?;
                if body.len() >= length {
                    let v: serde_json::Value =
                        serde_json::from_str(body.trim()).map_err(|e| format!("{e}: {text:?}"))?;
                    let pid = v["pid"]
                        .as_u64()
                        .ok_or_else(|| format!("no pid: {text:?}"))?;
                    let close = head.lines().any(|l| l.trim() == "connection: close");
                    return Ok((pid as u32, close));
                }
            }
            match stream.read(&mut chunk) {
                Ok(0) => return Err(format!("closed after {} bytes of the response", raw.len())),
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read on a kept connection: {e}")),
            }
        }
    })();
    match answer {
        Ok((pid, close)) => {
            if close {
                *kept = None;
            }
            Ok(pid)
        }
        Err(e) => {
            *kept = None;
            Err(e)
        }
    }
}
