//! The CLI master raises its own soft open-file limit (it may hold a socket per pending
//! connection) but its workers start with the limit clutch was given: a program using
//! `select()` must not see fds past 1024.
mod common;
use common::*;
use std::os::unix::process::CommandExt;

#[test]
fn workers_keep_the_original_open_file_limit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("limit");
    let script = format!("ulimit -Sn > {}; exec sleep 100", out.display());
    let mut cmd = clutch_start(&[
        "-w",
        "1",
        "--no-agent",
        "--ready",
        "spawn",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    // SAFETY: setrlimit between fork and exec, a plain syscall.
    unsafe {
        cmd.pre_exec(|| {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
            lim.rlim_cur = 256.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        });
    }
    let mut c = Clutch::spawn(cmd);
    let written = wait_until(DEADLINE, || {
        std::fs::read_to_string(&out).is_ok_and(|s| s.ends_with('\n'))
    });
    assert!(written, "the worker never wrote its limit");
    let limit: u64 = std::fs::read_to_string(&out)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(limit, 256, "the worker's soft open-file limit");
    c.signal(libc::SIGTERM);
    let status = c.wait_exit(DEADLINE).expect("clutch exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}
