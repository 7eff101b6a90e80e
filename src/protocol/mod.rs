//! The wire: what travels on a channel, with no I/O policy.
//!
//! [`message`] is the shape of one message and its routing fields, [`codec`] the
//! newline-delimited JSON framing with its size limit. See `docs/PROTOCOL.md`.

pub mod codec;
pub mod message;

pub use message::{Endpoint, Message};
