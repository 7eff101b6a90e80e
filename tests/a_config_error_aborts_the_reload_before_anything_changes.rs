//! A re-read config with an error refuses the reload: `ctl reload` exits 1 naming the key,
//! no worker is replaced and the generation stays; once fixed, the reload goes ahead.

mod common;
use common::{ctl, fixture};
use serde_json::json;

#[test]
fn a_config_error_aborts_the_reload_before_anything_changes() {
    let good = json!({"workers": 2, "app": [fixture()]});
    let c = ctl::start_with_config(&good, &[]);
    let before = c.ctl_json(&["list", "--json"]);
    c.write_config(&json!({"workers": 2, "app": [fixture()], "ready-timeout": 0}));
    let out = c.ctl(&["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`ready-timeout`"),
        "names the key: {stderr}"
    );
    assert!(stderr.contains("nothing was changed"), "{stderr}");

    c.write_config(&json!({"workers": 2, "app": [fixture()], "wrokers": 3}));
    let out = c.ctl(&["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("wrokers"), "names the key: {stderr}");

    let after = c.ctl_json(&["list", "--json"]);
    assert_eq!(after["cluster"]["generation"], 1, "no reload happened");
    assert_eq!(
        ctl::CtlCluster::app_pids(&after),
        ctl::CtlCluster::app_pids(&before),
        "no worker was replaced"
    );
    assert!(ctl::all_ready(&after, 2));

    c.write_config(&good);
    let out = c.ctl(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
