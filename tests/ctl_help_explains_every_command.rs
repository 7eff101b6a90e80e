//! `clutch ctl --help` names every command, the targets, the roles and the exit codes.

mod common;

#[test]
fn ctl_help_explains_every_command() {
    let out = std::process::Command::new(common::clutch_bin())
        .args(["ctl", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "list", "inspect", "stats", "watch", "restart", "stop", "start", "scale", "kill", "signal",
        "send", "request", "logs", "reload", "shutdown",
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(cmd))
            .unwrap_or_else(|| panic!("no `{cmd}` in:\n{help}"));
        assert!(
            line.trim_start().len() > cmd.len() + 10,
            "`{cmd}` is not explained: {line}"
        );
    }
    for word in [
        "Targets",
        "pid:1234",
        "viewer",
        "operator",
        "admin",
        "Exit codes",
        "--socket",
        "--name",
    ] {
        assert!(help.contains(word), "no {word} in:\n{help}");
    }
    let start = std::process::Command::new(common::clutch_bin())
        .args(["start", "--help"])
        .output()
        .unwrap();
    let start = String::from_utf8_lossy(&start.stdout);
    for flag in [
        "--control-socket",
        "--no-control",
        "--control-users",
        "--output",
        "prefix",
    ] {
        assert!(start.contains(flag), "no {flag} in:\n{start}");
    }
}
