//! `--sticky` with workers that accept on their inherited socket is steered by the kernel:
//! each client reaches the worker the Rust hash predicts, every time, and the master
//! accepts nothing (its handoff counter stays 0). `ctl list --json` and the log say so.

mod common;
use common::net::*;

#[test]
fn sticky_kernel_mode_keeps_each_client_on_its_worker_without_the_master() {
    let c = common::ctl::start_with_app(
        4,
        &["-p", "0", "--host", "127.0.0.1", "--sticky"],
        &["http"],
    );
    let list = c.list().expect("ctl list answers");
    assert_eq!(list["cluster"]["sticky"], true, "{list}");
    assert_eq!(list["cluster"]["sticky_mode"], "kernel-steered", "{list}");
    assert!(
        c.clutch.stderr.text().contains("sticky: kernel-steered"),
        "{}",
        c.clutch.stderr.text()
    );
    let port = list["cluster"]["port"].as_u64().unwrap() as u16;
    let pids: Vec<u64> = common::ctl::apps(&list)
        .iter()
        .map(|r| r["pid"].as_u64().unwrap())
        .collect();

    for n in 0..60 {
        let from = source_n(n);
        let want = steered_slot(&[1, 2, 3, 4], from);
        let first = served_from(from, port, "/");
        assert_eq!(
            first.id, want,
            "{from} reached slot {} not {want}",
            first.id
        );
        assert!(
            pids.contains(&u64::from(first.pid)),
            "{first:?} not in {pids:?}"
        );
        for _ in 0..3 {
            let again = served_from(from, port, "/");
            assert_eq!((again.id, again.pid), (first.id, first.pid), "{from} moved");
        }
    }
    let stats = c.ctl_json(&["stats", "--json"]);
    assert_eq!(stats["connections_handed_off"], 0, "{stats}");
    let inspect = c.ctl_json(&["inspect", "2"]);
    let sticky = &inspect["slot"]["sticky"];
    assert_eq!(sticky["mode"], "kernel-steered", "{inspect}");
    assert_eq!(sticky["live"], true, "{inspect}");
    assert_eq!(sticky["buckets"], 64, "{inspect}");
}
