//! With `--output prefix`, what workers write on stdout and stderr reaches the master's
//! stdout and stderr line by line, each line prefixed with the worker's name.

mod common;
use common::DEADLINE;
use common::ctl;

#[test]
fn output_prefix_prefixes_app_and_agent_lines() {
    let c = ctl::start(2, &["--output", "prefix"]);
    c.ctl_json(&[
        "send",
        "--to",
        "agent",
        "do:print",
        r#"{"out":"hello from the agent"}"#,
    ]);
    let list = c.ctl_json(&["list", "--json"]);
    let pid = ctl::row(&list, 2)["pid"].to_string();
    c.ctl_json(&[
        "send",
        "--to",
        "app",
        "--pid",
        &pid,
        "do:print",
        r#"{"out":"one\ntwo","err":"oops"}"#,
    ]);
    for (stream, want) in [
        (&c.clutch.stdout, "[agent] hello from the agent"),
        (&c.clutch.stdout, "[app 2] one"),
        (&c.clutch.stdout, "[app 2] two"),
        (&c.clutch.stderr, "[app 2] oops"),
    ] {
        assert!(
            stream.wait_for_line(DEADLINE, |l| l == want).is_some(),
            "no line {want:?}\nmaster's stdout:\n{}\nmaster's stderr:\n{}",
            c.clutch.stdout.text(),
            c.clutch.stderr.text()
        );
    }
    assert!(
        !c.clutch.stdout.text().contains("[app 1] one"),
        "app 1 was not told to print"
    );
}
