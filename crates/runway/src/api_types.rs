//! The JSON the server and the CLI exchange. `--json` output of the CLI is these types as well,
//! so they are part of the user-facing contract, documented in docs/json.md as version 1 (the
//! `/v1/` of the API): add fields, don't rename or remove them. Timestamps are RFC 3339 in UTC.

use runway_proxy::ReleaseMetrics;
use runway_spec::Spec;
use serde::{Deserialize, Serialize};

use crate::store::{Deployment, JournalEntry};

#[derive(Debug, Serialize, Deserialize)]
pub struct DeployRequest {
    pub version: String,
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
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RollbackRequest {
    pub version: Option<String>,
    pub revision: Option<i64>,
    /// `--keep-schema`: leave the migrations in effect (old code on the new schema).
    #[serde(default)]
    pub keep_schema: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RestoreRequest {
    pub backup_id: i64,
}

/// `runway maintenance on|off` and `runway traffic read-only|normal`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModeRequest {
    pub on: bool,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ScaleRequest {
    pub count: u32,
}

pub use runway_wire::{ErrorBody, ErrorCode};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaView {
    pub id: i64,
    pub name: String,
    pub version: String,
    pub release_id: i64,
    pub port: u16,
    pub pid: Option<i32>,
    /// starting | running | restarting | exited | stopping | stopped
    pub state: String,
    pub health: String,
    pub in_rotation: bool,
    pub restarts: u32,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseView {
    pub deployment_id: i64,
    pub version: String,
    pub replicas: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperationView {
    /// The deployment under way; 0 for an action that is not a deployment (a node restart,
    /// a service removal), which has no version, kind or start below.
    pub deployment_id: i64,
    /// The version it deploys (for a rollback: the one it brings back).
    pub version: Option<String>,
    /// deploy | rollback | scale | restore (as in `history`).
    pub kind: Option<crate::store::Kind>,
    /// When it started (RFC 3339).
    pub started_at: Option<String>,
    pub description: String,
    pub last_event: Option<JournalEntry>,
    /// For a canary: where it stands and what the analysis says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CanaryView {
    /// 1-based.
    pub step: usize,
    pub steps: usize,
    pub weight: u32,
    /// Seconds left in the step's timed pause; None for a manual pause or none.
    pub pause_left_seconds: Option<f64>,
    /// Why it waits for a human, if it does.
    pub paused: Option<String>,
    pub intervals_judged: usize,
    /// Per metric: its latest values, its condition and its last verdicts (oldest first).
    pub metrics: Vec<CanaryMetricView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CanaryMetricView {
    pub name: String,
    pub condition: String,
    pub canary: Option<f64>,
    pub stable: Option<f64>,
    pub last_verdicts: Vec<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceView {
    pub name: String,
    pub listen: String,
    /// The serving release (at most one; an array so that a platform serving several at once
    /// can say so). During a rollout the new release serves beside it: see the replicas'
    /// versions and `metrics`.
    pub serving: Vec<ReleaseView>,
    pub replicas: Vec<ReplicaView>,
    pub deployment: Option<OperationView>,
    /// The newest deployment that failed or was rolled back since the serving release came
    /// (for a service that never served: its newest failure); `null` when there is none. What
    /// a user needs after a failed deploy without scrolling `history`.
    #[serde(default)]
    pub last_failure: Option<Deployment>,
    pub metrics: Vec<ReleaseMetrics>,
    /// Set while the proxy answers with the maintenance page.
    #[serde(default)]
    pub maintenance: Option<crate::store::TrafficMode>,
    /// Set while writes are refused.
    #[serde(default)]
    pub read_only: Option<crate::store::TrafficMode>,
    /// Set after a failed deployment across an irreversible migration froze the service.
    #[serde(default)]
    pub frozen: Option<crate::engine::traffic::Frozen>,
    /// Requests the proxy answered itself because of maintenance or read-only.
    #[serde(default)]
    pub refused: runway_proxy::RefusedCounts,
    /// Requests the client failed (a malformed request body, an upload the client aborted):
    /// answered 400 by the proxy (or not at all, the client being gone) and in no release's
    /// `metrics`, so never held against a release.
    #[serde(default)]
    pub client_errors: runway_proxy::ClientErrorCounts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusView {
    /// When the server took this snapshot (RFC 3339): `status --watch --json` prints one per
    /// line.
    #[serde(default)]
    pub at: String,
    pub services: Vec<ServiceView>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeploymentDetail {
    #[serde(flatten)]
    pub deployment: Deployment,
    pub journal: Vec<JournalEntry>,
}

/// One line of `runway logs --json` (NDJSON): of a replica's log, or of a hook's output.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
pub struct LogsResponse {
    pub lines: Vec<LogLine>,
    /// Pass back to get only what was written since (follow mode): replica name -> offset.
    pub cursor: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ServerInfo {
    pub version: String,
    pub pid: u32,
    pub state_dir: String,
    pub metrics: String,
}
