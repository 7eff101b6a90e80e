mod common;
use common::*;

#[tokio::test]
async fn agent_is_ready_before_any_app_worker_is_spawned() {
    let mut m = cluster(3, Some(&[]), &[]).start().unwrap();
    let mut order = Vec::new();
    // Every fixture reports `started` right after saying ready; the agent must come first,
    // and no app worker may exist before the agent said it is ready.
    while order.len() < 4 {
        let msg = expect(&mut m, "started reports", DEADLINE, |m| m.action == "started").await;
        order.push(msg.data["role"].as_str().unwrap().to_string());
    }
    assert_eq!(order[0], "agent", "{order:?}");
    assert!(order[1..].iter().all(|r| r == "app"), "{order:?}");
    let info = m.ready().await.unwrap();
    assert_eq!(info.workers, 3);
    m.shutdown().await.unwrap();
}
