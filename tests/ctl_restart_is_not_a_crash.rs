//! `clutch ctl restart` starts a new worker in the slot, then stops the old one; it counts
//! as an operator's restart, not as a crash.

mod common;
use common::ctl;

#[test]
fn restart_is_not_a_crash() {
    let c = ctl::start(2, &[]);
    let before = c.ctl_json(&["list", "--json"]);
    let old = ctl::row(&before, 1)["pid"].as_u64().unwrap();
    let out = c.ctl(&["restart", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("restart 1: done"));
    // The answer comes once the new worker is ready and the old one gone.
    let after = c.ctl_json(&["list", "--json"]);
    let row = ctl::row(&after, 1);
    assert_ne!(row["pid"].as_u64().unwrap(), old);
    assert_eq!(row["state"], "ready");
    assert_eq!(row["restarts"], 1);
    assert!(!common::alive(old as u32));
    assert_eq!(
        ctl::row(&after, 2)["pid"],
        ctl::row(&before, 2)["pid"],
        "the other slot is untouched"
    );
    let stats = c.ctl_json(&["stats", "--json"]);
    assert_eq!(stats["restarts"]["operator"], 1, "{stats}");
    assert_eq!(stats["restarts"]["crash"], 0, "{stats}");
    assert_eq!(stats["exits"]["replaced"], 1, "{stats}");
    assert_eq!(stats["exits"]["unexpected"], 0, "{stats}");
    let audit = c.clutch.stderr.text();
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert!(
        audit.contains(&format!("(uid {uid}) restart 1: done")),
        "{audit}"
    );
}
