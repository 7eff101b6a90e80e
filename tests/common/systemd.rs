//! Standing in for systemd: a real unix datagram socket as `NOTIFY_SOCKET` that keeps every
//! message clutch sends, and `systemd-socket-activate` (Debian's `systemd` package) to
//! start clutch with a passed listening socket.

use super::{DEADLINE, wait_until};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A datagram socket bound in a temp dir; a thread collects each datagram as one message
/// (the `KEY=VALUE` lines systemd's `sd_notify` protocol sends together).
pub struct NotifySocket {
    pub path: PathBuf,
    messages: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    pub fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push(text);
            }
        });
        NotifySocket {
            path,
            messages,
            _dir: dir,
        }
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// Waits up to [`DEADLINE`] for a message, after the first `after` ones, that holds the
    /// line `line`; returns its index.
    pub fn wait_for_line(&self, after: usize, line: &str) -> Option<usize> {
        let mut found = None;
        wait_until(DEADLINE, || {
            found = self
                .messages()
                .iter()
                .enumerate()
                .skip(after)
                .find(|(_, m)| has_line(m, line))
                .map(|(i, _)| i);
            found.is_some()
        });
        found
    }
}

/// Whether message `m` holds the line `line` exactly, or a line starting with it when `line`
/// ends in `=` (a key whose value varies).
pub fn has_line(m: &str, line: &str) -> bool {
    m.lines().any(|l| match line.ends_with('=') {
        true => l.starts_with(line),
        false => l == line,
    })
}

/// A free TCP port on 127.0.0.1 (bound and released: `systemd-socket-activate` takes no
/// port 0, so a test retries should another process take it in between).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `systemd-socket-activate` can run here.
pub fn have_socket_activate() -> bool {
    std::process::Command::new("systemd-socket-activate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
