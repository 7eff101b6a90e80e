//! Console sessions: a random token in a cookie, a CSRF token tied to it, an idle and an
//! absolute expiry, and a bound on how many are kept (the oldest goes first).

use crate::control::ControlRole;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after the login, used or not.
pub const ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at once; a login past this ends the oldest.
pub const MAX_SESSIONS: usize = 256;

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: ControlRole,
    /// The user's password hash at login: a users file re-read on reload that changes it
    /// (or the role, or drops the user) ends the session.
    pub hash: String,
    /// Sent back by the page in `X-CSRF-Token` on every POST.
    pub csrf: String,
    created: Instant,
    last_used: Instant,
}

#[derive(Debug, Default)]
pub struct Sessions {
    by_token: HashMap<String, Session>,
}

/// 128 random bits... twice: 256 bits from the OS, as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS gives random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    /// A new session for `user`; returns its token.
    pub fn open(&mut self, user: &str, role: ControlRole, hash: &str, now: Instant) -> String {
        self.sweep(now);
        if self.by_token.len() >= MAX_SESSIONS
            && let Some(oldest) = self
                .by_token
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(t, _)| t.clone())
        {
            self.by_token.remove(&oldest);
        }
        let token = random_token();
        self.by_token.insert(
            token.clone(),
            Session {
                user: user.to_string(),
                role,
                hash: hash.to_string(),
                csrf: random_token(),
                created: now,
                last_used: now,
            },
        );
        token
    }

    /// The live session of `token`, its idle clock reset; `None` when unknown or expired.
    pub fn touch(&mut self, token: &str, now: Instant) -> Option<Session> {
        let live = self.peek(token, now).is_some();
        if !live {
            self.by_token.remove(token);
            return None;
        }
        let s = self.by_token.get_mut(token)?;
        s.last_used = now;
        Some(s.clone())
    }

    /// Whether `token`'s session is live, without counting this as a use (the event
    /// stream asks every few seconds; it must not keep an idle session alive).
    pub fn peek(&self, token: &str, now: Instant) -> Option<&Session> {
        self.by_token
            .get(token)
            .filter(|s| now < s.created + ABSOLUTE && now < s.last_used + IDLE)
    }

    pub fn close(&mut self, token: &str) {
        self.by_token.remove(token);
    }

    fn sweep(&mut self, now: Instant) {
        self.by_token
            .retain(|_, s| now < s.created + ABSOLUTE && now < s.last_used + IDLE);
    }
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_idle_and_absolute() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        let tok = s.open("ann", ControlRole::Viewer, "h", t0);
        assert_eq!(tok.len(), 64);
        assert!(s.touch(&tok, t0 + IDLE / 2).is_some());
        assert!(
            s.touch(&tok, t0 + IDLE / 2 + IDLE + Duration::from_secs(1))
                .is_none()
        );
        let tok = s.open("ann", ControlRole::Viewer, "h", t0);
        let mut t = t0;
        while t < t0 + ABSOLUTE - IDLE / 2 {
            t += IDLE / 2;
            assert!(s.touch(&tok, t).is_some());
        }
        assert!(s.touch(&tok, t0 + ABSOLUTE).is_none());
        assert!(s.touch("nope", t0).is_none());
    }

    #[test]
    fn tokens_differ_and_secrets_compare() {
        assert_ne!(random_token(), random_token());
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
