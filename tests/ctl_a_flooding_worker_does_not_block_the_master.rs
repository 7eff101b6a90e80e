//! With `--output prefix`, a worker that writes to stdout as fast as it can, into a master
//! whose own stdout nobody reads, neither stalls the master (it still answers `ctl list`)
//! nor grows it: lines that cannot be written are dropped and counted, and the master's
//! memory stays bounded.

mod common;
use common::memory::rss_kib;
use common::stdio::small_pipe;
use common::{DEADLINE, ctl, wait_until};
use std::time::{Duration, Instant};

#[test]
fn a_flooding_worker_does_not_block_the_master() {
    let (_unread, write) = small_pipe();
    let c = ctl::start_full(1, &["--output", "prefix"], &["flood-output"], Some(write));
    let master = c.clutch.pid().to_string();
    // The flood fills the master's stdout at once; from then on its chunks are dropped.
    let dropped = |c: &ctl::CtlCluster| {
        c.ctl_json(&["stats", "--json"])["output_chunks_dropped"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(
        wait_until(DEADLINE, || dropped(&c) > 100),
        "nothing dropped: {}",
        c.ctl_json(&["stats", "--json"])
    );
    let mut slowest = Duration::ZERO;
    let mut peak = 0;
    let until = Instant::now() + Duration::from_secs(5);
    let mut lists = 0;
    while Instant::now() < until {
        let t = Instant::now();
        let list = c
            .list()
            .expect("the master answers `ctl list` while flooded");
        slowest = slowest.max(t.elapsed());
        assert_eq!(list["cluster"]["state"], "ready");
        peak = peak.max(rss_kib(&master));
        lists += 1;
    }
    // The ring keeps the latest lines, bounded.
    let out = c.ctl(&["logs", "-n", "3", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines().all(|l| l.starts_with("[app 1] flood ")),
        "{text}"
    );
    eprintln!(
        "flooded master: {lists} ctl list in 5 s, slowest {slowest:?}, peak RSS {peak} KiB, \
         {} chunks dropped",
        dropped(&c)
    );
    // Generous against a loaded machine; what matters is that it answers at all and
    // does not grow with the flood (tens of MiB of lines by now).
    assert!(
        slowest < Duration::from_secs(5),
        "slowest ctl list: {slowest:?}"
    );
    assert!(peak < 64 * 1024, "the master grew to {peak} KiB");
}
