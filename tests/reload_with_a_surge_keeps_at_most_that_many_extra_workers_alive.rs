//! `ctl reload --surge 1`: while old workers take their time to exit, at most one worker
//! beyond one per slot is alive at any moment (counted from the master's own spawn and exit
//! events), and every slot still gets its new worker.

mod common;
use common::{DEADLINE, ctl};

#[test]
fn reload_with_a_surge_keeps_at_most_that_many_extra_workers_alive() {
    // Old app workers take 400 ms to exit after SIGTERM.
    let c = ctl::start_with_app(3, &[], &["term-exit:0", "term-delay:400"]);
    let (_watch, rx) = c.watch_json();
    let snapshot = rx.recv_timeout(DEADLINE).unwrap();
    let slots = snapshot["snapshot"]["workers"].as_array().unwrap().len();
    assert_eq!(slots, 4, "three apps and the agent");

    let out = c.ctl(&["reload", "--batch", "3", "--surge", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (mut alive, mut most, mut exited, mut completed) = (slots, slots, 0, false);
    while !(completed && exited == slots) {
        let ev = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("stuck: {exited} exited, completed {completed}"));
        match ev["event"].as_str().unwrap() {
            "worker.spawned" => alive += 1,
            "worker.exited" => {
                alive -= 1;
                exited += 1;
            }
            "reload.completed" => completed = true,
            _ => {}
        }
        most = most.max(alive);
        assert!(
            alive <= slots + 1,
            "{alive} workers alive, more than {slots} + 1"
        );
    }
    assert_eq!(most, slots + 1, "each new worker ran beside an old one");
    let list = c.wait_for(|l| ctl::all_ready(l, 3), "three ready app workers");
    assert!(ctl::apps(&list).iter().all(|w| w["generation"] == 2));
}
