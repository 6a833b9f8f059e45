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

mod records;

pub use runway_wire::record::{
    now, BackupRow, Deployment, HookRun, JournalEntry, Kind, NewDeployment, ReplicaRow,
    ServiceFlag, Status, TrafficMode,
};
pub use schema::LATEST as SCHEMA_VERSION;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};

pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let mut conn = Connection::open(path)
            .with_context(|| format!("opening state database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::upgrade(&mut conn)
            .with_context(|| format!("opening state database {}", path.display()))?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (every write is one
        // statement or one transaction), so a poisoned lock is safe to keep using.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- deployments ----

    pub fn insert_deployment(&self, d: NewDeployment<'_>) -> Result<i64> {
        let spec = serde_json::to_string(d.spec)?;
        let conn = self.conn();
        conn.execute(
            "INSERT INTO deployments (service, kind, version, previous_version, previous_release_id,
                 status, spec, base_dir, started_at) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8)",
            params![
                d.service,
                d.kind.as_str(),
                d.version,
                d.previous_version,
                d.previous_release_id,
                spec,
                d.base_dir,
                now()
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    pub fn set_progress(&self, id: i64, progress: &serde_json::Value) -> Result<()> {
        self.conn().execute(
            "UPDATE deployments SET progress = ?2 WHERE id = ?1",
            params![id, progress.to_string()],
        )?;
        Ok(())
    }

    pub fn finish_deployment(&self, id: i64, status: Status, reason: Option<&str>) -> Result<()> {
        self.conn().execute(
            "UPDATE deployments SET status = ?2, reason = COALESCE(?3, reason), finished_at = ?4 WHERE id = ?1",
            params![id, status.as_str(), reason, now()],
        )?;
        Ok(())
    }

    /// Marks a finished deployment as rolled back, keeping its original finish time.
    pub fn mark_rolled_back(&self, id: i64, reason: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE deployments SET status = 'rolled_back', reason = ?2,
                 finished_at = COALESCE(finished_at, ?3) WHERE id = ?1",
            params![id, reason, now()],
        )?;
        Ok(())
    }

    /// Marks every succeeded deployment of `version` newer than `after` as rolled back: after
    /// going back past a version, none of its releases (a deploy, then a scale change of it) is
    /// a rollback target any more.
    pub fn mark_version_rolled_back(
        &self,
        service: &str,
        version: &str,
        after: i64,
        reason: &str,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE deployments SET status = 'rolled_back', reason = ?4,
                 finished_at = COALESCE(finished_at, ?5)
             WHERE service = ?1 AND version = ?2 AND id > ?3 AND status = 'succeeded'",
            params![service, version, after, reason, now()],
        )?;
        Ok(())
    }

    pub fn deployment(&self, id: i64) -> Result<Option<Deployment>> {
        self.conn()
            .query_row(
                "SELECT * FROM deployments WHERE id = ?1",
                [id],
                deployment_from_row,
            )
            .optional()
            .map_err(Into::into)
    }

    /// History newest first; `service` None means all services.
    pub fn history(&self, service: Option<&str>, limit: u32) -> Result<Vec<Deployment>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT * FROM deployments WHERE (?1 IS NULL OR service = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![service, limit], deployment_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn running_deployments(&self) -> Result<Vec<Deployment>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT * FROM deployments WHERE status = 'running' ORDER BY id")?;
        let rows = stmt.query_map([], deployment_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- journal ----

    pub fn journal(
        &self,
        deployment_id: i64,
        event: &str,
        detail: serde_json::Value,
    ) -> Result<i64> {
        let conn = self.conn();
        let seq: i64 = conn.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM journal WHERE deployment_id = ?1",
            [deployment_id],
            |r| r.get(0),
        )?;
        conn.execute(
            "INSERT INTO journal (deployment_id, seq, at, event, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![deployment_id, seq, now(), event, detail.to_string()],
        )?;
        Ok(seq)
    }

    pub fn journal_since(&self, deployment_id: i64, after: i64) -> Result<Vec<JournalEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT seq, at, event, detail FROM journal WHERE deployment_id = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![deployment_id, after], |r| {
            let detail: String = r.get(3)?;
            Ok(JournalEntry {
                seq: r.get(0)?,
                at: r.get(1)?,
                event: r.get(2)?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- services ----

    pub fn services(&self) -> Result<Vec<(String, Option<i64>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT name, serving_release FROM services ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn serving_release(&self, service: &str) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT serving_release FROM services WHERE name = ?1",
                [service],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// Records that a service exists (before its first release serves), so a restarted server
    /// knows to bring up its proxy and resume its first deployment.
    pub fn ensure_service(&self, service: &str) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO services (name, serving_release) VALUES (?1, NULL)",
            [service],
        )?;
        Ok(())
    }

    /// Forgets a service: it is no longer brought up at start, nor listed. Its deployments,
    /// journals, backups and replica rows stay as records; its modes (maintenance, read-only,
    /// freeze) go with it, so a new service of that name starts afresh.
    pub fn remove_service(&self, service: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM services WHERE name = ?1", [service])?;
        Ok(())
    }

    pub fn set_serving_release(&self, service: &str, release: Option<i64>) -> Result<()> {
        self.conn().execute(
            "INSERT INTO services (name, serving_release) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET serving_release = excluded.serving_release",
            params![service, release],
        )?;
        Ok(())
    }

    // ---- baselines ----

    pub fn insert_baseline(&self, service: &str, metrics: &serde_json::Value) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO baselines (service, captured_at, metrics) VALUES (?1, ?2, ?3)",
            params![service, now(), metrics.to_string()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// A baseline by id, or the newest one of the service.
    pub fn baseline(
        &self,
        service: &str,
        id: Option<i64>,
    ) -> Result<Option<(i64, String, serde_json::Value)>> {
        self.conn()
            .query_row(
                "SELECT id, captured_at, metrics FROM baselines
                 WHERE service = ?1 AND (?2 IS NULL OR id = ?2) ORDER BY id DESC LIMIT 1",
                params![service, id],
                |r| {
                    let metrics: String = r.get(2)?;
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        serde_json::from_str(&metrics).unwrap_or_default(),
                    ))
                },
            )
            .optional()
            .map_err(Into::into)
    }

    // ---- scheduled check runs ----

    /// Records a run of scheduled checks that started at `started_at` (RFC 3339).
    pub fn insert_check_run(
        &self,
        service: &str,
        started_at: &str,
        passed: bool,
        results: &serde_json::Value,
    ) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO check_runs (service, started_at, passed, results) VALUES (?1, ?2, ?3, ?4)",
            params![service, started_at, passed, results.to_string()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Newest first: (id, started_at, passed, results).
    pub fn check_runs(
        &self,
        service: &str,
        limit: u32,
    ) -> Result<Vec<(i64, String, bool, serde_json::Value)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, started_at, passed, results FROM check_runs WHERE service = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![service, limit], |r| {
            let results: String = r.get(3)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                serde_json::from_str(&results).unwrap_or_default(),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- replicas ----

    pub fn insert_replica(
        &self,
        service: &str,
        release_id: i64,
        version: &str,
        handle: &serde_json::Value,
    ) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO replicas (service, release_id, version, handle, state, created_at)
             VALUES (?1, ?2, ?3, ?4, 'starting', ?5)",
            params![service, release_id, version, handle.to_string(), now()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Records what the replica's platform needs to find it again (a new process, a new
    /// container...).
    pub fn set_replica_handle(&self, id: i64, handle: &serde_json::Value) -> Result<()> {
        self.conn().execute(
            "UPDATE replicas SET handle = ?2 WHERE id = ?1",
            params![id, handle.to_string()],
        )?;
        Ok(())
    }

    pub fn set_replica_state(&self, id: i64, state: &str) -> Result<()> {
        let stopped = matches!(state, "stopped" | "failed").then(now);
        self.conn().execute(
            "UPDATE replicas SET state = ?2, stopped_at = COALESCE(?3, stopped_at) WHERE id = ?1",
            params![id, state, stopped],
        )?;
        Ok(())
    }

    pub fn set_replica_rotation(&self, id: i64, in_rotation: bool) -> Result<()> {
        self.conn().execute(
            "UPDATE replicas SET in_rotation = ?2 WHERE id = ?1",
            params![id, in_rotation],
        )?;
        Ok(())
    }

    pub fn bump_replica_restarts(&self, id: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE replicas SET restarts = restarts + 1 WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    /// Replicas that may still have a process: everything not stopped or failed for good.
    pub fn live_replicas(&self, service: &str) -> Result<Vec<ReplicaRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, service, release_id, version, handle, state, in_rotation, restarts
             FROM replicas WHERE service = ?1 AND state NOT IN ('stopped', 'failed') ORDER BY id",
        )?;
        let rows = stmt.query_map([service], replica_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest `limit` replicas of `version` in `service`, whatever their state.
    pub fn replicas_of_version(
        &self,
        service: &str,
        version: &str,
        limit: usize,
    ) -> Result<Vec<ReplicaRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, service, release_id, version, handle, state, in_rotation, restarts
             FROM replicas WHERE service = ?1 AND version = ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![service, version, limit as i64], replica_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn replica(&self, id: i64) -> Result<Option<ReplicaRow>> {
        self.conn()
            .query_row(
                "SELECT id, service, release_id, version, handle, state, in_rotation, restarts
                 FROM replicas WHERE id = ?1",
                [id],
                replica_from_row,
            )
            .optional()
            .map_err(Into::into)
    }
}

/// A column holding one of a fixed set of words: a word this runway does not know is an error
/// the reader reports, not a guess.
fn word<T>(r: &Row<'_>, column: &str, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = r.get(column)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown {column} `{text}` (written by a newer runway?)").into(),
        )
    })
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

    fn spec() -> runway_spec::Spec {
        runway_spec::parse_str(
            "[service]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[run]\ncommand = [\"app\"]\nreplicas = 2\n",
            "runway.toml",
        )
        .expect("valid spec")
    }

    #[test]
    fn deployments_round_trip_with_their_config() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let spec = spec();
        let id = store
            .insert_deployment(NewDeployment {
                service: "web",
                kind: Kind::Deploy,
                version: "v1",
                previous_version: None,
                previous_release_id: None,
                spec: &spec,
                base_dir: "/srv/web",
            })
            .unwrap();
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
        assert_eq!(d.spec.as_ref(), Some(&spec));
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
            .insert_replica("web", 1, "v1", &serde_json::json!({ "port": 4000 }))
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
