//! `--http`: `/readyz` is 200 once the cluster is ready, and turns 503 as soon as SIGTERM
//! arrives, while the workers are still stopping (as Kubernetes' shutdown expects: the pod
//! leaves the endpoints before it stops serving); `/livez` stays 200 meanwhile.

mod common;
mod http_support;
use common::*;
use http_support::*;

#[test]
fn readyz_is_503_while_the_cluster_stops() {
    // The workers take 2 s to exit after SIGTERM, so the master outlives the check.
    let (mut c, port) = start_with_http(
        2,
        &["--kill-timeout", "30000"],
        &["term-exit:0", "term-delay:2000"],
    );
    let r = get(port, "/readyz");
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"), "{r:?}");
    assert_eq!(get(port, "/livez").status, 200);

    c.signal(libc::SIGTERM);
    let mut last = None;
    let turned = wait_until(DEADLINE, || {
        let r = get(port, "/readyz");
        let done = r.status == 503;
        last = Some(r);
        done
    });
    assert!(turned, "/readyz never turned 503: {last:?}");
    assert!(
        c.process.0.try_wait().unwrap().is_none(),
        "the master had already exited when /readyz said 503"
    );
    let body = last.unwrap().body;
    assert!(body.contains("stopping"), "{body}");
    let live = get(port, "/livez");
    assert_eq!(live.status, 200, "the stopping master's loop still answers: {live:?}");

    let status = c.finish(std::time::Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", c.stderr.text());
}
