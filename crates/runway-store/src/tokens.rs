//! Named tokens: who may call the API, with which role. A token's secret is never stored,
//! only its SHA-256 (a token is 256 random bits, so a fast hash is enough: there is nothing to
//! guess that a slow one would protect); it is shown once, when it is created.

use anyhow::Result;
use runway_wire::api::{Role, TokenView};
use rusqlite::{params, OptionalExtension};

use crate::{now, readable, word, Store};

/// Why a token could not be created or revoked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a token named `{0}` exists already (a revoked token keeps its name, so that records stay unambiguous): choose another name")]
    Exists(String),
    #[error("no token named `{0}`; `runway tokens list` shows them")]
    Unknown(String),
    #[error("the token `{0}` was revoked already")]
    Revoked(String),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl Store {
    /// Records token `name` with `role`, by the SHA-256 of its secret.
    pub fn create_token(
        &self,
        name: &str,
        role: Role,
        hash: &str,
        created_by: &str,
    ) -> std::result::Result<TokenView, TokenError> {
        let created_at = now();
        let inserted = self.conn().execute(
            "INSERT INTO tokens (name, role, hash, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO NOTHING",
            params![name, role.as_str(), hash, created_at, created_by],
        );
        match inserted {
            Ok(1) => Ok(TokenView {
                name: name.to_string(),
                role,
                created_at,
                created_by: created_by.to_string(),
                revoked_at: None,
            }),
            Ok(_) => Err(TokenError::Exists(name.to_string())),
            Err(e) => Err(TokenError::Store(e.into())),
        }
    }

    /// Every named token, revoked ones too, oldest first.
    pub fn tokens(&self) -> Result<Vec<TokenView>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT name, role, created_at, created_by, revoked_at FROM tokens ORDER BY created_at, name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(TokenView {
                name: r.get("name")?,
                role: word(r, "role", Role::parse)?,
                created_at: r.get("created_at")?,
                created_by: r.get("created_by")?,
                revoked_at: r.get("revoked_at")?,
            })
        })?;
        readable(rows)
    }

    /// The name and role of the live token whose secret hashes to `hash`.
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<(String, Role)>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name, role FROM tokens WHERE hash = ?1 AND revoked_at IS NULL",
                params![hash],
                |r| Ok((r.get::<_, String>("name")?, word(r, "role", Role::parse)?)),
            )
            .optional()?)
    }

    /// Revokes token `name`: from now on it is refused.
    pub fn revoke_token(&self, name: &str) -> std::result::Result<TokenView, TokenError> {
        let conn = self.conn();
        let changed = conn
            .execute(
                "UPDATE tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                params![name, now()],
            )
            .map_err(anyhow::Error::from)?;
        drop(conn);
        let token = self
            .tokens()?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| TokenError::Unknown(name.to_string()))?;
        if changed == 0 {
            return Err(TokenError::Revoked(name.to_string()));
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_by_hash_until_revoked_and_names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        store
            .create_token("alice", Role::Approver, "h-alice", "admin")
            .unwrap();
        assert!(matches!(
            store.create_token("alice", Role::Viewer, "h-other", "admin"),
            Err(TokenError::Exists(_))
        ));
        assert_eq!(
            store.token_by_hash("h-alice").unwrap(),
            Some(("alice".to_string(), Role::Approver))
        );
        assert_eq!(store.token_by_hash("h-nobody").unwrap(), None);
        let revoked = store.revoke_token("alice").unwrap();
        assert!(revoked.revoked_at.is_some());
        assert_eq!(store.token_by_hash("h-alice").unwrap(), None);
        assert!(matches!(
            store.revoke_token("alice"),
            Err(TokenError::Revoked(_))
        ));
        assert!(matches!(
            store.revoke_token("bob"),
            Err(TokenError::Unknown(_))
        ));
        let listed = store.tokens().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].created_by, "admin");
    }
}
