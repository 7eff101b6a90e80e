//! `--http`: `/readyz` is 200 once the cluster is ready, and turns 503 as soon as SIGTERM
//! arrives, while the workers are still stopping (as Kubernetes' shutdown expects: the pod
//! leaves the endpoints before it stops serving): never 200 once a worker has had SIGTERM.
//! `/livez` stays 200 meanwhile.

mod common;
mod http_support;
use common::*;
use http_support::*;

#[test]
fn readyz_is_503_while_the_cluster_stops() {
    // The workers note their SIGTERM in a file and take 2 s to exit after it, so the
    // master outlives the check.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("terms");
    let term_log = format!("term-log:{}", log.display());
    let (mut c, port) = start_with_http(
        2,
        &["--kill-timeout", "30000"],
        &["term-exit:0", "term-delay:2000", &term_log],
    );
    let termed = || std::fs::read_to_string(&log).is_ok_and(|t| !t.is_empty());
    let r = get(port, "/readyz");
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"), "{r:?}");
    assert_eq!(get(port, "/livez").status, 200);

    c.signal(libc::SIGTERM);
    let mut last = None;
    let turned = wait_until(DEADLINE, || {
        // 503 first: once any worker has had SIGTERM, /readyz is no longer 200.
        let a_worker_had_sigterm = termed();
        let r = get(port, "/readyz");
        assert!(
            !a_worker_had_sigterm || r.status == 503,
            "/readyz said {r:?} after a worker got SIGTERM"
        );
        let done = r.status == 503;
        last = Some(r);
        done
    });
    assert!(turned, "/readyz never turned 503: {last:?}");
    assert!(
        c.process.0.try_wait().unwrap().is_none(),
        "the master had already exited when /readyz said 503"
    );
    assert!(wait_until(DEADLINE, termed), "no worker noted its SIGTERM");
    assert_eq!(get(port, "/readyz").status, 503);
    let body = last.unwrap().body;
    assert!(body.contains("stopping"), "{body}");
    let live = get(port, "/livez");
    assert_eq!(
        live.status, 200,
        "the stopping master's loop still answers: {live:?}"
    );

    let status = c.finish(std::time::Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
