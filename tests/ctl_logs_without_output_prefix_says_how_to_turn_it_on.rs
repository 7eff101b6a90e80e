//! Without `--output prefix` the master keeps no output: `clutch ctl logs` says so, says how
//! to turn it on, and exits 2.

mod common;
use common::ctl;

#[test]
fn logs_without_output_prefix_says_how_to_turn_it_on() {
    let c = ctl::start(1, &[]);
    let out = c.ctl(&["logs"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not captured"), "{stderr}");
    assert!(stderr.contains("--output prefix"), "{stderr}");
}
