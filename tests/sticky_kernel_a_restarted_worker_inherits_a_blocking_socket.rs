//! Kernel-steered sticky: while a slot is down the master drains its socket, which needs
//! `O_NONBLOCK` on it, and that flag is shared by every copy of the socket. The slot's next
//! worker must still inherit fd 3 as its first worker did (blocking), or a program that
//! accepts in blocking mode gets `EAGAIN` until it is ready.

mod common;
use common::net::*;
use common::*;

/// A wrapped binary that reports whether its fd 3 is non-blocking, then idles.
fn script(report: &std::path::Path) -> String {
    format!(
        "import fcntl, os, time\n\
         nb = bool(fcntl.fcntl(3, fcntl.F_GETFL) & os.O_NONBLOCK)\n\
         open({report:?}, 'a').write('%d %s\\n' % (os.getpid(), nb))\n\
         time.sleep(1000)\n",
        report = report.display().to_string()
    )
}

fn reports(path: &std::path::Path) -> Vec<(u32, bool)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pid, nb) = l.split_once(' ')?;
            Some((pid.parse().ok()?, nb == "True"))
        })
        .collect()
}

#[test]
fn a_restarted_worker_inherits_a_blocking_socket() {
    assert!(have("python3"), "this test needs `python3` on PATH");
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let code = script(&report);
    let (c, _port, _) = start_on_port(
        &[
            "-w",
            "2",
            "--sticky",
            "--sticky-mode",
            "kernel",
            "--ready",
            "delay:300",
        ],
        &["python3", "-c", &code],
    );
    assert!(wait_until(DEADLINE, || reports(&report).len() == 2));
    let first = reports(&report);
    assert!(first.iter().all(|(_, nb)| !nb), "{first:?}");

    // Slot 1's worker dies; the master drains its socket until the replacement starts.
    let (victim, _) = first[0];
    // SAFETY: a worker of the clutch under test.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    assert!(
        wait_until(DEADLINE, || reports(&report).len() == 3),
        "no replacement; stderr:\n{}",
        c.stderr.text()
    );
    let replacement = reports(&report)[2];
    assert!(
        !replacement.1,
        "the replacement {} inherited a non-blocking fd 3",
        replacement.0
    );
    stop_cleanly(c);
}
