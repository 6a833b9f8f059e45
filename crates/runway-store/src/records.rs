//! The store as the engine's [`Records`]: everything the engine reads and writes across a
//! crash is implemented here, once, as the trait's methods (bring the trait into scope to call
//! them: `use runway_engine::records::Records`).

use anyhow::Result;
use runway_engine::records::Records;
use runway_wire::id::{BackupId, BaselineId, CheckRunId, DeploymentId, HookRunId, ReplicaId};
use rusqlite::{params, OptionalExtension};

use crate::runbook::{backup_from_row, column};
use runway_wire::record::ApprovalRow;

use crate::{
    deployment_from_row, now, readable, replica_from_row, BackupRow, Deployment, JournalEntry,
    NewDeployment, ReplicaRow, ServiceFlag, Status, Store,
};

impl Records for Store {
    fn is_unavailable(&self, error: &anyhow::Error) -> bool {
        use rusqlite::ErrorCode::*;
        error.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<rusqlite::Error>(),
                Some(rusqlite::Error::SqliteFailure(e, _))
                    if matches!(
                        e.code,
                        DiskFull | SystemIoFailure | ReadOnly | CannotOpen | DatabaseBusy | DatabaseLocked
                    )
            )
        })
    }

    fn insert_deployment(&self, d: NewDeployment<'_>) -> Result<DeploymentId> {
        let spec = serde_json::to_string(d.spec)?;
        let conn = self.conn();
        conn.execute(
            "INSERT INTO deployments (service, kind, version, previous_version, previous_release_id,
                 status, spec, base_dir, started_at, requested_by, request_reason, deploy_type,
                 digest, commit_sha, commit_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                d.service,
                d.kind.as_str(),
                d.version,
                d.previous_version,
                d.previous_release_id,
                d.status.as_str(),
                spec,
                d.base_dir,
                now(),
                d.requested_by,
                d.request_reason,
                d.deploy_type,
                d.digest,
                d.commit,
                d.commit_time,
            ],
        )?;
        Ok(conn.last_insert_rowid().into())
    }

    fn activate_deployment(
        &self,
        id: DeploymentId,
        previous: Option<(&str, DeploymentId)>,
    ) -> Result<bool> {
        let changed = self.conn().execute(
            "UPDATE deployments SET status = 'running', started_at = ?2, progress = NULL,
                 previous_version = ?3, previous_release_id = ?4
             WHERE id = ?1 AND status = 'awaiting_approval'",
            params![id, now(), previous.map(|p| p.0), previous.map(|p| p.1)],
        )?;
        Ok(changed == 1)
    }

    fn end_awaiting(&self, id: DeploymentId, reason: &str) -> Result<bool> {
        let changed = self.conn().execute(
            "UPDATE deployments SET status = 'failed', reason = ?2, finished_at = ?3
             WHERE id = ?1 AND status = 'awaiting_approval'",
            params![id, reason, now()],
        )?;
        Ok(changed == 1)
    }

    fn awaiting_approval(&self, service: Option<&str>) -> Result<Vec<Deployment>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT * FROM deployments WHERE status = 'awaiting_approval'
             AND (?1 IS NULL OR service = ?1) ORDER BY id",
        )?;
        let rows = stmt.query_map(params![service], deployment_from_row)?;
        readable(rows)
    }

    fn insert_approval(&self, a: &ApprovalRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO approvals (deployment_id, identity, role, verdict, reason, digest, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                a.deployment_id,
                a.identity,
                a.role,
                a.verdict,
                a.reason,
                a.digest,
                a.at
            ],
        )?;
        Ok(())
    }

    fn approvals(&self, id: DeploymentId) -> Result<Vec<ApprovalRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT deployment_id, identity, role, verdict, reason, digest, at FROM approvals
             WHERE deployment_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(ApprovalRow {
                deployment_id: r.get(0)?,
                identity: r.get(1)?,
                role: r.get(2)?,
                verdict: r.get(3)?,
                reason: r.get(4)?,
                digest: r.get(5)?,
                at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn revoked_identities(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT name FROM tokens WHERE revoked_at IS NOT NULL")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn deployment(&self, id: DeploymentId) -> Result<Option<Deployment>> {
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
    fn history(&self, service: Option<&str>, limit: u32) -> Result<Vec<Deployment>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT * FROM deployments WHERE (?1 IS NULL OR service = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![service, limit], deployment_from_row)?;
        readable(rows)
    }

    fn running_deployments(&self) -> Result<Vec<Deployment>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT * FROM deployments WHERE status = 'running' ORDER BY id")?;
        let rows = stmt.query_map([], deployment_from_row)?;
        readable(rows)
    }

    fn set_progress(&self, id: DeploymentId, progress: &serde_json::Value) -> Result<()> {
        self.conn().execute(
            "UPDATE deployments SET progress = ?2 WHERE id = ?1",
            params![id, progress.to_string()],
        )?;
        Ok(())
    }

    fn set_spec(&self, id: DeploymentId, spec: &runway_spec::Spec) -> Result<()> {
        self.conn().execute(
            "UPDATE deployments SET spec = ?2 WHERE id = ?1",
            params![id, serde_json::to_string(spec)?],
        )?;
        Ok(())
    }

    fn finish_deployment_at(
        &self,
        id: DeploymentId,
        status: Status,
        reason: Option<&str>,
        at: &str,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE deployments SET status = ?2, reason = COALESCE(?3, reason), finished_at = ?4 WHERE id = ?1",
            params![id, status.as_str(), reason, at],
        )?;
        Ok(())
    }

    /// Records deployment `by` on every succeeded deployment of `version` newer than `after`
    /// that no rollback went past yet: after going back past a version, none of its releases
    /// (a deploy, then a scale change of it) is a rollback target any more. Their status, their
    /// own outcome, stays.
    fn record_rolled_back(
        &self,
        service: &str,
        version: &str,
        after: DeploymentId,
        by: DeploymentId,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE deployments SET rolled_back_by = ?4
             WHERE service = ?1 AND version = ?2 AND id > ?3 AND id < ?4
               AND status = 'succeeded' AND rolled_back_by IS NULL",
            params![service, version, after, by],
        )?;
        Ok(())
    }

    fn journal_at(
        &self,
        deployment_id: DeploymentId,
        event: &str,
        detail: serde_json::Value,
        at: &str,
    ) -> Result<i64> {
        let conn = self.conn();
        let seq: i64 = conn.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM journal WHERE deployment_id = ?1",
            [deployment_id],
            |r| r.get(0),
        )?;
        conn.execute(
            "INSERT INTO journal (deployment_id, seq, at, event, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![deployment_id, seq, at, event, detail.to_string()],
        )?;
        Ok(seq)
    }

    fn ended_between(&self, from: Option<&str>, until: &str) -> Result<Vec<DeploymentId>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id FROM deployments
             WHERE finished_at IS NOT NULL AND finished_at >= ?1 AND finished_at < ?2
               AND status NOT IN ('running', 'awaiting_approval')
               AND id NOT IN (SELECT deployment_id FROM incidents
                              WHERE resolved_at IS NULL AND deployment_id IS NOT NULL)
             ORDER BY finished_at, id",
        )?;
        let rows = stmt.query_map(params![from.unwrap_or(""), until], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn thin_journal(&self, id: DeploymentId, repeated: &[&str]) -> Result<u64> {
        let kinds = serde_json::to_string(repeated)?;
        // A segment is what lies between two entries of other kinds; within one, of each
        // kind (and replica) only the newest entry stays.
        let removed = self.conn().execute(
            "WITH kinds AS (SELECT value AS kind FROM json_each(?2)),
             marked AS (
                 SELECT id, seq, event, json_extract(detail, '$.replica') AS replica,
                        SUM(CASE WHEN event IN (SELECT kind FROM kinds) THEN 0 ELSE 1 END)
                            OVER (ORDER BY seq) AS segment
                 FROM journal WHERE deployment_id = ?1
             ),
             ranked AS (
                 SELECT id, ROW_NUMBER() OVER (
                            PARTITION BY segment, event, replica ORDER BY seq DESC) AS nth
                 FROM marked WHERE event IN (SELECT kind FROM kinds)
             )
             DELETE FROM journal WHERE id IN (SELECT id FROM ranked WHERE nth > 1)",
            params![id, kinds],
        )?;
        Ok(removed as u64)
    }

    fn journal_since(&self, deployment_id: DeploymentId, after: i64) -> Result<Vec<JournalEntry>> {
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

    /// Journal entries of every deployment after `cursor`, oldest first, at most `limit`. The
    /// cursor is the entry's `id`: AUTOINCREMENT, so it only grows, is never reused, and
    /// survives a VACUUM (schema version 6).
    fn journal_feed(
        &self,
        after: i64,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<runway_wire::api::FeedEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT j.id, j.deployment_id, d.service, j.seq, j.at, j.event, j.detail
             FROM journal j JOIN deployments d ON d.id = j.deployment_id
             WHERE j.id > ?1 AND (?2 IS NULL OR d.service = ?2)
             ORDER BY j.id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![after, service, limit as i64], |r| {
            let detail: String = r.get(6)?;
            Ok(runway_wire::api::FeedEntry {
                cursor: r.get(0)?,
                deployment: r.get(1)?,
                service: r.get(2)?,
                entry: JournalEntry {
                    seq: r.get(3)?,
                    at: r.get(4)?,
                    event: r.get(5)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The cursor of the newest journal entry (0 when there is none): a stream that starts
    /// "from now" starts after it.
    fn journal_cursor(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("SELECT COALESCE(MAX(id), 0) FROM journal", [], |r| r.get(0))?)
    }

    fn services(&self) -> Result<Vec<(String, Option<DeploymentId>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT name, serving_release FROM services ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn serving_release(&self, service: &str) -> Result<Option<DeploymentId>> {
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

    fn set_serving_release(&self, service: &str, release: Option<DeploymentId>) -> Result<()> {
        self.conn().execute(
            "INSERT INTO services (name, serving_release) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET serving_release = excluded.serving_release",
            params![service, release],
        )?;
        Ok(())
    }

    /// Records that a service exists (before its first release serves), so a restarted server
    /// knows to bring up its proxy and resume its first deployment.
    fn ensure_service(&self, service: &str) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO services (name, serving_release) VALUES (?1, NULL)",
            [service],
        )?;
        Ok(())
    }

    /// Forgets a service: it is no longer brought up at start, nor listed. Its deployments,
    /// journals, backups and replica rows stay as records; its modes (maintenance, read-only,
    /// freeze) go with it, so a new service of that name starts afresh.
    fn remove_service(&self, service: &str) -> Result<()> {
        // A service of the same name later starts afresh: no flags, no secrets of this one.
        let conn = self.conn();
        conn.execute("DELETE FROM services WHERE name = ?1", [service])?;
        conn.execute("DELETE FROM flags WHERE service = ?1", [service])?;
        conn.execute("DELETE FROM secrets WHERE service = ?1", [service])?;
        Ok(())
    }

    fn flag_json(&self, service: &str, flag: ServiceFlag) -> Result<Option<serde_json::Value>> {
        let json: Option<String> = self
            .conn()
            .query_row(
                &format!("SELECT {} FROM services WHERE name = ?1", column(flag)),
                [service],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    fn set_flag_json(
        &self,
        service: &str,
        flag: ServiceFlag,
        value: Option<serde_json::Value>,
    ) -> Result<()> {
        self.conn().execute(
            &format!(
                "INSERT INTO services (name, {col}) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET {col} = excluded.{col}",
                col = column(flag)
            ),
            params![service, value.map(|v| v.to_string())],
        )?;
        Ok(())
    }

    fn insert_replica(
        &self,
        service: &str,
        release_id: DeploymentId,
        version: &str,
        handle: &serde_json::Value,
    ) -> Result<ReplicaId> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO replicas (service, release_id, version, handle, state, created_at)
             VALUES (?1, ?2, ?3, ?4, 'starting', ?5)",
            params![service, release_id, version, handle.to_string(), now()],
        )?;
        Ok(conn.last_insert_rowid().into())
    }

    fn replica(&self, id: ReplicaId) -> Result<Option<ReplicaRow>> {
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

    /// Replicas that may still have a process: everything not stopped or failed for good.
    fn live_replicas(&self, service: &str) -> Result<Vec<ReplicaRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, service, release_id, version, handle, state, in_rotation, restarts
             FROM replicas WHERE service = ?1 AND state NOT IN ('stopped', 'failed') ORDER BY id",
        )?;
        let rows = stmt.query_map([service], replica_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest `limit` replicas of `version` in `service`, whatever their state.
    fn replicas_of_version(
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

    /// Records what the replica's platform needs to find it again (a new process, a new
    /// container...).
    fn set_replica_handle(&self, id: ReplicaId, handle: &serde_json::Value) -> Result<()> {
        self.conn().execute(
            "UPDATE replicas SET handle = ?2 WHERE id = ?1",
            params![id, handle.to_string()],
        )?;
        Ok(())
    }

    fn set_replica_state(&self, id: ReplicaId, state: &str) -> Result<()> {
        let stopped = matches!(state, "stopped" | "failed").then(now);
        self.conn().execute(
            "UPDATE replicas SET state = ?2, stopped_at = COALESCE(?3, stopped_at) WHERE id = ?1",
            params![id, state, stopped],
        )?;
        Ok(())
    }

    fn set_replica_rotation(&self, id: ReplicaId, in_rotation: bool) -> Result<()> {
        self.conn().execute(
            "UPDATE replicas SET in_rotation = ?2 WHERE id = ?1",
            params![id, in_rotation],
        )?;
        Ok(())
    }

    fn bump_replica_restarts(&self, id: ReplicaId) -> Result<()> {
        self.conn().execute(
            "UPDATE replicas SET restarts = restarts + 1 WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    fn insert_hook_run(
        &self,
        deployment_id: DeploymentId,
        phase: &str,
        argv: &[String],
    ) -> Result<HookRunId> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO hook_runs (deployment_id, phase, argv, started_at, outcome)
             VALUES (?1, ?2, ?3, ?4, 'running')",
            params![deployment_id, phase, serde_json::to_string(argv)?, now()],
        )?;
        Ok(conn.last_insert_rowid().into())
    }

    fn finish_hook_run(
        &self,
        id: HookRunId,
        outcome: &str,
        detail: &str,
        output: &str,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE hook_runs SET outcome = ?2, detail = ?3, output = ?4, finished_at = ?5
             WHERE id = ?1",
            params![id, outcome, detail, output, now()],
        )?;
        Ok(())
    }

    /// Hooks recorded as running when the server died: their process went on without anyone
    /// reading its output. Called on start, before anything runs.
    fn mark_interrupted_hook_runs(&self) -> Result<usize> {
        Ok(self.conn().execute(
            "UPDATE hook_runs SET outcome = 'interrupted', finished_at = ?1,
                 detail = 'the server stopped while it ran'
             WHERE outcome = 'running'",
            [now()],
        )?)
    }

    fn insert_backup(
        &self,
        service: &str,
        deployment_id: DeploymentId,
        version: &str,
        dir: &str,
    ) -> Result<BackupId> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO backups (service, deployment_id, version, dir, created_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, 'taking')",
            params![service, deployment_id, version, dir, now()],
        )?;
        Ok(conn.last_insert_rowid().into())
    }

    fn set_backup_state(&self, id: BackupId, state: &str, size_bytes: u64) -> Result<()> {
        self.conn().execute(
            "UPDATE backups SET state = ?2, size_bytes = ?3 WHERE id = ?1",
            params![id, state, size_bytes as i64],
        )?;
        Ok(())
    }

    fn backup(&self, id: BackupId) -> Result<Option<BackupRow>> {
        self.conn()
            .query_row("SELECT * FROM backups WHERE id = ?1", [id], backup_from_row)
            .optional()
            .map_err(Into::into)
    }

    /// The service's backups, newest first (pruned ones included, for the record).
    fn backups(&self, service: &str) -> Result<Vec<BackupRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT * FROM backups WHERE service = ?1 ORDER BY id DESC")?;
        let rows = stmt.query_map([service], backup_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The backup a deployment took, if it took one that is usable.
    fn backup_of(&self, deployment_id: DeploymentId) -> Result<Option<BackupRow>> {
        self.conn()
            .query_row(
                "SELECT * FROM backups WHERE deployment_id = ?1 AND state = 'ok'
                 ORDER BY id DESC LIMIT 1",
                [deployment_id],
                backup_from_row,
            )
            .optional()
            .map_err(Into::into)
    }

    /// Records that deployment `deployment_id` applied its migration.
    fn record_migration(&self, deployment_id: DeploymentId, service: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO migrations (deployment_id, service, applied_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(deployment_id) DO UPDATE SET
                 applied_at = excluded.applied_at, undone_by = NULL, undone_at = NULL, how = NULL",
            params![deployment_id, service, now()],
        )?;
        Ok(())
    }

    /// Records that a migration is no longer in effect: `how` is `undo` or `restore`.
    fn mark_migration_undone(
        &self,
        deployment_id: DeploymentId,
        by: DeploymentId,
        how: &str,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE migrations SET undone_by = ?2, undone_at = ?3, how = ?4
             WHERE deployment_id = ?1 AND undone_by IS NULL",
            params![deployment_id, by, now(), how],
        )?;
        Ok(())
    }

    /// Migrations in effect that releases newer than `release_id` applied, newest first: what
    /// going back to `release_id` has to take back.
    fn migrations_after(
        &self,
        service: &str,
        release_id: DeploymentId,
    ) -> Result<Vec<DeploymentId>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT deployment_id FROM migrations
             WHERE service = ?1 AND deployment_id > ?2 AND undone_by IS NULL
             ORDER BY deployment_id DESC",
        )?;
        let rows = stmt.query_map(params![service, release_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn migration_in_effect(&self, deployment_id: DeploymentId) -> Result<bool> {
        Ok(self
            .conn()
            .prepare("SELECT 1 FROM migrations WHERE deployment_id = ?1 AND undone_by IS NULL")?
            .exists([deployment_id])?)
    }

    fn insert_baseline(&self, service: &str, metrics: &serde_json::Value) -> Result<BaselineId> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO baselines (service, captured_at, metrics) VALUES (?1, ?2, ?3)",
            params![service, now(), metrics.to_string()],
        )?;
        Ok(conn.last_insert_rowid().into())
    }

    /// A baseline by id, or the newest one of the service.
    fn baseline(
        &self,
        service: &str,
        id: Option<BaselineId>,
    ) -> Result<Option<(BaselineId, String, serde_json::Value)>> {
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

    fn insert_incident(&self, i: &runway_wire::incident::Incident) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO incidents (service, deployment_id, cause, severity, title, opened_at,
                 impact) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                i.service,
                i.deployment,
                i.cause,
                i.severity,
                i.title,
                i.opened_at,
                serde_json::to_string(&i.impact)?
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    fn incidents(
        &self,
        service: Option<&str>,
        limit: u32,
    ) -> Result<Vec<runway_wire::incident::Incident>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT * FROM incidents WHERE (?1 IS NULL OR service = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![service, limit], incident_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn incident(&self, id: i64) -> Result<Option<runway_wire::incident::Incident>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT * FROM incidents WHERE id = ?1",
                [id],
                incident_from_row,
            )
            .optional()?)
    }

    fn ack_incident(&self, id: i64, by: &str) -> Result<bool> {
        let changed = self.conn().execute(
            "UPDATE incidents SET acked_at = ?2, acked_by = ?3
             WHERE id = ?1 AND acked_at IS NULL AND resolved_at IS NULL",
            params![id, now(), by],
        )?;
        Ok(changed == 1)
    }

    fn resolve_incident(&self, id: i64, by: &str, note: Option<&str>) -> Result<bool> {
        let changed = self.conn().execute(
            "UPDATE incidents SET resolved_at = ?2, resolved_by = ?3, resolution = ?4
             WHERE id = ?1 AND resolved_at IS NULL",
            params![id, now(), by, note],
        )?;
        Ok(changed == 1)
    }

    fn record_delivery(&self, d: &runway_wire::notice::Delivery) -> Result<()> {
        self.conn().execute(
            "INSERT INTO deliveries (at, target, notice, service, deployment_id, attempts,
                 outcome, status, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                d.at,
                d.target,
                d.notice.as_str(),
                d.service,
                d.deployment,
                d.attempts,
                d.outcome,
                d.status,
                d.error
            ],
        )?;
        Ok(())
    }

    fn deliveries(
        &self,
        service: Option<&str>,
        limit: u32,
    ) -> Result<Vec<runway_wire::notice::Delivery>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, at, target, notice, service, deployment_id, attempts, outcome, status,
                 error FROM deliveries WHERE (?1 IS NULL OR service = ?1)
             ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![service, limit], |r| {
            let notice: String = r.get(3)?;
            Ok(runway_wire::notice::Delivery {
                id: r.get(0)?,
                at: r.get(1)?,
                target: r.get(2)?,
                notice: runway_wire::notice::NoticeKind::parse(&notice)
                    .unwrap_or(runway_wire::notice::NoticeKind::Test),
                service: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                deployment: r.get(5)?,
                attempts: r.get(6)?,
                outcome: r.get(7)?,
                status: r.get(8)?,
                error: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn audit_head(&self) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records a run of scheduled checks that started at `started_at` (RFC 3339).
    fn insert_check_run(
        &self,
        service: &str,
        started_at: &str,
        passed: bool,
        results: &serde_json::Value,
    ) -> Result<CheckRunId> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO check_runs (service, started_at, passed, results) VALUES (?1, ?2, ?3, ?4)",
            params![service, started_at, passed, results.to_string()],
        )?;
        Ok(conn.last_insert_rowid().into())
    }

    /// Newest first: (id, started_at, passed, results).
    fn check_runs(
        &self,
        service: &str,
        limit: u32,
    ) -> Result<Vec<(CheckRunId, String, bool, serde_json::Value)>> {
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

    fn set_secret(&self, service: &str, name: &str, value: &str, by: &str) -> Result<u64> {
        self.secret_set(service, name, value, by)
    }

    fn unset_secret(&self, service: &str, name: &str, by: &str) -> Result<bool> {
        self.secret_unset(service, name, by)
    }

    fn secrets(&self, service: &str) -> Result<Vec<runway_wire::record::SecretRow>> {
        self.secret_list(service)
    }

    fn secret_value(&self, service: &str, name: &str, version: u64) -> Result<Option<String>> {
        self.secret_open(service, name, version)
    }

    fn set_secret_versions(
        &self,
        id: DeploymentId,
        versions: &std::collections::BTreeMap<String, u64>,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE deployments SET secret_versions = ?2 WHERE id = ?1",
            params![id, serde_json::to_string(versions)?],
        )?;
        Ok(())
    }

    fn flags(&self, service: &str) -> Result<Vec<runway_wire::record::FlagRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT definition, revision, updated_by, updated_at FROM flags
             WHERE service = ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map(params![service], |r| {
            let definition: String = r.get(0)?;
            Ok(runway_wire::record::FlagRow {
                definition: serde_json::from_str(&definition).unwrap_or_default(),
                revision: r.get(1)?,
                updated_by: r.get(2)?,
                updated_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn put_flag(
        &self,
        service: &str,
        name: &str,
        definition: &serde_json::Value,
        by: &str,
        expected: Option<u64>,
    ) -> Result<Option<u64>> {
        let conn = self.conn();
        if let Some(expected) = expected {
            return Ok(conn
                .query_row(
                    "UPDATE flags SET definition = ?3, revision = revision + 1, updated_by = ?4,
                         updated_at = ?5
                     WHERE service = ?1 AND name = ?2 AND revision = ?6
                     RETURNING revision",
                    params![service, name, definition.to_string(), by, now(), expected],
                    |r| r.get(0),
                )
                .optional()?);
        }
        let revision: u64 = conn.query_row(
            "INSERT INTO flags (service, name, definition, revision, updated_by, updated_at)
                 VALUES (?1, ?2, ?3, 1, ?4, ?5)
             ON CONFLICT (service, name) DO UPDATE SET definition = excluded.definition,
                 revision = revision + 1, updated_by = excluded.updated_by,
                 updated_at = excluded.updated_at
             RETURNING revision",
            params![service, name, definition.to_string(), by, now()],
            |r| r.get(0),
        )?;
        Ok(Some(revision))
    }
}

fn incident_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<runway_wire::incident::Incident> {
    let impact: Option<String> = r.get("impact")?;
    Ok(runway_wire::incident::Incident {
        id: r.get("id")?,
        service: r.get("service")?,
        deployment: r.get("deployment_id")?,
        cause: r.get("cause")?,
        severity: r.get("severity")?,
        title: r.get("title")?,
        opened_at: r.get("opened_at")?,
        impact: impact
            .and_then(|i| serde_json::from_str(&i).ok())
            .unwrap_or_default(),
        acked_at: r.get("acked_at")?,
        acked_by: r.get("acked_by")?,
        resolved_at: r.get("resolved_at")?,
        resolved_by: r.get("resolved_by")?,
        resolution: r.get("resolution")?,
    })
}

/// History as the dashboard filters it.
impl Store {
    /// Deployments newest first, of `service`, `status` and `kind` where given, at most
    /// `limit`.
    pub fn history_filtered(
        &self,
        service: Option<&str>,
        status: Option<Status>,
        kind: Option<runway_wire::record::Kind>,
        limit: u32,
    ) -> Result<Vec<Deployment>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT * FROM deployments
             WHERE (?1 IS NULL OR service = ?1) AND (?2 IS NULL OR status = ?2)
               AND (?3 IS NULL OR kind = ?3)
             ORDER BY id DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![
                service,
                status.map(Status::as_str),
                kind.map(runway_wire::record::Kind::as_str),
                limit
            ],
            deployment_from_row,
        )?;
        readable(rows)
    }
}
