//! Sticky sessions: choosing a worker by client address, and the PROXY protocol header
//! that carries the real client behind a load balancer.

pub mod affinity;
pub mod handoff;
pub mod listener;
pub mod proxy_protocol;
