//! A request whose receiver exits before answering is answered by the master with an error
//! reply naming it, not left to the asker's timeout.
mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn the_asker_hears_of_the_exit() {
    // The fixture workers do not answer requests (no `reply-to-requests`).
    let (mut m, _agent, apps) = ready_cluster(2).await;
    let target = apps[1];
    m.send(&order(
        To::App(apps[0]),
        "do:request",
        json!({"msg": {"action": "q", "receiverPid": target}, "timeout_ms": 600_000}),
    ));
    // The request reached it (its `got` report), then it dies.
    expect(&mut m, "the request at the receiver", DEADLINE, |x| {
        got_by(x, target, "q")
    })
    .await;
    kill(target, libc::SIGKILL);
    let r = expect(&mut m, "request-result", DEADLINE, |x| {
        x.action == "request-result"
    })
    .await;
    assert_eq!(
        r.data["error"],
        format!("app worker 2 (pid {target}) exited before answering"),
        "{}",
        r.data
    );
}
