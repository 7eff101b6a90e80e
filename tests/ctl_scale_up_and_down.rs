//! `clutch ctl scale +K / -K / N` and SIGTTIN / SIGTTOU add and retire app slots: new ones
//! get the next ids, the newest go first, retired workers stop gracefully.

mod common;
use common::ctl;

fn ids(list: &serde_json::Value) -> Vec<u64> {
    ctl::apps(list)
        .iter()
        .map(|w| w["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn scale_up_and_down() {
    let c = ctl::start(2, &[]);
    let out = c.ctl(&["scale", "+2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The answer waits for the new workers to be ready.
    let list = c.ctl_json(&["list", "--json"]);
    assert!(ctl::all_ready(&list, 4), "{list}");
    assert_eq!(ids(&list), [1, 2, 3, 4]);
    assert_eq!(list["cluster"]["workers"], 4);

    let retired = ctl::row(&list, 4)["pid"].as_u64().unwrap() as u32;
    let out = c.ctl(&["scale", "-1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!common::alive(retired));
    assert_eq!(ids(&c.ctl_json(&["list", "--json"])), [1, 2, 3]);

    let out = c.ctl(&["scale", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ids(&c.ctl_json(&["list", "--json"])), [1, 2]);

    // gunicorn's signals: TTIN adds one, TTOU retires one.
    c.clutch.signal(libc::SIGTTIN);
    c.wait_for(|l| ctl::all_ready(l, 3), "a third app worker after SIGTTIN");
    c.clutch.signal(libc::SIGTTOU);
    c.wait_for(|l| ctl::all_ready(l, 2), "two app workers after SIGTTOU");

    let out = c.ctl(&["scale", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least one app worker"));
    let out = c.ctl(&["scale", "lots"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
}
