//! The database work around a release: the backup, the migration, and what going back across
//! a migration means (its `undo`, or the policy of an irreversible one: freeze, keep the new
//! schema, or restore the backup behind the maintenance page).
//!
//! Which migrations are in effect is recorded in the store, so a rollback several releases back
//! takes back every migration in between (newest first), and a restore marks the ones its
//! backup predates as gone.

use runway_wire::id::DeploymentId;
use runway_wire::Event;
use std::sync::Arc;

use runway_spec::OnFailure;

use super::hooks::{Hook, HookContext};
use super::{Engine, Release, Service};
use runway_wire::record::BackupRow;

/// How going back to a release treats the migrations applied after it.
#[derive(Debug)]
pub enum SchemaPlan {
    /// No migration in effect after the release.
    Nothing,
    /// Run each `undo` (newest first); migrations without one stay (their release said the
    /// old code runs on the new schema).
    Undo(Vec<Migration>),
    /// An irreversible migration with `on_failure = "restore"`: restore the backup taken
    /// before the oldest of `migrations`.
    Restore {
        backup: BackupRow,
        restore: Vec<String>,
        timeout: std::time::Duration,
        migrations: Vec<DeploymentId>,
    },
    /// An irreversible migration with `on_failure = "freeze"`: change nothing, wait for a human.
    Freeze { deployment_id: DeploymentId },
}

/// A migration in effect, as its release configured it.
#[derive(Debug)]
pub struct Migration {
    pub deployment_id: DeploymentId,
    pub undo: Option<Vec<String>>,
    pub timeout: std::time::Duration,
    /// The release that applied it, whose config the undo runs with.
    pub release: Release,
}

impl Engine {
    /// What going back to `to` must do about the migrations applied after it.
    pub(super) fn schema_plan(&self, service: &str, to: &Release) -> Result<SchemaPlan, String> {
        let ids = self
            .store
            .migrations_after(service, to.id)
            .map_err(|e| format!("cannot read the migrations in effect: {e:#}"))?;
        if ids.is_empty() {
            return Ok(SchemaPlan::Nothing);
        }
        let mut migrations = Vec::new();
        let mut restore_from = None;
        for id in &ids {
            let d = self
                .store
                .deployment(*id)
                .map_err(|e| format!("{e:#}"))?
                .ok_or_else(|| format!("deployment #{id} that migrated is missing"))?;
            let release =
                Release::from_deployment(&d, &self.secrets_of).map_err(|e| e.to_string())?;
            let Some(hook) = release.spec.hooks.migrate.clone() else {
                continue;
            };
            match hook.policy() {
                Some(OnFailure::Freeze) => return Ok(SchemaPlan::Freeze { deployment_id: *id }),
                Some(OnFailure::Restore) => restore_from = Some(release.clone()),
                _ => {}
            }
            migrations.push(Migration {
                deployment_id: *id,
                undo: hook.undo.clone(),
                timeout: hook.timeout.0,
                release,
            });
        }
        if restore_from.is_some() {
            // The backup taken before the oldest migration matches the schema of `to` (or an
            // earlier one that every release since runs on).
            let oldest = *ids.last().unwrap_or(&to.id);
            let oldest_release = migrations
                .iter()
                .find(|m| m.deployment_id == oldest)
                .map(|m| m.release.clone())
                .or(restore_from)
                .ok_or("no release to restore with")?;
            let backup = self
                .store
                .backup_of(oldest)
                .map_err(|e| format!("{e:#}"))?
                .ok_or_else(|| {
                    format!(
                        "deployment #{oldest} has no usable backup to restore (on_failure = \"restore\")"
                    )
                })?;
            let hook = oldest_release.spec.hooks.backup.clone().ok_or_else(|| {
                format!("deployment #{oldest}'s config has no [hooks.backup] to restore with")
            })?;
            let restore = hook.restore.clone().ok_or_else(|| {
                format!("deployment #{oldest}'s [hooks.backup] has no restore command")
            })?;
            return Ok(SchemaPlan::Restore {
                backup,
                restore,
                timeout: hook.timeout.0,
                migrations: ids,
            });
        }
        Ok(SchemaPlan::Undo(migrations))
    }

    /// Runs the undos of `migrations` (newest first) for operation `id`.
    pub(super) async fn undo_migrations(
        &self,
        id: DeploymentId,
        ctx: &HookContext,
        migrations: &[Migration],
    ) -> Result<(), String> {
        for m in migrations {
            // The undo belongs to the release that migrated: its checkout, its env.
            let ctx = &HookContext::new(id, &m.release, Some(&ctx.version));
            match &m.undo {
                Some(_) if self.undo_started(id, m.deployment_id) => {
                    // A crash interrupted it. `downgrade -1` run twice would take back one
                    // migration too many, so runway does not guess whether it finished.
                    return Err(format!(
                        "the undo of deployment #{}'s migration was interrupted by a server \
                         restart and may have run: check the schema (e.g. `alembic current`), \
                         then decide with `runway rollback --keep-schema` or `runway restore \
                         BACKUP`",
                        m.deployment_id
                    ));
                }
                Some(undo) => {
                    self.journal(
                        id,
                        Event::UndoStarted {
                            migration_of: m.deployment_id,
                        },
                    );
                    self.run_hook(
                        ctx,
                        Hook {
                            phase: "undo",
                            image: m
                                .release
                                .spec
                                .hooks
                                .migrate
                                .as_ref()
                                .and_then(|h| h.image.as_deref()),
                            argv: undo,
                            timeout: m.timeout,
                            extra_env: vec![(
                                "RUNWAY_MIGRATION_DEPLOYMENT_ID".into(),
                                m.deployment_id.to_string(),
                            )],
                        },
                    )
                    .await
                    .map_err(|e| {
                        format!(
                            "the undo of deployment #{}'s migration failed: {e}",
                            m.deployment_id
                        )
                    })?;
                    self.record_undone(m.deployment_id, id, "undo");
                }
                None => {
                    self.journal(
                        id,
                        Event::SchemaKept {
                            migration_of: Some(m.deployment_id),
                            why: "no undo: its release declared the old code runs on the new \
                                  schema"
                                .into(),
                        },
                    );
                    // From now on the older release runs on it: a later way back has nothing
                    // of it to take back.
                    self.record_undone(m.deployment_id, id, "kept");
                }
            }
        }
        Ok(())
    }

    /// `--keep-schema`: the migrations after `to` stay, and `to` now runs on them.
    pub(super) fn keep_schema(&self, id: DeploymentId, service: &str, to: &Release) {
        for m in self
            .store
            .migrations_after(service, to.id)
            .unwrap_or_default()
        {
            self.record_undone(m, id, "kept");
        }
    }

    /// Puts the page up (with `to`'s settings) and drains and stops every replica: the start
    /// of every way back where two releases, or a release and a changing database, must not
    /// meet.
    pub(super) async fn stop_all_behind_the_page(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        to: &Release,
    ) -> Result<(), String> {
        self.maintenance_for_operation(svc, id, &to.spec)
            .map_err(|e| format!("cannot turn maintenance on: {e:#}"))?;
        let all = svc.replicas();
        self.retire(svc, id, all).await;
        Ok(())
    }

    /// Whether operation `id` started the undo of `migration` before (it is still in effect, so
    /// it did not finish as far as runway knows).
    fn undo_started(&self, id: DeploymentId, migration: DeploymentId) -> bool {
        self.last_journaled(
            id,
            |e| matches!(e, Event::UndoStarted { migration_of } if *migration_of == migration),
        )
        .is_some()
    }

    fn record_undone(&self, migration: DeploymentId, by: DeploymentId, how: &str) {
        if let Err(e) = self.store.mark_migration_undone(migration, by, how) {
            tracing::error!(
                migration = %migration,
                "cannot record that the migration was taken back: {e:#}"
            );
        }
    }

    /// Restores `backup` and brings `to` back, behind the maintenance page: page on, every
    /// replica drained and stopped, the restore command, `to` started; the page comes down
    /// (in `run`) only when `to` serves. A failed restore leaves the page up and nothing
    /// started: the database is in an unknown state and a human must look.
    pub(super) async fn restore_and_return(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        ctx: &HookContext,
        to: &Release,
        plan: (&BackupRow, &[String], std::time::Duration, &[DeploymentId]),
    ) -> Result<(), String> {
        let (backup, restore, timeout, migrations) = plan;
        // The backup predates the migration of the deployment that took it. Bringing back that
        // same release (a first deployment's backup: there was no earlier one) means applying
        // its migration again on the restored data.
        let remigrate = self
            .store
            .deployment(backup.deployment_id)
            .ok()
            .flatten()
            .is_some_and(|d| d.previous_release_id.is_none())
            && to.fingerprint() == self.release_fingerprint(backup.deployment_id);
        // Before anything stops: a backup the restore task cannot reach is no restore.
        self.backups
            .reachable(to, &backup.dir)
            .map_err(|e| format!("cannot restore backup #{}: {e}", backup.id))?;
        self.stop_all_behind_the_page(svc, id, to).await?;
        self.run_hook(
            ctx,
            Hook {
                phase: "restore",
                image: to
                    .spec
                    .hooks
                    .backup
                    .as_ref()
                    .and_then(|h| h.image.as_deref()),
                argv: restore,
                timeout,
                extra_env: vec![
                    ("RUNWAY_BACKUP_DIR".into(), backup.dir.clone()),
                    ("RUNWAY_BACKUP_ID".into(), backup.id.to_string()),
                ],
            },
        )
        .await
        .map_err(|e| {
            let why = format!(
                "restoring backup #{} failed, the service stays in maintenance with nothing \
                 running: {e}",
                backup.id
            );
            // The database is in an unknown state: a restart must not start anything on it.
            self.freeze(svc, id, &format!("frozen: {why}"));
            why
        })?;
        for m in migrations {
            self.record_undone(*m, id, "restore");
        }
        if remigrate {
            self.run_migration(ctx, to, backup.deployment_id)
                .await
                .map_err(|e| {
                    let why = format!(
                        "backup #{} is restored, but migrating it for {} failed, the service \
                         stays in maintenance with nothing running: {e}",
                        backup.id, to.version
                    );
                    self.freeze(svc, id, &format!("frozen: {why}"));
                    why
                })?;
        }
        self.converge(svc, id, to, false).await
    }

    /// The fingerprint of the release deployment `id` introduced ("" when unknown).
    fn release_fingerprint(&self, id: DeploymentId) -> String {
        self.store
            .deployment(id)
            .ok()
            .flatten()
            .and_then(|d| Release::from_deployment(&d, &self.secrets_of).ok())
            .map(|r| r.fingerprint())
            .unwrap_or_default()
    }

    /// Takes the release's backup (once per deployment), verifies it and prunes old ones.
    pub(super) async fn take_backup(
        &self,
        ctx: &HookContext,
        release: &Release,
    ) -> Result<(), String> {
        let id = ctx.deployment_id;
        let Some(hook) = &release.spec.hooks.backup else {
            return Ok(());
        };
        if self.store.backup_of(id).ok().flatten().is_some() {
            return Ok(()); // resumed after a crash: taken already
        }
        let location = self.backups.location(release, id)?;
        // A crash may have left a half-written backup behind: its record says so, and its
        // place starts clean.
        for stale in self.store.backups(&ctx.service).unwrap_or_default() {
            if stale.deployment_id == id && stale.state == "taking" {
                let _ = self.store.set_backup_state(stale.id, "failed", 0);
            }
        }
        self.backups.prepare(release, &location).await?;
        let backup_id = self
            .store
            .insert_backup(&ctx.service, id, &release.version, &location)
            .map_err(|e| format!("cannot record the backup: {e:#}"))?;
        let env = vec![
            ("RUNWAY_BACKUP_DIR".to_string(), location.clone()),
            ("RUNWAY_BACKUP_ID".to_string(), backup_id.to_string()),
        ];
        let mut result = self
            .run_hook(
                ctx,
                Hook {
                    phase: "backup",
                    image: hook.image.as_deref(),
                    argv: &hook.command,
                    timeout: hook.timeout.0,
                    extra_env: env.clone(),
                },
            )
            .await;
        if let (Ok(_), Some(verify)) = (&result, &hook.verify) {
            result = self
                .run_hook(
                    ctx,
                    Hook {
                        phase: "verify-backup",
                        image: hook.image.as_deref(),
                        argv: verify,
                        timeout: hook.timeout.0,
                        extra_env: env,
                    },
                )
                .await;
        }
        let state = if result.is_ok() { "ok" } else { "failed" };
        let size = match self.backups.size(release, &location).await {
            Ok(size) => size,
            Err(e) => {
                tracing::warn!(backup_id = %backup_id, "cannot measure the backup: {e}");
                0
            }
        };
        if let Err(e) = self.store.set_backup_state(backup_id, state, size) {
            tracing::error!(backup_id = %backup_id, "cannot record the backup's state: {e:#}");
        }
        self.journal(
            id,
            Event::Backup {
                backup_id,
                state: state.to_string(),
                dir: location,
                size_bytes: size,
            },
        );
        result?;
        self.prune_backups(release, hook.keep).await;
        Ok(())
    }

    /// Deletes all but the newest `keep` usable backups of the release's service, and the
    /// files of failed ones (never worth keeping once a newer backup succeeded; their record
    /// stays).
    async fn prune_backups(&self, release: &Release, keep: u32) {
        let Ok(backups) = self.store.backups(&release.spec.service.name) else {
            return;
        };
        let (ok, failed): (Vec<_>, Vec<_>) = backups
            .into_iter()
            .filter(|b| b.state == "ok" || b.state == "failed")
            .partition(|b| b.state == "ok");
        let doomed = ok
            .into_iter()
            .skip(keep as usize)
            .map(|b| (b, "pruned"))
            .chain(failed.into_iter().map(|b| (b, "failed")));
        for (b, state) in doomed {
            // A failed backup whose files went already (or that wrote none): its Job-backed
            // removal on a cluster is not worth repeating at every backup.
            if b.state == state && b.size_bytes == 0 {
                continue;
            }
            if let Err(e) = self.backups.remove(release, &b.dir).await {
                tracing::warn!(backup = %b.id, "{e}");
                continue;
            }
            if let Err(e) = self.store.set_backup_state(b.id, state, 0) {
                tracing::error!(backup = %b.id, "cannot record pruning: {e:#}");
            }
        }
    }

    /// Runs the release's migration (once per deployment: a resumed deployment whose migration
    /// is recorded skips it; one interrupted while migrating runs the command again, which
    /// migration tools make a no-op for what is applied).
    pub(super) async fn migrate(&self, ctx: &HookContext, release: &Release) -> Result<(), String> {
        let id = ctx.deployment_id;
        let Some(hook) = &release.spec.hooks.migrate else {
            return Ok(());
        };
        if hook.command.is_empty() || self.store.migration_in_effect(id).unwrap_or(false) {
            return Ok(());
        }
        self.run_migration(ctx, release, id)
            .await
            .map_err(|e| format!("the migration failed, nothing was switched: {e}"))
    }

    /// Runs `release`'s migrate command and records it in the ledger as deployment
    /// `applied_by`'s migration.
    async fn run_migration(
        &self,
        ctx: &HookContext,
        release: &Release,
        applied_by: DeploymentId,
    ) -> Result<(), String> {
        let Some(hook) = &release.spec.hooks.migrate else {
            return Ok(());
        };
        self.run_hook(
            ctx,
            Hook {
                phase: "migrate",
                image: hook.image.as_deref(),
                argv: &hook.command,
                timeout: hook.timeout.0,
                extra_env: Vec::new(),
            },
        )
        .await?;
        self.store
            .record_migration(applied_by, &ctx.service)
            .map_err(|e| format!("cannot record the migration: {e:#}"))
    }
}
