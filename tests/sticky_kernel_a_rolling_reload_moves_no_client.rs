//! Kernel-steered sticky through a rolling reload: the old and new worker of a slot share
//! the slot's socket, so the steering never changes and every client reaches the same slot
//! (now a new worker) afterwards, with no request failing on the way.

mod common;
use common::net::*;
use common::*;
use std::collections::BTreeSet;

#[tokio::test]
async fn sticky_kernel_a_rolling_reload_moves_no_client() {
    let (m, port) = start_kernel_sticky(3, &["http", "graceful"]).await;
    let sources: Vec<_> = (0..40).map(source_n).collect();
    let old: BTreeSet<u32> = live_app_pids(&m).into_iter().collect();
    for &f in &sources {
        assert_eq!(served_from(f, port, "/").id, steered_slot(&[1, 2, 3], f));
    }

    // Requests all through the reload, from every source: each reaches its own slot.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, sources) = (stop.clone(), sources.clone());
        std::thread::spawn(move || {
            let mut served = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for &f in &sources {
                    let s = served_from(f, port, "/");
                    assert_eq!(s.id, steered_slot(&[1, 2, 3], f), "{f} moved");
                    served += 1;
                }
            }
            served
        })
    };
    m.reload(1).await.expect("the reload completes");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let served = load.join().expect("no request failed nor moved");
    assert!(served > 0);
    let new: BTreeSet<u32> = live_app_pids(&m).into_iter().collect();
    assert!(
        old.is_disjoint(&new),
        "every worker was replaced: {old:?} {new:?}"
    );
    for &f in &sources {
        let s = served_from(f, port, "/");
        assert_eq!(s.id, steered_slot(&[1, 2, 3], f));
        assert!(new.contains(&s.pid), "{s:?} served by an old worker");
    }
    m.shutdown().await.unwrap();
}
