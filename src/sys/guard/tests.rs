//! The guard with real processes: each way of closing fds, a guard that cannot see end of
//! file, a killed guard noticed and replaced, and its process name.

use super::close_fds::{Method, close_from};
use super::*;
use std::process::{Child, Command};
use std::rc::Rc;

const DEADLINE: Duration = Duration::from_secs(20);

/// `sleep 60` in a process group of its own, as a worker is.
fn sleeper() -> Child {
    use std::os::unix::process::CommandExt;
    Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .expect("sleep starts")
}

/// Waits for `child` to exit within [`DEADLINE`]; the signal that ended it, if any.
fn killed_by(child: &mut Child) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.signal();
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pid {} still runs after {DEADLINE:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for our child `pid` to exit within [`DEADLINE`]; its exit code.
fn exit_code(pid: libc::pid_t) -> i32 {
    let end = Instant::now() + DEADLINE;
    loop {
        let mut status = 0;
        // SAFETY: waits without blocking for our own child.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            assert!(
                libc::WIFEXITED(status),
                "pid {pid} ended with status {status:#x}"
            );
            return libc::WEXITSTATUS(status);
        }
        if Instant::now() >= end {
            // SAFETY: our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("pid {pid} still runs after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// In a forked child, opens a few fds, closes from 3 with `first`, and checks what is left.
fn close_in_a_child(first: Method) -> Method {
    let keep: Vec<OwnedFd> = (0..2).map(|_| std::io::pipe().unwrap().0.into()).collect();
    let others: Vec<OwnedFd> = (0..4).map(|_| std::io::pipe().unwrap().1.into()).collect();
    let keep = [keep[1].as_raw_fd(), keep[0].as_raw_fd()];
    let others: Vec<i32> = others.iter().map(|f| f.as_raw_fd()).collect();
    let others = [others[0], others[1], others[2], others[3]];
    let open = |fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
    // SAFETY: the child makes only async-signal-safe calls and leaves with _exit.
    match unsafe { libc::fork() } {
        0 => unsafe {
            let used = close_from(3, keep, 1 << 16, first);
            let ok = keep.iter().all(|&fd| open(fd))
                && others.iter().all(|&fd| !open(fd))
                && (0..3).all(open);
            libc::_exit(if ok { 10 + used as i32 } else { 1 })
        },
        pid => match exit_code(pid) {
            1 => panic!("starting from {first:?}: a kept fd was closed or another left open"),
            code => [Method::CloseRange, Method::ProcSelfFd, Method::UpToLimit][code as usize - 10],
        },
    }
}

#[test]
fn every_way_of_closing_fds_keeps_only_the_kept_ones() {
    assert_eq!(close_in_a_child(Method::CloseRange), Method::CloseRange);
    assert_eq!(close_in_a_child(Method::ProcSelfFd), Method::ProcSelfFd);
    assert_eq!(close_in_a_child(Method::UpToLimit), Method::UpToLimit);
}

/// A guard that starts closing fds with `first` (as when `close_range` fails) still exits
/// on end of file, and kills its groups.
fn guard_exits_on_end_of_file(first: Method) {
    let mut sleep = sleeper();
    let mut guard = Guard::start_with(first).unwrap();
    guard.watch(sleep.id());
    let pid = guard.abandon();
    assert_eq!(exit_code(pid), 0, "the guard's exit code");
    assert_eq!(killed_by(&mut sleep), Some(libc::SIGKILL));
}

#[test]
fn without_close_range_the_guard_still_exits_on_end_of_file() {
    guard_exits_on_end_of_file(Method::ProcSelfFd);
    guard_exits_on_end_of_file(Method::UpToLimit);
}

#[test]
fn drop_returns_and_kills_the_groups_when_the_guard_never_sees_end_of_file() {
    let mut sleep = sleeper();
    // Closing nothing, the guard keeps a copy of its pipe's write end: no end of file.
    let mut guard = Guard::start_with(Method::Nothing).unwrap();
    guard.watch(sleep.id());
    let pid = guard.pid();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(guard);
        let _ = tx.send(());
    });
    let returned = rx.recv_timeout(DEADLINE).is_ok();
    if !returned {
        // SAFETY: our own child; unblocks the dropping thread.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    assert!(returned, "Guard::drop still blocked after {DEADLINE:?}");
    assert_eq!(killed_by(&mut sleep), Some(libc::SIGKILL));
}

#[tokio::test]
async fn a_killed_guard_is_noticed_and_its_replacement_kills_the_groups() {
    let mut sleep = sleeper();
    let mut guard = Guard::start().unwrap();
    guard.watch(sleep.id());
    let old = guard.pid();
    // SAFETY: our own child.
    unsafe { libc::kill(old as i32, libc::SIGKILL) };
    tokio::time::timeout(DEADLINE, guard.died())
        .await
        .expect("the guard's death noticed in time")
        .unwrap();
    guard.restart().unwrap();
    assert_ne!(guard.pid(), old);
    assert!(
        sleep.try_wait().unwrap().is_none(),
        "the group was killed early"
    );
    let pid = guard.abandon();
    assert_eq!(exit_code(pid), 0, "the new guard's exit code");
    assert_eq!(killed_by(&mut sleep), Some(libc::SIGKILL));
}

#[tokio::test]
async fn supervise_replaces_a_killed_guard_until_the_guard_is_dropped() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let guard = Rc::new(RefCell::new(Guard::start().unwrap()));
            let task = tokio::task::spawn_local(supervise(Rc::downgrade(&guard)));
            for _ in 0..2 {
                let old = guard.borrow().pid();
                // SAFETY: our own child.
                unsafe { libc::kill(old as i32, libc::SIGKILL) };
                let end = Instant::now() + DEADLINE;
                while guard.borrow().pid() == old {
                    assert!(Instant::now() < end, "guard {old} not replaced in time");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            drop(guard);
            let ended = tokio::time::timeout(DEADLINE, task).await;
            assert!(
                matches!(ended, Ok(Ok(Ok(())))),
                "supervise after the drop: {ended:?}"
            );
        })
        .await;
}

#[test]
fn the_guard_is_named_clutch_guard() {
    let guard = Guard::start().unwrap();
    let comm = format!("/proc/{}/comm", guard.pid());
    let end = Instant::now() + DEADLINE;
    loop {
        let name = std::fs::read_to_string(&comm).unwrap();
        if name == "clutch-guard\n" {
            break;
        }
        assert!(Instant::now() < end, "the guard's name is still {name:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
