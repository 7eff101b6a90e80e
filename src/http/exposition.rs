//! `/metrics`: the OpenMetrics text, built per scrape with prometheus-client from what the
//! run loop answered ([`View`]), the counters, the monitor's latest samples and the
//! reload statistics. A fresh registry per scrape: the per-worker series come and go with
//! the slots, and building a few hundred samples costs less than keeping registered
//! metrics in step with every worker transition.
//!
//! Per-worker series are per slot (`{role, slot}`, the agent's slot is 0), for the slot's
//! current worker: a restarted worker's CPU counter starts again from 0, which Prometheus
//! reads as a counter reset, and `clutch_worker_start_time_seconds` shows when.

use super::pushed;
use super::reloads::Reloads;
use super::view::{PHASES, ROLES, View};
use crate::master::metrics::{DropReason, ExitReason, RestartReason, Snapshot};
use crate::master::monitor::Monitor;
use crate::master::worker::Role;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SlotLabels {
    role: &'static str,
    slot: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    role: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

fn role_label(role: Role) -> &'static str {
    ROLES
        .iter()
        .find(|(r, _)| *r == role)
        .map_or("app", |(_, l)| l)
}

fn counter(v: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(v);
    c
}

fn gauge(v: i64) -> Gauge {
    let g = Gauge::default();
    g.set(v);
    g
}

fn float_gauge(v: f64) -> FloatGauge {
    let g = FloatGauge::default();
    g.set(v);
    g
}

/// A counter family with one series per reason, every reason shown (0 included), so that
/// `rate()` sees each from the start.
fn by_reason(reasons: impl Iterator<Item = (&'static str, u64)>) -> Family<ReasonLabels, Counter> {
    let f = Family::<ReasonLabels, Counter>::default();
    for (reason, v) in reasons {
        f.get_or_create(&ReasonLabels { reason }).inc_by(v);
    }
    f
}

/// The text of one scrape.
pub(crate) fn render(view: &View, counters: &Snapshot, monitor: &Monitor, reloads: &Reloads) -> String {
    let mut reg = Registry::default();
    process(&mut reg);
    workers(&mut reg, view, monitor);
    cluster(&mut reg, view, counters, reloads);
    let mut text = String::with_capacity(16 * 1024);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &reg);
    text
}

fn process(reg: &mut Registry) {
    let Some(p) = super::process::read() else {
        return;
    };
    let cpu = FloatCounter::default();
    cpu.inc_by(p.cpu_seconds);
    reg.register_with_unit(
        "process_cpu",
        "Total user and system CPU time of the master",
        Unit::Seconds,
        cpu,
    );
    reg.register_with_unit(
        "process_resident_memory",
        "Resident memory of the master",
        Unit::Bytes,
        gauge(p.resident_bytes as i64),
    );
    reg.register(
        "process_open_fds",
        "Open file descriptors of the master",
        gauge(p.open_fds as i64),
    );
    reg.register_with_unit(
        "process_start_time",
        "When the master started, since the Unix epoch",
        Unit::Seconds,
        float_gauge(p.start_time),
    );
}

fn workers(reg: &mut Registry, view: &View, monitor: &Monitor) {
    let samples: HashMap<_, _> = monitor.samples().into_iter().collect();
    let ready = Family::<SlotLabels, Gauge>::default();
    let restarts = Family::<SlotLabels, Counter>::default();
    let start = Family::<SlotLabels, FloatGauge>::default();
    let cpu = Family::<SlotLabels, FloatCounter>::default();
    let rss = Family::<SlotLabels, Gauge>::default();
    let mut pushed_by = Vec::new();
    for s in &view.slots {
        let labels = SlotLabels {
            role: role_label(s.role),
            slot: s.id,
        };
        let current = s.current.as_ref();
        ready
            .get_or_create(&labels)
            .set(current.is_some_and(|w| w.ready) as i64);
        restarts.get_or_create(&labels).inc_by(u64::from(s.restarts));
        let Some(w) = current else { continue };
        start.get_or_create(&labels).set(w.start_time);
        let Some(sample) = samples.get(&w.id) else {
            continue;
        };
        if sample.sampled_at.is_some() {
            cpu.get_or_create(&labels).inc_by(sample.cpu_seconds);
            rss.get_or_create(&labels).set(sample.rss_bytes as i64);
        }
        if let Some(p) = &sample.pushed {
            pushed_by.push((labels, p));
        }
    }
    reg.register(
        "clutch_worker_ready",
        "1 when the slot's current worker said it is ready, else 0",
        ready,
    );
    reg.register(
        "clutch_worker_restarts",
        "Workers started in the slot after its first (crash, operator's restart, recycle; not reloads)",
        restarts,
    );
    reg.register_with_unit(
        "clutch_worker_start_time",
        "When the slot's current worker was spawned, since the Unix epoch",
        Unit::Seconds,
        start,
    );
    reg.register_with_unit(
        "clutch_worker_cpu",
        "User and system CPU time of the slot's current worker, as of the monitor's last sample",
        Unit::Seconds,
        cpu,
    );
    reg.register_with_unit(
        "clutch_worker_resident_memory",
        "Resident memory of the slot's current worker, as of the monitor's last sample",
        Unit::Bytes,
        rss,
    );
    let (selected, dropped) = pushed::select(pushed_by.iter().map(|(_, p)| *p));
    for (name, series) in selected {
        let f = Family::<SlotLabels, FloatGauge>::default();
        for (worker, v) in series {
            f.get_or_create(&pushed_by[worker].0).set(v);
        }
        reg.register(
            format!("clutch_worker_pushed_{name}"),
            "A number the worker pushed with clutch:monitor",
            f,
        );
    }
    reg.register(
        "clutch_pushed_names_dropped",
        "Pushed names left out of this scrape (at most 64 are shown)",
        gauge(dropped as i64),
    );
}

fn cluster(reg: &mut Registry, view: &View, m: &Snapshot, reloads: &Reloads) {
    let states = Family::<StateLabels, Gauge>::default();
    for (r, (_, role)) in ROLES.iter().enumerate() {
        for (p, (_, state)) in PHASES.iter().enumerate() {
            states
                .get_or_create(&StateLabels { role, state })
                .set(view.workers[r][p] as i64);
        }
    }
    reg.register("clutch_workers", "Live workers by role and state", states);
    reg.register(
        "clutch_workers_desired",
        "App workers that should run",
        gauge(view.desired as i64),
    );
    reg.register(
        "clutch_messages_routed",
        "Messages delivered to at least one destination",
        counter(m.routed),
    );
    reg.register(
        "clutch_messages_dropped",
        "Messages not delivered, by reason",
        by_reason(DropReason::ALL.iter().map(|r| r.as_str()).zip(m.dropped)),
    );
    reg.register(
        "clutch_connections_handed_off",
        "Connections the master handed to a worker (sticky mode)",
        counter(m.handed_off),
    );
    reg.register(
        "clutch_restarts",
        "Workers started again in their slot, by reason, cluster-wide",
        by_reason(RestartReason::ALL.iter().map(|r| r.as_str()).zip(m.restarts)),
    );
    reg.register(
        "clutch_exits",
        "Worker exits, by what the master had asked of the worker",
        by_reason(ExitReason::ALL.iter().map(|r| r.as_str()).zip(m.exits)),
    );
    let results = Family::<ResultLabels, Counter>::default();
    results
        .get_or_create(&ResultLabels { result: "completed" })
        .inc_by(reloads.completed.get());
    results
        .get_or_create(&ResultLabels { result: "aborted" })
        .inc_by(reloads.aborted.get());
    reg.register("clutch_reloads", "Rolling reloads that ended, by result", results);
    reg.register_with_unit(
        "clutch_reload_duration",
        "How long rolling reloads took, from start to completion or abort",
        Unit::Seconds,
        reloads.duration.clone(),
    );
    reg.register(
        "clutch_build",
        "The clutch build",
        Info::new(vec![("version".to_string(), env!("CARGO_PKG_VERSION").to_string())]),
    );
}
