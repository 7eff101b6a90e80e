//! Affinity stability under kernel steering: which worker each client address reaches as a
//! slot goes down and comes back, and as the cluster scales from 4 to 5.

use clutch::config::StickyMode;
use std::time::{Duration, Instant};

const CLIENTS: usize = super::SOURCES;
const SETTLE: Duration = Duration::from_secs(30);

/// The worker id each source reaches (0: failed).
fn map(port: u16) -> Vec<u32> {
    let mut buf = vec![0u8; 4096];
    (0..CLIENTS)
        .map(|i| super::request(port, super::source(i), &mut buf).unwrap_or(0))
        .collect()
}

/// Maps until `done` holds for two passes in a row that agree.
fn settle(port: u16, done: impl Fn(&[u32]) -> bool) -> Vec<u32> {
    let end = Instant::now() + SETTLE;
    let mut last = map(port);
    loop {
        let now = map(port);
        if (now == last && done(&now)) || Instant::now() > end {
            return now;
        }
        last = now;
    }
}

fn changed(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

fn pct(n: usize) -> f64 {
    100.0 * n as f64 / CLIENTS as f64
}

pub fn run() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut m = clutch::Master::builder()
            .workers(4)
            .app(vec![
                env!("CARGO_BIN_EXE_clutch").to_string(),
                "demo-worker".to_string(),
            ])
            .sticky()
            .sticky_mode(StickyMode::Kernel)
            .port(0)
            .host("127.0.0.1")
            .start()
            .expect("the affinity cluster starts");
        let info = m.ready().await.expect("the affinity cluster is ready");
        let port = info.port.unwrap();
        println!(
            "affinity stability ({}; 4 demo workers, {CLIENTS} client addresses over 127/8):",
            info.sticky_mode.unwrap_or("?")
        );
        let base = settle(port, |ids| ids.iter().all(|&i| i != 0));
        let of_2 = base.iter().filter(|&&i| i == 2).count();

        m.stop_slot(2).await.expect("slot 2 stops");
        let down = settle(port, |ids| ids.iter().all(|&i| i != 2 && i != 0));
        let moved = changed(&base, &down);
        let others_moved = base
            .iter()
            .zip(&down)
            .filter(|(b, d)| **b != 2 && b != d)
            .count();
        println!(
            "  slot 2 of 4 down: {moved} clients changed worker ({:.1}%); slot 2 had {of_2} \
             ({:.1}%); clients of other slots that moved: {others_moved} (target 0)",
            pct(moved),
            pct(of_2)
        );

        m.start_slot(2).await.expect("slot 2 starts");
        let back = settle(port, |ids| ids.contains(&2) && ids.iter().all(|&i| i != 0));
        let not_back = changed(&base, &back);
        println!(
            "  slot 2 back: {not_back} clients on another worker than at first ({:.1}%, target 0)",
            pct(not_back)
        );

        m.scale(5).await.expect("scales to 5");
        let five = settle(port, |ids| ids.contains(&5) && ids.iter().all(|&i| i != 0));
        let moved = changed(&back, &five);
        let not_to_5 = back
            .iter()
            .zip(&five)
            .filter(|(b, f)| b != f && **f != 5)
            .count();
        println!(
            "  scale 4 -> 5: {moved} clients changed worker ({:.1}%, target <= 20% + noise); \
             moved elsewhere than the new slot: {not_to_5} (target 0)",
            pct(moved)
        );
        m.shutdown().await.expect("the affinity cluster stops");
    });
}
