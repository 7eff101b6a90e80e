//! `clutch ctl logs -n N TARGET` prints the last N lines the targeted workers wrote, each
//! prefixed with the worker's name.

mod common;
use common::DEADLINE;
use common::ctl;

#[test]
fn logs_shows_the_last_lines() {
    let c = ctl::start(2, &["--output", "prefix"]);
    let list = c.ctl_json(&["list", "--json"]);
    let pid = ctl::row(&list, 1)["pid"].to_string();
    c.ctl_json(&[
        "send",
        "--to",
        "app",
        "--pid",
        &pid,
        "do:print",
        r#"{"out":"l1\nl2\nl3\nl4"}"#,
    ]);
    c.ctl_json(&["send", "--to", "agent", "do:print", r#"{"out":"a1"}"#]);
    for want in ["[app 1] l4", "[agent] a1"] {
        assert!(
            c.clutch
                .stdout
                .wait_for_line(DEADLINE, |l| l == want)
                .is_some(),
            "no {want:?} on the master's stdout:\n{}",
            c.clutch.stdout.text()
        );
    }
    // Its stderr's lines go into the same ring, in the order the master read them.
    c.ctl_json(&[
        "send",
        "--to",
        "app",
        "--pid",
        &pid,
        "do:print",
        r#"{"err":"l5"}"#,
    ]);
    assert!(
        c.clutch
            .stderr
            .wait_for_line(DEADLINE, |l| l == "[app 1] l5")
            .is_some()
    );
    let out = c.ctl(&["logs", "-n", "2", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[app 1] l4\n[app 1] l5\n"
    );
    let out = c.ctl(&["logs", "-n", "5", "agent"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[agent] a1\n");
    let out = c.ctl(&["logs", "-n", "100"]);
    let all = String::from_utf8_lossy(&out.stdout);
    assert!(
        all.contains("[agent] a1") && all.contains("[app 1] l1"),
        "{all}"
    );
    assert!(!all.contains("[app 2]"), "app 2 wrote nothing: {all}");
}
