//! `clutch start --http`: `/metrics` is OpenMetrics that a real parser (Python's
//! prometheus_client) accepts, with the master's `process_*` figures, per-slot worker
//! series, the cluster's counters and what workers pushed; routed messages count up.

mod common;
mod http_support;
use common::*;
use http_support::*;
use serde_json::json;

#[test]
fn metrics_hold_every_family_with_sane_values() {
    let (mut c, port) = start_with_http(2, &["--monitor-interval", "100"], &[]);
    let started = c.expect_started(2, DEADLINE);
    let pid_of = |slot: u64| {
        started
            .iter()
            .find(|s| s["id"] == slot)
            .and_then(|s| s["pid"].as_u64())
            .expect("a started report per slot")
    };
    c.send(&json!({
        "action": "do:report",
        "to": "app",
        "receiverPid": pid_of(1),
        "data": {"qps": 12.5, "queue.depth": 3, "name": "a string is not a gauge"},
    }));
    let m = scrape_until(port, "the pushed figures and two CPU samples", |m| {
        m.get("clutch_worker_pushed_qps").is_some()
            && values(m, "clutch_worker_cpu_seconds", "clutch_worker_cpu_seconds_total", &[])
                .len()
                == 2
    });

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(value(&m, "process_cpu_seconds", "process_cpu_seconds_total", &[]) > 0.0);
    assert!(value(&m, "process_resident_memory_bytes", "process_resident_memory_bytes", &[]) > 1e6);
    assert!(value(&m, "process_open_fds", "process_open_fds", &[]) >= 3.0);
    let master_start = value(&m, "process_start_time_seconds", "process_start_time_seconds", &[]);
    assert!(master_start > now - 600.0 && master_start <= now + 1.0, "{master_start} vs {now}");

    for slot in ["1", "2"] {
        let l = [("role", "app"), ("slot", slot)];
        assert_eq!(value(&m, "clutch_worker_ready", "clutch_worker_ready", &l), 1.0);
        assert_eq!(
            value(&m, "clutch_worker_restarts", "clutch_worker_restarts_total", &l),
            0.0
        );
        let cpu = value(&m, "clutch_worker_cpu_seconds", "clutch_worker_cpu_seconds_total", &l);
        assert!(cpu >= 0.0);
        let rss = value(
            &m,
            "clutch_worker_resident_memory_bytes",
            "clutch_worker_resident_memory_bytes",
            &l,
        );
        assert!(rss > 1e5, "{rss}");
        let started_at = value(
            &m,
            "clutch_worker_start_time_seconds",
            "clutch_worker_start_time_seconds",
            &l,
        );
        assert!(started_at >= master_start - 1.0 && started_at <= now + 1.0);
    }
    assert_eq!(m["clutch_worker_cpu_seconds"]["type"], "counter");
    assert_eq!(m["clutch_worker_cpu_seconds"]["unit"], "seconds");

    let pushed = |name: &str, slot: &str| {
        values(&m, name, name, &[("role", "app"), ("slot", slot)])
    };
    assert_eq!(pushed("clutch_worker_pushed_qps", "1"), [12.5]);
    assert_eq!(pushed("clutch_worker_pushed_queue_depth", "1"), [3.0]);
    assert!(pushed("clutch_worker_pushed_qps", "2").is_empty());
    assert!(m.get("clutch_worker_pushed_name").is_none(), "strings are not gauges");
    assert_eq!(value(&m, "clutch_pushed_names_dropped", "clutch_pushed_names_dropped", &[]), 0.0);

    let workers = |role: &str, state: &str| {
        value(&m, "clutch_workers", "clutch_workers", &[("role", role), ("state", state)])
    };
    assert_eq!(workers("app", "ready"), 2.0);
    assert_eq!(workers("app", "starting"), 0.0);
    assert_eq!(workers("agent", "ready"), 0.0);
    assert_eq!(value(&m, "clutch_workers_desired", "clutch_workers_desired", &[]), 2.0);
    for reason in ["invalid", "too_long", "full", "no_route"] {
        value(
            &m,
            "clutch_messages_dropped",
            "clutch_messages_dropped_total",
            &[("reason", reason)],
        );
    }
    for reason in ["crash", "operator", "recycle"] {
        let v = value(&m, "clutch_restarts", "clutch_restarts_total", &[("reason", reason)]);
        assert_eq!(v, 0.0, "{reason}");
    }
    assert_eq!(
        value(&m, "clutch_connections_handed_off", "clutch_connections_handed_off_total", &[]),
        0.0
    );
    for result in ["completed", "aborted"] {
        let v = value(&m, "clutch_reloads", "clutch_reloads_total", &[("result", result)]);
        assert_eq!(v, 0.0);
    }
    assert_eq!(m["clutch_reload_duration_seconds"]["type"], "histogram");
    assert_eq!(
        value(
            &m,
            "clutch_reload_duration_seconds",
            "clutch_reload_duration_seconds_count",
            &[]
        ),
        0.0
    );
    assert_eq!(
        value(&m, "clutch_build", "clutch_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        1.0
    );

    let routed = value(&m, "clutch_messages_routed", "clutch_messages_routed_total", &[]);
    for i in 0..5 {
        c.send(&json!({"action": "hello", "to": "app", "data": i}));
    }
    scrape_until(port, "five more routed messages", |m| {
        value(m, "clutch_messages_routed", "clutch_messages_routed_total", &[]) >= routed + 5.0
    });

    net::stop_cleanly(c);
}
