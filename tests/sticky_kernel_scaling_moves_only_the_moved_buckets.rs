//! Kernel-steered sticky, scaled from 4 to 5 app workers: the new slot's socket joins the
//! group and takes exactly the buckets it wins; every other client keeps its worker.

mod common;
use common::net::*;
use common::*;

#[tokio::test]
async fn sticky_kernel_scaling_moves_only_the_moved_buckets() {
    let (m, port) = start_kernel_sticky(4, &["http"]).await;
    let sources: Vec<_> = (0..120).map(source_n).collect();
    let before: Vec<u32> = sources
        .iter()
        .map(|&f| served_from(f, port, "/").id)
        .collect();
    for (&f, &id) in sources.iter().zip(&before) {
        assert_eq!(id, steered_slot(&[1, 2, 3, 4], f));
    }

    m.scale(5).await.unwrap();
    let five = [1, 2, 3, 4, 5];
    let moved_right = wait_until_async(DEADLINE * 2, || {
        sources
            .iter()
            .all(|&f| served_from(f, port, "/").id == steered_slot(&five, f))
    })
    .await;
    assert!(moved_right, "the clients follow the 5-slot table");
    let after: Vec<u32> = sources
        .iter()
        .map(|&f| served_from(f, port, "/").id)
        .collect();
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    assert!(
        after.iter().zip(&before).all(|(a, b)| a == b || *a == 5),
        "only clients of the new slot moved: {before:?} -> {after:?}"
    );
    assert!(
        moved * 100 <= sources.len() * 35,
        "{moved} of {} clients moved",
        sources.len()
    );
    m.shutdown().await.unwrap();
}
