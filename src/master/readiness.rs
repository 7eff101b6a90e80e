//! Readiness for wrapped binaries that cannot speak the channel: systemd's `sd_notify`
//! (`READY=1` on a datagram socket named by `NOTIFY_SOCKET`) and a TCP port that accepts.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UnixDatagram;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// One child's notify socket, in the abstract namespace (nothing to clean up on disk).
pub struct NotifySocket {
    socket: UnixDatagram,
    name: String,
}

impl NotifySocket {
    /// Binds a fresh abstract socket for one child.
    pub fn new() -> io::Result<NotifySocket> {
        let name = format!(
            "clutch-notify-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        let std = std::os::unix::net::UnixDatagram::bind_addr(&addr)?;
        std.set_nonblocking(true)?;
        Ok(NotifySocket {
            socket: UnixDatagram::from_std(std)?,
            name,
        })
    }

    /// The value for `NOTIFY_SOCKET` (`@` marks the abstract namespace).
    pub fn address(&self) -> String {
        format!("@{}", self.name)
    }

    /// Waits for a datagram holding the line `READY=1`; false after `timeout`.
    pub async fn wait_ready(self, timeout: Duration) -> bool {
        let mut buf = vec![0u8; 4096];
        tokio::time::timeout(timeout, async {
            loop {
                match self.socket.recv(&mut buf).await {
                    Ok(n) if buf[..n].split(|b| *b == b'\n').any(|l| l == b"READY=1") => {
                        return true;
                    }
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
        })
        .await
        .unwrap_or(false)
    }
}

/// Polls a TCP connect to `127.0.0.1:port` until it succeeds; false after `timeout`.
pub async fn wait_tcp(port: u16, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
