//! argon2 password hashes: `clutch passwd` makes them, a login checks them. Checking one
//! costs tens of milliseconds of CPU and memory by design, so it runs on tokio's blocking
//! pool, never on the master's thread, a few at a time.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use std::io::{IsTerminal, Read};

/// The PHC string of `password` with a fresh random salt (argon2id, the crate's default
/// parameters: 19 MiB, 2 passes, 1 lane, as OWASP recommends).
pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no random salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `hash` (checked at load, so a malformed one is
/// simply no match).
pub fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash of a password nobody has, checked for unknown user names so that their refusal
/// takes as long as a wrong password's.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("clutch: no such user").unwrap_or_default())
}

/// `clutch passwd`: reads a password (from the terminal without echo, asked twice; else
/// the first line of stdin) and prints its hash. Exit code 0, or 2 with a message.
pub fn passwd_command() -> u8 {
    match read_password().and_then(|p| hash(&p)) {
        Ok(h) => {
            println!("{h}");
            0
        }
        Err(e) => {
            eprintln!("clutch passwd: {e}");
            2
        }
    }
}

fn read_password() -> Result<String, String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the two passwords differ; nothing printed".into());
        }
        first
    } else {
        let mut text = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        text.lines().next().unwrap_or("").to_string()
    };
    if password.is_empty() {
        return Err("an empty password is refused".into());
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = super::hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(super::verify("correct horse", &h));
        assert!(!super::verify("wrong", &h));
        assert_ne!(h, super::hash("correct horse").unwrap(), "salted");
    }
}
