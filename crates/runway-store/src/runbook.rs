//! What the store remembers of the runbook around a deployment: the traffic mode of each
//! service (maintenance, read-only, frozen), the output of every hook, the backups, and which
//! migrations are in effect (so a rollback knows what it must undo).

use anyhow::Result;
use rusqlite::Row;

use runway_wire::id::DeploymentId;

use super::{BackupRow, HookRun, ServiceFlag, Store};

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

pub(crate) fn backup_from_row(r: &Row<'_>) -> rusqlite::Result<BackupRow> {
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
pub(crate) fn column(flag: ServiceFlag) -> &'static str {
    match flag {
        ServiceFlag::Maintenance => "maintenance",
        ServiceFlag::ReadOnly => "read_only",
        ServiceFlag::Frozen => "frozen",
        ServiceFlag::Locked => "locked",
    }
}

impl Store {
    // ---- traffic modes ----

    // ---- hook runs ----

    pub fn hook_runs(&self, deployment_id: DeploymentId) -> Result<Vec<HookRun>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT * FROM hook_runs WHERE deployment_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([deployment_id], hook_run_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
