//! Secrets by name, sealed at rest.
//!
//! Each value set is a new version of its secret, kept (sealed) so that a rollback can bring
//! back the versions a release ran with; `unset` records a version without a value. Values are
//! sealed with XChaCha20-Poly1305 under a 256-bit key in `secrets.key` beside the database
//! (mode 0600, in the state dir that only the server's user may read): a copy of the database
//! alone, a backup of it or a `strings` of the file shows no value. The associated data binds
//! each sealed value to its service, name and version, so a row copied onto another opens to
//! an error rather than to the wrong secret. A random 192-bit nonce per value: XChaCha's nonce
//! is long enough that random nonces never repeat in practice.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rusqlite::{params, OptionalExtension};

use runway_wire::record::SecretRow;

use crate::{now, Store};

/// The key's file name, beside the database.
pub const KEY_FILE: &str = "secrets.key";

/// The key, read (or made) on first use: a server that never sets a secret never writes one.
pub(crate) struct Vault {
    key_file: PathBuf,
    cipher: OnceLock<XChaCha20Poly1305>,
}

impl Vault {
    pub(crate) fn new(key_file: PathBuf) -> Vault {
        Vault {
            key_file,
            cipher: OnceLock::new(),
        }
    }

    /// The cipher; a missing key file is made only when `may_make` (nothing is sealed yet):
    /// a key lost while values are sealed under it is an error to see, never replaced.
    fn cipher(&self, may_make: bool) -> Result<&XChaCha20Poly1305> {
        if let Some(cipher) = self.cipher.get() {
            return Ok(cipher);
        }
        let key = match std::fs::read(&self.key_file) {
            Ok(key) => key,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_make => self.make_key()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(anyhow!(
                    "{} is missing and secrets are sealed under it: restore the file from a \
                     backup of the state dir (runway does not make a new key, which would \
                     open none of them)",
                    self.key_file.display()
                ))
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", self.key_file.display()))
            }
        };
        let cipher = XChaCha20Poly1305::new_from_slice(&key).map_err(|_| {
            anyhow!(
                "{} is not a secrets key (32 bytes); it holds {} bytes",
                self.key_file.display(),
                key.len()
            )
        })?;
        Ok(self.cipher.get_or_init(|| cipher))
    }

    /// A new key, written with mode 0600 and `create_new`: two servers racing on one state dir
    /// cannot each write their own (the loser reads the winner's).
    fn make_key(&self) -> Result<Vec<u8>> {
        use std::os::unix::fs::OpenOptionsExt;
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.key_file)
        {
            Ok(mut file) => {
                file.write_all(&key)?;
                file.sync_all()?;
                Ok(key.to_vec())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok(std::fs::read(&self.key_file)?)
            }
            Err(e) => Err(e).with_context(|| format!("writing {}", self.key_file.display())),
        }
    }

    fn seal(&self, aad: &str, value: &str, nothing_sealed: bool) -> Result<Vec<u8>> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher(nothing_sealed)?
            .encrypt(
                &nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| anyhow!("sealing a secret failed"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn open(&self, aad: &str, sealed: &[u8]) -> Result<String> {
        if sealed.len() < 24 {
            return Err(anyhow!("a sealed secret is too short"));
        }
        let (nonce, sealed) = sealed.split_at(24);
        let value = self
            .cipher(false)?
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow!(
                    "a sealed secret does not open with {}: the key was replaced, or the row \
                     was altered",
                    self.key_file.display()
                )
            })?;
        String::from_utf8(value).map_err(|_| anyhow!("a sealed secret is not UTF-8"))
    }
}

/// What binds a sealed value to its place.
fn aad(service: &str, name: &str, version: u64) -> String {
    format!("runway secret\0{service}\0{name}\0{version}")
}

impl Store {
    /// Seals `value` as the next version of `service`'s secret `name`; returns that version.
    pub(crate) fn secret_set(
        &self,
        service: &str,
        name: &str,
        value: &str,
        by: &str,
    ) -> Result<u64> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        let version = next_version(&tx, service, name)?;
        let nothing_sealed: bool = tx.query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM secrets WHERE sealed IS NOT NULL)",
            [],
            |r| r.get(0),
        )?;
        let sealed = self
            .vault
            .seal(&aad(service, name, version), value, nothing_sealed)?;
        tx.execute(
            "INSERT INTO secrets (service, name, version, sealed, set_by, set_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![service, name, version, sealed, by, now()],
        )?;
        tx.commit()?;
        Ok(version)
    }

    /// Records that `service` has no secret `name` any more (its old versions stay, sealed,
    /// for rollbacks). `false` when it had none.
    pub(crate) fn secret_unset(&self, service: &str, name: &str, by: &str) -> Result<bool> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        if current(&tx, service, name)?.is_none() {
            return Ok(false);
        }
        let version = next_version(&tx, service, name)?;
        tx.execute(
            "INSERT INTO secrets (service, name, version, sealed, set_by, set_at)
                 VALUES (?1, ?2, ?3, NULL, ?4, ?5)",
            params![service, name, version, by, now()],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// The secrets `service` has now, by name: their current versions, never their values.
    pub(crate) fn secret_list(&self, service: &str) -> Result<Vec<SecretRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT name, version, set_by, set_at FROM secrets s
             WHERE service = ?1 AND sealed IS NOT NULL
               AND version = (SELECT MAX(version) FROM secrets
                              WHERE service = s.service AND name = s.name)
             ORDER BY name",
        )?;
        let rows = stmt.query_map(params![service], |r| {
            Ok(SecretRow {
                name: r.get(0)?,
                version: r.get(1)?,
                set_by: r.get(2)?,
                set_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The value of one version of a secret; `None` when there is no such version, or it is
    /// the record of an `unset`.
    pub(crate) fn secret_open(
        &self,
        service: &str,
        name: &str,
        version: u64,
    ) -> Result<Option<String>> {
        let sealed: Option<Option<Vec<u8>>> = self
            .conn()
            .query_row(
                "SELECT sealed FROM secrets WHERE service = ?1 AND name = ?2 AND version = ?3",
                params![service, name, version],
                |r| r.get(0),
            )
            .optional()?;
        match sealed.flatten() {
            Some(sealed) => Ok(Some(
                self.vault.open(&aad(service, name, version), &sealed)?,
            )),
            None => Ok(None),
        }
    }
}

fn next_version(conn: &rusqlite::Connection, service: &str, name: &str) -> Result<u64> {
    let last: Option<u64> = conn.query_row(
        "SELECT MAX(version) FROM secrets WHERE service = ?1 AND name = ?2",
        params![service, name],
        |r| r.get(0),
    )?;
    Ok(last.unwrap_or(0) + 1)
}

/// The current version of a secret that is set.
fn current(conn: &rusqlite::Connection, service: &str, name: &str) -> Result<Option<u64>> {
    Ok(conn
        .query_row(
            "SELECT version, sealed IS NOT NULL FROM secrets WHERE service = ?1 AND name = ?2
             ORDER BY version DESC LIMIT 1",
            params![service, name],
            |r| Ok((r.get::<_, u64>(0)?, r.get::<_, bool>(1)?)),
        )
        .optional()?
        .and_then(|(version, set)| set.then_some(version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn versions_are_kept_and_only_the_key_opens_them() {
        let (dir, store) = store();
        let value = "postgres://app:s3cr3t-Value-7f@db/app";
        assert_eq!(
            store
                .secret_set("api", "DATABASE_URL", value, "ada")
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .secret_set("api", "DATABASE_URL", "second", "ada")
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .secret_set("web", "DATABASE_URL", "other", "bob")
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .secret_open("api", "DATABASE_URL", 1)
                .unwrap()
                .as_deref(),
            Some(value)
        );
        let listed = store.secret_list("api").unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].version, listed[0].set_by.as_str()), (2, "ada"));

        // Unset: gone from the list, its old versions still open (for a rollback).
        assert!(store.secret_unset("api", "DATABASE_URL", "ada").unwrap());
        assert!(!store.secret_unset("api", "DATABASE_URL", "ada").unwrap());
        assert!(store.secret_list("api").unwrap().is_empty());
        assert_eq!(store.secret_open("api", "DATABASE_URL", 3).unwrap(), None);
        assert_eq!(
            store
                .secret_open("api", "DATABASE_URL", 2)
                .unwrap()
                .as_deref(),
            Some("second")
        );
        assert_eq!(
            store
                .secret_set("api", "DATABASE_URL", "third", "ada")
                .unwrap(),
            4
        );

        // At rest: no value in the database files, and a key only the owner reads.
        drop(store);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes.windows(value.len()).any(|w| w == value.as_bytes()));
            assert!(!bytes.windows(6).any(|w| w == b"s3cr3t"));
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        // A lost key is not replaced while values are sealed under it.
        let key = std::fs::read(dir.path().join(KEY_FILE)).unwrap();
        std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let err = store.secret_set("api", "NEW", "v", "ada").unwrap_err();
        assert!(format!("{err:#}").contains("is missing"), "{err:#}");
        let err = store.secret_open("api", "DATABASE_URL", 1).unwrap_err();
        assert!(format!("{err:#}").contains("is missing"), "{err:#}");
        assert!(!dir.path().join(KEY_FILE).exists());
        // Another key opens nothing.
        let mut other = key.clone();
        other[0] ^= 0xff;
        std::fs::write(dir.path().join(KEY_FILE), other).unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let err = store.secret_open("api", "DATABASE_URL", 1).unwrap_err();
        assert!(format!("{err:#}").contains("does not open"), "{err:#}");
    }

    #[test]
    fn a_sealed_value_moved_to_another_name_does_not_open() {
        let (_dir, store) = store();
        store.secret_set("api", "A", "alpha", "ada").unwrap();
        store.secret_set("api", "B", "beta", "ada").unwrap();
        store
            .conn()
            .execute(
                "UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE name = 'A')
                 WHERE name = 'B'",
                [],
            )
            .unwrap();
        assert!(store.secret_open("api", "B", 1).is_err());
        assert_eq!(
            store.secret_open("api", "A", 1).unwrap().as_deref(),
            Some("alpha")
        );
    }
}
