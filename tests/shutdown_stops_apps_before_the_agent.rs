mod common;
use common::*;

/// Longer than any loaded machine takes to stop three workers that exit on SIGTERM.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);
const KILL_TIMEOUT: Duration = Duration::from_secs(120);
use std::time::Duration;

/// `shutdown` sends SIGTERM to the app workers, waits until they are gone, then stops the
/// agent; with workers that exit promptly it returns long before the kill timeout (no upper
/// bound is timed: the kill timeout is longer than the generous deadline for the shutdown).
///
/// The handle (and with it the workers' `terminating` reports) is gone once `shutdown`
/// returns, so the workers log their SIGTERM and their exit to a file. The app workers
/// linger 150 ms after SIGTERM: an agent signalled with them would log before they exit.
#[tokio::test]
async fn shutdown_stops_apps_before_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("term.log");
    let log_arg = format!("term-log:{}", log.display());
    let mut m = start_ready(
        cluster(
            2,
            Some(&["term-exit:0", &log_arg]),
            &["term-exit:0", &log_arg, "term-delay:150"],
        )
        .kill_timeout(KILL_TIMEOUT),
    )
    .await;
    // Every worker is past its start (its SIGTERM handler in place) once it reported.
    collect_until(&mut m, "3 started reports", DEADLINE, |seen| {
        seen.iter().filter_map(started_report).count() == 3
    })
    .await;

    // A shutdown that waits for the kill timeout, or never ends, fails here; dropping its
    // future kills the workers.
    tokio::time::timeout(SHUTDOWN_DEADLINE, m.shutdown())
        .await
        .expect("shutdown long before the kill timeout")
        .unwrap();

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let index = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix));
    let agent_term =
        index("term agent").unwrap_or_else(|| panic!("the agent got no SIGTERM:\n{text}"));
    for id in [1, 2] {
        let exit = index(&format!("exit app {id} "))
            .unwrap_or_else(|| panic!("app {id} did not exit on SIGTERM:\n{text}"));
        assert!(
            exit < agent_term,
            "the agent was signalled before app {id} exited:\n{text}"
        );
    }
    assert!(
        index("exit agent").is_some(),
        "the agent did not exit on SIGTERM:\n{text}"
    );
}
