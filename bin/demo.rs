//! The built-in demo: what `clutch start` runs with no app command. The clutch binary is
//! re-executed as each worker; app workers answer HTTP with their id and pid, the agent
//! logs what it hears.

use clutch::protocol::Role;
use clutch::worker::Worker;
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::signal::unix::{SignalKind, signal};

/// The hidden subcommand that runs a demo worker.
pub const SUBCOMMAND: &str = "demo-worker";

/// Runs this process as a demo worker (the role comes from the environment).
pub fn run() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let w = Worker::from_env()?;
        let mut term = signal(SignalKind::terminate())?;
        // A demo worker has nothing to finish: SIGTERM is a clean exit (code 0).
        tokio::select! {
            r = async {
                match w.role() {
                    Role::Agent => agent(w).await,
                    Role::App => app(w).await,
                }
            } => r,
            _ = term.recv() => Ok(()),
        }
    })
}

async fn agent(mut w: Worker) -> Result<(), Box<dyn std::error::Error>> {
    w.ready();
    while let Some(msg) = w.recv().await {
        if msg.action == "cluster-pids" {
            // A closed stderr must not take a worker down either.
            let _ = writeln!(
                std::io::stderr(),
                "[demo agent {}] app workers: {}",
                std::process::id(),
                msg.data
            );
        }
    }
    Ok(())
}

async fn app(mut w: Worker) -> Result<(), Box<dyn std::error::Error>> {
    let id = w.id();
    if let Some(listener) = w.listener()? {
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, id));
            }
        });
    }
    if let Some(mut handoffs) = w.take_handoffs() {
        tokio::spawn(async move {
            while let Some(c) = handoffs.recv().await {
                tokio::spawn(serve(c.stream, id));
            }
        });
    }
    w.ready();
    while w.recv().await.is_some() {}
    Ok(())
}

/// Answers each HTTP/1.1 request on `stream` with the worker's id and pid.
pub async fn serve(mut stream: TcpStream, id: u32) {
    let body = format!("hello from app worker {id} (pid {})\n", std::process::id());
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut buf = vec![0u8; 4096];
    let mut filled = 0;
    loop {
        match stream.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        while let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
            buf.copy_within(end + 4..filled, 0);
            filled -= end + 4;
        }
        if filled == buf.len() {
            return;
        }
    }
}
