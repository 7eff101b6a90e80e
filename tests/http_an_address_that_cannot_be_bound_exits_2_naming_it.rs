//! `--http` with an address that is not one, or that another socket holds: clutch exits 2
//! before any worker starts, naming the flag and the address.

mod common;
use common::*;

fn refused(http: &str) -> String {
    let mut c = Clutch::spawn(clutch_start(&[
        "-w",
        "1",
        "--no-agent",
        "--http",
        http,
        "--",
        fixture(),
    ]));
    let status = c.finish(DEADLINE);
    let stderr = c.stderr.text();
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("--http") && stderr.contains(http), "{stderr}");
    assert!(!stderr.contains("ready"), "a worker started: {stderr}");
    stderr
}

#[test]
fn a_taken_address_and_a_bad_one_exit_2_naming_them() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let stderr = refused(&taken);
    assert!(stderr.contains("cannot listen"), "{stderr}");

    let stderr = refused("no-port-here");
    assert!(stderr.contains("HOST:PORT"), "{stderr}");
}
