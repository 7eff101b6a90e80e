//! The actions that belong to clutch's own protocol (see `docs/PROTOCOL.md`).

/// Actions with this prefix belong to clutch's protocol and are never routed.
pub const RESERVED_PREFIX: &str = "clutch:";
/// The action of a handed-over connection (master → app worker, with the socket).
pub const CONNECTION_ACTION: &str = "clutch:connection";
/// The action a clutch worker acknowledges handed-over sockets with (`data`: how many).
pub const ACK_ACTION: &str = "clutch:ack";
/// The action a worker says it is still working with (`--heartbeat-timeout`).
pub const HEARTBEAT_ACTION: &str = "clutch:heartbeat";
/// A worker's pushed monitor figures (`data`: a flat object of numbers and strings).
pub const MONITOR_ACTION: &str = "clutch:monitor";
/// A worker asks for the cluster's members and their changes (the watchdog).
pub const SUBSCRIBE_ACTION: &str = "clutch:subscribe";
/// The watchdog's snapshot, sent to a subscriber at once (`data`: `[{id, role, pid, state}]`).
pub const MEMBERS_ACTION: &str = "cluster-members";
/// The watchdog's events (`data`: `{id, role, pid, state}`).
pub const MEMBER_ADDED_ACTION: &str = "member-added";
pub const MEMBER_CHANGED_ACTION: &str = "member-changed";
pub const MEMBER_REMOVED_ACTION: &str = "member-removed";
