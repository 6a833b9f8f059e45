//! What runway records: deployments with their outcome and the release config that went with
//! them, journal entries, replicas, hook runs, backups and traffic modes. The store keeps them
//! (in SQLite), the engine writes them, and the API answers with them.

use runway_spec::Spec;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::id::{BackupId, DeploymentId, HookRunId, ReplicaId};
use crate::Event;

/// Deployment outcome, as `history` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waits for its approvals ([types] approvals); nothing has started.
    AwaitingApproval,
    Running,
    Succeeded,
    Failed,
    RolledBack,
}

impl Status {
    /// It has ended: succeeded, failed or rolled back (not running, not waiting for approvals).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Succeeded | Status::Failed | Status::RolledBack
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::AwaitingApproval => "awaiting_approval",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::RolledBack => "rolled_back",
        }
    }
    /// The status a stored row names; `None` for a word this runway does not know (never
    /// silently `running`: a row it cannot read is an error its reader reports).
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "awaiting_approval" => Some(Status::AwaitingApproval),
            "running" => Some(Status::Running),
            "succeeded" => Some(Status::Succeeded),
            "failed" => Some(Status::Failed),
            "rolled_back" => Some(Status::RolledBack),
            _ => None,
        }
    }
}

/// Why a deployment exists: a new version, a rollback to an earlier release, or a scale change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Deploy,
    Rollback,
    Scale,
    /// `runway restore BACKUP`: the database put back, and the release that matches it.
    Restore,
    /// `runway secrets set` of a secret the serving release uses: its replicas rolled with
    /// the new value.
    Secrets,
    /// A feature flag changed (`runway flags set|off`) or rolled out in judged steps
    /// (`runway flags rollout`); its `version` is the flag's name. Not a release.
    Flag,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::Rollback => "rollback",
            Kind::Scale => "scale",
            Kind::Restore => "restore",
            Kind::Secrets => "secrets",
            Kind::Flag => "flag",
        }
    }
    /// The kind a stored row names; `None` for a word this runway does not know.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "deploy" => Some(Kind::Deploy),
            "rollback" => Some(Kind::Rollback),
            "scale" => Some(Kind::Scale),
            "restore" => Some(Kind::Restore),
            "secrets" => Some(Kind::Secrets),
            "flag" => Some(Kind::Flag),
            _ => None,
        }
    }
}

/// One deployment as the store keeps it. A deployment's id doubles as the id of the release it
/// introduced: replicas point at it, and a rollback copies its `spec`. Not an API type: the
/// API answers [`DeploymentView`](crate::api::DeploymentView), which leaves out what only the
/// engine reads (its config, progress and directory).
#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: DeploymentId,
    pub service: String,
    pub kind: Kind,
    pub version: String,
    pub previous_version: Option<String>,
    pub previous_release_id: Option<DeploymentId>,
    pub status: Status,
    pub reason: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Where a progressive rollout stands (canary step, pause left, analysis history), so a
    /// restarted server continues exactly there.
    pub progress: Option<serde_json::Value>,
    pub spec: Option<Spec>,
    pub base_dir: String,
    /// The identity that asked for it (empty for deployments from before identities).
    pub requested_by: String,
    /// Why, in the requester's words (`--reason`).
    pub request_reason: Option<String>,
    /// Its deployment type (`[types]`; a deploy's only).
    pub deploy_type: Option<String>,
    /// What an approval of it is bound to: the SHA-256 of its version, whole config and type.
    pub digest: Option<String>,
    /// The later deployment that went back past this one. Its `status` stays its own outcome
    /// (records are append-only): a release that succeeded and was rolled back a day later
    /// shows both.
    pub rolled_back_by: Option<DeploymentId>,
    /// The commit it ships (`--commit`), for lead time.
    pub commit: Option<String>,
    /// When that change was committed (RFC 3339; `--commit` read from git, or `--commit-time`).
    pub commit_time: Option<String>,
    /// The version of each of its service's secrets it ran with (names and numbers, never
    /// values): a rollback to it brings these back.
    pub secret_versions: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JournalEntry {
    pub seq: i64,
    pub at: String,
    pub event: String,
    pub detail: serde_json::Value,
}

impl JournalEntry {
    /// The entry as the typed event it holds; `None` for an event this runway does not know
    /// (written by a newer one), which is shown raw.
    pub fn typed(&self) -> Option<Event> {
        Event::from_row(&self.event, &self.detail)
    }
}

/// A replica as persisted: enough to find it again after a crash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReplicaRow {
    pub id: ReplicaId,
    pub service: String,
    pub release_id: DeploymentId,
    pub version: String,
    /// What its platform needs to find it again (for a local process: pid, start time and
    /// port), as the platform wrote it; `None` before the platform said.
    pub handle: Option<serde_json::Value>,
    pub state: String,
    pub in_rotation: bool,
    pub restarts: u32,
}

/// A persisted traffic mode of a service (maintenance or read-only): who set it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TrafficMode {
    /// The page's message; None: the `[maintenance] message` of the serving config.
    pub message: Option<String>,
    pub since: String,
    /// `operator`, or the operation that set it (`deployment #12`).
    pub by: String,
    /// Set when an operation turned the mode on: only that operation lifts it again, so a page
    /// an operator put up stays up after a deployment.
    pub deployment_id: Option<DeploymentId>,
}

/// One run of a hook command, with its output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HookRun {
    pub id: HookRunId,
    pub deployment_id: DeploymentId,
    /// `backup`, `verify-backup`, `migrate`, `undo`, `restore`, or a `[[hooks.run]]` phase.
    pub phase: String,
    pub argv: Vec<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `running`, `ok`, `failed`, `timed_out`, or `interrupted` (the server died meanwhile).
    pub outcome: String,
    /// One line: how it exited.
    pub detail: Option<String>,
    pub output: String,
}

/// A backup taken by a deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BackupRow {
    pub id: BackupId,
    pub service: String,
    pub deployment_id: DeploymentId,
    /// The version being deployed when the backup was taken (the data is the previous one's).
    pub version: String,
    pub dir: String,
    pub created_at: String,
    /// `taking`, `ok` (taken and verified), `failed`, or `pruned` (deleted by `keep`).
    pub state: String,
    pub size_bytes: u64,
}

/// The flags a service carries beside its serving release: its traffic modes and whether it
/// is frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceFlag {
    Maintenance,
    ReadOnly,
    Frozen,
    /// `runway lock`: deployments held by hand ([`Lock`]).
    Locked,
}

/// Why a service's deployments are held (`runway lock --reason`): stored as its `locked` flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Lock {
    pub by: String,
    pub reason: String,
    pub since: String,
}

/// One secret of a service as `runway secrets list` shows it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SecretRow {
    pub name: String,
    /// 1 for the first value set, one more for each value after it.
    pub version: u64,
    pub set_by: String,
    pub set_at: String,
}

/// One feature flag of a service as stored: its definition (runway-flags' `Flag`), a revision
/// bumped on each change, who changed it last and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FlagRow {
    pub definition: serde_json::Value,
    pub revision: u64,
    pub updated_by: String,
    pub updated_at: String,
}

/// The input of a new deployment record.
pub struct NewDeployment<'a> {
    pub service: &'a str,
    pub kind: Kind,
    pub version: &'a str,
    pub previous_version: Option<&'a str>,
    pub previous_release_id: Option<DeploymentId>,
    pub spec: &'a Spec,
    pub base_dir: &'a str,
    pub requested_by: &'a str,
    pub request_reason: Option<&'a str>,
    pub deploy_type: Option<&'a str>,
    pub digest: Option<&'a str>,
    pub commit: Option<&'a str>,
    pub commit_time: Option<&'a str>,
    /// `running`, or `awaiting_approval` for one that waits for its approvals.
    pub status: Status,
}

/// Why a service is frozen: stored as its `frozen` flag.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Frozen {
    pub deployment_id: DeploymentId,
    pub reason: String,
    pub since: String,
    /// The traffic split when it froze (a canary's weights), restored after a restart.
    #[serde(default)]
    pub weights: Option<std::collections::BTreeMap<String, u32>>,
}

/// Now, as records write timestamps: RFC 3339 in UTC.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One approval or rejection of a deployment that waits for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApprovalRow {
    pub deployment_id: DeploymentId,
    /// Who approved or rejected.
    pub identity: String,
    /// Their role when they did.
    pub role: String,
    /// `approve` or `reject`.
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The digest of what they approved (the deployment's when they did).
    pub digest: String,
    pub at: String,
}

/// One entry of the audit trail: a state-changing request, who made it, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    /// Its place in the trail, from 1.
    pub seq: i64,
    pub at: String,
    /// The token's name (`anonymous` when none was known).
    pub identity: String,
    /// Its role (empty when none was known).
    pub role: String,
    /// The client's address.
    pub remote: String,
    /// `POST /v1/services/web/rollback`.
    pub action: String,
    /// What the request asked (its non-secret fields: version, type, reason, count, ...).
    pub detail: serde_json::Value,
    /// The HTTP status of the answer.
    pub status: u16,
    /// `ok`, or the error's code and message.
    pub result: String,
    /// The hash of the entry before (64 zeros for the first).
    pub prev_hash: String,
    /// SHA-256 of `prev_hash` and this entry's fields.
    pub hash: String,
}

/// What `runway audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditCheck {
    /// Entries checked.
    pub entries: i64,
    /// The hash of the newest entry (64 zeros when there is none).
    pub head: String,
    /// The first problem, if any: which entry and what is wrong with it.
    pub problem: Option<String>,
}
