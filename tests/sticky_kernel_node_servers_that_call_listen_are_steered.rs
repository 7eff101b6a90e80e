//! `--sticky --sticky-mode kernel` with plain Node servers that call `listen(PORT)`: the
//! listen preload gives each worker its slot's socket, each client reaches the worker the
//! hash predicts, and when a slot dies with connections queued on its socket, the master
//! drains them to the other Node workers (the preload takes them) and none is lost.

mod common;
use common::net::*;
use common::*;
use std::io::{Read, Write};
use std::net::IpAddr;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn sticky_kernel_node_servers_that_call_listen_are_steered() {
    assert!(have("node"), "this test needs `node` on PATH");
    let port = free_port();
    let text = port.to_string();
    let server = fixture_file("node_plain_http_server.js");
    let mut c = Clutch::spawn_with_parent(clutch_start(&[
        "--no-agent",
        "-w",
        "3",
        "-p",
        &text,
        "--host",
        "127.0.0.1",
        "--sticky",
        "--sticky-mode",
        "kernel",
        "--ready",
        "spawn",
        "--restart",
        "never",
        "--",
        "node",
        &server,
        &text,
    ]));
    let ready = c.expect_ready(DEADLINE * 2);
    assert_eq!(ready["sticky_mode"], "kernel-steered", "{ready}");

    let all = [1, 2, 3];
    let sources: Vec<IpAddr> = (0..60).map(source_n).collect();
    let mut pid_of_2 = None;
    for &from in &sources {
        let served = served_from(from, port, "/");
        assert_eq!(served.id, steered_slot(&all, from), "{from}");
        if served.id == 2 {
            pid_of_2 = Some(served.pid);
        }
    }
    let pid = pid_of_2.expect("some source reaches slot 2");
    let of_2: Vec<IpAddr> = sources
        .iter()
        .copied()
        .filter(|&f| steered_slot(&all, f) == 2)
        .take(8)
        .collect();

    kill(pid, libc::SIGSTOP);
    let mut queued: Vec<_> = of_2
        .iter()
        .map(|&from| {
            let mut s = connect_from(from, port).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    kill(pid, libc::SIGKILL);
    for s in &mut queued {
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .expect("a queued connection is answered");
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        // Slot 2 stays down (--restart never): another Node worker served it.
        assert!(!text.contains("\"id\":2,"), "{text}");
    }
    c.signal(libc::SIGTERM);
    c.finish(DEADLINE);
}
