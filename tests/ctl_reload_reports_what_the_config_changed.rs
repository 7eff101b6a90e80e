//! `ctl reload` lists each setting the re-read config changed, a line per change, with
//! secret values redacted; `--json` and `ctl watch` carry them on `reload.started`.

mod common;
use common::{DEADLINE, ctl, fixture};
use serde_json::{Value, json};

#[test]
fn ctl_reload_reports_what_the_config_changed() {
    let c = ctl::start_with_config(
        &json!({"workers": 1, "app": [fixture()], "kill-timeout": 5000,
                "env": {"MODE": "blue", "API_TOKEN": "first-secret-value"}}),
        &[],
    );
    let (_watch, rx) = c.watch_json();
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap()["event"], "snapshot");

    c.write_config(
        &json!({"workers": 1, "app": [fixture()], "kill-timeout": 3000,
                           "env": {"MODE": "green", "API_TOKEN": "second-secret-value"}}),
    );
    let out = c.ctl(&["reload"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "  env API_TOKEN: changed (<redacted>)",
        "  env MODE: blue -> green",
        "  kill-timeout: 5000 ms -> 3000 ms",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    assert!(!text.contains("secret-value"), "a secret is shown:\n{text}");
    let log = c.clutch.stderr.text();
    assert!(
        log.contains("env MODE: blue -> green"),
        "the master logs it:\n{log}"
    );
    assert!(!log.contains("secret-value"), "a secret is logged:\n{log}");

    let started = loop {
        let ev = rx.recv_timeout(DEADLINE).expect("reload.started on watch");
        if ev["event"] == "reload.started" {
            break ev;
        }
    };
    let keys: Vec<&str> = started["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["env API_TOKEN", "env MODE", "kill-timeout"]);
    assert!(!started.to_string().contains("secret-value"));

    // No change: a reload says none.
    let json_out = c.ctl(&["reload", "--json"]);
    assert!(json_out.status.success());
    let first: Value =
        serde_json::from_slice(json_out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["event"], "reload.started");
    assert_eq!(first["changes"], json!([]));
}
