//! Not a check: writes a screenshot of the console (`target/console.png`, or
//! `$CONSOLE_SCREENSHOT`) with three workers, one of them restarted, for a person to look
//! at. Run it with `scripts/console-screenshot.sh`.

mod common;
mod console_support;
mod http_support;
use common::*;
use console_support::cdp::Browser;
use console_support::*;

#[test]
#[ignore = "writes a screenshot for a person: scripts/console-screenshot.sh"]
fn console_screenshot() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(&dir, &[("ann", "operator")]);
    let (c, port) = start_console(3, &users, &["--monitor-interval", "1000"]);
    let me = login(port, "ann");
    let mut b = Browser::launch(1400, 640);
    b.navigate(&format!("http://127.0.0.1:{port}/login"));
    b.eval(&format!(
        "document.getElementById('user').value = 'ann';
         document.getElementById('password').value = {PASSWORD:?};
         document.getElementById('submit').click(); true"
    ));
    b.wait_for(
        "the worker rows",
        "document.querySelectorAll('#workers tbody tr').length === 3",
    );
    let r = me.command(port, "restart", serde_json::json!({"target": "2"}), &[]);
    assert_eq!(r.status, 200, "{r:?}");
    // Enough samples for the charts to show a line.
    b.wait_for(
        "a few chart points",
        "[...document.querySelectorAll('svg.spark.rss polyline')].length === 3 &&
         document.querySelector('svg.spark.rss polyline').getAttribute('points').split(' ').length >= 8",
    );
    let out = std::env::var("CONSOLE_SCREENSHOT")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/console.png").into());
    std::fs::create_dir_all(std::path::Path::new(&out).parent().unwrap()).unwrap();
    std::fs::write(&out, b.screenshot()).unwrap();
    eprintln!("wrote {out}");
    drop(b);
    net::stop_cleanly(c);
}
