//! A worker writing bad bytes on its channel costs only its own message (or, for an
//! over-long line, its own channel and process): the master stays up and the other workers
//! keep exchanging messages.
mod common;
use clutch::{Endpoint, Master, Role, State};
use common::*;
use serde_json::json;

/// The line app worker 1 writes after the bad bytes, to the parent: proof that its channel
/// was read past them.
const MARKER: &[u8] = b"{\"action\":\"after-bad\",\"to\":\"parent\"}\n";

/// An agent and 2 app workers, every lifecycle message delivered (so nothing else is being
/// written on app worker 1's channel when it writes raw bytes); (handle, agent, apps).
async fn quiet_cluster() -> (Master, u32, Vec<u32>) {
    let mut m = start_ready(cluster(2, Some(&[]), &[]).max_message_size(64 * 1024)).await;
    let agent = live_pid(&m, Role::Agent, 0).unwrap();
    let apps = live_app_pids(&m);
    collect_until(&mut m, "cluster-ready at every worker", DEADLINE, |seen| {
        std::iter::once(agent)
            .chain(apps.iter().copied())
            .all(|pid| seen.iter().any(|x| got_by(x, pid, "cluster-ready")))
    })
    .await;
    (m, agent, apps)
}

/// Has app worker `by` write `bytes` raw, then checks the master is undisturbed: `MARKER`
/// from `by` reaches the parent, nobody reports getting an `x`, messages go both ways
/// between every app worker and the agent, and no worker was replaced.
async fn survives(bad: &[u8]) {
    let (mut m, agent, apps) = quiet_cluster().await;
    let by = apps[0];
    let bytes: Vec<u8> = [bad, b"\n", MARKER].concat();
    m.send(&order(To::App(by), "do:raw-sync", json!(bytes)));
    let mut seen = collect_until(&mut m, "the line after the bad one", DEADLINE, |seen| {
        seen.iter().any(|x| x.action == "after-bad")
    })
    .await;
    assert_eq!(seen.last().unwrap().from, Some(Endpoint::App));

    for &app in &apps {
        have_send(
            &m,
            To::App(app),
            json!({"action": "up", "data": app, "to": "agent"}),
        );
        have_send(
            &m,
            To::Agent,
            json!({"action": "down", "to": "app", "receiverPid": app}),
        );
    }
    seen.extend(
        collect_until(
            &mut m,
            "round trips between the apps and the agent",
            DEADLINE,
            |seen| {
                apps.iter().all(|&app| {
                    seen.iter()
                        .any(|x| got_by(x, agent, "up") && x.data["msg"]["data"] == app)
                        && seen.iter().any(|x| got_by(x, app, "down"))
                })
            },
        )
        .await,
    );
    let x: Vec<_> = seen
        .iter()
        .filter(|m| got(m).is_some_and(|(_, _, _, msg)| msg["action"] == "x"))
        .collect();
    assert!(x.is_empty(), "the bad message was delivered: {x:?}");
    assert!(matches!(m.state(), State::Ready(_)), "{:?}", m.state());
    assert_eq!(live_app_pids(&m), apps, "no worker was replaced");
    assert_eq!(live_pid(&m, Role::Agent, 0), Some(agent));
    assert!(
        !seen.iter().any(|x| x.action.ends_with("-worker-died")),
        "{}",
        summary(&seen)
    );
    m.shutdown().await.unwrap();
}

#[tokio::test]
async fn garbage_bytes_are_dropped() {
    survives(&[0xff, 0xfe, 0x00, 0x80, b'{', 0xc3, 0x28, b'}', 0x01]).await;
}

#[tokio::test]
async fn invalid_json_is_dropped() {
    survives(br#"{"action":"x","to":"agent","data":[1,2"#).await;
}

#[tokio::test]
async fn unknown_to_is_dropped() {
    survives(br#"{"action":"x","to":"nowhere","data":1}"#).await;
}

#[tokio::test]
async fn over_long_line_closes_the_channel_and_the_worker_is_restarted() {
    let (mut m, agent, apps) = quiet_cluster().await;
    let old = apps[0];
    m.send(&order(
        To::App(old),
        "do:raw-sync",
        json!(vec![b'a'; 100 * 1024]),
    ));

    let mut new = None;
    let seen = collect_until(
        &mut m,
        "app worker 1's death and replacement",
        DEADLINE,
        |seen| {
            new = seen
                .iter()
                .filter_map(started_report)
                .find(|s| s.id == 1 && s.pid != old)
                .map(|s| s.pid);
            new.is_some_and(|new| seen.iter().any(|x| got_by(x, new, "cluster-ready")))
        },
    )
    .await;
    let new = new.unwrap();
    let died: Vec<_> = seen
        .iter()
        .filter(|x| x.action == "app-worker-died")
        .collect();
    assert_eq!(died.len(), 1, "{}", summary(&seen));
    assert_eq!(
        (&died[0].data["pid"], &died[0].data["id"]),
        (&json!(old), &json!(1)),
        "{}",
        died[0].data
    );
    assert_eq!(live_pid(&m, Role::App, 1), Some(new));

    // The new worker, the other one and the agent all exchange messages.
    for &app in &[new, apps[1]] {
        have_send(
            &m,
            To::App(app),
            json!({"action": "up", "data": app, "to": "agent"}),
        );
        expect(&mut m, "the agent's got up", DEADLINE, |x| {
            got_by(x, agent, "up") && x.data["msg"]["data"] == app
        })
        .await;
        have_send(
            &m,
            To::Agent,
            json!({"action": "down", "to": "app", "receiverPid": app}),
        );
        expect(&mut m, "the app's got down", DEADLINE, |x| {
            got_by(x, app, "down")
        })
        .await;
    }
    assert!(matches!(m.state(), State::Ready(_)), "{:?}", m.state());
    assert_eq!(
        live_pid(&m, Role::App, 2),
        Some(apps[1]),
        "the other worker was not replaced"
    );
    m.shutdown().await.unwrap();
}
