//! Sticky sessions: choosing a worker by client address, and the PROXY protocol header
//! that carries the real client behind a load balancer.
//!
//! Two ways to get there ([`mode`]): the kernel steers each SYN to the slot's own
//! listening socket ([`steering`], [`group`], [`steered`]), or the master accepts and
//! hands each connection over ([`listener`], [`handoff`]).

pub mod affinity;
pub mod group;
pub(crate) mod handoff;
pub(crate) mod listener;
pub mod mode;
pub(crate) mod proxy_protocol;
pub(crate) mod steered;
pub mod steering;

pub use listener::MAX_HEADER_READS;
