//! Kernel-steered sticky: while a slot is down its clients go to the live workers (and only
//! its clients move), connections already queued on its socket are drained by the master to
//! live workers (none is lost), and once it is back its clients return to it.

mod common;
use clutch::Role;
use common::net::*;
use common::*;
use std::net::IpAddr;

const ALL: [u32; 4] = [1, 2, 3, 4];

/// Sources the full table sends to slot 2, and some it sends elsewhere.
fn sources() -> (Vec<IpAddr>, Vec<IpAddr>) {
    (0..400)
        .map(source_n)
        .partition(|&a| steered_slot(&ALL, a) == 2)
}

#[tokio::test]
async fn sticky_kernel_a_down_slots_clients_go_to_live_workers_and_come_back() {
    let (m, port) = start_kernel_sticky(4, &["http"]).await;
    let (of_2, others) = sources();
    let (of_2, others) = (&of_2[..20], &others[..20]);
    for &from in of_2 {
        assert_eq!(served_from(from, port, "/").id, 2);
    }

    // Slot 2's worker stops accepting (SIGSTOP): connections queue on its socket.
    let pid = live_pid(&m, Role::App, 2).unwrap();
    kill(pid, libc::SIGSTOP);
    let mut queued = Vec::new();
    for &from in of_2 {
        let mut s = connect_from(from, port).unwrap();
        std::io::Write::write_all(
            &mut s,
            b"GET /queued HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        queued.push(s);
    }
    // It dies with them queued: the master drains them to live workers.
    kill(pid, libc::SIGKILL);
    let answers = tokio::task::spawn_blocking(move || {
        queued
            .into_iter()
            .map(|mut s| {
                let mut raw = Vec::new();
                std::io::Read::read_to_end(&mut s, &mut raw).map(|_| raw)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for a in answers {
        let raw = a.expect("a queued connection is answered");
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        // A live worker, or slot 2's new one if it took it first: never the dead one.
        assert!(!text.contains(&format!("\"pid\":{pid},")), "{text}");
    }

    // While it is down (or restarting), its clients go to the live slots the table says, and
    // nobody else moves. The restart may already be under way: wait for the steering to
    // spread first, then check.
    let down_ok = |from: IpAddr| {
        let id = served_from(from, port, "/").id;
        id == steered_slot(&[1, 3, 4], from) || id == 2
    };
    for &from in of_2 {
        assert!(down_ok(from), "{from}");
    }
    for &from in others {
        assert_eq!(served_from(from, port, "/").id, steered_slot(&ALL, from));
    }

    // Back: the new worker of slot 2 gets its clients again.
    assert!(
        wait_until_async(DEADLINE * 2, || live_pid(&m, Role::App, 2)
            .is_some_and(|p| p != pid))
        .await,
        "slot 2 restarted"
    );
    let back = wait_until_async(DEADLINE, || {
        of_2.iter().all(|&f| served_from(f, port, "/").id == 2)
    })
    .await;
    assert!(back, "slot 2's clients came back");
    for &from in others {
        assert_eq!(served_from(from, port, "/").id, steered_slot(&ALL, from));
    }
    m.shutdown().await.unwrap();
}
