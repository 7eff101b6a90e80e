//! The actions that belong to clutch's own protocol (see `docs/PROTOCOL.md`).

/// Actions with this prefix belong to clutch's protocol and are never routed.
pub const RESERVED_PREFIX: &str = "clutch:";
/// The action of a handed-over connection (master → app worker, with the socket).
pub const CONNECTION_ACTION: &str = "clutch:connection";
/// The action a clutch worker acknowledges handed-over sockets with (`data`: how many).
pub const ACK_ACTION: &str = "clutch:ack";
/// The action a worker says it is still working with (`--heartbeat-timeout`).
pub const HEARTBEAT_ACTION: &str = "clutch:heartbeat";
