//! The state database's schema and its history.
//!
//! The database records its schema version in SQLite's `user_version`. Each migration brings
//! it from one version to the next, in one transaction; `Store::open` applies the ones a
//! database lacks, so a state dir written by any earlier runway is upgraded in place on the
//! first start of a newer one (and a database from a newer runway is refused, not misread).
//! Migrations are never edited once released: a change of schema is a new migration.

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, Transaction};

/// One step of the schema's history.
struct Migration {
    /// The version it brings the database to.
    to: u32,
    /// What changes, for the server's log.
    what: &'static str,
    apply: fn(&Transaction<'_>) -> Result<()>,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        to: 1,
        what: "the tables of runway before versioned migrations",
        apply: version_1,
    },
    Migration {
        to: 2,
        what: "replicas keep their platform's handle instead of pid, start time and port",
        apply: version_2,
    },
    Migration {
        to: 3,
        what: "named tokens with roles, who asked for each deployment and why, deployment \
               types, approvals and locks",
        apply: version_3,
    },
    Migration {
        to: 4,
        what: "the audit trail: every state-changing request, hash-chained",
        apply: version_4,
    },
    Migration {
        to: 5,
        what: "append-only outcomes (a later rollback is recorded beside them), the commit \
               each deployment shipped, incidents and notification deliveries",
        apply: version_5,
    },
    Migration {
        to: 6,
        what: "each journal entry keeps its place in the whole journal (the event streams' \
               cursor) as a column of its own",
        apply: version_6,
    },
    Migration {
        to: 7,
        what: "secrets by name, sealed, every version kept; each deployment records the \
               secret versions it ran with; feature flags",
        apply: version_7,
    },
];

/// The schema version this runway writes.
pub const LATEST: u32 = 7;

/// Brings the database to [`LATEST`]. Returns the version it found.
pub(super) fn upgrade(conn: &mut Connection) -> Result<u32> {
    let found = version(conn)?;
    // A database from before versions has tables and version 0; a new one has neither.
    let existing = found > 0
        || conn
            .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deployments'")?
            .exists([])?;
    if found > LATEST {
        bail!(
            "the state database has schema version {found}, written by a newer runway; this \
             runway knows versions up to {LATEST}. Run that newer runway (a state dir, once \
             upgraded, is not read by an older one)"
        );
    }
    for migration in MIGRATIONS.iter().filter(|m| m.to > found) {
        // IMMEDIATE: a second server starting on the same state dir waits here, then finds
        // the migration applied and skips it.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = version(&tx)?;
        if now >= migration.to {
            continue;
        }
        (migration.apply)(&tx).with_context(|| {
            format!(
                "upgrading the state database to schema version {} ({})",
                migration.to, migration.what
            )
        })?;
        tx.pragma_update(None, "user_version", migration.to)?;
        tx.commit()?;
        if existing {
            tracing::info!(
                version = migration.to,
                "state database upgraded: {}",
                migration.what
            );
        }
    }
    Ok(found)
}

/// The schema version a database records.
fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Version 1: the tables as runway created them before the schema had versions. A database
/// of that time has them already (its `user_version` is 0); some older ones lack columns
/// that were added along the way, added here.
fn version_1(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(VERSION_1)?;
    for (table, column, ty) in [
        ("deployments", "progress", "TEXT"),
        ("services", "maintenance", "TEXT"),
        ("services", "read_only", "TEXT"),
        ("services", "frozen", "TEXT"),
    ] {
        let exists = tx
            .prepare(&format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
            ))?
            .exists([column])?;
        if !exists {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))?;
        }
    }
    Ok(())
}

/// Version 2: a replica row keeps the handle its platform needs to find the replica again
/// after a restart (for a local process: pid, start time and port; for a container its id,
/// for a pod its name), as JSON the platform reads; the store does not interpret it.
fn version_2(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(
        "ALTER TABLE replicas ADD COLUMN handle TEXT;
         UPDATE replicas SET handle = json_object(
             'platform', 'process', 'pid', pid, 'start', proc_start, 'port', port);
         ALTER TABLE replicas DROP COLUMN port;
         ALTER TABLE replicas DROP COLUMN pid;
         ALTER TABLE replicas DROP COLUMN proc_start;",
    )?;
    Ok(())
}

fn version_3(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE tokens (
             name       TEXT PRIMARY KEY,
             role       TEXT NOT NULL,
             hash       TEXT NOT NULL UNIQUE,
             created_at TEXT NOT NULL,
             created_by TEXT NOT NULL,
             revoked_at TEXT
         );
         ALTER TABLE deployments ADD COLUMN requested_by TEXT NOT NULL DEFAULT '';
         ALTER TABLE deployments ADD COLUMN request_reason TEXT;
         ALTER TABLE deployments ADD COLUMN deploy_type TEXT;
         ALTER TABLE deployments ADD COLUMN digest TEXT;
         ALTER TABLE services ADD COLUMN locked TEXT;
         CREATE TABLE approvals (
             id            INTEGER PRIMARY KEY AUTOINCREMENT,
             deployment_id INTEGER NOT NULL,
             identity      TEXT NOT NULL,
             role          TEXT NOT NULL,
             verdict       TEXT NOT NULL,
             reason        TEXT,
             digest        TEXT NOT NULL,
             at            TEXT NOT NULL
         );
         CREATE INDEX approvals_by_deployment ON approvals(deployment_id, id);",
    )?;
    Ok(())
}

fn version_4(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE audit (
             seq       INTEGER PRIMARY KEY,
             at        TEXT NOT NULL,
             identity  TEXT NOT NULL,
             role      TEXT NOT NULL,
             remote    TEXT NOT NULL,
             action    TEXT NOT NULL,
             detail    TEXT NOT NULL,
             status    INTEGER NOT NULL,
             result    TEXT NOT NULL,
             prev_hash TEXT NOT NULL,
             hash      TEXT NOT NULL
         );",
    )?;
    Ok(())
}

/// Version 5: records that explain themselves.
///
/// A deployment's status is its own outcome and is never rewritten: a later rollback past it
/// is `rolled_back_by`. Earlier runways rewrote `succeeded` into `rolled_back` with the reason
/// "rolled back to V by deployment #N"; those rows get their outcome back here (the text is
/// runway's own, so it is read exactly).
fn version_5(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(
        "ALTER TABLE deployments ADD COLUMN rolled_back_by INTEGER;
         ALTER TABLE deployments ADD COLUMN commit_sha TEXT;
         ALTER TABLE deployments ADD COLUMN commit_time TEXT;
         UPDATE deployments
            SET status = 'succeeded',
                rolled_back_by = CAST(substr(reason, instr(reason, ' by deployment #') + 16)
                                      AS INTEGER),
                reason = NULL
          WHERE status = 'rolled_back' AND reason LIKE 'rolled back to % by deployment #%';
         CREATE TABLE incidents (
             id            INTEGER PRIMARY KEY AUTOINCREMENT,
             service       TEXT NOT NULL,
             deployment_id INTEGER,
             cause         TEXT NOT NULL,
             severity      TEXT NOT NULL,
             title         TEXT NOT NULL,
             opened_at     TEXT NOT NULL,
             impact        TEXT,
             acked_at      TEXT,
             acked_by      TEXT,
             resolved_at   TEXT,
             resolved_by   TEXT,
             resolution    TEXT
         );
         CREATE INDEX incidents_by_deployment ON incidents(deployment_id);
         CREATE TABLE deliveries (
             id            INTEGER PRIMARY KEY AUTOINCREMENT,
             at            TEXT NOT NULL,
             target        TEXT NOT NULL,
             notice        TEXT NOT NULL,
             service       TEXT,
             deployment_id INTEGER,
             incident_id   INTEGER,
             attempts      INTEGER NOT NULL,
             outcome       TEXT NOT NULL,
             status        INTEGER,
             error         TEXT
         );",
    )?;
    Ok(())
}

/// The event streams resume after an entry's place in the whole journal. Until now that was
/// SQLite's implicit rowid, which `VACUUM` may renumber in a table without an `INTEGER PRIMARY
/// KEY`; the place becomes a column of its own (AUTOINCREMENT: never reused), keeping the
/// numbers clients have seen.
fn version_6(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE journal_v6 (
             id            INTEGER PRIMARY KEY AUTOINCREMENT,
             deployment_id INTEGER NOT NULL,
             seq           INTEGER NOT NULL,
             at            TEXT NOT NULL,
             event         TEXT NOT NULL,
             detail        TEXT NOT NULL,
             UNIQUE (deployment_id, seq)
         );
         INSERT INTO journal_v6 (id, deployment_id, seq, at, event, detail)
             SELECT rowid, deployment_id, seq, at, event, detail FROM journal ORDER BY rowid;
         DROP TABLE journal;
         ALTER TABLE journal_v6 RENAME TO journal;",
    )?;
    Ok(())
}

fn version_7(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE secrets (
             service TEXT NOT NULL,
             name    TEXT NOT NULL,
             version INTEGER NOT NULL,
             sealed  BLOB,
             set_by  TEXT NOT NULL,
             set_at  TEXT NOT NULL,
             PRIMARY KEY (service, name, version)
         );
         ALTER TABLE deployments ADD COLUMN secret_versions TEXT;
         CREATE TABLE flags (
             service    TEXT NOT NULL,
             name       TEXT NOT NULL,
             definition TEXT NOT NULL,
             revision   INTEGER NOT NULL,
             updated_by TEXT NOT NULL,
             updated_at TEXT NOT NULL,
             PRIMARY KEY (service, name)
         );",
    )?;
    Ok(())
}

const VERSION_1: &str = r#"
CREATE TABLE IF NOT EXISTS deployments (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    service             TEXT NOT NULL,
    kind                TEXT NOT NULL,
    version             TEXT NOT NULL,
    previous_version    TEXT,
    previous_release_id INTEGER,
    status              TEXT NOT NULL,
    reason              TEXT,
    spec                TEXT NOT NULL,
    base_dir            TEXT NOT NULL,
    started_at          TEXT NOT NULL,
    finished_at         TEXT,
    progress            TEXT
);
CREATE INDEX IF NOT EXISTS deployments_by_service ON deployments(service, id);
CREATE TABLE IF NOT EXISTS journal (
    deployment_id INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    at            TEXT NOT NULL,
    event         TEXT NOT NULL,
    detail        TEXT NOT NULL,
    PRIMARY KEY (deployment_id, seq)
);
CREATE TABLE IF NOT EXISTS services (
    name            TEXT PRIMARY KEY,
    serving_release INTEGER
);
CREATE TABLE IF NOT EXISTS baselines (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    service     TEXT NOT NULL,
    captured_at TEXT NOT NULL,
    metrics     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS check_runs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    service    TEXT NOT NULL,
    started_at TEXT NOT NULL,
    passed     INTEGER NOT NULL,
    results    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hook_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id INTEGER NOT NULL,
    phase         TEXT NOT NULL,
    argv          TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    outcome       TEXT NOT NULL,
    detail        TEXT,
    output        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS hook_runs_by_deployment ON hook_runs(deployment_id, id);
CREATE TABLE IF NOT EXISTS backups (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    service       TEXT NOT NULL,
    deployment_id INTEGER NOT NULL,
    version       TEXT NOT NULL,
    dir           TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    state         TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS migrations (
    deployment_id INTEGER PRIMARY KEY,
    service       TEXT NOT NULL,
    applied_at    TEXT NOT NULL,
    undone_by     INTEGER,
    undone_at     TEXT,
    how           TEXT
);
CREATE TABLE IF NOT EXISTS replicas (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    service     TEXT NOT NULL,
    release_id  INTEGER NOT NULL,
    version     TEXT NOT NULL,
    port        INTEGER NOT NULL,
    pid         INTEGER,
    proc_start  INTEGER,
    state       TEXT NOT NULL,
    in_rotation INTEGER NOT NULL DEFAULT 0,
    restarts    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    stopped_at  TEXT
);
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use runway_engine::records::Records;

    /// A state database written by runway before versioned migrations (see the file's
    /// header for how it was made).
    const BEFORE_MIGRATIONS: &str = include_str!("../tests/fixtures/state-before-migrations.sql");

    #[test]
    fn a_database_from_before_versions_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(BEFORE_MIGRATIONS)
            .unwrap();
        let store = crate::Store::open(&path).unwrap();
        assert_eq!(version(&store.conn()).unwrap(), LATEST);
        // The rows are all there; the replicas' pid, start time and port became their handle.
        let live = store.live_replicas("web").unwrap();
        assert_eq!(live.len(), 3);
        assert_eq!(
            live[0].handle,
            Some(serde_json::json!({
                "platform": "process", "pid": 22123, "start": 215521, "port": 32921
            }))
        );
        assert_eq!(store.running_deployments().unwrap().len(), 1);
        assert_eq!(
            store.serving_release("web").unwrap(),
            Some(runway_wire::id::DeploymentId(1))
        );
        // Opening again changes nothing.
        drop(store);
        let store = crate::Store::open(&path).unwrap();
        assert_eq!(store.live_replicas("web").unwrap(), live);
    }

    #[test]
    fn a_new_database_starts_at_the_latest_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = crate::Store::open(&path).unwrap();
        assert_eq!(version(&store.conn()).unwrap(), LATEST);
    }

    #[test]
    fn a_database_from_a_newer_runway_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(crate::Store::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", LATEST + 1)
            .unwrap();
        let err = crate::Store::open(&path).err().unwrap();
        let shown = format!("{err:#}");
        assert!(
            shown.contains(&format!("schema version {}", LATEST + 1))
                && shown.contains("written by a newer runway"),
            "{shown}"
        );
    }

    /// Version 6 gives each journal entry its place as a column, the same number it had.
    #[test]
    fn journal_entries_keep_their_place_through_version_6() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            conn.execute_batch(VERSION_1).unwrap();
            for m in MIGRATIONS.iter().filter(|m| m.to <= 5) {
                let tx = conn.transaction().unwrap();
                (m.apply)(&tx).unwrap();
                tx.pragma_update(None, "user_version", m.to).unwrap();
                tx.commit().unwrap();
            }
            conn.execute_batch(
                "INSERT INTO deployments (id, service, kind, version, status, spec, base_dir,
                     started_at, requested_by)
                 VALUES (1, 'web', 'deploy', 'v1', 'succeeded', '{}', '/srv', 't', '');
                 INSERT INTO journal (rowid, deployment_id, seq, at, event, detail)
                 VALUES (4, 1, 1, 't', 'started', '{}'), (9, 1, 2, 't', 'succeeded', '{}');",
            )
            .unwrap();
        }
        let store = crate::Store::open(&path).unwrap();
        use runway_engine::records::Records;
        let feed = store.journal_feed(0, None, 10).unwrap();
        let places: Vec<(i64, i64, String)> = feed
            .iter()
            .map(|f| (f.cursor, f.entry.seq, f.entry.event.clone()))
            .collect();
        assert_eq!(
            places,
            vec![(4, 1, "started".into()), (9, 2, "succeeded".into())]
        );
        assert_eq!(store.journal_cursor().unwrap(), 9);
        // A new entry comes after them, and a second entry with the same seq is refused.
        store
            .journal(1.into(), "note", serde_json::json!({}))
            .unwrap();
        assert_eq!(store.journal_cursor().unwrap(), 10);
        assert!(store
            .conn()
            .execute(
                "INSERT INTO journal (deployment_id, seq, at, event, detail) VALUES (1, 1, 't', 'x', '{}')",
                [],
            )
            .is_err());
    }

    /// Version 4 rewrote a release that a later rollback went past into `rolled_back`, with
    /// runway's own reason; version 5 gives it its outcome back and records the rollback beside
    /// it. A release the judge rolled back itself keeps its status and reason.
    #[test]
    fn rewritten_outcomes_are_given_back_by_version_5() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            conn.execute_batch(VERSION_1).unwrap();
            for m in MIGRATIONS.iter().filter(|m| m.to <= 4) {
                let tx = conn.transaction().unwrap();
                (m.apply)(&tx).unwrap();
                tx.pragma_update(None, "user_version", m.to).unwrap();
                tx.commit().unwrap();
            }
            conn.execute_batch(
                "INSERT INTO deployments (id, service, kind, version, status, reason, spec,
                     base_dir, started_at, requested_by)
                 VALUES
                   (1, 'web', 'deploy', 'v1', 'succeeded', NULL, '{}', '/srv', 't', ''),
                   (2, 'web', 'deploy', 'v2', 'rolled_back',
                    'rolled back to v1 by deployment #13', '{}', '/srv', 't', ''),
                   (3, 'web', 'deploy', 'v3', 'rolled_back',
                    'canary analysis failed: error rate 0.2 > 0.05', '{}', '/srv', 't', '');",
            )
            .unwrap();
        }
        drop(crate::Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let rows: Vec<(i64, String, Option<String>, Option<i64>)> = conn
            .prepare("SELECT id, status, reason, rolled_back_by FROM deployments ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (1, "succeeded".into(), None, None),
                (2, "succeeded".into(), None, Some(13)),
                (
                    3,
                    "rolled_back".into(),
                    Some("canary analysis failed: error rate 0.2 > 0.05".into()),
                    None
                ),
            ]
        );
    }
}
