//! While a sticky slot is down (its worker died, the replacement is not ready yet), the
//! clients that slot had are served by the other slots without losing a connection; once
//! the replacement is ready (same slot id, new pid) they reach it again.

mod common;
use clutch::{Master, Role};
use common::net::*;
use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Requests per source address in each round.
const ROUND: usize = 5;

/// Tells every app worker that exists now and is held in `wait-ready` to say ready.
async fn release_all(m: &mut Master, n: usize) {
    assert!(
        wait_until_async(DEADLINE, || live_app_pids(m).len() == n).await,
        "not {n} app workers within {DEADLINE:?}: {:?}",
        m.workers()
    );
    for pid in live_app_pids(m) {
        m.send(&order(To::App(pid), "do:ready", json!(null)));
    }
}

fn slot_state(m: &Master, id: u32) -> Option<(u32, bool)> {
    m.workers()
        .into_iter()
        .find(|w| w.role == Role::App && w.id == id)
        .map(|w| (w.pid, w.ready))
}

/// Every request from `sources` is answered in full by a slot other than `down`.
fn served_elsewhere(sources: &[IpAddr], port: u16, down: u32, old_pid: u32) {
    for &from in sources {
        for _ in 0..ROUND {
            let served = served_from(from, port, "/");
            assert_ne!(
                served.id, down,
                "{from} was served by slot {down} while it is down: {served:?}"
            );
            assert_ne!(served.pid, old_pid, "{from}: {served:?}");
        }
    }
}

#[tokio::test]
async fn sticky_slot_restart_loses_no_connection_and_clients_return() {
    let mut m = cluster(4, None, &["wait-ready", "http"])
        .sticky()
        .port(0)
        .host("127.0.0.1")
        .start()
        .unwrap();
    release_all(&mut m, 4).await;
    let info = tokio::time::timeout(DEADLINE, m.ready())
        .await
        .expect("ready in time")
        .unwrap();
    let port = info.port.unwrap();

    let mut slot_of_source = BTreeMap::new();
    for n in 2..34 {
        slot_of_source.insert(source(n), served_from(source(n), port, "/"));
    }
    let victim = slot_of_source[&source(2)].clone();
    let (down, old_pid) = (victim.id, victim.pid);
    let theirs: Vec<IpAddr> = slot_of_source
        .iter()
        .filter(|(_, s)| s.id == down)
        .map(|(&a, _)| a)
        .collect();
    assert_eq!(slot_state(&m, down), Some((old_pid, true)));

    let exit = served_from(source(2), port, "/exit");
    assert_eq!(exit.pid, old_pid, "{exit:?}");
    let died = expect(&mut m, "the death of slot {down}", DEADLINE, |msg| {
        msg.action == "app-worker-died" && msg.data["pid"] == old_pid
    })
    .await;
    assert_eq!(died.data["id"], down, "{died:?}");

    // Down, whether or not the replacement is spawned yet.
    served_elsewhere(&theirs, port, down, old_pid);

    assert!(
        wait_until_async(DEADLINE, || slot_state(&m, down)
            .is_some_and(|(pid, _)| pid != old_pid))
        .await,
        "slot {down} not restarted within {DEADLINE:?}: {:?}",
        m.workers()
    );
    let (new_pid, ready) = slot_state(&m, down).unwrap();
    assert!(!ready, "the replacement is held in wait-ready");
    // Restarting: spawned, not ready.
    served_elsewhere(&theirs, port, down, old_pid);
    assert_eq!(
        slot_state(&m, down),
        Some((new_pid, false)),
        "the slot must still be restarting after those requests"
    );

    m.send(&order(To::App(new_pid), "do:ready", json!(null)));
    // The slot is attached right after the master marks it ready; wait for that.
    assert!(
        wait_until(DEADLINE, || served_from(theirs[0], port, "/").pid
            == new_pid),
        "{} never reached slot {down}'s new worker {new_pid}: {:?}",
        theirs[0],
        m.workers()
    );
    for &from in &theirs {
        for _ in 0..ROUND {
            let served = served_from(from, port, "/");
            assert_eq!(
                (served.id, served.pid),
                (down, new_pid),
                "{from} does not return to its slot"
            );
        }
    }
}
