//! Flags given at start still win over the re-read config: a setting the file changes but a
//! flag set stays as the flag says (and is not reported), the file's other changes apply.

mod common;
use common::{ctl, fixture};
use serde_json::json;

#[test]
fn a_reload_keeps_the_flags_over_the_config() {
    let c = ctl::start_with_config(
        &json!({"workers": 1, "app": [fixture()]}),
        &["--kill-timeout", "4000"],
    );
    c.write_config(
        &json!({"workers": 1, "app": [fixture()], "kill-timeout": 100,
                           "env": {"MODE": "x"}}),
    );
    let out = c.ctl(&["reload"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("env MODE: added x"), "{text}");
    assert!(
        !text.contains("kill-timeout"),
        "the flag's value stays:\n{text}"
    );
}
