//! Sticky sessions: choosing a worker by client address, and the PROXY protocol header
//! that carries the real client behind a load balancer.

pub mod affinity;
pub(crate) mod handoff;
pub(crate) mod listener;
pub(crate) mod proxy_protocol;

pub use listener::MAX_HEADER_READS;
