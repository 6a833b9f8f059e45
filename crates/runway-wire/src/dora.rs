//! DORA's delivery metrics over a period, computed from runway's own records.

use serde::{Deserialize, Serialize};

/// `GET /v1/reports/dora`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DoraQuery {
    /// RFC 3339: the start of the period (default: 90 days back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DoraReport {
    pub since: String,
    pub until: String,
    /// The service reported on; every service when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub metrics: Vec<DoraMetric>,
}

/// One figure, with runbook 001's target and threshold beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DoraMetric {
    /// `deployment_frequency`, `lead_time`, `deployment_failure_rate`, `change_failure_rate`,
    /// `time_to_restore`, `rework_rate`.
    pub name: String,
    /// In `unit`; absent without data (no deployment, no commit time, no incident).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// `per_day`, `seconds` or `ratio`.
    pub unit: String,
    /// The value as a human reads it (`1.3 a day`, `4.2 h`, `12.5%`).
    pub shown: String,
    /// Runbook 001's target and threshold (`-` where it sets none).
    pub target: String,
    pub threshold: String,
    /// `meets target`, `within threshold`, `below threshold`, `no data` or `-` (no target).
    pub rating: String,
    /// What it was computed from (`9 of 40 deployments`).
    pub basis: String,
}
