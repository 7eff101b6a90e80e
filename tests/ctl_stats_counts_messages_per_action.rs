//! `clutch ctl stats` counts routed messages per action, most frequent first.

mod common;
use common::ctl;

#[test]
fn stats_counts_messages_per_action() {
    let c = ctl::start(1, &[]);
    for _ in 0..3 {
        c.ctl_json(&["send", "--to", "agent", "tick"]);
    }
    c.ctl_json(&["send", "--to", "agent", "tock"]);
    let stats = c.ctl_json(&["stats", "--json", "--top", "50"]);
    let by = &stats["messages_by_action"];
    let top = by["top"].as_array().unwrap();
    let count = |a: &str| {
        top.iter()
            .position(|e| e["action"] == a)
            .map(|i| (i, top[i]["count"].as_u64().unwrap()))
    };
    let (tick_at, ticks) = count("tick").unwrap_or_else(|| panic!("no tick in {stats}"));
    let (tock_at, tocks) = count("tock").unwrap_or_else(|| panic!("no tock in {stats}"));
    assert_eq!((ticks, tocks), (3, 1), "{stats}");
    assert!(tick_at < tock_at, "most frequent first: {stats}");
    assert_eq!(by["other"], 0, "{stats}");
    let small = c.ctl_json(&["stats", "--json", "--top", "1"]);
    assert_eq!(
        small["messages_by_action"]["top"].as_array().unwrap().len(),
        1
    );
    // The table form prints them too.
    let out = c.ctl(&["stats"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("tick"));
}
