//! The audit trail: every state-changing API request, appended with who, role, when, from
//! where, what and the result, also when it was refused. Each entry carries the hash of the one
//! before and its own (SHA-256 over the previous hash and its fields), so `verify` finds an
//! entry edited, inserted or deleted; a head hash kept elsewhere (`--head`) shows the newest
//! entries cut off too.

use anyhow::Result;
pub use runway_wire::record::{AuditCheck, AuditEntry};
use rusqlite::params;

use crate::Store;

/// The previous hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of `entry` (its `hash` field left out) after `prev_hash`.
pub fn entry_hash(prev_hash: &str, entry: &AuditEntry) -> String {
    use sha2::Digest;
    let fields = serde_json::json!([
        entry.seq,
        entry.at,
        entry.identity,
        entry.role,
        entry.remote,
        entry.action,
        entry.detail,
        entry.status,
        entry.result,
    ]);
    let mut hasher = sha2::Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(fields.to_string().as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    /// Appends an entry (its `seq`, `prev_hash` and `hash` are set here) and returns it.
    pub fn append_audit(&self, mut entry: AuditEntry) -> Result<AuditEntry> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (seq, prev): (i64, String) = tx
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap_or((0, GENESIS.to_string()));
        entry.seq = seq + 1;
        entry.prev_hash = prev.clone();
        entry.hash = entry_hash(&prev, &entry);
        tx.execute(
            "INSERT INTO audit (seq, at, identity, role, remote, action, detail, status, result,
                 prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                entry.seq,
                entry.at,
                entry.identity,
                entry.role,
                entry.remote,
                entry.action,
                entry.detail.to_string(),
                entry.status,
                entry.result,
                entry.prev_hash,
                entry.hash
            ],
        )?;
        tx.commit()?;
        Ok(entry)
    }

    /// The entries at or after `since` (RFC 3339; all when `None`), oldest first.
    pub fn audit(&self, since: Option<&str>) -> Result<Vec<AuditEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT seq, at, identity, role, remote, action, detail, status, result, prev_hash,
                 hash FROM audit WHERE (?1 IS NULL OR at >= ?1) ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![since], |r| {
            let detail: String = r.get(6)?;
            Ok(AuditEntry {
                seq: r.get(0)?,
                at: r.get(1)?,
                identity: r.get(2)?,
                role: r.get(3)?,
                remote: r.get(4)?,
                action: r.get(5)?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                status: r.get(7)?,
                result: r.get(8)?,
                prev_hash: r.get(9)?,
                hash: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Walks the whole trail: every entry's hash is its own, follows the one before, and the
    /// numbers have no gap; with `head`, the trail must still reach that hash (a trail cut
    /// short loses it).
    pub fn verify_audit(&self, head: Option<&str>) -> Result<AuditCheck> {
        let entries = self.audit(None)?;
        let mut prev = GENESIS.to_string();
        let mut problem = None;
        for (i, e) in entries.iter().enumerate() {
            let expected_seq = i as i64 + 1;
            if e.seq != expected_seq {
                problem = Some(format!(
                    "entry #{expected_seq} is missing (the next one is #{}): an entry was deleted",
                    e.seq
                ));
                break;
            }
            if e.prev_hash != prev {
                problem = Some(format!(
                    "entry #{} does not follow #{}: an entry was inserted, deleted or replaced \
                     before it",
                    e.seq,
                    e.seq - 1
                ));
                break;
            }
            if entry_hash(&prev, e) != e.hash {
                problem = Some(format!(
                    "entry #{} was edited: its content no longer matches its hash",
                    e.seq
                ));
                break;
            }
            prev = e.hash.clone();
        }
        if problem.is_none() {
            if let Some(head) = head {
                if !entries.iter().any(|e| e.hash == head) && head != GENESIS {
                    problem = Some(format!(
                        "the trail never reaches head {head}: its newest entries were cut off"
                    ));
                }
            }
        }
        Ok(AuditCheck {
            entries: entries.len() as i64,
            head: prev,
            problem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at: crate::now(),
            identity: "dee".into(),
            role: "deployer".into(),
            remote: "127.0.0.1:50000".into(),
            action: action.into(),
            detail: serde_json::json!({"version": "v2"}),
            status: 201,
            result: "ok".into(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn store_with(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        for i in 0..n {
            store
                .append_audit(entry(&format!("POST /v1/deployments #{i}")))
                .unwrap();
        }
        (dir, store)
    }

    #[test]
    fn a_whole_trail_verifies_and_every_kind_of_tampering_is_found() {
        let (_dir, store) = store_with(5);
        let check = store.verify_audit(None).unwrap();
        assert_eq!((check.entries, check.problem.clone()), (5, None));
        let head = check.head.clone();
        assert_eq!(store.verify_audit(Some(&head)).unwrap().problem, None);

        // Edited: a field changed in place.
        let (_d, s) = store_with(5);
        s.conn()
            .execute("UPDATE audit SET identity = 'ada' WHERE seq = 3", [])
            .unwrap();
        let p = s.verify_audit(None).unwrap().problem.unwrap();
        assert!(p.contains("entry #3 was edited"), "{p}");

        // Edited with its hash recomputed: the next entry no longer follows it.
        let (_d, s) = store_with(5);
        let mut third = s.audit(None).unwrap()[2].clone();
        third.identity = "ada".into();
        let forged = entry_hash(&third.prev_hash, &third);
        s.conn()
            .execute(
                "UPDATE audit SET identity = 'ada', hash = ?1 WHERE seq = 3",
                [&forged],
            )
            .unwrap();
        let p = s.verify_audit(None).unwrap().problem.unwrap();
        assert!(p.contains("entry #4 does not follow #3"), "{p}");

        // Deleted.
        let (_d, s) = store_with(5);
        s.conn()
            .execute("DELETE FROM audit WHERE seq = 2", [])
            .unwrap();
        let p = s.verify_audit(None).unwrap().problem.unwrap();
        assert!(p.contains("entry #2 is missing"), "{p}");

        // Inserted: a row slipped in with the numbers shifted after it.
        let (_d, s) = store_with(3);
        for seq in [3, 2] {
            s.conn()
                .execute("UPDATE audit SET seq = ?1 + 1 WHERE seq = ?1", [seq])
                .unwrap();
        }
        let fake = entry("DELETE /v1/tokens/abe");
        s.conn()
            .execute(
                "INSERT INTO audit (seq, at, identity, role, remote, action, detail, status,
                     result, prev_hash, hash) VALUES (2, ?1, 'x', 'admin', '', ?2, '{}', 200, 'ok',
                     'forged', 'forged')",
                [&fake.at, &fake.action],
            )
            .unwrap();
        let p = s.verify_audit(None).unwrap().problem.unwrap();
        assert!(p.contains("entry #2 does not follow #1"), "{p}");

        // Truncated: the newest entries gone, found against a head kept elsewhere.
        let (_d, s) = store_with(5);
        let head = s.verify_audit(None).unwrap().head;
        s.conn()
            .execute("DELETE FROM audit WHERE seq >= 4", [])
            .unwrap();
        assert_eq!(
            s.verify_audit(None).unwrap().problem,
            None,
            "alone it looks whole"
        );
        let p = s.verify_audit(Some(&head)).unwrap().problem.unwrap();
        assert!(p.contains("newest entries were cut off"), "{p}");
    }
}
