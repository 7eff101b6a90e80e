//! The names of the master's lifecycle messages: clutch's own, or egg-cluster's (`--egg`),
//! so an egg.js app runs unmodified. Only the names and `egg-ready`'s data differ; when and
//! to whom each is sent is the same.

use crate::config::Settings;
use crate::master::worker::Role;
use serde_json::Value;

/// The lifecycle dialect a cluster speaks.
#[derive(Debug, Clone, PartialEq)]
pub struct Names {
    /// Sent when the cluster is ready, and to every worker ready later.
    pub ready: &'static str,
    /// The pids of the other side (apps for the agent, the agent for apps).
    pub pids: &'static str,
    /// egg-cluster tells the apps when the agent (re)starts.
    pub agent_start_to_apps: bool,
    /// What `ready` carries to the agent and the apps instead of the cluster info.
    pub ready_data: Option<Value>,
}

impl Names {
    /// clutch's own names: `cluster-ready`, `cluster-pids`.
    pub fn clutch() -> Names {
        Names {
            ready: "cluster-ready",
            pids: "cluster-pids",
            agent_start_to_apps: false,
            ready_data: None,
        }
    }

    /// egg-cluster's: `egg-ready` (with egg's options), `egg-pids`, `agent-start` to the
    /// apps.
    pub fn egg(options: Option<Value>) -> Names {
        Names {
            ready: "egg-ready",
            pids: "egg-pids",
            agent_start_to_apps: true,
            ready_data: options,
        }
    }

    /// The dialect `settings` ask for.
    pub fn from_settings(settings: &Settings) -> Names {
        if settings.egg {
            Names::egg(settings.egg_options.clone())
        } else {
            Names::clutch()
        }
    }
}

/// Whether `action` from a worker of `role` says it is ready: its ready action, and with
/// `egg`, egg-cluster's app worker's `listening` (or `reuse-port-listening`, which it
/// sends instead when it binds with `reusePort`).
pub fn is_ready_action(role: Role, action: &str, egg: bool) -> bool {
    action == role.ready_action()
        || (egg && role == Role::App && matches!(action, "listening" | "reuse-port-listening"))
}
