//! `clutch ctl stop` leaves the slot stopped (a row with no pid, not restarted) until
//! `clutch ctl start`; stopping a stopped slot's neighbour leaves it alone.

mod common;
use common::ctl;
use std::time::Duration;

#[test]
fn stop_and_start_a_slot() {
    let c = ctl::start(2, &[]);
    let before = c.ctl_json(&["list", "--json"]);
    let old = ctl::row(&before, 2)["pid"].as_u64().unwrap() as u32;
    let out = c.ctl(&["stop", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!common::alive(old));
    let list = c.ctl_json(&["list", "--json"]);
    let row = ctl::row(&list, 2);
    assert_eq!(row["state"], "stopped", "{list}");
    assert!(row["pid"].is_null());
    assert_eq!(row["last_exit"]["signal"], "SIGTERM");
    // Longer than the restart delay: a stopped slot is not restarted.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        ctl::row(&c.ctl_json(&["list", "--json"]), 2)["state"],
        "stopped"
    );

    // A second stop is refused by nobody but changes nothing; a start fills the slot.
    let out = c.ctl(&["start", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = c.ctl_json(&["list", "--json"]);
    let row = ctl::row(&list, 2);
    assert_eq!(row["state"], "ready", "{list}");
    assert_ne!(row["pid"].as_u64().unwrap() as u32, old);

    // Starting a running slot is refused with exit 1, naming it.
    let out = c.ctl(&["start", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
}
