//! `clutch egg --sticky`: the master accepts and hands each connection to an app worker
//! with Node's handle protocol and egg-cluster's `sticky-session:connection` message, which
//! egg-cluster's own app worker expects; the same client always reaches the same worker.

mod common;
use common::egg::*;
use common::net::*;

#[test]
fn egg_app_serves_sticky_connections() {
    let app = EggApp::new();
    let mut c = app.start(&["-w", "2", "-p", "0", "--host", "127.0.0.1", "--sticky"]);
    let ready = expect_egg_ready(&mut c);
    let port = ready["port"].as_u64().expect("a port in egg-ready") as u16;
    for n in 2..6 {
        let first = served_from(source(n), port, "/");
        for _ in 0..3 {
            let again = served_from(source(n), port, "/");
            assert_eq!(again.pid, first.pid, "127.0.0.{n} moved to another worker");
        }
    }
    stop_cleanly(c);
}
