//! The default control socket is per name: a second master of a running one's name is a
//! start error (exit 2) naming the socket; once the first is killed (its socket left
//! behind, stale), a new master replaces it. `ctl --name` finds it; a name nobody runs is
//! a clear error, exit 2.

mod common;
use common::{Clutch, DEADLINE, fixture};

fn start_ok(runtime: &std::path::Path) -> std::process::Command {
    // `--control-socket`-less: the default path, under XDG_RUNTIME_DIR.
    let mut cmd = std::process::Command::new(common::clutch_bin());
    cmd.args(["start", "--name", "twin", "-w", "1", "--", fixture()])
        .env("XDG_RUNTIME_DIR", runtime)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("CLUTCH_CHANNEL_FD")
        .env_remove("NODE_CHANNEL_FD");
    cmd
}

fn ctl(runtime: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(common::clutch_bin())
        .env("XDG_RUNTIME_DIR", runtime)
        .arg("ctl")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_second_master_with_the_same_name_fails() {
    let runtime = tempfile::tempdir().unwrap();
    let rt = runtime.path();
    let socket = rt.join("clutch").join("twin.sock");

    let out = ctl(rt, &["--name", "twin", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("no clutch named twin is running: no socket at")
            && err.contains(socket.to_str().unwrap()),
        "{err}"
    );

    let mut first = Clutch::spawn(start_ok(rt));
    assert!(
        common::wait_until(DEADLINE, || ctl(rt, &["--name", "twin", "list"])
            .status
            .success()),
        "{}",
        first.stderr.text()
    );
    let mode = std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(&socket).unwrap());
    assert_eq!(mode & 0o777, 0o600);

    let out = start_ok(rt).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("another clutch master is running") && err.contains(socket.to_str().unwrap()),
        "{err}"
    );

    // SIGKILL: the socket file stays, with nobody behind it.
    first.signal(libc::SIGKILL);
    first.wait_exit(DEADLINE).unwrap();
    assert!(socket.exists());
    let out = ctl(rt, &["--name", "twin", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let mut second = Clutch::spawn(start_ok(rt));
    assert!(
        common::wait_until(DEADLINE, || ctl(rt, &["--name", "twin", "list"])
            .status
            .success()),
        "{}",
        second.stderr.text()
    );
    assert!(
        second
            .stderr
            .text()
            .contains("replacing the stale control socket")
    );
    // A graceful stop removes the socket.
    let out = ctl(rt, &["--name", "twin", "shutdown"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    second.finish(DEADLINE);
    assert!(!socket.exists());
}
