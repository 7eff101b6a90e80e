//! The users file (`--http-users`): who may log in to the web console, as what, with which
//! argon2 hash. Read once at start; anything wrong with it is a start error naming the user.

use crate::config::ConfigError;
use crate::control::ControlRole;
use argon2::PasswordHash;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// One console user.
#[derive(Debug, Clone)]
pub struct User {
    pub role: ControlRole,
    /// The PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`), checked at load.
    pub hash: String,
}

/// Everyone who may log in, by name.
#[derive(Debug, Clone, Default)]
pub struct WebUsers {
    by_name: HashMap<String, User>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    users: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    role: String,
    hash: String,
}

const SHAPE: &str = "write {\"users\": [{\"name\": \"alice\", \"role\": \"operator\", \
                     \"hash\": \"$argon2id$...\"}]} (JSON) or [[users]] tables with name, \
                     role and hash (TOML); make each hash with `clutch passwd`";

impl WebUsers {
    /// Reads a users file: TOML when its name ends in `.toml`, else JSON.
    pub fn load(path: &Path) -> Result<WebUsers, ConfigError> {
        let in_file = |message: String| ConfigError::File {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let toml = path.extension().is_some_and(|e| e == "toml");
        let file: File = if toml {
            toml::from_str(&text)
                .map_err(|e| in_file(format!("not a users file ({e}); {SHAPE}")))?
        } else {
            serde_json::from_str(&text)
                .map_err(|e| in_file(format!("not a users file ({e}); {SHAPE}")))?
        };
        WebUsers::from_entries(file.users).map_err(in_file)
    }

    fn from_entries(entries: Vec<Entry>) -> Result<WebUsers, String> {
        let mut by_name = HashMap::new();
        for e in entries {
            let name = e.name;
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                return Err(format!(
                    "user `{name}`: a name must be 1 to 64 printable characters"
                ));
            }
            let role = ControlRole::parse(&e.role).ok_or_else(|| {
                format!(
                    "user `{name}`: `{}` is not a role; use viewer, operator or admin",
                    e.role
                )
            })?;
            check_hash(&e.hash).map_err(|why| {
                format!(
                    "user `{name}`: `hash` {why}; it must be an argon2 PHC string \
                     ($argon2id$v=19$...) made with `clutch passwd` (never a password)"
                )
            })?;
            if by_name
                .insert(name.clone(), User { role, hash: e.hash })
                .is_some()
            {
                return Err(format!("user `{name}` appears twice"));
            }
        }
        Ok(WebUsers { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.by_name.get(name)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Whether `hash` is an argon2 PHC string with a salt and an output (what `verify` needs).
fn check_hash(hash: &str) -> Result<(), &'static str> {
    let parsed = PasswordHash::new(hash).map_err(|_| "is not a PHC string")?;
    if !matches!(
        parsed.algorithm.as_str(),
        "argon2id" | "argon2i" | "argon2d"
    ) {
        return Err("is not an argon2 hash");
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("has no salt or no hash part");
    }
    argon2::Params::try_from(&parsed).map_err(|_| "has parameters argon2 refuses")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str, text: &str) -> Result<WebUsers, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        WebUsers::load(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn json_and_toml_files_load() {
        let hash = super::super::password::hash("secret").unwrap();
        let u = load(
            "u.json",
            &format!(r#"{{"users":[{{"name":"ann","role":"viewer","hash":"{hash}"}}]}}"#),
        )
        .unwrap();
        assert_eq!(u.get("ann").unwrap().role, ControlRole::Viewer);
        let u = load(
            "u.toml",
            &format!("[[users]]\nname = \"bob\"\nrole = \"admin\"\nhash = '{hash}'\n"),
        )
        .unwrap();
        assert_eq!(u.get("bob").unwrap().role, ControlRole::Admin);
    }

    #[test]
    fn a_plaintext_or_unknown_role_names_the_user() {
        let e = load(
            "u.json",
            r#"{"users":[{"name":"ann","role":"viewer","hash":"hunter2"}]}"#,
        )
        .unwrap_err();
        assert!(
            e.contains("user `ann`") && e.contains("clutch passwd"),
            "{e}"
        );
        let e = load(
            "u.json",
            r#"{"users":[{"name":"ann","role":"viewer","hash":"$pbkdf2$x$y"}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("user `ann`"), "{e}");
        let e = load(
            "u.json",
            r#"{"users":[{"name":"ann","role":"god","hash":"x"}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("not a role"), "{e}");
        let e = load(
            "u.json",
            r#"{"users":[{"name":"ann","role":"viewer","password":"x"}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("password"), "{e}");
    }
}
