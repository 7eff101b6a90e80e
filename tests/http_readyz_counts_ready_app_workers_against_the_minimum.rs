//! `--ready-minimum N`: `/readyz` is 200 while at least N app workers are ready, and 503
//! naming the shortfall when fewer are (a slot stopped with `clutch ctl stop` still counts
//! as desired); back to 200 once enough are ready again.

mod common;
mod http_support;
use common::*;
use http_support::*;

#[test]
fn readyz_follows_the_ready_minimum() {
    let c = ctl::start(3, &["--http", "127.0.0.1:0", "--ready-minimum", "2"]);
    let port = http_port(&c.clutch);
    let readyz = || get(port, "/readyz");
    assert_eq!(readyz().status, 200);

    // `ctl stop` answers once the worker is gone.
    let ctl = |args: &[&str]| {
        let out = c.ctl(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "clutch ctl {args:?}: {err}");
    };
    ctl(&["stop", "3"]);
    let r = readyz();
    assert_eq!(r.status, 200, "2 ready, 2 needed: {r:?}");

    ctl(&["stop", "2"]);
    let r = readyz();
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.contains("1 app worker(s) ready, 2 needed"), "{r:?}");

    ctl(&["start", "2"]);
    let mut last = None;
    let back = wait_until(DEADLINE, || {
        let r = readyz();
        let ok = r.status == 200;
        last = Some(r);
        ok
    });
    assert!(back, "/readyz not 200 again: {last:?}");
    net::stop_cleanly(c.clutch);
}
