//! `clutch ctl reload` replaces every worker with one of the next generation, shows one
//! line per step (JSON lines with `--json`), and exits 0 once every slot is reloaded; the
//! steps also appear on `ctl watch` as `reload.*` events.

mod common;
use common::ctl;
use serde_json::Value;

#[test]
fn ctl_reload_shows_each_step() {
    let c = ctl::start(2, &[]);
    let before = c.ctl_json(&["list", "--json"]);
    let out = c.ctl(&["reload", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let kinds: Vec<&str> = steps.iter().map(|s| s["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "reload.started",
            "reload.slot",
            "reload.slot",
            "reload.slot",
            "reload.completed"
        ],
        "{steps:?}"
    );
    let slots: Vec<&Value> = steps[1..4].iter().map(|s| &s["slot"]).collect();
    assert_eq!(slots, [1, 2, 0], "the apps in order, then the agent");
    assert_eq!(steps[4]["generation"], 2);
    let after = c.wait_for(
        |l| ctl::apps(l).iter().all(|w| w["generation"] == 2) && ctl::all_ready(l, 2),
        "every app worker on generation 2",
    );
    for id in [1, 2] {
        assert_ne!(ctl::row(&after, id)["pid"], ctl::row(&before, id)["pid"]);
    }
    let plain = c.ctl(&["reload", "--batch", "50%"]);
    assert!(plain.status.success());
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(
        text.contains("reload to generation 3") && text.contains("completed"),
        "{text}"
    );
    let bad = c.ctl(&["reload", "--batch", "0"]);
    assert_eq!(bad.status.code(), Some(2), "a bad batch is a usage error");
}
