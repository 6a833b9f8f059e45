//! Incidents: opened by runway itself when a release is rolled back, a deployment fails after
//! its release had traffic, or a scheduled checklist fails; tied exactly to the deployment that
//! caused it.

use serde::{Deserialize, Serialize};

use crate::api::DeploymentView;
use crate::id::DeploymentId;
use crate::record::JournalEntry;

/// What the proxy measured of the affected release.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Impact {
    /// The release (version) that was bad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Requests it answered (or failed).
    pub requests: u64,
    /// Of them, 5xx answers and requests no backend answered.
    pub failed: u64,
    /// `failed / requests` (0 without requests).
    pub error_rate: f64,
    /// From when it began to affect users to when it was over (or the incident opened).
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Incident {
    pub id: i64,
    pub service: String,
    /// The deployment that caused it (for a failing checklist: the serving release's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentId>,
    /// `rolled_back`, `failed` or `checklist`.
    pub cause: String,
    /// From `[incidents]` rules (runbook 002's SEV-0..SEV-3 by default).
    pub severity: String,
    pub title: String,
    pub opened_at: String,
    pub impact: Impact,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
}

impl Incident {
    /// `open`, `acknowledged` or `resolved`.
    pub fn state(&self) -> &'static str {
        if self.resolved_at.is_some() {
            "resolved"
        } else if self.acked_at.is_some() {
            "acknowledged"
        } else {
            "open"
        }
    }
}

/// `GET /v1/incidents/{id}`: the incident, its deployment and that deployment's journal (the
/// timeline).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: Incident,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_record: Option<DeploymentView>,
    #[serde(default)]
    pub journal: Vec<JournalEntry>,
}

/// `POST /v1/incidents/{id}/resolve`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ResolveRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `GET /v1/incidents`: newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IncidentQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}
