//! `clutch:monitor`: what a worker pushes (`Worker::report`) is kept, the latest per
//! worker; a push that is not a flat object of numbers and strings is dropped and the
//! last good one stays.
mod common;
use common::*;
use serde_json::json;

async fn pushed(
    m: &clutch::Master,
    pid: u32,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    m.worker_stats()
        .await
        .into_iter()
        .find(|s| s.pid == pid)
        .and_then(|s| s.sample.pushed)
}

#[tokio::test]
async fn the_latest_valid_push_is_kept_per_worker() {
    let (mut m, _agent, apps) = ready_cluster(2).await;
    let (a, b) = (apps[0], apps[1]);
    m.send(&order(
        To::App(a),
        "do:report",
        json!({"qps": 12.5, "name": "first"}),
    ));
    m.send(&order(
        To::App(a),
        "do:report",
        json!({"qps": 40, "name": "second"}),
    ));
    expect(&mut m, "the second report order", DEADLINE, |x| {
        got(x).is_some_and(|(_, _, p, msg)| p == u64::from(a) && msg["data"]["name"] == "second")
    })
    .await;
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let got = pushed(&m, a).await;
        if got.as_ref().is_some_and(|d| d["name"] == "second") {
            assert_eq!(got.unwrap()["qps"], 40);
            break;
        }
        assert!(tokio::time::Instant::now() < end, "push not kept: {got:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Nested, or too many keys: dropped. A ping after them proves they were read.
    m.send(&order(To::App(a), "do:report", json!({"nested": {"x": 1}})));
    let many: serde_json::Map<_, _> = (0..65).map(|i| (format!("k{i}"), json!(i))).collect();
    m.send(&order(
        To::App(a),
        "do:report",
        serde_json::Value::Object(many),
    ));
    m.send(&order(
        To::App(a),
        "do:send",
        json!({"action": "after", "to": "app", "receiverPid": a}),
    ));
    expect(
        &mut m,
        "the worker's own message after the bad reports",
        DEADLINE,
        |x| got_by(x, a, "after"),
    )
    .await;
    assert_eq!(pushed(&m, a).await.unwrap()["name"], "second");
    // The other worker pushed nothing.
    assert_eq!(pushed(&m, b).await, None);
}
