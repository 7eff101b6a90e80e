//! A `clutch` master killed with SIGKILL leaves no process behind: its workers die of
//! `PR_SET_PDEATHSIG`, their grandchildren by the guard process, which then exits too.

mod common;
use common::*;

#[test]
fn sigkill_of_the_master_leaves_no_process() {
    let mut c =
        Clutch::spawn_with_parent(clutch_start_fixtures("grandchild", Some("grandchild"), &[]));
    c.expect_ready(DEADLINE);
    let started = c.expect_started(3, DEADLINE);
    let mut pids = started_pids(&started);
    assert_eq!(pids.len(), 6, "3 workers and 3 grandchildren: {started:?}");
    // The workers, and the guard.
    let children = children_of(c.pid());
    let workers: Vec<u32> = started
        .iter()
        .map(|s| s["pid"].as_u64().unwrap() as u32)
        .collect();
    assert!(
        workers.iter().all(|w| children.contains(w)),
        "workers {workers:?}, children {children:?}"
    );
    assert!(
        children.len() > workers.len(),
        "no guard process among {children:?}"
    );
    pids.extend(children);
    assert!(pids.iter().all(|&p| alive(p)), "{pids:?}");

    c.signal(libc::SIGKILL);
    assert!(
        c.wait_exit(DEADLINE).is_some(),
        "clutch not reaped after SIGKILL"
    );
    let gone = wait_until(DEADLINE, || pids.iter().all(|&p| !alive(p)));
    assert!(
        gone,
        "alive {DEADLINE:?} after the master's SIGKILL: {:?}",
        pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
    );
}
