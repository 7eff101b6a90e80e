//! A request whose receiver does not exist is answered by the master at once with an error
//! reply (`"error": "no live worker with pid N"`), not left to the asker's timeout.
mod common;
use clutch::Message;
use clutch::protocol::message::RequestError;
use common::*;
use serde_json::json;
use std::time::Duration;

/// Far longer than the test waits for the answer: an answer means the master's.
const LONG: Duration = Duration::from_secs(600);

#[tokio::test]
async fn from_the_parent_and_from_a_worker() {
    let (mut m, _agent, apps) = ready_cluster(1).await;
    let dead = 4_000_000u32;
    let r = tokio::time::timeout(
        DEADLINE,
        m.request(Message::new("q", json!(1)).to_pid(dead), LONG),
    )
    .await
    .expect("answered before the deadline");
    assert_eq!(
        r,
        Err(RequestError::Failed(format!(
            "no live worker with pid {dead}"
        )))
    );
    m.send(&order(
        To::App(apps[0]),
        "do:request",
        json!({"msg": {"action": "q", "receiverPid": dead}, "timeout_ms": LONG.as_millis() as u64}),
    ));
    let r = expect(&mut m, "request-result", DEADLINE, |x| {
        x.action == "request-result"
    })
    .await;
    assert_eq!(r.data["error"], format!("no live worker with pid {dead}"));
}
