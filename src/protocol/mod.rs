//! The wire: what travels on a channel, with no I/O policy.
//!
//! [`message`] is the shape of one message and its routing fields (read by a one-pass
//! scanner, `header_scan`, with serde_json behind it), [`codec`] the
//! newline-delimited JSON framing with its size limit, [`actions`] clutch's own actions and
//! [`role`] the two kinds of worker. See `docs/PROTOCOL.md`.

pub mod actions;
pub mod codec;
mod header_scan;
pub mod message;
pub mod role;

pub use message::{Endpoint, Message};
pub use role::Role;
