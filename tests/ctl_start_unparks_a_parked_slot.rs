//! A slot past its restart limit is parked: `list` shows it with no pid, `watch` reports
//! `worker.parked`, and `clutch ctl start` brings it back.

mod common;
use common::{DEADLINE, ctl};

#[test]
fn start_unparks_a_parked_slot() {
    let c = ctl::start(1, &["--restart-limit", "1", "--restart-window", "600000"]);
    let (_watch, rx) = c.watch_json();
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap()["event"], "snapshot");

    let first = ctl::row(&c.ctl_json(&["list", "--json"]), 1)["pid"].clone();
    c.ctl_json(&["kill", "1"]);
    let list = c.wait_for(
        |l| ctl::row(l, 1)["state"] == "ready" && ctl::row(l, 1)["pid"] != first,
        "slot 1 restarted once",
    );
    let second = ctl::row(&list, 1)["pid"].clone();
    c.ctl_json(&["kill", "1"]);
    let list = c.wait_for(|l| ctl::row(l, 1)["state"] == "parked", "slot 1 parked");
    assert!(ctl::row(&list, 1)["pid"].is_null());
    assert_eq!(ctl::row(&list, 1)["last_exit"]["signal"], "SIGKILL");
    loop {
        let ev = rx.recv_timeout(DEADLINE).expect("a worker.parked event");
        if ev["event"] == "worker.parked" {
            assert_eq!(ev["slot"], 1);
            break;
        }
    }

    let out = c.ctl(&["start", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = ctl::row(&c.ctl_json(&["list", "--json"]), 1).clone();
    assert_eq!(row["state"], "ready");
    assert_ne!(row["pid"], second);
}
