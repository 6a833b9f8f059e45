//! The JSON the server and the CLI exchange. `--json` output of the CLI is these types as well,
//! so they are part of the user-facing contract: add fields, don't rename them.

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

#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

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
    pub deployment_id: i64,
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
    /// The release that serves when no deployment is under way; during a rolling update both
    /// it and the new release serve (see the replicas' versions and `metrics`).
    pub serving: Vec<ReleaseView>,
    pub replicas: Vec<ReplicaView>,
    pub deployment: Option<OperationView>,
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
    pub services: Vec<ServiceView>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeploymentDetail {
    #[serde(flatten)]
    pub deployment: Deployment,
    pub journal: Vec<JournalEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LogLine {
    pub replica: String,
    pub version: String,
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
