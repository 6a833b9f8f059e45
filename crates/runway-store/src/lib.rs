//! runway's state: one SQLite file in the state dir.
//!
//! Everything the server must remember across a crash lives here: deployments (with the release
//! config that went with them, so a rollback restores config and not just a version), the journal
//! of every step, which release each service serves, and the replicas with their pids, so a
//! restarted server can re-adopt processes that outlived it.
//!
//! SQLite runs in WAL mode with `synchronous = NORMAL`: a committed transaction survives the
//! server being killed (-9) at any moment, which is the failure this store is designed for.
//! Calls are short and synchronous behind a mutex; at the rate a deployment writes (a few rows per
//! second) that is simpler and faster than a connection pool.

use std::path::Path;
use std::sync::Mutex;

mod runbook;
mod schema;

mod audit;
mod records;
mod secrets;
mod tokens;

pub use audit::{AuditCheck, GENESIS};

pub use tokens::TokenError;

pub use runway_wire::record::{
    now, BackupRow, Deployment, HookRun, JournalEntry, Kind, NewDeployment, ReplicaRow,
    ServiceFlag, Status, TrafficMode,
};
pub use schema::LATEST as SCHEMA_VERSION;

use anyhow::{Context, Result};
use rusqlite::{Connection, Row};

pub struct Store {
    conn: Mutex<Connection>,
    /// Seals and opens secrets: its key is a file beside the database.
    vault: secrets::Vault,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let mut conn = Connection::open(path)
            .with_context(|| format!("opening state database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The write-ahead log is cut back to nothing once checkpointed: it stays small, and on
        // a full disk the next write is refused at once (a log left at its largest would take
        // writes into its old space for a while, and the fault would be seen late).
        conn.pragma_update(None, "journal_size_limit", 0)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::upgrade(&mut conn)
            .with_context(|| format!("opening state database {}", path.display()))?;
        let key_file = path.with_file_name(secrets::KEY_FILE);
        Ok(Store {
            conn: Mutex::new(conn),
            vault: secrets::Vault::new(key_file),
        })
    }

    /// Makes the store refuse every write as a filesystem gone read-only would (SQLite's
    /// `query_only`), or take writes again: how the engine's tests hold a store fault
    /// (store_faults.rs) without a full disk. Reads work throughout.
    #[doc(hidden)]
    pub fn refuse_writes(&self, refuse: bool) -> Result<()> {
        self.conn().pragma_update(None, "query_only", refuse)?;
        Ok(())
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (every write is one
        // statement or one transaction), so a poisoned lock is safe to keep using.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A column holding one of a fixed set of words: a word this runway does not know is an error
/// the reader reports, not a guess.
fn word<T>(r: &Row<'_>, column: &str, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = r.get(column)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            r.as_ref().column_index(column).unwrap_or_default(),
            rusqlite::types::Type::Text,
            format!("unknown {column} `{text}` (written by a newer runway?)").into(),
        )
    })
}

/// The rows this runway can read. A row holding a word it does not know (written by a newer
/// runway) is left out with a warning, so that history, status and rollback keep working; any
/// other error is an error.
fn readable<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for row in rows {
        match row {
            Ok(row) => out.push(row),
            Err(rusqlite::Error::FromSqlConversionFailure(_, _, why)) => {
                tracing::warn!("leaving out a record this runway cannot read: {why}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

fn deployment_from_row(r: &Row<'_>) -> rusqlite::Result<Deployment> {
    let spec: String = r.get("spec")?;
    Ok(Deployment {
        id: r.get("id")?,
        service: r.get("service")?,
        kind: word(r, "kind", Kind::parse)?,
        version: r.get("version")?,
        previous_version: r.get("previous_version")?,
        previous_release_id: r.get("previous_release_id")?,
        status: word(r, "status", Status::parse)?,
        reason: r.get("reason")?,
        started_at: r.get("started_at")?,
        finished_at: r.get("finished_at")?,
        spec: serde_json::from_str(&spec).ok(),
        progress: r
            .get::<_, Option<String>>("progress")?
            .and_then(|p| serde_json::from_str(&p).ok()),
        base_dir: r.get("base_dir")?,
        requested_by: r.get("requested_by")?,
        request_reason: r.get("request_reason")?,
        deploy_type: r.get("deploy_type")?,
        digest: r.get("digest")?,
        rolled_back_by: r.get("rolled_back_by")?,
        commit: r.get("commit_sha")?,
        commit_time: r.get("commit_time")?,
        secret_versions: r
            .get::<_, Option<String>>("secret_versions")?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default(),
    })
}

fn replica_from_row(r: &Row<'_>) -> rusqlite::Result<ReplicaRow> {
    Ok(ReplicaRow {
        id: r.get(0)?,
        service: r.get(1)?,
        release_id: r.get(2)?,
        version: r.get(3)?,
        handle: r
            .get::<_, Option<String>>(4)?
            .and_then(|h| serde_json::from_str(&h).ok()),
        state: r.get(5)?,
        in_rotation: r.get(6)?,
        restarts: r.get::<_, i64>(7)? as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use runway_engine::records::Records;

    fn spec() -> runway_spec::Spec {
        runway_spec::parse_str(
            "[service]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[run]\ncommand = [\"app\"]\nreplicas = 2\n",
            "runway.toml",
        )
        .expect("valid spec")
    }

    #[test]
    fn a_status_word_from_a_newer_runway_is_not_read_as_running_and_breaks_no_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let deploy = |version: &str| running(&store, version);
        let old = deploy("v1");
        let newer = deploy("v2");
        store
            .conn()
            .execute(
                "UPDATE deployments SET status = 'held_by_a_newer_runway' WHERE id = ?1",
                [newer],
            )
            .unwrap();

        let history = store.history(Some("web"), 10).unwrap();
        assert_eq!(history.iter().map(|d| d.id).collect::<Vec<_>>(), [old]);
        let running = store.running_deployments().unwrap();
        assert_eq!(running.iter().map(|d| d.id).collect::<Vec<_>>(), [old]);
        let error = store.deployment(newer).unwrap_err();
        assert!(
            format!("{error:#}").contains("unknown status `held_by_a_newer_runway`"),
            "{error:#}"
        );
    }

    /// A deployment of `version` of `web`, just inserted: running.
    fn running(store: &Store, version: &str) -> runway_wire::id::DeploymentId {
        let spec = spec();
        store
            .insert_deployment(NewDeployment {
                service: "web",
                kind: Kind::Deploy,
                version,
                previous_version: None,
                previous_release_id: None,
                spec: &spec,
                base_dir: "/srv/web",
                requested_by: "tester",
                request_reason: None,
                deploy_type: None,
                digest: None,
                commit: None,
                commit_time: None,
                status: Status::Running,
            })
            .unwrap()
    }

    fn ended(store: &Store, version: &str, at: &str) -> runway_wire::id::DeploymentId {
        let id = running(store, version);
        let entries = [
            ("started", serde_json::json!({})),
            ("replica_starting", serde_json::json!({"replica": "web-4"})),
            (
                "replica_unhealthy",
                serde_json::json!({"replica": "web-4", "n": 1}),
            ),
            (
                "replica_unhealthy",
                serde_json::json!({"replica": "web-4", "n": 2}),
            ),
            ("replica_routed", serde_json::json!({"replica": "web-4"})),
            ("canary_step", serde_json::json!({"weight": 10})),
            ("analysis", serde_json::json!({"look": 1})),
            ("analysis", serde_json::json!({"look": 2})),
            ("analysis", serde_json::json!({"look": 3})),
            ("promoted", serde_json::json!({})),
            ("analysis", serde_json::json!({"look": 4})),
            ("analysis", serde_json::json!({"look": 5})),
            ("succeeded", serde_json::json!({})),
        ];
        for (event, detail) in entries {
            store.journal_at(id, event, detail, at).unwrap();
        }
        store
            .finish_deployment_at(id, Status::Succeeded, None, at)
            .unwrap();
        id
    }

    /// Retention thins a journal to its story: of each run of repeated entries (per replica),
    /// the last; the deployments it looks at are those that ended in the window, without an
    /// open incident.
    #[test]
    fn a_thinned_journal_keeps_the_last_of_each_run_and_every_other_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let old = ended(&store, "v1", "2026-01-01T00:00:00Z");
        let open = ended(&store, "v2", "2026-01-02T00:00:00Z");
        let recent = ended(&store, "v3", "2026-06-01T00:00:00Z");
        store
            .insert_incident(&runway_wire::incident::Incident {
                id: 0,
                service: "web".into(),
                deployment: Some(open),
                cause: "rolled_back".into(),
                severity: "SEV-2".into(),
                title: "v2 rolled back".into(),
                opened_at: "2026-01-02T00:00:00Z".into(),
                impact: Default::default(),
                acked_at: None,
                acked_by: None,
                resolved_at: None,
                resolved_by: None,
                resolution: None,
            })
            .unwrap();

        let due = store.ended_between(None, "2026-03-01T00:00:00Z").unwrap();
        assert_eq!(
            due,
            vec![old],
            "not the one with an open incident, not the recent one"
        );
        assert!(store
            .ended_between(Some("2026-01-03T00:00:00Z"), "2026-03-01T00:00:00Z")
            .unwrap()
            .is_empty());

        let removed = store
            .thin_journal(old, &["analysis", "replica_unhealthy"])
            .unwrap();
        assert_eq!(removed, 4);
        let kept: Vec<(String, serde_json::Value)> = store
            .journal_since(old, 0)
            .unwrap()
            .into_iter()
            .map(|e| (e.event, e.detail))
            .collect();
        let names: Vec<&str> = kept.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(
            names,
            [
                "started",
                "replica_starting",
                "replica_unhealthy",
                "replica_routed",
                "canary_step",
                "analysis",
                "promoted",
                "analysis",
                "succeeded"
            ]
        );
        assert_eq!(kept[2].1["n"], 2, "the last word of the replica");
        assert_eq!(kept[5].1["look"], 3, "the analysis that decided the step");
        assert_eq!(kept[7].1["look"], 5);
        // Again: nothing more goes. The others are untouched.
        assert_eq!(store.thin_journal(old, &["analysis"]).unwrap(), 0);
        assert_eq!(store.journal_since(recent, 0).unwrap().len(), 13);
        // A new entry after thinning still takes the next place.
        assert_eq!(
            store.journal(old, "note", serde_json::json!({})).unwrap(),
            14
        );
    }

    #[test]
    fn deployments_round_trip_with_their_config() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let id = running(&store, "v1");
        store
            .journal(id, "started", serde_json::json!({"x": 1}))
            .unwrap();
        store
            .journal(id, "succeeded", serde_json::json!({}))
            .unwrap();
        store
            .finish_deployment(id, Status::Succeeded, None)
            .unwrap();

        // Reopen: everything must come back from disk.
        drop(store);
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let d = store.deployment(id).unwrap().unwrap();
        assert_eq!(d.status, Status::Succeeded);
        assert_eq!(d.spec.as_ref(), Some(&spec()));
        assert_eq!(d.base_dir, "/srv/web");
        assert!(d.finished_at.is_some());
        let journal = store.journal_since(id, 0).unwrap();
        assert_eq!(
            journal.iter().map(|j| j.seq).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(store.journal_since(id, 1).unwrap().len(), 1);
    }

    #[test]
    fn replicas_track_rotation_and_liveness() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let r = store
            .insert_replica(
                "web",
                runway_wire::id::DeploymentId(1),
                "v1",
                &serde_json::json!({ "port": 4000 }),
            )
            .unwrap();
        let handle = serde_json::json!({ "port": 4001, "pid": 123 });
        store.set_replica_handle(r, &handle).unwrap();
        store.set_replica_rotation(r, true).unwrap();
        let live = store.live_replicas("web").unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(
            (live[0].handle.clone(), live[0].in_rotation),
            (Some(handle), true)
        );
        store.set_replica_state(r, "stopped").unwrap();
        assert!(store.live_replicas("web").unwrap().is_empty());
    }
}
