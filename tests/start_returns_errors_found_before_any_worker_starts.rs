//! What can fail before a worker starts (settings, the port, the pid file) is an error from
//! `start()` itself that names the thing and the cause, and leaves no pid file behind.

mod common;
use common::*;

/// `builder` writing its pid file at `path` (the builder has no method for it).
fn with_pid_file(builder: clutch::MasterBuilder, path: &std::path::Path) -> clutch::MasterBuilder {
    clutch::MasterBuilder::from_settings(clutch::Settings {
        pid_file: Some(path.to_path_buf()),
        ..builder.settings().clone()
    })
}

fn start_error(builder: clutch::MasterBuilder) -> String {
    match builder.start() {
        Ok(_) => panic!("the start succeeded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_port_in_use_is_an_error_from_start_naming_the_address_and_the_cause() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("clutch.pid");
    let builder = cluster(1, None, &[]).host("127.0.0.1").port(port);
    let e = start_error(with_pid_file(builder, &pid_file));
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(e.contains("in use"), "{e}");
    assert!(e.contains("another process"), "{e}");
    assert!(!pid_file.exists(), "a failed start left its pid file");
}

#[test]
fn a_host_not_on_this_machine_is_an_error_from_start_saying_so() {
    // 192.0.2.0/24 is TEST-NET-1: documentation only, never a local address.
    let e = start_error(cluster(1, None, &[]).host("192.0.2.1").port(0));
    assert!(e.contains("192.0.2.1:0"), "{e}");
    assert!(e.contains("--host address is not on this machine"), "{e}");
    assert!(!e.contains("another process"), "{e}");
}

#[test]
fn bad_settings_are_an_error_from_start_naming_the_key() {
    let e = start_error(cluster(1, None, &[]).workers(0));
    assert!(e.contains("workers"), "{e}");
}

#[test]
fn an_unwritable_pid_file_is_an_error_from_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("no-such-dir").join("clutch.pid");
    let e = start_error(with_pid_file(cluster(1, None, &[]), &pid_file));
    assert!(e.contains("pid-file"), "{e}");
    assert!(e.contains(pid_file.to_str().unwrap()), "{e}");
}
