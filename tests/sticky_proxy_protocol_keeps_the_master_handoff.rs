//! `--sticky --proxy-protocol` cannot be steered by the kernel (the client address is in a
//! header the master reads): it keeps the accepting master and says so; asking for
//! `--sticky-mode kernel` with it is a configuration error (exit 2) naming the flag.

mod common;
use common::*;

#[test]
fn sticky_proxy_protocol_keeps_the_master_handoff() {
    let c = common::ctl::start_with_app(
        2,
        &[
            "-p",
            "0",
            "--host",
            "127.0.0.1",
            "--sticky",
            "--proxy-protocol",
        ],
        &["http"],
    );
    let list = c.list().unwrap();
    assert_eq!(list["cluster"]["sticky_mode"], "master handoff", "{list}");
    let log = c.clutch.stderr.text();
    assert!(
        log.contains("sticky: master handoff") && log.contains("--proxy-protocol"),
        "{log}"
    );
}

#[test]
fn sticky_mode_kernel_with_proxy_protocol_exits_2() {
    let out = clutch_start(&[
        "-p",
        "0",
        "--sticky",
        "--proxy-protocol",
        "--sticky-mode",
        "kernel",
        "--",
        fixture(),
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sticky-mode"), "{err}");
}
