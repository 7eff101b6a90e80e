//! A re-read config that changes what only a restart of the master can (here the name) refuses
//! the reload with nothing changed, saying so; other changes in the same file wait too.

mod common;
use common::{ctl, fixture};
use serde_json::json;

#[test]
fn a_reload_refuses_a_change_that_needs_a_restart() {
    let c = ctl::start_with_config(&json!({"workers": 1, "app": [fixture()]}), &[]);
    let before = c.ctl_json(&["list", "--json"]);
    c.write_config(&json!({"workers": 1, "app": [fixture(), "v2"], "name": "renamed"}));
    let out = c.ctl(&["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("name: clutch -> renamed"), "{stderr}");
    assert!(stderr.contains("needs a restart of the master"), "{stderr}");
    let after = c.ctl_json(&["list", "--json"]);
    assert_eq!(after["cluster"]["generation"], 1);
    assert_eq!(
        ctl::CtlCluster::app_pids(&after),
        ctl::CtlCluster::app_pids(&before)
    );
}
