//! Who may use the control socket, and as what: the caller's uid comes from the kernel
//! (`SO_PEERCRED`), never from what it writes. Deny by default: the master's own uid and
//! root are admin; anybody else only through `--control-users`.

use crate::config::ConfigError;
use nix::unistd::{Gid, Group, Uid, User};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// What a caller may do; each role may do what the ones below it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ControlRole {
    /// list, inspect, stats, watch.
    Viewer,
    /// + restart, stop, start, scale, signal, send.
    Operator,
    /// + kill, shutdown.
    Admin,
}

impl ControlRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlRole::Viewer => "viewer",
            ControlRole::Operator => "operator",
            ControlRole::Admin => "admin",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<ControlRole> {
        match s {
            "viewer" => Some(ControlRole::Viewer),
            "operator" => Some(ControlRole::Operator),
            "admin" => Some(ControlRole::Admin),
            _ => None,
        }
    }
}

/// Who is asking, as the kernel says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// The user's name, when it has one.
    pub name: Option<String>,
    /// A web console user (`--http-users`): `name` is the console's user name, and `uid`
    /// and `gid` are the master's own.
    pub web: bool,
}

impl Caller {
    /// The caller of a given uid and gid, named from the user database.
    pub fn new(uid: u32, gid: u32) -> Caller {
        let name = User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name);
        Caller {
            uid,
            gid,
            name,
            web: false,
        }
    }

    /// A user logged in to the web console, who acts through the master.
    pub fn web(user: &str) -> Caller {
        Caller {
            uid: Uid::effective().as_raw(),
            gid: Gid::effective().as_raw(),
            name: Some(user.to_string()),
            web: true,
        }
    }

    /// The master itself (a signal it turned into a command).
    pub fn master(what: &str) -> Caller {
        Caller {
            uid: Uid::current().as_raw(),
            gid: Gid::current().as_raw(),
            name: Some(what.to_string()),
            web: false,
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) if self.web => write!(f, "web user {n}"),
            Some(n) => write!(f, "{n} (uid {})", self.uid),
            None => write!(f, "uid {}", self.uid),
        }
    }
}

/// The roles `--control-users` grants, resolved to ids when the master starts.
#[derive(Debug, Default, Clone)]
pub struct Users {
    by_uid: HashMap<u32, ControlRole>,
    by_gid: HashMap<u32, ControlRole>,
}

impl Users {
    /// Reads a `--control-users` file: a JSON object of user name (or `@group`) to role.
    /// A name nobody has, or a role that is not one, is an error naming the key.
    pub fn load(path: &Path) -> Result<Users, ConfigError> {
        let in_file = |message: String| ConfigError::File {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&text)
            .map_err(|e| {
                in_file(format!(
                    "must be a JSON object of user or @group to role, as in \
                     {{\"alice\": \"operator\", \"@ops\": \"viewer\"}}: {e}"
                ))
            })?;
        let mut users = Users::default();
        for (key, value) in map {
            let role = value.as_str().and_then(ControlRole::parse).ok_or_else(|| {
                in_file(format!(
                    "key `{key}`: {value} is not a role; use viewer, operator or admin"
                ))
            })?;
            if let Some(group) = key.strip_prefix('@') {
                let g = Group::from_name(group)
                    .map_err(|e| in_file(format!("key `{key}`: cannot look the group up: {e}")))?
                    .ok_or_else(|| in_file(format!("key `{key}`: there is no group `{group}`")))?;
                users.by_gid.insert(g.gid.as_raw(), role);
            } else {
                let u = User::from_name(&key)
                    .map_err(|e| in_file(format!("key `{key}`: cannot look the user up: {e}")))?
                    .ok_or_else(|| {
                        in_file(format!(
                            "key `{key}`: there is no user `{key}` (a group is written @{key})"
                        ))
                    })?;
                users.by_uid.insert(u.uid.as_raw(), role);
            }
        }
        Ok(users)
    }

    /// The caller's role, or `None`: refused. Its groups are its primary group (from the
    /// kernel) and the supplementary ones the user database lists for it.
    pub fn role_of(&self, caller: &Caller) -> Option<ControlRole> {
        if caller.uid == 0 || caller.uid == Uid::effective().as_raw() {
            return Some(ControlRole::Admin);
        }
        let mut best = self.by_uid.get(&caller.uid).copied();
        if !self.by_gid.is_empty() {
            let mut gids = vec![caller.gid];
            if let Some(name) = &caller.name
                && let Ok(cname) = std::ffi::CString::new(name.as_str())
                && let Ok(groups) = nix::unistd::getgrouplist(&cname, Gid::from_raw(caller.gid))
            {
                gids.extend(groups.into_iter().map(Gid::as_raw));
            }
            for gid in gids {
                best = best.max(self.by_gid.get(&gid).copied());
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(json: &str) -> Result<Users, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        std::fs::write(&path, json).unwrap();
        Users::load(&path)
    }

    #[test]
    fn roles_are_ordered_and_deny_by_default() {
        assert!(ControlRole::Viewer < ControlRole::Operator);
        assert!(ControlRole::Operator < ControlRole::Admin);
        let users = load(r#"{"nobody": "viewer"}"#).unwrap();
        let nobody = User::from_name("nobody").unwrap().unwrap();
        let caller = Caller::new(nobody.uid.as_raw(), nobody.gid.as_raw());
        assert_eq!(users.role_of(&caller), Some(ControlRole::Viewer));
        assert_eq!(Users::default().role_of(&caller), None);
        assert_eq!(
            Users::default().role_of(&Caller::new(0, 0)),
            Some(ControlRole::Admin)
        );
    }

    #[test]
    fn a_bad_file_names_the_key() {
        let e = load(r#"{"no-such-user-here": "viewer"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `no-such-user-here`"), "{e}");
        let e = load(r#"{"root": "god"}"#).unwrap_err().to_string();
        assert!(e.contains("key `root`") && e.contains("not a role"), "{e}");
        let e = load(r#"{"@no-such-group-here": "viewer"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no group"), "{e}");
        let e = load("[1]").unwrap_err().to_string();
        assert!(e.contains("JSON object"), "{e}");
    }
}
