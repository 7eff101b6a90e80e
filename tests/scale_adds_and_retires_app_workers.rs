//! `Master::scale` changes the number of app workers while the cluster runs: new slots get
//! the next ids, the newest slots are retired first, and a retired worker is not restarted.

mod common;
use clutch::{Master, Role};
use common::*;

fn ready_slots(m: &Master) -> Vec<u32> {
    let mut ids: Vec<u32> = m
        .workers()
        .into_iter()
        .filter(|w| w.role == Role::App && w.ready)
        .map(|w| w.id)
        .collect();
    ids.sort();
    ids
}

fn app_slots(m: &Master) -> Vec<u32> {
    let mut ids: Vec<u32> = m
        .workers()
        .into_iter()
        .filter(|w| w.role == Role::App)
        .map(|w| w.id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn scale_adds_and_retires_app_workers() {
    let m = start_ready(cluster(2, Some(&[]), &[])).await;
    let one = live_pid(&m, Role::App, 1).unwrap();

    m.scale(4).await.expect("scale up is taken");
    assert!(
        wait_until_async(DEADLINE, || ready_slots(&m) == [1, 2, 3, 4]).await,
        "{:?}",
        m.workers()
    );

    m.scale(1).await.expect("scale down is taken");
    assert!(
        wait_until_async(DEADLINE, || app_slots(&m) == [1]).await,
        "slots 2-4 are retired: {:?}",
        m.workers()
    );
    // Retired is not crashed: nothing comes back.
    assert!(
        !wait_until_async(std::time::Duration::from_millis(1500), || app_slots(&m)
            != [1])
        .await,
        "a retired slot came back: {:?}",
        m.workers()
    );
    assert_eq!(live_pid(&m, Role::App, 1), Some(one), "slot 1 untouched");
    assert_eq!(
        m.scale(0).await.unwrap_err(),
        "a cluster needs at least one app worker; use `stop` to stop them"
    );
    m.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stopped_slot_stays_stopped_until_started() {
    let m = start_ready(cluster(2, None, &[])).await;
    let old = live_pid(&m, Role::App, 2).unwrap();
    m.stop_slot(2).await.expect("stop is taken");
    assert!(wait_until_async(DEADLINE, || app_slots(&m) == [1]).await);
    assert!(!alive(old));
    assert!(
        !wait_until_async(std::time::Duration::from_millis(1500), || app_slots(&m)
            != [1])
        .await,
        "a stopped slot came back: {:?}",
        m.workers()
    );
    m.start_slot(2).await.expect("start is taken");
    assert!(
        wait_until_async(DEADLINE, || ready_slots(&m) == [1, 2]).await,
        "{:?}",
        m.workers()
    );
    m.shutdown().await.unwrap();
}
