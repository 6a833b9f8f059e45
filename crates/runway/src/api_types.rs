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

/// What went wrong, as a stable code that clients decide on (never on the message's text).
/// docs/json.md lists them with their HTTP statuses and the CLI's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or names something impossible (a bad version name, a count of
    /// 0, an unknown node action).
    InvalidRequest,
    /// No token, or not the server's token.
    Unauthorized,
    /// The service, deployment, node, backup or version named does not exist.
    NotFound,
    /// Another operation runs on the service; try again when it ends.
    Busy,
    /// The service is frozen (an irreversible migration failed): a human decides first.
    Frozen,
    /// The service's state does not allow it (it serves and removal was not forced, the node
    /// is already running, the service is deployed from another directory, ...).
    Conflict,
    /// A fault in the server; its log has the details.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 7] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::Busy,
        ErrorCode::Frozen,
        ErrorCode::Conflict,
        ErrorCode::Internal,
    ];

    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::Busy | ErrorCode::Frozen | ErrorCode::Conflict => 409,
            ErrorCode::Internal => 500,
        }
    }

    /// The code of an answer without one (a proxy in between, an older server): by status.
    pub fn from_http_status(status: u16) -> ErrorCode {
        match status {
            401 | 403 => ErrorCode::Unauthorized,
            404 => ErrorCode::NotFound,
            409 => ErrorCode::Conflict,
            400..=499 => ErrorCode::InvalidRequest,
            _ => ErrorCode::Internal,
        }
    }

    /// What to do about it, when the error says nothing more specific.
    pub fn default_hint(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "`runway help COMMAND` describes what the command takes",
            ErrorCode::Unauthorized => {
                "the CLI reads the token from server.json in the server's state dir: point \
                 --state-dir (or RUNWAY_STATE_DIR) at the state dir of the server you mean"
            }
            ErrorCode::NotFound => "`runway status` and `runway history` list what exists",
            ErrorCode::Busy => {
                "wait for the operation to end (`runway status --watch` follows it), then try \
                 again"
            }
            ErrorCode::Frozen => "`runway status` says why the service is frozen and what to do",
            ErrorCode::Conflict => "`runway status` shows the service's state",
            ErrorCode::Internal => "the server's log has the details",
        }
    }
}

/// Every error the API answers: JSON with a stable code, the HTTP status, what failed and what
/// to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub status: u16,
    pub message: String,
    pub hint: String,
    /// The same as `message` (the only field of the first v1 answers; kept for their clients).
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// The codes are part of v1: their names and statuses never change (docs/json.md).
    #[test]
    fn error_codes_keep_their_names_and_statuses() {
        let named: Vec<(String, u16)> = ErrorCode::ALL
            .iter()
            .map(|c| {
                (
                    serde_json::to_value(c)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string(),
                    c.http_status(),
                )
            })
            .collect();
        let expected = [
            ("invalid_request", 400),
            ("unauthorized", 401),
            ("not_found", 404),
            ("busy", 409),
            ("frozen", 409),
            ("conflict", 409),
            ("internal", 500),
        ];
        assert_eq!(named, expected.map(|(n, s)| (n.to_string(), s)).to_vec());
        for code in ErrorCode::ALL {
            assert_eq!(
                ErrorCode::from_http_status(code.http_status()) == code,
                !matches!(code, ErrorCode::Busy | ErrorCode::Frozen)
            );
            let doc = include_str!("../../../docs/json.md");
            let name = serde_json::to_value(code).unwrap();
            assert!(
                doc.contains(&format!("| `{}` |", name.as_str().unwrap())),
                "{code:?} undocumented"
            );
        }
    }
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: String, hint: Option<String>) -> ErrorBody {
        ErrorBody {
            code,
            status: code.http_status(),
            error: message.clone(),
            message,
            hint: hint.unwrap_or_else(|| code.default_hint().to_string()),
        }
    }
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
