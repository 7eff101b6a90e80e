//! The web console in a real browser (headless Chromium): log in, see the workers, press
//! restart on one, and see the restart's events and the worker's new pid on the page.

mod common;
mod console_support;
mod http_support;
use common::*;
use console_support::cdp::Browser;
use console_support::*;

/// Logs in through the form and waits for the worker table.
pub fn open_console(b: &mut Browser, port: u16, user: &str) {
    b.navigate(&format!("http://127.0.0.1:{port}/"));
    b.wait_for(
        "the login form",
        "location.pathname === '/login' && !!document.getElementById('user')",
    );
    b.eval(&format!(
        "document.getElementById('user').value = {user:?};
         document.getElementById('password').value = {PASSWORD:?};
         document.getElementById('submit').click(); true"
    ));
    b.wait_for(
        "the console",
        "location.pathname === '/' && document.readyState === 'complete'",
    );
    b.wait_for(
        "the worker rows",
        "document.querySelectorAll('#workers tbody tr').length",
    );
}

#[test]
fn log_in_see_the_workers_restart_one_and_see_the_new_pid() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(&dir, &[("ann", "operator")]);
    let (c, port) = start_console(2, &users, &[]);
    let mut b = Browser::launch(1400, 800);
    open_console(&mut b, port, "ann");

    let row = "document.querySelector('#workers tr[data-slot=\"1\"] td.pid')";
    let old = b.wait_for(
        "slot 1's pid",
        &format!("{row} && Number({row}.textContent)"),
    );
    assert!(old.as_u64().unwrap() > 0, "{old}");
    assert_eq!(
        b.eval("document.querySelector('#whoami').textContent"),
        "ann (operator)"
    );
    b.eval(
        "document.querySelector('button[data-cmd=\"restart\"][data-target=\"1\"]').click(); true",
    );

    let restarted = b.wait_for(
        "the restart event",
        "[...document.querySelectorAll('#events li')].map(li => li.textContent)
           .find(t => t.includes('worker.restarted') && t.includes('slot 1 restarted'))",
    );
    let audit = b.wait_for(
        "the command event",
        "[...document.querySelectorAll('#events li')].map(li => li.textContent)
           .find(t => t.includes('ctl.command') && t.includes('web user ann'))",
    );
    let new = b.wait_for(
        "a new ready pid in slot 1",
        &format!(
            "(() => {{ const tr = document.querySelector('#workers tr[data-slot=\"1\"]');
                      const pid = tr && Number(tr.querySelector('td.pid').textContent);
                      return tr && tr.classList.contains('state-ready') && pid !== {old} && pid; }})()"
        ),
    );
    assert_ne!(new, old, "{restarted} {audit}");
    b.wait_for(
        "the new worker's ready event",
        &format!(
            "[...document.querySelectorAll('#events li')].map(li => li.textContent)
               .find(t => t.includes('worker.ready') && t.includes('app 1 ready, pid {new}'))"
        ),
    );
    assert!(
        c.stderr
            .wait_for_line(DEADLINE, |l| l.contains("audit: web user ann restart"))
            .is_some(),
        "no audit line: {}",
        c.stderr.text()
    );
    drop(b);
    net::stop_cleanly(c);
}
