//! With `--proxy-protocol`, the master waits on at most 1024 unfinished PROXY headers at a
//! time: a connection accepted past that, whose header is not already complete, is closed
//! at once (the fds of a flood stay bounded), and a connection that arrives with its whole
//! header is still served.

mod common;
use common::net::*;
use common::*;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// clutch::sticky::MAX_HEADER_READS.
const CAP: usize = 1024;
/// Connections opened past the cap.
const EXCESS: usize = 40;

#[tokio::test]
async fn proxy_header_reads_past_the_cap_are_closed() {
    // Both ends of every connection live in this process (the master runs on a thread).
    raise_fd_limit(2 * (CAP + EXCESS) + 256);
    let mut m = cluster(1, None, &["http"])
        .sticky()
        .port(0)
        .host("127.0.0.1")
        // Far longer than the test: no idle connection is closed by the timeout.
        .proxy_protocol(Duration::from_secs(300))
        .start()
        .unwrap();
    let info = tokio::time::timeout(DEADLINE, m.ready())
        .await
        .expect("ready in time")
        .unwrap();
    let port = info.port.expect("a sticky cluster has a port");

    let mut idle: Vec<TcpStream> = Vec::with_capacity(CAP + EXCESS);
    for i in 0..CAP + EXCESS {
        let mut s = connect_from(source(2 + (i % 100) as u8), port)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        s.write_all(b"PROXY ").unwrap();
        s.set_nonblocking(true).unwrap();
        idle.push(s);
    }

    let mut closed = 0;
    let all_excess_closed = wait_until(Duration::from_secs(30), || {
        closed = idle.iter_mut().filter(|s| is_closed(s)).count();
        closed >= EXCESS
    });
    assert!(
        all_excess_closed,
        "{closed} of {} idle connections closed by the master; expected the {EXCESS} past \
         the cap of {CAP} header reads",
        CAP + EXCESS
    );
    assert_eq!(
        closed, EXCESS,
        "connections within the cap of {CAP} were closed too"
    );

    // The master accepts a connection once its first bytes are in (TCP_DEFER_ACCEPT), so one
    // sent with its whole header needs no wait, and the cap does not turn it away.
    let response = get_behind_proxy_header(port);
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "a connection with a complete header past the cap was not served: {:?}",
        String::from_utf8_lossy(&response)
    );

    drop(idle);
    m.shutdown().await.unwrap();
}

/// Whether the master closed `s` (end of file or reset), without waiting.
fn is_closed(mut s: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match s.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("the master wrote to a connection it holds"),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
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
