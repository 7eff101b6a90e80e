//! `cluster-pids`: the agent learns the ready app workers' pids each time the set changes,
//! each app worker the agent's, at first boot and whenever either side is replaced.
mod common;
use clutch::{Message, Role};
use common::*;
use serde_json::json;
use std::collections::HashMap;

/// The pids in a `cluster-pids` that the worker with `pid` reported getting, if `m` is one.
fn cluster_pids_got_by(m: &Message, pid: u32) -> Option<Vec<u32>> {
    let (_, _, p, msg) = got(m)?;
    if p != u64::from(pid) || msg["action"] != "cluster-pids" {
        return None;
    }
    let mut pids: Vec<u32> =
        serde_json::from_value(msg["data"].clone()).expect("cluster-pids carries pids");
    pids.sort_unstable();
    Some(pids)
}

#[tokio::test]
async fn cluster_pids_on_first_boot() {
    let (mut m, agent, apps) = ready_cluster(3).await;
    let mut sorted = apps.clone();
    sorted.sort_unstable();
    // `cluster-ready` is the last thing the master sends a worker at first boot.
    let seen = collect_until(&mut m, "cluster-ready at every worker", DEADLINE, |seen| {
        std::iter::once(agent)
            .chain(apps.iter().copied())
            .all(|pid| seen.iter().any(|x| got_by(x, pid, "cluster-ready")))
    })
    .await;
    let agent_got: Vec<_> = seen
        .iter()
        .filter_map(|x| cluster_pids_got_by(x, agent))
        .collect();
    // The agent hears of every change of the set: one more pid each time an app worker
    // becomes ready, ending with all of them.
    assert_eq!(agent_got.len(), apps.len(), "{agent_got:?}");
    for (i, pids) in agent_got.iter().enumerate() {
        assert_eq!(pids.len(), i + 1, "{agent_got:?}");
        if i > 0 {
            assert!(
                agent_got[i - 1].iter().all(|p| pids.contains(p)),
                "{agent_got:?}"
            );
        }
    }
    assert_eq!(
        agent_got.last(),
        Some(&sorted),
        "the last set holds every app pid"
    );
    for &app in &apps {
        let app_got: Vec<_> = seen
            .iter()
            .filter_map(|x| cluster_pids_got_by(x, app))
            .collect();
        assert_eq!(
            app_got,
            vec![vec![agent]],
            "app pid {app} gets the agent's pid"
        );
    }
    m.shutdown().await.unwrap();
}

#[tokio::test]
async fn cluster_pids_after_an_app_restarts() {
    let (mut m, agent, apps) = ready_cluster(3).await;
    collect_until(
        &mut m,
        "the agent's full first cluster-pids",
        DEADLINE,
        |seen| {
            seen.iter()
                .any(|x| cluster_pids_got_by(x, agent).is_some_and(|p| p.len() == 3))
        },
    )
    .await;
    let old = apps[1];
    m.send(&order(To::App(old), "do:exit", json!(1)));
    let mut new = None;
    let seen = collect_until(
        &mut m,
        "cluster-pids with the restarted app worker",
        DEADLINE,
        |seen| {
            new = seen
                .iter()
                .filter_map(started_report)
                .find(|s| s.role == Role::App && s.id == 2)
                .map(|s| s.pid);
            new.is_some_and(|new| {
                seen.iter()
                    .filter_map(|x| cluster_pids_got_by(x, agent))
                    .any(|p| p.contains(&new))
            })
        },
    )
    .await;
    let new = new.unwrap();
    assert_ne!(new, old);
    let sets: Vec<_> = seen
        .iter()
        .filter_map(|x| cluster_pids_got_by(x, agent))
        .collect();
    assert!(
        sets.iter().all(|s| !s.contains(&old)),
        "the dead pid {old} is announced: {sets:?}"
    );
    let last = sets.last().unwrap().clone();
    let mut expected = vec![apps[0], new, apps[2]];
    expected.sort_unstable();
    assert_eq!(last, expected, "old pid {old}, new pid {new}");
    m.shutdown().await.unwrap();
}

#[tokio::test]
async fn cluster_pids_after_agent_restart() {
    let (mut m, old_agent, apps) = ready_cluster(2).await;
    collect_until(&mut m, "every app's first cluster-pids", DEADLINE, |seen| {
        apps.iter()
            .all(|&pid| seen.iter().any(|x| cluster_pids_got_by(x, pid).is_some()))
    })
    .await;
    kill(old_agent, libc::SIGKILL);
    let mut new_agent = None;
    let seen = collect_until(
        &mut m,
        "cluster-pids with the new agent at every app",
        DEADLINE,
        |seen| {
            new_agent = seen
                .iter()
                .filter_map(started_report)
                .find(|s| s.role == Role::Agent)
                .map(|s| s.pid);
            new_agent.is_some_and(|a| {
                apps.iter().all(|&pid| {
                    seen.iter()
                        .any(|x| cluster_pids_got_by(x, pid) == Some(vec![a]))
                })
            })
        },
    )
    .await;
    let new_agent = new_agent.unwrap();
    assert_ne!(new_agent, old_agent);
    let per_app: HashMap<u32, Vec<Vec<u32>>> = apps
        .iter()
        .map(|&pid| {
            (
                pid,
                seen.iter()
                    .filter_map(|x| cluster_pids_got_by(x, pid))
                    .collect(),
            )
        })
        .collect();
    for (pid, got) in per_app {
        assert_eq!(
            got,
            vec![vec![], vec![new_agent]],
            "app pid {pid}: [] while there is no agent, then the new one"
        );
    }
    m.shutdown().await.unwrap();
}
