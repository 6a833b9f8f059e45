//! The dashboard's sessions. A browser signs in with a token (`POST /v1/session`) and gets a
//! session cookie: HttpOnly (no script reads it), SameSite=Strict (no other site's page sends
//! it), Secure over TLS. Every change it asks for also carries the session's CSRF token in
//! `X-CSRF-Token`, which only a page of this origin can read (from `GET /v1/session`).
//!
//! A session remembers the *hash* of the token it was opened with, never the token, and
//! each request is identified by that hash again: revoking the token ends its sessions at once.
//! Sessions live in memory: a restarted server signs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

/// The session cookie's name.
pub const COOKIE: &str = "runway_session";
/// The header a session's changes carry its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// A session ends this long after sign-in, used or not.
pub const LIFETIME: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct Session {
    /// The SHA-256 of the token signed in with.
    pub token_hash: String,
    pub csrf: String,
    opened: Instant,
    used: Instant,
}

impl Session {
    /// When it ends unless used again.
    pub fn ends_in(&self, now: Instant) -> Duration {
        let idle_end = self.used + IDLE;
        let hard_end = self.opened + LIFETIME;
        idle_end.min(hard_end).saturating_duration_since(now)
    }
}

/// The sessions of a server, by the hash of their id (the id itself is only in the cookie).
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session for the token whose hash is `token_hash`: its id (for the cookie) and
    /// the session.
    pub fn open(&self, token_hash: String) -> (String, Session) {
        let id = random_hex();
        let now = Instant::now();
        let session = Session {
            token_hash,
            csrf: random_hex(),
            opened: now,
            used: now,
        };
        let mut sessions = self.lock();
        sessions.retain(|_, s| !s.ends_in(now).is_zero());
        sessions.insert(crate::api::hash_token(&id), session.clone());
        (id, session)
    }

    /// The live session of cookie value `id`, marked used.
    pub fn find(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let key = crate::api::hash_token(id);
        let session = sessions.get_mut(&key)?;
        if session.ends_in(now).is_zero() {
            sessions.remove(&key);
            return None;
        }
        session.used = now;
        Some(session.clone())
    }

    /// The live session of cookie value `id`, not marked used (a stream checking that its
    /// session still holds does not keep it alive).
    pub fn peek(&self, id: &str) -> Option<Session> {
        let sessions = self.lock();
        let session = sessions.get(&crate::api::hash_token(id))?;
        (!session.ends_in(Instant::now()).is_zero()).then(|| session.clone())
    }

    pub fn close(&self, id: &str) {
        self.lock().remove(&crate::api::hash_token(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The session cookie's value in a request's `Cookie` headers.
pub fn cookie_of(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that opens (`Some(id)`) or ends (`None`) the session.
pub fn set_cookie(id: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match id {
        Some(id) => format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            LIFETIME.as_secs()
        ),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_when_closed() {
        let sessions = Sessions::default();
        let (id, session) = sessions.open("abc".into());
        assert_eq!(id.len(), 64);
        assert_ne!(id, session.csrf);
        let found = sessions.find(&id).unwrap();
        assert_eq!(found.token_hash, "abc");
        assert_eq!(found.csrf, session.csrf);
        assert!(sessions.find("not-it").is_none());
        sessions.close(&id);
        assert!(sessions.find(&id).is_none());
    }

    #[test]
    fn the_cookie_is_read_among_others_and_set_with_its_attributes() {
        let mut headers = http::HeaderMap::new();
        headers.append("cookie", "theme=dark; runway_session=f00d".parse().unwrap());
        assert_eq!(cookie_of(&headers).as_deref(), Some("f00d"));
        headers.clear();
        headers.append("cookie", "runway_session=".parse().unwrap());
        assert_eq!(cookie_of(&headers), None);
        let set = set_cookie(Some("f00d"), true);
        for part in [
            "runway_session=f00d",
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
        ] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set_cookie(Some("f00d"), false).contains("Secure"));
        assert!(set_cookie(None, false).contains("Max-Age=0"));
    }
}
