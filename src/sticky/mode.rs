//! Which sticky mode a cluster runs: the kernel steers (a socket per slot and a BPF
//! program, [`super::steered`]) or the master accepts and hands over ([`super::handoff`]).
//!
//! The automatic choice never sends connections to a worker that cannot take them: kernel
//! steering needs workers that accept on their inherited socket (fd 3, `LISTEN_FDS`): Rust
//! library workers and wrapped binaries. Workers written for egg-cluster's sticky mode
//! (`--egg`, `--node-sticky-message`, and any Node worker may be one: it takes handed-over
//! handles on its IPC channel and never listens on the port) keep the master handoff, and
//! so does `--proxy-protocol` (the PROXY header is not in the SYN the kernel steers by).
//! `--sticky-mode kernel` steers Node servers that call `listen(PORT)`: the listen preload
//! gives them their slot's socket and also takes the connections the master drains from a
//! down slot.

use crate::config::{ConfigError, Dialect, ListenMode, Settings, StickyMode};
use crate::sticky::group::SocketGroup;

/// What the log line and `ctl list --json` say for kernel steering.
pub const KERNEL: &str = "kernel-steered";
/// What they say for the accepting master.
pub const HANDOFF: &str = "master handoff";

/// Whether `settings` ask for kernel steering, and why (for the log line).
pub fn resolve(settings: &Settings) -> (StickyMode, &'static str) {
    if let Some(why) = needs_handoff(settings) {
        return (StickyMode::Handoff, why);
    }
    match settings.sticky_mode {
        StickyMode::Handoff => (StickyMode::Handoff, "--sticky-mode handoff"),
        StickyMode::Kernel => (StickyMode::Kernel, "--sticky-mode kernel"),
        StickyMode::Auto => match settings.app_dialect.resolve(app(settings)) {
            Dialect::Node => (
                StickyMode::Handoff,
                "Node workers may take handed-over handles only, as egg-cluster's sticky \
                 workers do; --sticky-mode kernel steers Node servers that listen(PORT) \
                 through the listen preload",
            ),
            _ => (
                StickyMode::Kernel,
                "workers accept on their inherited socket (--sticky-mode handoff for workers \
                 that take handed-over sockets only)",
            ),
        },
    }
}

/// What makes kernel steering impossible or wrong, whatever was asked.
fn needs_handoff(settings: &Settings) -> Option<&'static str> {
    if settings.proxy_protocol {
        Some("--proxy-protocol: the client address is in a header the master reads")
    } else if settings.egg || settings.node_sticky_message.is_some() {
        Some("egg-cluster's workers take handed-over handles over IPC")
    } else {
        None
    }
}

/// The kernel-steered port when `settings` resolve to it and the program attaches; `None`
/// (said in the log) for the master handoff. Binding errors are errors either way.
pub(crate) fn bind_steered(
    settings: &Settings,
    port: u16,
) -> Result<Option<crate::listen::PortPlan>, crate::Error> {
    let (mode, why) = resolve(settings);
    if mode != StickyMode::Kernel {
        tracing::info!("sticky: {HANDOFF} ({why})");
        return Ok(None);
    }
    let host = &settings.host;
    let ip: std::net::IpAddr = host.parse().map_err(|_| ConfigError::Value {
        key: "host".into(),
        message: format!("`{host}` is not an IP address"),
    })?;
    let listen_err = |e: std::io::Error| crate::Error::Listen {
        addr: format!("{host}:{port}"),
        source: std::sync::Arc::new(e),
    };
    let addr = std::net::SocketAddr::new(ip, port);
    let mut group = SocketGroup::bind(addr, settings.workers).map_err(listen_err)?;
    if let Err(e) = group.steer(&[]) {
        tracing::warn!(
            "sticky: {HANDOFF} (cannot attach the steering program to the SO_REUSEPORT \
             sockets: {e}; the master accepts each connection instead)"
        );
        return Ok(None);
    }
    tracing::info!("sticky: {KERNEL} ({why})");
    let port = group.port();
    Ok(Some(crate::listen::PortPlan::Steered {
        group: Some(group),
        port,
    }))
}

fn app(settings: &Settings) -> &[String] {
    settings.app.as_deref().unwrap_or(&[])
}

/// `--sticky-mode kernel` with what cannot be steered by the kernel is a configuration
/// error, named.
pub fn validate(settings: &Settings) -> Result<(), ConfigError> {
    if settings.sticky_mode != StickyMode::Kernel || settings.listen != ListenMode::Sticky {
        return Ok(());
    }
    match needs_handoff(settings) {
        Some(why) => Err(ConfigError::Value {
            key: "sticky-mode".into(),
            message: format!(
                "kernel steering cannot be used with {why}; use --sticky-mode handoff or auto"
            ),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sticky(f: impl FnOnce(&mut Settings)) -> Settings {
        let mut s = Settings {
            listen: ListenMode::Sticky,
            port: Some(0),
            ..Settings::default()
        };
        f(&mut s);
        s
    }

    #[test]
    fn auto_steers_clutch_workers_in_the_kernel() {
        let s = sticky(|s| s.app = Some(vec!["./server".into()]));
        assert_eq!(resolve(&s).0, StickyMode::Kernel);
    }

    #[test]
    fn auto_hands_over_to_node_workers_and_kernel_steers_them_when_asked() {
        let node = sticky(|s| s.app = Some(vec!["node".into(), "app.js".into()]));
        assert_eq!(resolve(&node).0, StickyMode::Handoff);
        let asked = sticky(|s| {
            s.app = Some(vec!["node".into(), "app.js".into()]);
            s.sticky_mode = StickyMode::Kernel;
        });
        assert_eq!(resolve(&asked).0, StickyMode::Kernel);
    }

    #[test]
    fn auto_hands_over_to_egg_workers_and_with_proxy_headers() {
        let egg = sticky(|s| s.egg = true);
        assert_eq!(resolve(&egg).0, StickyMode::Handoff);
        let proxy = sticky(|s| s.proxy_protocol = true);
        assert_eq!(resolve(&proxy).0, StickyMode::Handoff);
    }

    #[test]
    fn kernel_with_proxy_headers_is_an_error_naming_the_flag() {
        let s = sticky(|s| {
            s.proxy_protocol = true;
            s.sticky_mode = StickyMode::Kernel;
        });
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("sticky-mode") && e.contains("proxy"), "{e}");
    }
}
