//! `clutch --help` and `clutch start --help` explain the command and each flag.

mod common;
use common::*;

fn help(args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(clutch_bin());
    cmd.args(args);
    let mut c = Clutch::spawn(cmd);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
    c.stdout.text()
}

#[test]
fn help_names_the_start_command_and_the_exit_codes() {
    let out = help(&["--help"]);
    assert!(out.contains("start"), "{out}");
    assert!(out.contains("Exit codes"), "{out}");
}

#[test]
fn help_explains_each_flag() {
    let out = help(&["start", "--help"]);
    for flag in [
        "--workers",
        "--agent",
        "--no-agent",
        "--port",
        "--ready",
        "--agent-ready",
        "--ready-timeout",
        "--kill-timeout",
        "--restart",
        "--config",
        "--pid-file",
        "--name",
        "--subreaper",
    ] {
        // Its entry: from the line that defines it to the next flag's.
        let lines: Vec<&str> = out.lines().collect();
        let defines = |l: &str| {
            l.split_whitespace()
                .take_while(|w| w.starts_with('-') || w.starts_with('<'))
                .any(|w| w.trim_end_matches(',') == flag)
        };
        let at = lines
            .iter()
            .position(|l| defines(l))
            .unwrap_or_else(|| panic!("{flag} not in:\n{out}"));
        let next = lines[at + 1..]
            .iter()
            .position(|l| l.trim_start().starts_with('-'))
            .map_or(lines.len(), |n| at + 1 + n);
        let entry = lines[at..next].join(" ");
        let words = entry
            .split_whitespace()
            .filter(|w| !w.starts_with('-') && !w.starts_with('<'))
            .count();
        assert!(words >= 3, "{flag} is not explained: {entry}");
    }
}
