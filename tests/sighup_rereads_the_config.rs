//! SIGHUP to a `clutch start --config` master reads the file again like `ctl reload`: the
//! new generation gets the new environment; a config error is logged naming the key and
//! nothing changes.

mod common;
use common::{DEADLINE, ctl, fixture, wait_until};
use serde_json::json;

fn environ(pid: u64) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default())
        .into_owned()
}

#[test]
fn sighup_rereads_the_config() {
    let c = ctl::start_with_config(&json!({"workers": 1, "app": [fixture()]}), &[]);
    c.write_config(&json!({"workers": 1, "app": [fixture()], "env": {"RELEASE": "two"}}));
    c.clutch.signal(libc::SIGHUP);
    let list = c.wait_for(
        |l| {
            l["cluster"]["generation"] == 2
                && ctl::all_ready(l, 1)
                && ctl::apps(l)[0]["generation"] == 2
        },
        "generation 2",
    );
    let pid = ctl::CtlCluster::app_pids(&list)[0];
    assert!(environ(pid).contains("RELEASE=two\0"), "{}", environ(pid));

    c.write_config(&json!({"workers": 1, "app": [fixture()], "restart": "sometimes"}));
    c.clutch.signal(libc::SIGHUP);
    assert!(
        wait_until(DEADLINE, || c
            .clutch
            .stderr
            .text()
            .contains("SIGHUP: not reloading")),
        "{}",
        c.clutch.stderr.text()
    );
    let log = c.clutch.stderr.text();
    assert!(log.contains("`restart`"), "names the key: {log}");
    let after = c.ctl_json(&["list", "--json"]);
    assert_eq!(after["cluster"]["generation"], 2);
    assert_eq!(ctl::CtlCluster::app_pids(&after), [pid]);
}
