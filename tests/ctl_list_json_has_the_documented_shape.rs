//! `clutch ctl list --json` prints exactly the documented shape; `ls` prints a table;
//! `inspect` shows a worker's command and environment with secret values redacted;
//! `stats` shows the counters.

mod common;
use common::ctl;

#[test]
fn list_json_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("clutch.json");
    std::fs::write(
        &config,
        r#"{"env": {"API_TOKEN": "s3cret", "DB_PASSWORD": "hunter2", "GREETING": "hello"}}"#,
    )
    .unwrap();
    let c = ctl::start(2, &["--config", config.to_str().unwrap()]);
    let list = c.ctl_json(&["list", "--json"]);
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&list), ["cluster", "workers"]);
    assert_eq!(list["cluster"]["pid"], c.clutch.pid());
    assert_eq!(list["cluster"]["workers"], 2);
    let workers = list["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 3, "the agent and two apps: {list}");
    for w in workers {
        assert_eq!(
            keys(w),
            [
                "cpu_percent",
                "generation",
                "id",
                "last_exit",
                "pid",
                "ready",
                "restarts",
                "role",
                "rss_bytes",
                "state",
                "uptime_ms"
            ]
        );
        assert_eq!(w["state"], "ready");
        assert_eq!(w["ready"], true);
        assert!(w["pid"].as_u64().unwrap() > 0);
        assert!(w["rss_bytes"].as_u64().unwrap() > 0);
        assert!(w["cpu_percent"].is_number());
        assert_eq!(w["restarts"], 0);
        assert!(w["last_exit"].is_null());
    }
    assert_eq!(ctl::row(&list, 0)["role"], "agent");

    let table = c.ctl(&["ls"]);
    assert!(table.status.success());
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("id") && table.contains("rss") && table.contains("agent"),
        "{table}"
    );

    let pid = ctl::row(&list, 1)["pid"].as_u64().unwrap();
    let inspect = c.ctl_json(&["inspect", &format!("pid:{pid}")]);
    let w = &inspect["workers"][0];
    assert_eq!(w["pid"], pid);
    assert_eq!(w["env"]["API_TOKEN"], "<redacted>");
    assert_eq!(w["env"]["DB_PASSWORD"], "<redacted>");
    assert_eq!(w["env"]["GREETING"], "hello");
    assert!(w["fds"].as_u64().unwrap() >= 3);
    assert_eq!(w["command"][0], common::fixture());
    assert_eq!(inspect["slot"]["id"], 1);

    let stats = c.ctl_json(&["stats", "--json"]);
    for k in [
        "messages_routed",
        "messages_dropped",
        "restarts",
        "exits",
        "log_lines_dropped",
    ] {
        assert!(stats.get(k).is_some(), "{k} in {stats}");
    }
}
