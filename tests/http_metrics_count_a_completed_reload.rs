//! `--http`: a rolling reload (SIGHUP) shows in `/metrics` as one completed reload with its
//! duration in the histogram, and not as restarts.

mod common;
mod http_support;
use common::*;
use http_support::*;

#[test]
fn a_reload_is_counted_and_timed() {
    let (c, port) = start_with_http(2, &[], &[]);
    c.signal(libc::SIGHUP);
    let m = scrape_until(port, "a completed reload", |m| {
        value(m, "clutch_reloads", "clutch_reloads_total", &[("result", "completed")]) == 1.0
    });
    let count = value(
        &m,
        "clutch_reload_duration_seconds",
        "clutch_reload_duration_seconds_count",
        &[],
    );
    assert_eq!(count, 1.0);
    let sum = value(
        &m,
        "clutch_reload_duration_seconds",
        "clutch_reload_duration_seconds_sum",
        &[],
    );
    assert!(sum > 0.0 && sum < 60.0, "{sum}");
    let inf = value(
        &m,
        "clutch_reload_duration_seconds",
        "clutch_reload_duration_seconds_bucket",
        &[("le", "+Inf")],
    );
    assert_eq!(inf, 1.0);
    for slot in ["1", "2"] {
        let l = [("role", "app"), ("slot", slot)];
        assert_eq!(value(&m, "clutch_worker_restarts", "clutch_worker_restarts_total", &l), 0.0);
    }
    net::stop_cleanly(c);
}
