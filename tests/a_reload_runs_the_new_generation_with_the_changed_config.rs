//! A master started with `--config` reads it again on `ctl reload`: the new generation's
//! workers run the new command and see the new environment.

mod common;
use common::{ctl, fixture};
use serde_json::json;

/// The NUL-separated entries of `/proc/PID/FILE`.
fn proc_list(pid: u64, file: &str) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect()
}

#[test]
fn a_reload_runs_the_new_generation_with_the_changed_config() {
    let c = ctl::start_with_config(
        &json!({"workers": 2, "app": [fixture()], "env": {"RELEASE": "one"}}),
        &[],
    );
    let before = ctl::CtlCluster::app_pids(&c.ctl_json(&["list", "--json"]));
    for pid in &before {
        assert!(proc_list(*pid, "environ").contains(&"RELEASE=one".to_string()));
    }
    c.write_config(&json!({"workers": 2, "app": [fixture(), "release-two"],
                           "env": {"RELEASE": "two"}}));
    let out = c.ctl(&["reload"]);
    assert!(
        out.status.success(),
        "{}\nmaster's stderr:\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.clutch.stderr.text()
    );
    let after = c.wait_for(
        |l| ctl::apps(l).iter().all(|w| w["generation"] == 2) && ctl::all_ready(l, 2),
        "both app workers on generation 2",
    );
    for pid in ctl::CtlCluster::app_pids(&after) {
        assert!(!before.contains(&pid), "slot still runs old pid {pid}");
        let env = proc_list(pid, "environ");
        assert!(env.contains(&"RELEASE=two".to_string()), "{env:?}");
        assert!(!env.contains(&"RELEASE=one".to_string()), "{env:?}");
        let cmdline = proc_list(pid, "cmdline");
        assert_eq!(cmdline, [fixture(), "release-two"], "the new command");
    }
}
