//! Which workers a command is for: `all`, `app`, `agent`, a slot id, or `pid:1234`.

use std::fmt;
use std::str::FromStr;

/// A command's target, as written on the command line and on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Every slot, the agent's too.
    All,
    /// Every app slot.
    App,
    /// The agent's slot.
    Agent,
    /// One slot by id (the agent's is 0).
    Slot(u32),
    /// The slot of the live worker with this pid.
    Pid(u32),
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        match s {
            "all" => Ok(Target::All),
            "app" => Ok(Target::App),
            "agent" => Ok(Target::Agent),
            _ => {
                if let Some(pid) = s.strip_prefix("pid:") {
                    return pid
                        .parse()
                        .map(Target::Pid)
                        .map_err(|_| format!("`{s}`: the pid must be a number, as in pid:1234"));
                }
                s.parse().map(Target::Slot).map_err(|_| {
                    format!("`{s}` is not a target; use all, app, agent, a slot id or pid:PID")
                })
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::All => f.write_str("all"),
            Target::App => f.write_str("app"),
            Target::Agent => f.write_str("agent"),
            Target::Slot(id) => write!(f, "{id}"),
            Target::Pid(pid) => write!(f, "pid:{pid}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_back() {
        for t in ["all", "app", "agent", "3", "pid:1234"] {
            assert_eq!(t.parse::<Target>().unwrap().to_string(), t);
        }
        assert!("pid:x".parse::<Target>().unwrap_err().contains("pid:1234"));
        assert!(
            "apps"
                .parse::<Target>()
                .unwrap_err()
                .contains("not a target")
        );
    }
}
