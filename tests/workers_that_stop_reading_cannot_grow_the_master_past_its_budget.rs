//! App workers that stop reading their channel while the agent floods them cost the master
//! at most the outbox budget: past it, lines to them are dropped and counted, and the
//! master's memory stays bounded.
mod common;
use clutch::channel::Budget;
use common::memory::{peak_rss_kib, rss_kib};
use common::*;

const MIB: u64 = 1 << 20;
const BUDGET: u64 = 16 * MIB;
/// What the flood would queue without a budget: 48 lines of 1 MiB to each of 2 app workers.
const LINES: u64 = 48;

#[tokio::test]
async fn workers_that_stop_reading_cannot_grow_the_master_past_its_budget() {
    // The library's master runs on a thread of this process, so this process's peak is the
    // master's (plus this test's small baseline).
    Budget::global().set_limit(BUDGET as usize);
    let before = rss_kib("self") * 1024;
    let flood = format!("flood:{LINES}:{MIB}");
    let mut m = start_ready(cluster(2, Some(&[flood.as_str()]), &["stop-reading"])).await;
    expect(&mut m, "the agent's flood to end", 4 * DEADLINE, |x| {
        x.action == "flooded"
    })
    .await;
    let peak = peak_rss_kib("self") * 1024;
    let grew = peak.saturating_sub(before);
    eprintln!(
        "peak {} MiB over a baseline of {} MiB; {} lines dropped",
        grew / MIB,
        before / MIB,
        Budget::global().dropped()
    );
    // Without the budget the outboxes alone hold 96 MiB.
    assert!(
        grew < BUDGET + 32 * MIB,
        "the master grew by {} MiB with a budget of {} MiB",
        grew / MIB,
        BUDGET / MIB
    );
    assert!(
        Budget::global().dropped() > 0,
        "{LINES} lines of 1 MiB to 2 stuck workers fit a {} MiB budget",
        BUDGET / MIB
    );
    assert!(
        Budget::global().used() as u64 <= BUDGET + 2 * MIB,
        "{} bytes queued past a budget of {BUDGET}",
        Budget::global().used()
    );
    m.shutdown().await.expect("a clean shutdown");
}
