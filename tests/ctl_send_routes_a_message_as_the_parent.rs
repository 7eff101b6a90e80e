//! `clutch ctl send` routes a message as the parent would: `--to app --pid P` reaches that
//! app worker only (here the fixture's `do:exit`, seen as the worker's exit code).

mod common;
use common::ctl;

#[test]
fn send_routes_a_message_as_the_parent() {
    let c = ctl::start(2, &[]);
    let list = c.ctl_json(&["list", "--json"]);
    let (one, two) = (
        ctl::row(&list, 1)["pid"].clone(),
        ctl::row(&list, 2)["pid"].clone(),
    );
    let pid = one.as_u64().unwrap().to_string();
    let out = c.ctl_json(&["send", "--to", "app", "--pid", &pid, "do:exit", "5"]);
    assert_eq!(out["delivered"], 1, "{out}");
    let list = c.wait_for(
        |l| ctl::row(l, 1)["last_exit"]["code"] == 5 && ctl::row(l, 1)["state"] == "ready",
        "slot 1 exited with code 5 and restarted",
    );
    assert_eq!(ctl::row(&list, 2)["pid"], two, "slot 2 got nothing");
    let out = c.ctl(&["send", "x", "{not json"]);
    assert_eq!(out.status.code(), Some(2));
}
