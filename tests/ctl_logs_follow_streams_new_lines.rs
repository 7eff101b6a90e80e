//! `clutch ctl logs -f` prints the lines kept, then each new line as the worker writes it.

mod common;
use common::{Collected, DEADLINE, ctl};
use std::process::Stdio;

#[test]
fn logs_follow_streams_new_lines() {
    let c = ctl::start(1, &["--output", "prefix"]);
    c.ctl_json(&["send", "--to", "app", "do:print", r#"{"out":"before"}"#]);
    assert!(
        c.clutch
            .stdout
            .wait_for_line(DEADLINE, |l| l == "[app 1] before")
            .is_some()
    );
    let mut follower = c
        .ctl_cmd(&["logs", "-f", "app"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = Collected::from_pipe(follower.stdout.take().unwrap());
    let errors = Collected::from_pipe(follower.stderr.take().unwrap());
    let kept = seen.wait_for_line(DEADLINE, |l| l == "[app 1] before");
    let mut check = || {
        assert!(
            kept.is_some(),
            "the kept line first: {:?} {:?}",
            seen.text(),
            errors.text()
        );
        // The follower has its snapshot, so it is subscribed: this line is new to it.
        c.ctl_json(&[
            "send",
            "--to",
            "app",
            "do:print",
            r#"{"out":"after","err":"late"}"#,
        ]);
        for want in ["[app 1] after", "[app 1] late"] {
            assert!(
                seen.wait_for_line(DEADLINE, |l| l == want).is_some(),
                "no {want:?} followed: {:?} {:?}",
                seen.text(),
                errors.text()
            );
        }
        // The agent's lines are not followed with target `app`.
        c.ctl_json(&["send", "--to", "agent", "do:print", r#"{"out":"agent"}"#]);
        c.ctl_json(&["send", "--to", "app", "do:print", r#"{"out":"last"}"#]);
        assert!(
            seen.wait_for_line(DEADLINE, |l| l == "[app 1] last")
                .is_some()
        );
        assert!(!seen.text().contains("[agent]"), "{}", seen.text());
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut check));
    let _ = follower.kill();
    let _ = follower.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
