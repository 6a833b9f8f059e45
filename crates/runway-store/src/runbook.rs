//! What the store remembers of the runbook around a deployment: the traffic mode of each
//! service (maintenance, read-only, frozen), the output of every hook, the backups, and which
//! migrations are in effect (so a rollback knows what it must undo).

use anyhow::Result;
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::{now, BackupRow, HookRun, ServiceFlag, Store};

fn hook_run_from_row(r: &Row<'_>) -> rusqlite::Result<HookRun> {
    let argv: String = r.get("argv")?;
    Ok(HookRun {
        id: r.get("id")?,
        deployment_id: r.get("deployment_id")?,
        phase: r.get("phase")?,
        argv: serde_json::from_str(&argv).unwrap_or_default(),
        started_at: r.get("started_at")?,
        finished_at: r.get("finished_at")?,
        outcome: r.get("outcome")?,
        detail: r.get("detail")?,
        output: r.get("output")?,
    })
}

fn backup_from_row(r: &Row<'_>) -> rusqlite::Result<BackupRow> {
    Ok(BackupRow {
        id: r.get("id")?,
        service: r.get("service")?,
        deployment_id: r.get("deployment_id")?,
        version: r.get("version")?,
        dir: r.get("dir")?,
        created_at: r.get("created_at")?,
        state: r.get("state")?,
        size_bytes: r.get::<_, i64>("size_bytes")?.max(0) as u64,
    })
}

/// The column of a service flag.
fn column(flag: ServiceFlag) -> &'static str {
    match flag {
        ServiceFlag::Maintenance => "maintenance",
        ServiceFlag::ReadOnly => "read_only",
        ServiceFlag::Frozen => "frozen",
    }
}

impl Store {
    // ---- traffic modes ----

    /// Sets (or with None clears) one of the service's flags.
    pub fn set_flag<T: Serialize>(
        &self,
        service: &str,
        flag: ServiceFlag,
        value: Option<&T>,
    ) -> Result<()> {
        let json = value.map(serde_json::to_string).transpose()?;
        self.conn().execute(
            &format!(
                "INSERT INTO services (name, {col}) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET {col} = excluded.{col}",
                col = column(flag)
            ),
            params![service, json],
        )?;
        Ok(())
    }

    pub fn flag<T: serde::de::DeserializeOwned>(
        &self,
        service: &str,
        flag: ServiceFlag,
    ) -> Result<Option<T>> {
        let json: Option<String> = self
            .conn()
            .query_row(
                &format!("SELECT {} FROM services WHERE name = ?1", column(flag)),
                [service],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(match json {
            Some(j) => Some(serde_json::from_str(&j)?),
            None => None,
        })
    }

    // ---- hook runs ----

    pub fn insert_hook_run(&self, deployment_id: i64, phase: &str, argv: &[String]) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO hook_runs (deployment_id, phase, argv, started_at, outcome)
             VALUES (?1, ?2, ?3, ?4, 'running')",
            params![deployment_id, phase, serde_json::to_string(argv)?, now()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    pub fn finish_hook_run(
        &self,
        id: i64,
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
    pub fn mark_interrupted_hook_runs(&self) -> Result<usize> {
        Ok(self.conn().execute(
            "UPDATE hook_runs SET outcome = 'interrupted', finished_at = ?1,
                 detail = 'the server stopped while it ran'
             WHERE outcome = 'running'",
            [now()],
        )?)
    }

    pub fn hook_runs(&self, deployment_id: i64) -> Result<Vec<HookRun>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT * FROM hook_runs WHERE deployment_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([deployment_id], hook_run_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- backups ----

    pub fn insert_backup(
        &self,
        service: &str,
        deployment_id: i64,
        version: &str,
        dir: &str,
    ) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO backups (service, deployment_id, version, dir, created_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, 'taking')",
            params![service, deployment_id, version, dir, now()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    pub fn set_backup_state(&self, id: i64, state: &str, size_bytes: u64) -> Result<()> {
        self.conn().execute(
            "UPDATE backups SET state = ?2, size_bytes = ?3 WHERE id = ?1",
            params![id, state, size_bytes as i64],
        )?;
        Ok(())
    }

    /// The service's backups, newest first (pruned ones included, for the record).
    pub fn backups(&self, service: &str) -> Result<Vec<BackupRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT * FROM backups WHERE service = ?1 ORDER BY id DESC")?;
        let rows = stmt.query_map([service], backup_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn backup(&self, id: i64) -> Result<Option<BackupRow>> {
        self.conn()
            .query_row("SELECT * FROM backups WHERE id = ?1", [id], backup_from_row)
            .optional()
            .map_err(Into::into)
    }

    /// The backup a deployment took, if it took one that is usable.
    pub fn backup_of(&self, deployment_id: i64) -> Result<Option<BackupRow>> {
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

    // ---- migrations ----

    /// Records that deployment `deployment_id` applied its migration.
    pub fn record_migration(&self, deployment_id: i64, service: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO migrations (deployment_id, service, applied_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(deployment_id) DO UPDATE SET
                 applied_at = excluded.applied_at, undone_by = NULL, undone_at = NULL, how = NULL",
            params![deployment_id, service, now()],
        )?;
        Ok(())
    }

    /// Records that a migration is no longer in effect: `how` is `undo` or `restore`.
    pub fn mark_migration_undone(&self, deployment_id: i64, by: i64, how: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE migrations SET undone_by = ?2, undone_at = ?3, how = ?4
             WHERE deployment_id = ?1 AND undone_by IS NULL",
            params![deployment_id, by, now(), how],
        )?;
        Ok(())
    }

    /// Migrations in effect that releases newer than `release_id` applied, newest first: what
    /// going back to `release_id` has to take back.
    pub fn migrations_after(&self, service: &str, release_id: i64) -> Result<Vec<i64>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT deployment_id FROM migrations
             WHERE service = ?1 AND deployment_id > ?2 AND undone_by IS NULL
             ORDER BY deployment_id DESC",
        )?;
        let rows = stmt.query_map(params![service, release_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn migration_in_effect(&self, deployment_id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .prepare("SELECT 1 FROM migrations WHERE deployment_id = ?1 AND undone_by IS NULL")?
            .exists([deployment_id])?)
    }
}
