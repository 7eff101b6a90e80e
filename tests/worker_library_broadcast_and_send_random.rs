//! The worker library's `broadcast` reaches the agent and every app worker, and
//! `send_random` picks one pid from the last `cluster-pids`.
mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn broadcast_reaches_the_agent_and_every_app_worker() {
    let (mut m, agent, apps) = ready_cluster(2).await;
    m.send(&order(To::App(apps[0]), "do:broadcast", json!("hello-all")));
    collect_until(&mut m, "hello-all at every worker", DEADLINE, |seen| {
        std::iter::once(agent)
            .chain(apps.iter().copied())
            .all(|pid| seen.iter().any(|x| got_by(x, pid, "hello-all")))
    })
    .await;
    m.shutdown().await.unwrap();
}

#[tokio::test]
async fn send_random_from_the_agent_reaches_one_app_worker_it_knows() {
    let (mut m, agent, apps) = ready_cluster(3).await;
    // The agent knows every app pid once its cluster-pids holds all three.
    collect_until(&mut m, "the agent's full cluster-pids", DEADLINE, |seen| {
        seen.iter().any(|x| {
            got(x).is_some_and(|(_, _, p, msg)| {
                p == u64::from(agent)
                    && msg["action"] == "cluster-pids"
                    && msg["data"].as_array().is_some_and(|a| a.len() == 3)
            })
        })
    })
    .await;
    m.send(&order(To::Agent, "do:send-random", json!("pick-one")));
    let seen = collect_until(
        &mut m,
        "pick-one at the chosen app worker",
        DEADLINE,
        |seen| {
            let to = seen
                .iter()
                .find(|x| x.action == "sent-random")
                .and_then(|x| x.data["to"].as_u64());
            to.is_some_and(|to| seen.iter().any(|x| got_by(x, to as u32, "pick-one")))
        },
    )
    .await;
    let to = seen
        .iter()
        .find(|x| x.action == "sent-random")
        .and_then(|x| x.data["to"].as_u64())
        .unwrap() as u32;
    assert!(
        apps.contains(&to),
        "pid {to} is not an app worker ({apps:?})"
    );
    // A broadcast from the agent after it: each channel keeps order, so an app worker that
    // got `pick-one` reports it before the marker.
    m.send(&order(To::Agent, "do:broadcast", json!("marker")));
    let after = collect_until(&mut m, "the marker at every app worker", DEADLINE, |seen| {
        apps.iter()
            .all(|&p| seen.iter().any(|x| got_by(x, p, "marker")))
    })
    .await;
    for &p in apps.iter().filter(|&&p| p != to) {
        assert!(
            !seen.iter().chain(&after).any(|x| got_by(x, p, "pick-one")),
            "app worker pid {p} got a message meant for one worker"
        );
    }
    m.shutdown().await.unwrap();
}
