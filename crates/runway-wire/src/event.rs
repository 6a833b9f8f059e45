//! The journal: one [`Event`] per step of a deployment, written before the step takes effect.
//!
//! On the wire and in the store an event is `{"event": "<name>", "detail": {...}}` (serde's
//! adjacent tagging), the shape `runway status --json` and the API have always shown, so rows
//! written by an older runway read back as the same events. A row whose name this runway does
//! not know (written by a newer one) is kept as it is and shown raw; it is never an error.

use crate::id::{BackupId, DeploymentId};
use serde::{Deserialize, Serialize};

/// A stage of a deployment that is done once and skipped when a resumed deployment runs
/// again (see the engine's `stage_done`).
pub type Stage = String;

/// One journal entry's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "event", content = "detail", rename_all = "snake_case")]
pub enum Event {
    /// The deployment started.
    Started {
        kind: crate::record::Kind,
        version: String,
        previous_version: Option<String>,
        replicas: u32,
        /// The identity that asked for it (empty in entries from before identities).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        by: String,
        /// Why, in the requester's words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The deployment waits for `approvals` approvals by `approvers` (its type's) of what
    /// `digest` names; nothing has started.
    AwaitingApproval {
        deploy_type: String,
        approvals: u32,
        approvers: Vec<String>,
        digest: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Approved {
        by: String,
        role: String,
    },
    Rejected {
        by: String,
        reason: String,
    },
    /// The deployment type changed what the file says (`rolling instead of canary`): an
    /// emergency's skipped canary, recorded.
    TypeApplied {
        deploy_type: String,
        changes: Vec<String>,
    },
    /// An admin's `--override` passed these locks, windows or freezes.
    Overridden {
        rules: Vec<String>,
        by: String,
        reason: String,
    },
    /// The release has all traffic; the judge keeps watching it for `seconds` (its type's
    /// monitoring period) and can still roll it back.
    Monitoring {
        seconds: u64,
    },
    /// The monitoring period passed without a failing verdict.
    Monitored {},
    /// Someone steered the rollout (`runway promote`, `pause`, `resume`, `abort`).
    Commanded {
        command: String,
        by: String,
    },
    /// A server restart picked the deployment up again.
    Resumed {
        after: String,
    },
    /// A stage finished (preflight, pre-deploy, backup, migrate, ...): not run again on resume.
    StageDone {
        stage: Stage,
    },
    /// The platform got what the release needs before anything changed (`pulled
    /// registry/atom:v2 as sha256:...`).
    Prepared {
        what: String,
    },
    /// A cluster's rollout changed state (`Waiting for deployment "api" rollout to finish: 1
    /// of 3 updated replicas are available...`).
    RolloutProgress {
        message: String,
    },
    /// A cluster's rollout finished: `revision` of the Deployment runs the release.
    RolledOut {
        revision: u64,
        message: String,
    },
    /// `--skip-checks`: the preflight checks did not run.
    PreflightSkipped {
        by: String,
    },
    /// A phase's checks ran; `results` are the check results as `runway check --json` prints
    /// them.
    Checks {
        phase: String,
        passed: bool,
        results: serde_json::Value,
    },
    /// A hook command starts (its argv with secrets redacted).
    HookStarted {
        phase: String,
        argv: Vec<String>,
    },
    /// A hook command ended: `outcome` ok, failed or timed_out.
    HookFinished {
        phase: String,
        outcome: String,
        detail: String,
    },
    /// A backup was taken (`state` ok or failed).
    Backup {
        backup_id: BackupId,
        state: String,
        dir: String,
        size_bytes: u64,
    },
    /// A migration's undo starts, for the migration of deployment `migration_of`.
    UndoStarted {
        migration_of: DeploymentId,
    },
    /// The schema stays as the newer release left it.
    SchemaKept {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        migration_of: Option<DeploymentId>,
        why: String,
    },
    /// A replica is about to start (its name, version and port).
    ReplicaStarting {
        replica: String,
        version: String,
        port: u16,
    },
    /// A starting replica still fails its health checks (reported while the deploy waits).
    ReplicaUnhealthy {
        replica: String,
        version: String,
        error: String,
        waited_s: u64,
        deadline_s: u64,
    },
    /// A replica passed its checks and takes traffic.
    ReplicaRouted {
        replica: String,
        version: String,
    },
    /// A replica leaves rotation and drains its `in_flight` requests.
    ReplicaRetiring {
        replica: String,
        version: String,
        in_flight: u64,
    },
    /// A replica stopped; `drained` false when its drain timed out.
    ReplicaStopped {
        replica: String,
        version: String,
        drained: bool,
    },
    /// A canary step begins: `weight`% of requests to the canary.
    CanaryStep {
        step: usize,
        of: usize,
        weight: u32,
    },
    /// One analysis interval: the judge's result (decision, each metric's values, condition
    /// and verdict), as `runway-analysis` serializes it.
    Analysis(serde_json::Value),
    /// The rollout paused, by the analysis or an operator.
    Paused {
        reason: Option<String>,
        by: String,
    },
    /// An operator let a paused canary go on.
    ResumedByOperator {},
    /// The canary moved on: by the analysis (at `weight`) or an operator (`full`: to 100%).
    Promoted {
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        full: Option<bool>,
        weight: u32,
    },
    /// Blue-green: the new release runs without traffic, reachable for a preview.
    PreviewReady {
        version: String,
        preview: Option<String>,
        header: String,
    },
    /// Blue-green: all traffic moved.
    Switched {
        from: String,
        to: String,
    },
    /// Blue-green: the old release stays up `seconds` for an instant rollback.
    ScaleDownPending {
        version: String,
        seconds: f64,
    },
    /// Recreate: the old replicas are drained and stopped behind the page.
    RecreateStoppingOld {
        replicas: usize,
    },
    /// Recreate: the new release starts.
    RecreateStartingNew {
        version: String,
    },
    MaintenanceOn {},
    MaintenanceOff {},
    /// The maintenance page stays up (`why`).
    MaintenanceKept {
        why: String,
    },
    /// The service froze: a human decides.
    Frozen {
        reason: String,
    },
    /// The deployment failed; `before_change` when nothing had changed yet.
    Failed {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before_change: Option<bool>,
    },
    /// The deployment is rolled back on purpose (judged or aborted).
    RollingBack {
        reason: String,
    },
    /// Going back to `to`.
    Reverting {
        to: String,
    },
    /// `to` serves again.
    Reverted {
        to: String,
    },
    /// Going back failed too.
    RevertFailed {
        reason: String,
    },
    /// A feature flag changed: what it serves now, in one line.
    FlagChanged {
        flag: String,
        change: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        by: String,
    },
    /// A flag rollout's step: `percent` of the targeting keys get the variant from now on.
    FlagStep {
        flag: String,
        percent: f64,
    },
    /// A flag rollout's baseline: the service's numbers before the flag reached anyone.
    FlagBaseline {
        requests: u64,
        errors: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        p99_seconds: Option<f64>,
    },
    /// The deployment succeeded after `seconds`.
    Succeeded {
        seconds: f64,
    },
    /// It ended serving, with a problem to look at.
    ServingWithAProblem {
        seconds: f64,
        reason: String,
    },
    /// A panic in the deployment's task, caught; the way back ran.
    InternalError {
        panic: String,
    },
}

impl Event {
    /// The event as a stored row: its name (`replica_starting`) and its detail, from one
    /// serialization.
    pub fn to_row(&self) -> (String, serde_json::Value) {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut o)) => {
                let name = o
                    .get("event")
                    .and_then(|e| e.as_str())
                    .unwrap_or_default()
                    .to_string();
                let detail = o.remove("detail").unwrap_or(serde_json::json!({}));
                (name, detail)
            }
            _ => (String::new(), serde_json::json!({})),
        }
    }

    /// The event a stored row holds, or `None` for a name this runway does not know (a newer
    /// runway wrote it) or a detail of another shape.
    pub fn from_row(event: &str, detail: &serde_json::Value) -> Option<Event> {
        serde_json::from_value(serde_json::json!({ "event": event, "detail": detail })).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::Event;
    use serde_json::json;

    /// Rows as the engine wrote them before events were typed read back as the same events,
    /// and write back byte for byte: the journal's JSON does not change.
    #[test]
    fn stored_rows_round_trip() {
        for (name, detail) in [
            (
                "started",
                json!({"kind": "deploy", "version": "v2", "previous_version": "v1", "replicas": 3}),
            ),
            ("stage_done", json!({"stage": "preflight"})),
            (
                "replica_starting",
                json!({"replica": "web-4", "version": "v2", "port": 40123}),
            ),
            (
                "replica_stopped",
                json!({"replica": "web-1", "version": "v1", "drained": true}),
            ),
            ("paused", json!({"reason": null, "by": "operator"})),
            (
                "promoted",
                json!({"by": "operator", "full": true, "weight": 30}),
            ),
            ("promoted", json!({"by": "analysis", "weight": 30})),
            ("schema_kept", json!({"why": "--keep-schema"})),
            ("resumed_by_operator", json!({})),
            ("maintenance_on", json!({})),
            (
                "analysis",
                json!({"decision": "Pass", "metrics": [], "step": 1}),
            ),
            ("failed", json!({"reason": "x", "before_change": true})),
            ("failed", json!({"reason": "x"})),
            ("succeeded", json!({"seconds": 1.5})),
        ] {
            let event = Event::from_row(name, &detail)
                .unwrap_or_else(|| panic!("{name} {detail} does not read"));
            assert_eq!(event.to_row(), (name.to_string(), detail.clone()), "{name}");
        }
    }

    #[test]
    fn an_unknown_or_malformed_row_is_none_not_an_error() {
        assert_eq!(Event::from_row("from_a_newer_runway", &json!({})), None);
        assert_eq!(Event::from_row("stage_done", &json!({"stg": 1})), None);
    }
}
