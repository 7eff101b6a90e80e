//! The few platform calls clutch makes, kept here so the logic above stays plain Rust.
//!
//! Linux only: `SCM_RIGHTS` fd passing, process groups, `PR_SET_PDEATHSIG`, and the guard
//! process that kills worker groups when the master dies without warning.

pub mod fdpass;
pub mod guard;
pub mod memory;
pub mod pidfd;
pub mod process;
pub mod reuseport;
pub mod socket;
