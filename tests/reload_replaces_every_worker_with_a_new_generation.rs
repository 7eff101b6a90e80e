//! `Master::reload` replaces every worker, one slot at a time, apps first then the agent,
//! with workers of the next generation; the cluster never has fewer ready app workers than
//! it had before.

mod common;
use clutch::{ReloadEvent, Role};
use common::*;
use std::collections::BTreeSet;

#[tokio::test]
async fn reload_replaces_every_worker_with_a_new_generation() {
    let m = start_ready(cluster(3, Some(&[]), &[])).await;
    let before: BTreeSet<u32> = m.workers().iter().map(|w| w.pid).collect();
    let mut fewest_ready = usize::MAX;
    let events = {
        let reload = m.reload(1);
        tokio::pin!(reload);
        loop {
            tokio::select! {
                r = &mut reload => break r.expect("the reload completes"),
                _ = tokio::time::sleep(std::time::Duration::from_millis(2)) => {
                    let ready = m.workers().iter().filter(|w| w.role == Role::App && w.ready).count();
                    fewest_ready = fewest_ready.min(ready);
                }
            }
        }
    };
    assert!(
        fewest_ready >= 3,
        "capacity dropped to {fewest_ready} ready app workers"
    );
    let slots: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            ReloadEvent::Slot { slot, .. } => Some(*slot),
            _ => None,
        })
        .collect();
    assert_eq!(
        slots,
        vec![1, 2, 3, 0],
        "apps in slot order, then the agent: {events:?}"
    );
    assert!(matches!(
        events.last(),
        Some(ReloadEvent::Completed { generation: 2, .. })
    ));
    assert!(
        wait_until_async(DEADLINE, || {
            let w = m.workers();
            w.len() == 4 && w.iter().all(|w| w.generation == 2 && w.ready)
        })
        .await,
        "{:?}",
        m.workers()
    );
    for w in m.workers() {
        assert!(!before.contains(&w.pid), "{w:?} is an old worker");
    }
    for pid in before {
        assert!(!alive(pid), "old worker {pid} is gone");
    }
    m.shutdown().await.unwrap();
}
