//! With `--output prefix`, a master whose stdout is closed (its reader gone) goes on: the
//! workers' lines it cannot write are dropped and counted, and still kept for `ctl logs`.

mod common;
use common::{DEADLINE, ctl, wait_until};

#[test]
fn output_prefix_survives_a_closed_stdout() {
    let (read, write) = std::io::pipe().unwrap();
    drop(read);
    let c = ctl::start_full(1, &["--output", "prefix"], &[], Some(write.into()));
    c.ctl_json(&[
        "send",
        "--to",
        "app",
        "do:print",
        r#"{"out":"into the void"}"#,
    ]);
    let dropped = || {
        c.ctl_json(&["stats", "--json"])["output_chunks_dropped"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(wait_until(DEADLINE, || dropped() >= 1), "nothing counted");
    let out = c.ctl(&["logs", "app"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[app 1] into the void\n"
    );
    assert!(c.list().is_some_and(|l| l["cluster"]["state"] == "ready"));
}
