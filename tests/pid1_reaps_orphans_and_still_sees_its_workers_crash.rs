//! As PID 1 (a container's entry point; here `unshare --pid --fork --mount-proc`, as root)
//! or with `--subreaper`, the master adopts the orphans its workers leave behind and reaps
//! them: none stays a zombie. Its own workers are still reaped by their owners, so a
//! worker's crash is still seen with its exit code and the slot restarted; and SIGTERM
//! still stops it cleanly (PID 1 gets only the signals it handles).

mod common;
use common::*;

/// The worker: leaves an orphan (`sh -c ': orphan; …' &` from a shell that exits at once,
/// so the kernel re-parents it to the master) that exits once `GO` exists, then waits to
/// be told to crash (SIGUSR1: exit code 3).
fn worker_script(dir: &std::path::Path) -> String {
    let go = dir.join("go");
    format!(
        ": worker; trap 'exit 3' USR1; \
         sh -c \"sh -c ': orphan; while [ ! -e {go} ]; do sleep 0.02; done' &\"; \
         sleep 600 & wait",
        go = go.display()
    )
}

/// `argv[2]` of `pid` (what `sh -c` runs), empty when it is gone.
fn script_of(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    args.get(2)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_default()
}

fn children_running(master: u32, marker: &str) -> Vec<u32> {
    children_of(master)
        .into_iter()
        .filter(|&p| script_of(p).starts_with(marker))
        .collect()
}

/// Children of `master` that are zombies.
fn zombies(master: u32) -> Vec<u32> {
    children_of(master)
        .into_iter()
        .filter(|&p| std::path::Path::new(&format!("/proc/{p}")).exists() && !alive(p))
        .collect()
}

/// Runs the scenario on a clutch started by `cmd`; `master_of` finds the master's pid (as
/// this test sees it) from the pid of the process `cmd` started.
fn orphans_are_reaped_and_a_crash_is_a_crash(
    cmd: std::process::Command,
    master_of: impl Fn(u32) -> Option<u32>,
    dir: &std::path::Path,
) {
    let mut c = Clutch::spawn(cmd);
    let mut master = None;
    assert!(
        wait_until(DEADLINE, || {
            master = master_of(c.pid());
            master.is_some()
        }),
        "no master; stderr:\n{}",
        c.stderr.text()
    );
    let master = master.unwrap();

    // The orphan is re-parented to the master, then exits and is reaped.
    let mut orphan = Vec::new();
    assert!(
        wait_until(DEADLINE, || {
            orphan = children_running(master, ": orphan");
            !orphan.is_empty()
        }),
        "no orphan was re-parented to the master (pid {master}); its children: {:?}\nstderr:\n{}",
        children_of(master),
        c.stderr.text()
    );
    let worker = children_running(master, ": worker");
    assert_eq!(worker.len(), 1, "{:?}", children_of(master));
    std::fs::write(dir.join("go"), b"").unwrap();
    let orphan = orphan[0];
    assert!(
        wait_until(DEADLINE, || !std::path::Path::new(&format!(
            "/proc/{orphan}"
        ))
        .exists()),
        "the orphan {orphan} was not reaped (state: {:?}); stderr:\n{}",
        std::fs::read_to_string(format!("/proc/{orphan}/stat")),
        c.stderr.text()
    );

    // The worker's crash is seen as its own: exit code 3, and a new worker in the slot.
    kill(worker[0], libc::SIGUSR1);
    let crashed = c
        .stderr
        .wait_for_line(DEADLINE, |l| l.contains("exited with exit code 3"));
    assert!(crashed.is_some(), "stderr:\n{}", c.stderr.text());
    assert!(
        c.stderr
            .wait_for_line(DEADLINE, |l| l.contains("restarting app worker 1"))
            .is_some(),
        "stderr:\n{}",
        c.stderr.text()
    );
    let mut replaced = Vec::new();
    assert!(
        wait_until(DEADLINE, || {
            replaced = children_running(master, ": worker");
            replaced.len() == 1 && replaced != worker
        }),
        "no new worker; stderr:\n{}",
        c.stderr.text()
    );
    // The new worker's orphan finds GO at once and exits: no zombie stays.
    assert!(
        wait_until(DEADLINE, || children_running(master, ": orphan").is_empty()
            && zombies(master).is_empty()),
        "zombies {:?} of the master; stderr:\n{}",
        zombies(master),
        c.stderr.text()
    );
    assert!(
        !c.stderr.text().contains("cannot reap"),
        "stderr:\n{}",
        c.stderr.text()
    );

    kill(master, libc::SIGTERM);
    let status = c.finish(DEADLINE);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}

fn args(dir: &std::path::Path) -> Vec<String> {
    let script = worker_script(dir);
    [
        "-w",
        "1",
        "--no-agent",
        "--ready",
        "spawn",
        "--",
        "sh",
        "-c",
        &script,
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn as_pid_1_in_a_new_pid_namespace() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: a new pid namespace (unshare --pid) needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        clutch_bin(),
        "start",
        "--no-control",
    ])
    .args(args(dir.path()))
    .env("RUST_LOG", "info")
    .env("NO_COLOR", "1")
    .env_remove("CLUTCH_CHANNEL_FD")
    .env_remove("NODE_CHANNEL_FD");
    // unshare forks clutch into the new namespace, where it is PID 1.
    let master_of = |unshare: u32| children_of(unshare).first().copied();
    orphans_are_reaped_and_a_crash_is_a_crash(cmd, master_of, dir.path());
}

#[test]
fn with_subreaper() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec!["--subreaper".to_string()];
    all.extend(args(dir.path()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let cmd = clutch_start(&all);
    orphans_are_reaped_and_a_crash_is_a_crash(cmd, Some, dir.path());
}
