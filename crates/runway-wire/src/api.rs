//! The JSON the server and the CLI exchange. `--json` output of the CLI is these types as well,
//! so they are part of the user-facing contract, documented in docs/json.md as version 1 (the
//! `/v1/` of the API): add fields, don't rename or remove them. Timestamps are RFC 3339 in UTC.

use runway_spec::Spec;
use serde::{Deserialize, Serialize};

use crate::id::{BackupId, BaselineId, CheckRunId, DeploymentId, ReplicaId};
use crate::metrics::{ClientErrorCounts, RefusedCounts, ReleaseMetrics};
use crate::record::{ApprovalRow, Deployment, Frozen, JournalEntry, Kind, Status, TrafficMode};

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeployRequest {
    pub version: String,
    /// runway.toml as JSON (the README's reference of runway.toml says what it holds).
    #[cfg_attr(
        feature = "schema",
        schemars(with = "serde_json::Map<String, serde_json::Value>")
    )]
    pub spec: Spec,
    /// Directory of runway.toml: the default working directory of the replicas.
    pub base_dir: String,
    /// `--skip-checks`: no preflight gate (for emergencies; recorded in the journal).
    #[serde(default)]
    pub skip_checks: bool,
    /// `--from-here`: deploy even though the serving release came from another directory
    /// (the service moves here). Without it such a deploy is refused: it is usually a second
    /// project that kept `init`'s default name.
    #[serde(default)]
    pub from_here: bool,
    /// `--reason`: why, in the requester's words (recorded with the deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `--type`: a deployment type of `[types]` (default: `[deploy] default_type`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub deploy_type: Option<String>,
    /// `--override` (admins only, with a reason): deploy although a lock, window or freeze
    /// holds; the override is recorded.
    #[serde(default, rename = "override")]
    pub override_policy: bool,
    /// `--commit`: the commit this version was built from, for lead time (DORA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// When that commit was made, RFC 3339 (read from git by the CLI, or `--commit-time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_time: Option<String>,
}

/// A deployment as the API shows it (`history`, the answer to `deploy`, `rollback`, ...):
/// the store's [`Deployment`] without what only the engine reads (config, progress,
/// directory). docs/json.md describes each field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeploymentView {
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
    #[serde(default)]
    pub requested_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_by: Option<DeploymentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_time: Option<String>,
    /// The version of each secret it ran with: names and numbers, never values.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub secret_versions: std::collections::BTreeMap<String, u64>,
}

impl From<&Deployment> for DeploymentView {
    fn from(d: &Deployment) -> DeploymentView {
        DeploymentView {
            id: d.id,
            service: d.service.clone(),
            kind: d.kind,
            version: d.version.clone(),
            previous_version: d.previous_version.clone(),
            previous_release_id: d.previous_release_id,
            status: d.status,
            reason: d.reason.clone(),
            started_at: d.started_at.clone(),
            finished_at: d.finished_at.clone(),
            requested_by: d.requested_by.clone(),
            request_reason: d.request_reason.clone(),
            deploy_type: d.deploy_type.clone(),
            digest: d.digest.clone(),
            rolled_back_by: d.rolled_back_by,
            commit: d.commit.clone(),
            commit_time: d.commit_time.clone(),
            secret_versions: d.secret_versions.clone(),
        }
    }
}

impl From<Deployment> for DeploymentView {
    fn from(d: Deployment) -> DeploymentView {
        DeploymentView::from(&d)
    }
}

impl DeployRequest {
    /// A plain deploy of `version` with `spec` from `base_dir`.
    pub fn new(version: &str, spec: Spec, base_dir: &str) -> DeployRequest {
        DeployRequest {
            version: version.to_string(),
            spec,
            base_dir: base_dir.to_string(),
            skip_checks: false,
            from_here: false,
            reason: None,
            deploy_type: None,
            override_policy: false,
            commit: None,
            commit_time: None,
        }
    }
}

/// What a token may do. Each role may do what the ones before it may: a viewer reads; a
/// deployer deploys, rolls back, scales and steers a rollout; an approver also approves or
/// rejects others' deployments; an admin also manages tokens, restores backups, removes
/// services and overrides windows and freezes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Deployer,
    Approver,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Deployer, Role::Approver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a request came from: a named token and its role (`admin` for the server's own
/// bootstrap token, in server.json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Identity {
    pub name: String,
    pub role: Role,
}

/// `POST /v1/session`: signing in to the dashboard with a token.
#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub token: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignIn { token: <secret> }")
    }
}

/// A dashboard session: who, and the token its changes carry in `X-CSRF-Token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionView {
    pub name: String,
    pub role: Role,
    pub csrf: String,
    /// When the session ends (RFC 3339) unless it is used: each use extends it.
    pub expires_at: String,
}

/// `runway approve ID`: the digest of what the approver was shown.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApproveRequest {
    pub digest: String,
}

/// `runway reject ID --reason` and `runway lock --reason`.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReasonRequest {
    pub reason: String,
}

/// A deployment waiting for approval (`runway approvals`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApprovalView {
    pub deployment: DeploymentView,
    /// How many approvals its type needs.
    pub needed: u32,
    /// The roles that may approve it.
    pub approvers: Vec<String>,
    /// Whether its requester may approve it.
    pub self_approval: bool,
    /// How long an approval counts (`24h`).
    pub approval_ttl: String,
    /// Every approval and rejection so far, oldest first.
    pub approvals: Vec<ApprovalRow>,
    /// Those that count now (fresh, distinct, of what it is).
    pub counted: u32,
    /// The sections of its config that differ from the serving release's (`run`,
    /// `strategy`, `hooks`, ...); every section of a first deployment.
    pub changed: Vec<String>,
}

/// The answer to `runway approve`: the deployment (running once started) and what happened.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApproveAnswer {
    pub deployment: DeploymentView,
    pub message: String,
}

/// `runway tokens create NAME --role ROLE`.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NewToken {
    pub name: String,
    pub role: Role,
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CreatedToken {
    pub name: String,
    pub role: Role,
    pub token: String,
}

/// A named token as `runway tokens list` shows it (never its secret, which is kept hashed).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TokenView {
    pub name: String,
    pub role: Role,
    pub created_at: String,
    /// The identity that created it.
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RollbackRequest {
    pub version: Option<String>,
    pub revision: Option<DeploymentId>,
    /// `--keep-schema`: leave the migrations in effect (old code on the new schema).
    #[serde(default)]
    pub keep_schema: bool,
    /// `--reason`: why, in the operator's words (runbook 001's ROLLBACK INITIATED says it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RestoreRequest {
    pub backup_id: BackupId,
}

/// `runway maintenance on|off` and `runway traffic read-only|normal`.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ModeRequest {
    pub on: bool,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ScaleRequest {
    pub count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReplicaView {
    pub id: ReplicaId,
    pub name: String,
    pub version: String,
    pub release_id: DeploymentId,
    pub port: u16,
    pub pid: Option<i32>,
    /// The container's id (12 characters) for a `[docker]` replica; `null` for a process.
    #[serde(default)]
    pub container: Option<String>,
    /// The image id the container runs (`sha256:` and 12 hex digits); `null` for a process.
    #[serde(default)]
    pub image: Option<String>,
    /// starting | running | restarting | exited | stopping | stopped
    pub state: String,
    pub health: String,
    pub in_rotation: bool,
    pub restarts: u32,
    pub last_error: Option<String>,
}

/// A pod of a `[kubernetes]` service's Deployment, as the cluster reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PodView {
    pub name: String,
    /// The version its template runs (runway's mark on it); `null` for a pod of a template
    /// runway did not write.
    pub version: Option<String>,
    /// The node it was scheduled on.
    pub node: Option<String>,
    /// Pending | Running | Succeeded | Failed | Unknown
    pub phase: String,
    pub ready: bool,
    /// Its containers' restarts, summed.
    pub restarts: u32,
    /// Why a container waits (`CrashLoopBackOff`, `ImagePullBackOff`), when one does.
    pub waiting: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReleaseView {
    pub deployment_id: DeploymentId,
    pub version: String,
    pub replicas: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OperationView {
    /// The deployment under way; 0 for an action that is not a deployment (a node restart,
    /// a service removal), which has no version, kind or start below.
    pub deployment_id: DeploymentId,
    /// The version it deploys (for a rollback: the one it brings back).
    pub version: Option<String>,
    /// deploy | rollback | scale | restore (as in `history`).
    pub kind: Option<Kind>,
    /// When it started (RFC 3339).
    pub started_at: Option<String>,
    pub description: String,
    pub last_event: Option<JournalEntry>,
    /// For a canary: where it stands and what the analysis says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CanaryView {
    /// 1-based.
    pub step: usize,
    pub steps: usize,
    pub weight: u32,
    /// On a cluster that shifts traffic by replica ratio: the canary's effective share, and
    /// that it is approximate (`about 33% (1 of 3 pods; approximate)`); absent where the
    /// weight is exact (runway's proxy splits per request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<String>,
    /// Seconds left in the step's timed pause; None for a manual pause or none.
    pub pause_left_seconds: Option<f64>,
    /// Why it waits for a human, if it does.
    pub paused: Option<String>,
    pub intervals_judged: usize,
    /// Per metric: its latest values, its condition and its last verdicts (oldest first).
    pub metrics: Vec<CanaryMetricView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CanaryMetricView {
    pub name: String,
    pub condition: String,
    pub canary: Option<f64>,
    pub stable: Option<f64>,
    pub last_verdicts: Vec<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ServiceView {
    pub name: String,
    pub listen: String,
    /// The serving release (at most one; an array so that a platform serving several at once
    /// can say so). During a rollout the new release serves beside it: see the replicas'
    /// versions and `metrics`.
    pub serving: Vec<ReleaseView>,
    pub replicas: Vec<ReplicaView>,
    /// A `[kubernetes]` service's pods (its replicas are the cluster's); empty elsewhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodView>,
    /// Why the pods could not be read (the cluster did not answer), when they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_error: Option<String>,
    pub deployment: Option<OperationView>,
    /// The newest deployment that failed or was rolled back since the serving release came
    /// (for a service that never served: its newest failure); `null` when there is none. What
    /// a user needs after a failed deploy without scrolling `history`.
    #[serde(default)]
    pub last_failure: Option<DeploymentView>,
    pub metrics: Vec<ReleaseMetrics>,
    /// Set while the proxy answers with the maintenance page.
    #[serde(default)]
    pub maintenance: Option<TrafficMode>,
    /// Set while writes are refused.
    #[serde(default)]
    pub read_only: Option<TrafficMode>,
    /// Set after a failed deployment across an irreversible migration froze the service.
    #[serde(default)]
    pub frozen: Option<Frozen>,
    /// Set while `runway lock` holds the service's deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<crate::record::Lock>,
    /// Requests the proxy answered itself because of maintenance or read-only.
    #[serde(default)]
    pub refused: RefusedCounts,
    /// Requests the client failed (a malformed request body, an upload the client aborted):
    /// answered 400 by the proxy (or not at all, the client being gone) and in no release's
    /// `metrics`, so never held against a release.
    #[serde(default)]
    pub client_errors: ClientErrorCounts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StatusView {
    /// When the server took this snapshot (RFC 3339): `status --watch --json` prints one per
    /// line.
    #[serde(default)]
    pub at: String,
    pub services: Vec<ServiceView>,
    /// Set while the state store refuses writes (a full disk): runway holds what it could not
    /// write, has stopped the running operations, starts no new ones, and writes what it holds
    /// by itself once the store takes writes again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_fault: Option<StoreFaultView>,
}

/// The state store refusing writes, as `status` tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StoreFaultView {
    /// When the first write was refused (RFC 3339).
    pub since: String,
    /// The store's newest refusal, as it said it ("database or disk is full").
    pub error: String,
    /// Writes held in memory, to write once the store takes them.
    pub held_writes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeploymentDetail {
    #[serde(flatten)]
    pub deployment: DeploymentView,
    pub journal: Vec<JournalEntry>,
}

/// One line of `runway logs --json` (NDJSON): of a replica's log, or of a hook's output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LogLine {
    /// When runway read the line (RFC 3339): while following, within half a second of its
    /// writing. `null` for the lines already there when `logs` started: replicas write straight
    /// into their log files (no pipe through the server, which could not survive a server
    /// restart), so their time of writing is not known.
    #[serde(default)]
    pub at: Option<String>,
    /// The replica that wrote it (`web-3`); for a hook's output, absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// The replica's version; for a hook's output, absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// For a hook's output: its phase (`backup`, `migrate`, `post-deploy`...); else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    pub line: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LogsResponse {
    pub lines: Vec<LogLine>,
    /// Pass back to get only what was written since (follow mode): replica name -> offset.
    pub cursor: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ServerInfo {
    pub version: String,
    pub pid: u32,
    pub state_dir: String,
    pub metrics: String,
}

/// One run of a service's scheduled checklist (`runway check --history`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CheckRun {
    pub id: CheckRunId,
    pub service: String,
    pub started_at: String,
    pub passed: bool,
    pub results: serde_json::Value,
}

/// A snapshot of the serving release's request metrics over a window (`runway baseline`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BaselineMetrics {
    pub version: String,
    pub window_seconds: f64,
    pub requests: u64,
    pub request_rate: f64,
    pub error_rate: Option<f64>,
    pub latency_p50: Option<f64>,
    pub latency_p95: Option<f64>,
    pub latency_p99: Option<f64>,
}

/// A stored baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Baseline {
    pub id: BaselineId,
    pub service: String,
    pub captured_at: String,
    pub metrics: BaselineMetrics,
}

/// One line of the Metric | Baseline | Current | Delta | Status table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ComparisonRow {
    pub metric: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    pub delta: Option<f64>,
    /// OK, WARN, FAIL, or NO DATA.
    pub status: String,
}

/// A baseline against the metrics now.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Comparison {
    pub baseline: Baseline,
    pub current: BaselineMetrics,
    pub rows: Vec<ComparisonRow>,
}

/// `runway nodes restart|stop|start NODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum NodeAction {
    Restart,
    Stop,
    Start,
}

impl NodeAction {
    /// Its segment in `/v1/services/{service}/nodes/{node}/{action}`.
    pub fn as_path(self) -> &'static str {
        match self {
            NodeAction::Restart => "restart",
            NodeAction::Stop => "stop",
            NodeAction::Start => "start",
        }
    }

    pub fn from_path(s: &str) -> Option<NodeAction> {
        [NodeAction::Restart, NodeAction::Stop, NodeAction::Start]
            .into_iter()
            .find(|a| a.as_path() == s)
    }
}

/// What `runway promote | pause | resume | abort` send to a running rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CanaryCommand {
    Promote,
    PromoteFull,
    Pause,
    Resume,
    Abort,
}

impl CanaryCommand {
    /// Its segment in `/v1/services/{service}/canary/{command}`.
    pub fn as_path(self) -> &'static str {
        match self {
            CanaryCommand::Promote => "promote",
            CanaryCommand::PromoteFull => "promote-full",
            CanaryCommand::Pause => "pause",
            CanaryCommand::Resume => "resume",
            CanaryCommand::Abort => "abort",
        }
    }

    pub fn from_path(s: &str) -> Option<CanaryCommand> {
        use CanaryCommand::*;
        [Promote, PromoteFull, Pause, Resume, Abort]
            .into_iter()
            .find(|c| c.as_path() == s)
    }
}

/// What an action that starts no deployment answers: one line for a human.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Message {
    pub message: String,
}

/// `GET /v1/deployments`: newest first, narrowed by service, status and kind (the CLI's
/// `history` sends a [`HistoryQuery`], which is the same without the last two).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeploymentsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
}

/// `GET /v1/deployments` (newest first) and `GET /v1/services/{service}/checks/history`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HistoryQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `GET /v1/audit?since=` (entries at or after an RFC 3339 time) and `GET /v1/audit/verify?head=`
/// (a head hash the trail must still reach).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
}

/// `GET /v1/deployments/{id}/events`: the journal entries after `after`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Long-poll: seconds to wait for something new (at most 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<u64>,
}

/// `GET /v1/events/stream`: where to start, and whose. Without `after` (or a `Last-Event-ID`
/// header, which a reconnecting browser sends) the stream starts at the next new entry.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StreamQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Only this service's deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// `GET /v1/deployments/{id}/stream`: where to start (default: its first entry), and whether
/// to send the service's live metrics every second while it runs (the dashboard's charts).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeploymentStreamQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub metrics: bool,
}

/// One journal entry in the stream of everything: whose it is and where it is in the stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FeedEntry {
    /// Position in the stream (the SSE `id`): resume after it with `after` or Last-Event-ID.
    pub cursor: i64,
    pub deployment: DeploymentId,
    pub service: String,
    #[serde(flatten)]
    pub entry: crate::record::JournalEntry,
}

/// `DELETE /v1/services/{service}`: refused while the service serves, unless forced.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RemoveQuery {
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/services/{service}/baselines` and `GET .../baselines/compare`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BaselineQuery {
    /// Seconds to measure over (default 10, at most 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.001, max = 3600.0)))]
    pub window: Option<f64>,
    /// Which baseline to compare with (default: the newest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<BaselineId>,
}

/// `GET /v1/services/{service}/logs`: the last `n` lines of each selected replica's log, or
/// what each wrote since `cursor`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LogsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The replicas this deployment started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentId>,
    /// JSON of a previous response's cursor: follow mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `runway secrets set NAME`: the value, sent in the body (never in the URL, which logs and
/// the audit trail keep).
#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SetSecret {
    pub value: String,
}

impl std::fmt::Debug for SetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetSecret { value: <hidden> }")
    }
}

/// A secret set: its new version and, when the serving release uses it, the deployment that
/// rolls its replicas with the new value.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SecretSet {
    pub service: String,
    pub name: String,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<DeploymentView>,
    /// Why the serving release, which uses the secret, was not rolled with it (another
    /// operation took the service in the meantime): the next deployment runs with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_rolled: Option<String>,
}

/// One secret of a service, as `runway secrets list` shows it: never its value.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SecretView {
    pub name: String,
    /// Its current version.
    pub version: u64,
    pub set_by: String,
    pub set_at: String,
    /// The version the serving release runs with; `None` when it does not use the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_version: Option<u64>,
}

/// One feature flag of a service (`runway flags get`): its definition (runway-flags' model:
/// `kind`, `variants`, `enabled`, `default_variant`, `off_variant`, `rules`, `rollout`), and
/// the revision, who and when of its last change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FlagView {
    pub name: String,
    #[cfg_attr(
        feature = "schema",
        schemars(with = "serde_json::Map<String, serde_json::Value>")
    )]
    pub definition: serde_json::Value,
    pub revision: u64,
    pub updated_by: String,
    pub updated_at: String,
    /// The judged rollout under way (`runway flags rollout`), by deployment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<DeploymentId>,
}

/// `PUT /v1/services/{service}/flags/{name}`: a flag's whole definition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SetFlag {
    #[cfg_attr(
        feature = "schema",
        schemars(with = "serde_json::Map<String, serde_json::Value>")
    )]
    pub definition: serde_json::Value,
    /// Why, recorded with the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `runway flags rollout NAME --steps 5%,25%,50%,100% --interval 30m`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FlagRolloutRequest {
    /// The shares of the targeting keys, in percent, each larger than the one before; the
    /// last is usually 100.
    pub steps: Vec<f64>,
    /// How long each step is watched before the next (`30m`, `90s`).
    pub interval: String,
    /// The variant the rollout serves (default: `on`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An OFREP evaluation request (`POST .../ofrep/v1/evaluate/flags[/{key}]`): OpenFeature's
/// evaluation context, `targetingKey` and any attributes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OfrepRequest {
    pub context: serde_json::Map<String, serde_json::Value>,
}

/// One flag evaluated, as OFREP answers it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OfrepEvaluation {
    pub key: String,
    pub value: serde_json::Value,
    /// STATIC, DEFAULT, TARGETING_MATCH, SPLIT or DISABLED.
    pub reason: String,
    pub variant: String,
}

/// An OFREP error: `errorCode` FLAG_NOT_FOUND (404), PARSE_ERROR or INVALID_CONTEXT (400).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OfrepError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(rename = "errorCode")]
    pub error_code: String,
    #[serde(rename = "errorDetails")]
    pub error_details: String,
}

/// Every flag of a service evaluated (OFREP's bulk evaluation).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OfrepBulk {
    pub flags: Vec<OfrepEvaluation>,
}

/// A body that may say why (`runway flags off --reason`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MaybeReason {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
