//! A worker's grandchild that escapes its process group (`setsid`) with the worker's
//! channel fd keeps writing to it after the worker died. Once the worker's death is
//! announced, nothing more from that channel is routed: the master stopped reading it.

mod common;
use clutch::{Master, ReadyMode, RestartPolicy};
use common::*;
use std::time::Duration;

const GHOST: &str = r#"
import os, sys, time
fd = int(os.environ["CLUTCH_CHANNEL_FD"])
if os.fork() == 0:
    os.setsid()
    with open(sys.argv[1], "w") as f:
        f.write(str(os.getpid()))
    while True:
        try:
            os.write(fd, b'{"action":"ghost","to":"parent"}\n')
        except OSError:
            pass
        time.sleep(0.02)
time.sleep(0.3)
sys.exit(3)
"#;

#[tokio::test]
async fn an_escaped_grandchild_cannot_speak_for_a_dead_worker() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ghost.py");
    std::fs::write(&script, GHOST).unwrap();
    let pid_file = dir.path().join("ghost.pid");
    let mut m = Master::builder()
        .workers(1)
        .app([
            "python3",
            script.to_str().unwrap(),
            pid_file.to_str().unwrap(),
        ])
        .ready(ReadyMode::Spawn)
        .restart(RestartPolicy::Never)
        .start()
        .unwrap();
    let ghost_pid = || -> Option<u32> { std::fs::read_to_string(&pid_file).ok()?.parse().ok() };
    let seen = collect_until(&mut m, "the worker's death", DEADLINE, |seen| {
        seen.iter().any(|x| x.action == "app-worker-died")
    })
    .await;
    assert!(
        seen.iter().any(|x| x.action == "ghost"),
        "the grandchild spoke while the worker lived: {}",
        summary(&seen)
    );
    let ghost = ghost_pid().expect("the grandchild wrote its pid");
    assert!(alive(ghost), "the grandchild outlives the worker");
    let mut after = Vec::new();
    while let Ok(Some(x)) = tokio::time::timeout(Duration::from_millis(500), m.recv()).await {
        after.push(x);
    }
    kill(ghost, libc::SIGKILL);
    assert!(
        !after.iter().any(|x| x.action == "ghost"),
        "a dead worker's channel was still routed: {}",
        summary(&after)
    );
    m.shutdown().await.unwrap();
}
