//! One state-changing command at a time per slot: while a restart of slot 1 waits for its
//! new worker to be ready, a second restart (or a stop) of that slot is refused naming the
//! one in progress and who asked; another slot is free.

mod common;
use common::ctl;

#[test]
fn a_conflicting_command_is_refused() {
    // App workers are ready 1.5 s after they start (and never say so): a restart takes
    // that long.
    let c = ctl::start_with_app(
        2,
        &["--ready", "delay:1500", "--agent-ready", "message"],
        &["no-ready"],
    );
    let first = c.ctl_cmd(&["restart", "1"]).spawn().unwrap();
    let mut first = common::CliProcess(first);
    c.wait_for(
        |l| {
            l["workers"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|w| w["id"] == 1)
                .count()
                == 2
        },
        "slot 1's replacement starting",
    );
    for cmd in [["restart", "1"], ["stop", "1"]] {
        let out = c.ctl(&cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {err}");
        assert!(
            err.contains("slot 1: `restart 1` asked by") && err.contains("is still in progress"),
            "{cmd:?}: {err}"
        );
    }
    let status = common::wait_exit(&mut first.0, common::DEADLINE).expect("the restart ends");
    assert!(status.success());
    let out = c.ctl(&["stop", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
