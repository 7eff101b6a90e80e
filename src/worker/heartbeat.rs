//! Heartbeats: when the master runs with `--heartbeat-timeout`, it sets
//! `CLUTCH_HEARTBEAT_MS`, and the library sends `{"action":"clutch:heartbeat"}` that often
//! from a task on the worker's runtime. A runtime that no longer runs its tasks (a busy
//! loop, a deadlock, SIGSTOP) stops sending, and the master replaces the worker.

use super::reader::ChannelWriter;
use crate::protocol::actions::HEARTBEAT_ACTION;
use std::sync::Arc;
use std::time::Duration;

/// Starts the heartbeat task if the master asked for one.
pub(crate) fn start(writer: &Arc<ChannelWriter>) {
    let Some(every) = std::env::var("CLUTCH_HEARTBEAT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
    else {
        return;
    };
    let writer = writer.clone();
    let line = format!("{{\"action\":\"{HEARTBEAT_ACTION}\"}}\n");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if writer.write_lines(line.as_bytes()).await.is_err() {
                return;
            }
        }
    });
}
