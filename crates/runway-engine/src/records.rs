//! What the engine remembers, behind a boundary: [`Records`] is everything the engine reads
//! and writes across a crash (deployments and their journals, the serving release, replicas
//! and their handles, hook runs, backups, migrations, baselines, check runs, traffic modes).
//!
//! The store (crates/runway-store, one SQLite file) implements it; the engine depends on
//! this trait only, so it has no SQLite in it and its tests run against the same store in a
//! temporary directory. Every call is short and synchronous: the engine writes a few rows a
//! second, and a write that must happen *before* a step takes effect is simplest as a call
//! that has returned.

use anyhow::Result;
use runway_wire::id::{BackupId, BaselineId, CheckRunId, DeploymentId, HookRunId, ReplicaId};
use runway_wire::record::{
    ApprovalRow, BackupRow, Deployment, JournalEntry, NewDeployment, ReplicaRow, ServiceFlag,
    Status,
};
use runway_wire::record::{FlagRow, SecretRow};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;

pub trait Records: Send + Sync {
    /// Whether `error` (returned by a write) is the host's (a full disk, an I/O error, a
    /// filesystem gone read-only, the file locked): a write refused so is held and tried again
    /// (store_faults.rs); any other refusal would be refused again.
    fn is_unavailable(&self, error: &anyhow::Error) -> bool;
    // Deployments and their journals.
    fn insert_deployment(&self, d: NewDeployment<'_>) -> Result<DeploymentId>;
    fn deployment(&self, id: DeploymentId) -> Result<Option<Deployment>>;
    /// Newest first; all services when `service` is `None`.
    fn history(&self, service: Option<&str>, limit: u32) -> Result<Vec<Deployment>>;
    fn running_deployments(&self) -> Result<Vec<Deployment>>;
    fn set_progress(&self, id: DeploymentId, progress: &serde_json::Value) -> Result<()>;
    /// Replaces the config recorded with deployment `id`'s release (with what its platform
    /// pinned when it prepared it).
    fn set_spec(&self, id: DeploymentId, spec: &runway_spec::Spec) -> Result<()>;
    fn finish_deployment(
        &self,
        id: DeploymentId,
        status: Status,
        reason: Option<&str>,
    ) -> Result<()> {
        self.finish_deployment_at(id, status, reason, &runway_wire::record::now())
    }
    /// [`Records::finish_deployment`], ended at `at` (RFC 3339): an outcome the store refused
    /// when it happened, written once it takes writes again (store_faults.rs).
    fn finish_deployment_at(
        &self,
        id: DeploymentId,
        status: Status,
        reason: Option<&str>,
        at: &str,
    ) -> Result<()>;
    /// A deployment that waited for approval starts: `awaiting_approval` becomes `running`,
    /// with the release that serves now as its previous one (false when it was not waiting
    /// any more).
    fn activate_deployment(
        &self,
        id: DeploymentId,
        previous: Option<(&str, DeploymentId)>,
    ) -> Result<bool>;
    /// Ends a deployment that waits for approval (rejected, superseded) as `failed` with
    /// `reason`; false when it was not waiting any more (it started meanwhile).
    fn end_awaiting(&self, id: DeploymentId, reason: &str) -> Result<bool>;
    /// Deployments waiting for approval, oldest first; all services when `service` is `None`.
    fn awaiting_approval(&self, service: Option<&str>) -> Result<Vec<Deployment>>;
    fn insert_approval(&self, approval: &ApprovalRow) -> Result<()>;
    /// Deployment `id`'s approvals and rejections, oldest first.
    fn approvals(&self, id: DeploymentId) -> Result<Vec<ApprovalRow>>;
    /// The identities whose tokens were revoked: their approvals no longer count.
    fn revoked_identities(&self) -> Result<Vec<String>>;
    /// Records that deployment `by` went back past the succeeded deployments of `version`
    /// after deployment `after` (their own status stays: records are append-only).
    fn record_rolled_back(
        &self,
        service: &str,
        version: &str,
        after: DeploymentId,
        by: DeploymentId,
    ) -> Result<()>;
    fn journal(
        &self,
        deployment_id: DeploymentId,
        event: &str,
        detail: serde_json::Value,
    ) -> Result<i64> {
        self.journal_at(deployment_id, event, detail, &runway_wire::record::now())
    }
    /// [`Records::journal`], for an entry of time `at` (RFC 3339): one the store refused when
    /// it happened, written once it takes writes again (store_faults.rs).
    fn journal_at(
        &self,
        deployment_id: DeploymentId,
        event: &str,
        detail: serde_json::Value,
        at: &str,
    ) -> Result<i64>;
    /// Deployments that ended (not running, not waiting for approval) at or after `from` and
    /// before `until` (RFC 3339), oldest first, leaving out those with an incident still open:
    /// the ones whose journal the retention pass thins (retention.rs).
    fn ended_between(&self, from: Option<&str>, until: &str) -> Result<Vec<DeploymentId>>;
    /// Thins deployment `id`'s journal: of consecutive entries of one of the `repeated` kinds
    /// (an analysis every interval), only the last stays, the one that decided. Returns how
    /// many entries went.
    fn thin_journal(&self, id: DeploymentId, repeated: &[&str]) -> Result<u64>;
    /// Entries after sequence number `after`.
    fn journal_since(&self, deployment_id: DeploymentId, after: i64) -> Result<Vec<JournalEntry>>;
    /// Journal entries of every deployment (of `service`, when given) after `cursor`, oldest
    /// first, at most `limit`: the feed the event streams and the notices read. A cursor is an
    /// entry's place in the whole journal and never changes (the journal is append-only).
    fn journal_feed(
        &self,
        after: i64,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<runway_wire::api::FeedEntry>>;
    /// The cursor of the newest journal entry (0 when there is none).
    fn journal_cursor(&self) -> Result<i64>;

    // Services and what they serve.
    /// Every service with its serving release.
    fn services(&self) -> Result<Vec<(String, Option<DeploymentId>)>>;
    fn serving_release(&self, service: &str) -> Result<Option<DeploymentId>>;
    fn set_serving_release(&self, service: &str, release: Option<DeploymentId>) -> Result<()>;
    fn ensure_service(&self, service: &str) -> Result<()>;
    fn remove_service(&self, service: &str) -> Result<()>;
    /// A traffic mode or the frozen state of a service, as JSON (see [`flag`]).
    fn flag_json(&self, service: &str, flag: ServiceFlag) -> Result<Option<serde_json::Value>>;
    fn set_flag_json(
        &self,
        service: &str,
        flag: ServiceFlag,
        value: Option<serde_json::Value>,
    ) -> Result<()>;

    // Replicas.
    fn insert_replica(
        &self,
        service: &str,
        release_id: DeploymentId,
        version: &str,
        handle: &serde_json::Value,
    ) -> Result<ReplicaId>;
    fn replica(&self, id: ReplicaId) -> Result<Option<ReplicaRow>>;
    /// Replicas neither stopped nor failed: the ones a restarted server adopts.
    fn live_replicas(&self, service: &str) -> Result<Vec<ReplicaRow>>;
    /// The newest `limit` replicas that ran `version`, running or not.
    fn replicas_of_version(
        &self,
        service: &str,
        version: &str,
        limit: usize,
    ) -> Result<Vec<ReplicaRow>>;
    fn set_replica_handle(&self, id: ReplicaId, handle: &serde_json::Value) -> Result<()>;
    fn set_replica_state(&self, id: ReplicaId, state: &str) -> Result<()>;
    fn set_replica_rotation(&self, id: ReplicaId, in_rotation: bool) -> Result<()>;
    fn bump_replica_restarts(&self, id: ReplicaId) -> Result<()>;

    // The runbook around a deployment.
    fn insert_hook_run(
        &self,
        deployment_id: DeploymentId,
        phase: &str,
        argv: &[String],
    ) -> Result<HookRunId>;
    fn finish_hook_run(
        &self,
        id: HookRunId,
        outcome: &str,
        detail: &str,
        output: &str,
    ) -> Result<()>;
    /// Hook runs a dead server left `running` become `interrupted`; how many.
    fn mark_interrupted_hook_runs(&self) -> Result<usize>;
    fn insert_backup(
        &self,
        service: &str,
        deployment_id: DeploymentId,
        version: &str,
        dir: &str,
    ) -> Result<BackupId>;
    fn set_backup_state(&self, id: BackupId, state: &str, size_bytes: u64) -> Result<()>;
    fn backup(&self, id: BackupId) -> Result<Option<BackupRow>>;
    /// Newest first.
    fn backups(&self, service: &str) -> Result<Vec<BackupRow>>;
    /// The good backup deployment `deployment_id` took, if any.
    fn backup_of(&self, deployment_id: DeploymentId) -> Result<Option<BackupRow>>;
    fn record_migration(&self, deployment_id: DeploymentId, service: &str) -> Result<()>;
    fn mark_migration_undone(
        &self,
        deployment_id: DeploymentId,
        by: DeploymentId,
        how: &str,
    ) -> Result<()>;
    /// Deployments after `release_id` whose migrations are still in effect.
    fn migrations_after(
        &self,
        service: &str,
        release_id: DeploymentId,
    ) -> Result<Vec<DeploymentId>>;
    fn migration_in_effect(&self, deployment_id: DeploymentId) -> Result<bool>;

    // Baselines and scheduled checks.
    fn insert_baseline(&self, service: &str, metrics: &serde_json::Value) -> Result<BaselineId>;
    /// Baseline `id`, or the newest; with when it was captured.
    fn baseline(
        &self,
        service: &str,
        id: Option<BaselineId>,
    ) -> Result<Option<(BaselineId, String, serde_json::Value)>>;
    /// Opens an incident (its `id` is set here) and returns its id.
    fn insert_incident(&self, incident: &runway_wire::incident::Incident) -> Result<i64>;
    /// Incidents, newest first; all services when `service` is `None`.
    fn incidents(
        &self,
        service: Option<&str>,
        limit: u32,
    ) -> Result<Vec<runway_wire::incident::Incident>>;
    fn incident(&self, id: i64) -> Result<Option<runway_wire::incident::Incident>>;
    /// Acknowledges incident `id` (once: false when it already was).
    fn ack_incident(&self, id: i64, by: &str) -> Result<bool>;
    /// Resolves incident `id` (once: false when it already was).
    fn resolve_incident(&self, id: i64, by: &str, note: Option<&str>) -> Result<bool>;
    /// Records what became of one notice at one target.
    fn record_delivery(&self, delivery: &runway_wire::notice::Delivery) -> Result<()>;
    /// Deliveries, newest first; all services when `service` is `None`.
    fn deliveries(
        &self,
        service: Option<&str>,
        limit: u32,
    ) -> Result<Vec<runway_wire::notice::Delivery>>;
    /// The audit trail's newest hash (what `runway audit verify --head` takes).
    fn audit_head(&self) -> Result<Option<String>>;
    fn insert_check_run(
        &self,
        service: &str,
        started_at: &str,
        passed: bool,
        results: &serde_json::Value,
    ) -> Result<CheckRunId>;
    /// Newest first: id, started at, passed, results.
    fn check_runs(
        &self,
        service: &str,
        limit: u32,
    ) -> Result<Vec<(CheckRunId, String, bool, serde_json::Value)>>;

    /// Seals `value` as the next version of `service`'s secret `name`: that version.
    fn set_secret(&self, service: &str, name: &str, value: &str, by: &str) -> Result<u64>;
    /// `false` when `service` had no secret `name`. Old versions stay, for rollbacks.
    fn unset_secret(&self, service: &str, name: &str, by: &str) -> Result<bool>;
    /// `service`'s secrets now: names and versions, never values.
    fn secrets(&self, service: &str) -> Result<Vec<SecretRow>>;
    /// One version's value; `None` when there is no such version (or it records an unset).
    fn secret_value(&self, service: &str, name: &str, version: u64) -> Result<Option<String>>;
    /// `service`'s feature flags by name.
    fn flags(&self, service: &str) -> Result<Vec<FlagRow>>;
    /// Stores flag `name`'s definition as its next revision (the first is 1): that revision.
    /// With `expected`, only if the flag is at that revision now (`None` answered when it is
    /// not): a rollout's write never undoes someone's `flags off`.
    fn put_flag(
        &self,
        service: &str,
        name: &str,
        definition: &serde_json::Value,
        by: &str,
        expected: Option<u64>,
    ) -> Result<Option<u64>>;
    /// The secret versions deployment `id` runs with.
    fn set_secret_versions(&self, id: DeploymentId, versions: &BTreeMap<String, u64>)
        -> Result<()>;
}

impl dyn Records {
    /// A service flag as a `T`; `None` when unset, an error when it cannot be read as one.
    pub fn flag<T: DeserializeOwned>(&self, service: &str, flag: ServiceFlag) -> Result<Option<T>> {
        Ok(self
            .flag_json(service, flag)?
            .map(serde_json::from_value)
            .transpose()?)
    }

    /// Sets (or with `None` clears) a service flag.
    pub fn set_flag<T: Serialize>(
        &self,
        service: &str,
        flag: ServiceFlag,
        value: Option<&T>,
    ) -> Result<()> {
        let value = value.map(serde_json::to_value).transpose()?;
        self.set_flag_json(service, flag, value)
    }
}
