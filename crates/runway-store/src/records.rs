//! The store as the engine's [`Records`]: each method is the store's own.

use anyhow::Result;
use runway_engine::records::Records;

use crate::{
    BackupRow, Deployment, JournalEntry, NewDeployment, ReplicaRow, ServiceFlag, Status, Store,
};

impl Records for Store {
    fn insert_deployment(&self, d: NewDeployment<'_>) -> Result<i64> {
        Store::insert_deployment(self, d)
    }

    fn deployment(&self, id: i64) -> Result<Option<Deployment>> {
        Store::deployment(self, id)
    }

    fn history(&self, service: Option<&str>, limit: u32) -> Result<Vec<Deployment>> {
        Store::history(self, service, limit)
    }

    fn running_deployments(&self) -> Result<Vec<Deployment>> {
        Store::running_deployments(self)
    }

    fn set_progress(&self, id: i64, progress: &serde_json::Value) -> Result<()> {
        Store::set_progress(self, id, progress)
    }

    fn finish_deployment(&self, id: i64, status: Status, reason: Option<&str>) -> Result<()> {
        Store::finish_deployment(self, id, status, reason)
    }

    fn mark_version_rolled_back(
        &self,
        service: &str,
        version: &str,
        after: i64,
        reason: &str,
    ) -> Result<()> {
        Store::mark_version_rolled_back(self, service, version, after, reason)
    }

    fn journal(&self, deployment_id: i64, event: &str, detail: serde_json::Value) -> Result<i64> {
        Store::journal(self, deployment_id, event, detail)
    }

    fn journal_since(&self, deployment_id: i64, after: i64) -> Result<Vec<JournalEntry>> {
        Store::journal_since(self, deployment_id, after)
    }

    fn services(&self) -> Result<Vec<(String, Option<i64>)>> {
        Store::services(self)
    }

    fn serving_release(&self, service: &str) -> Result<Option<i64>> {
        Store::serving_release(self, service)
    }

    fn set_serving_release(&self, service: &str, release: Option<i64>) -> Result<()> {
        Store::set_serving_release(self, service, release)
    }

    fn ensure_service(&self, service: &str) -> Result<()> {
        Store::ensure_service(self, service)
    }

    fn remove_service(&self, service: &str) -> Result<()> {
        Store::remove_service(self, service)
    }

    fn flag_json(&self, service: &str, flag: ServiceFlag) -> Result<Option<serde_json::Value>> {
        Store::flag(self, service, flag)
    }

    fn set_flag_json(
        &self,
        service: &str,
        flag: ServiceFlag,
        value: Option<serde_json::Value>,
    ) -> Result<()> {
        Store::set_flag(self, service, flag, value.as_ref())
    }

    fn insert_replica(
        &self,
        service: &str,
        release_id: i64,
        version: &str,
        handle: &serde_json::Value,
    ) -> Result<i64> {
        Store::insert_replica(self, service, release_id, version, handle)
    }

    fn replica(&self, id: i64) -> Result<Option<ReplicaRow>> {
        Store::replica(self, id)
    }

    fn live_replicas(&self, service: &str) -> Result<Vec<ReplicaRow>> {
        Store::live_replicas(self, service)
    }

    fn replicas_of_version(
        &self,
        service: &str,
        version: &str,
        limit: usize,
    ) -> Result<Vec<ReplicaRow>> {
        Store::replicas_of_version(self, service, version, limit)
    }

    fn set_replica_handle(&self, id: i64, handle: &serde_json::Value) -> Result<()> {
        Store::set_replica_handle(self, id, handle)
    }

    fn set_replica_state(&self, id: i64, state: &str) -> Result<()> {
        Store::set_replica_state(self, id, state)
    }

    fn set_replica_rotation(&self, id: i64, in_rotation: bool) -> Result<()> {
        Store::set_replica_rotation(self, id, in_rotation)
    }

    fn bump_replica_restarts(&self, id: i64) -> Result<()> {
        Store::bump_replica_restarts(self, id)
    }

    fn insert_hook_run(&self, deployment_id: i64, phase: &str, argv: &[String]) -> Result<i64> {
        Store::insert_hook_run(self, deployment_id, phase, argv)
    }

    fn finish_hook_run(&self, id: i64, outcome: &str, detail: &str, output: &str) -> Result<()> {
        Store::finish_hook_run(self, id, outcome, detail, output)
    }

    fn mark_interrupted_hook_runs(&self) -> Result<usize> {
        Store::mark_interrupted_hook_runs(self)
    }

    fn insert_backup(
        &self,
        service: &str,
        deployment_id: i64,
        version: &str,
        dir: &str,
    ) -> Result<i64> {
        Store::insert_backup(self, service, deployment_id, version, dir)
    }

    fn set_backup_state(&self, id: i64, state: &str, size_bytes: u64) -> Result<()> {
        Store::set_backup_state(self, id, state, size_bytes)
    }

    fn backup(&self, id: i64) -> Result<Option<BackupRow>> {
        Store::backup(self, id)
    }

    fn backups(&self, service: &str) -> Result<Vec<BackupRow>> {
        Store::backups(self, service)
    }

    fn backup_of(&self, deployment_id: i64) -> Result<Option<BackupRow>> {
        Store::backup_of(self, deployment_id)
    }

    fn record_migration(&self, deployment_id: i64, service: &str) -> Result<()> {
        Store::record_migration(self, deployment_id, service)
    }

    fn mark_migration_undone(&self, deployment_id: i64, by: i64, how: &str) -> Result<()> {
        Store::mark_migration_undone(self, deployment_id, by, how)
    }

    fn migrations_after(&self, service: &str, release_id: i64) -> Result<Vec<i64>> {
        Store::migrations_after(self, service, release_id)
    }

    fn migration_in_effect(&self, deployment_id: i64) -> Result<bool> {
        Store::migration_in_effect(self, deployment_id)
    }

    fn insert_baseline(&self, service: &str, metrics: &serde_json::Value) -> Result<i64> {
        Store::insert_baseline(self, service, metrics)
    }

    fn baseline(
        &self,
        service: &str,
        id: Option<i64>,
    ) -> Result<Option<(i64, String, serde_json::Value)>> {
        Store::baseline(self, service, id)
    }

    fn insert_check_run(
        &self,
        service: &str,
        started_at: &str,
        passed: bool,
        results: &serde_json::Value,
    ) -> Result<i64> {
        Store::insert_check_run(self, service, started_at, passed, results)
    }

    fn check_runs(
        &self,
        service: &str,
        limit: u32,
    ) -> Result<Vec<(i64, String, bool, serde_json::Value)>> {
        Store::check_runs(self, service, limit)
    }
}
