//! A slot's kept output outlives its worker: after a crash, `clutch ctl logs SLOT` shows
//! what the dead worker wrote last, then what its replacement writes.

mod common;
use common::{DEADLINE, ctl};

#[test]
fn logs_keep_a_slots_lines_across_its_restart() {
    let c = ctl::start(1, &["--output", "prefix"]);
    let list = c.ctl_json(&["list", "--json"]);
    let old = ctl::row(&list, 1)["pid"].clone();
    c.ctl_json(&["send", "--to", "app", "do:print", r#"{"err":"last words"}"#]);
    assert!(
        c.clutch
            .stderr
            .wait_for_line(DEADLINE, |l| l == "[app 1] last words")
            .is_some()
    );
    c.ctl_json(&["send", "--to", "app", "do:exit", "3"]);
    c.wait_for(
        |l| ctl::row(l, 1)["pid"] != old && ctl::row(l, 1)["state"] == "ready",
        "slot 1 restarted",
    );
    c.ctl_json(&["send", "--to", "app", "do:print", r#"{"out":"new worker"}"#]);
    assert!(
        c.clutch
            .stdout
            .wait_for_line(DEADLINE, |l| l == "[app 1] new worker")
            .is_some()
    );
    let out = c.ctl(&["logs", "1"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[app 1] last words\n[app 1] new worker\n"
    );
}
