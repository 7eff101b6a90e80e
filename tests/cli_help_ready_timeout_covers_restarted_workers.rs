//! `--ready-timeout` applies to restarted workers too, not only to the start, and its help
//! says so.

mod common;
use common::*;

#[test]
fn ready_timeout_help_covers_restarted_workers() {
    let mut cmd = std::process::Command::new(clutch_bin());
    cmd.args(["start", "--help"]);
    let mut c = Clutch::spawn(cmd);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
    let out = c.stdout.text();
    // clap puts a long help on one line, or wraps it to the terminal: compare words.
    let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
    let entry = words
        .split("--ready-timeout <MS>")
        .nth(1)
        .and_then(|rest| rest.split(" --").next())
        .unwrap_or_else(|| panic!("no --ready-timeout in:\n{out}"));
    assert!(entry.contains("fails the start"), "{entry}");
    assert!(entry.contains("restarted worker"), "{entry}");
    assert!(entry.contains("killed and restarted"), "{entry}");
}
