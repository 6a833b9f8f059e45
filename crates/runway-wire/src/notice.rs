//! Notifications: what runway announces ([`Notice`]) and what became of each announcement
//! ([`Delivery`]).

use serde::{Deserialize, Serialize};

use crate::id::DeploymentId;
pub use runway_spec::notify::{NoticeKind, NotifyFormat, NotifySpec};

/// One announcement: a deployment started, a canary step, a rollback with the numbers that
/// decided it, a refused deploy, a failing checklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Notice {
    pub kind: NoticeKind,
    pub service: String,
    /// When it happened (RFC 3339, UTC).
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The version that served before (a rollback's target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// Who did it: the requester of a deployment, the approver of an approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long the deployment took (succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The canary's weight (step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// The metrics that decided a rollback: each one's values, condition and verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Verdict>,
    /// The audit trail's head when it was sent: a trail cut short after this shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_head: Option<String>,
}

impl Notice {
    /// A notice of `kind` about `service`, now.
    pub fn new(kind: NoticeKind, service: &str) -> Notice {
        Notice {
            kind,
            service: service.to_string(),
            at: crate::record::now(),
            deployment: None,
            version: None,
            previous_version: None,
            by: None,
            reason: None,
            seconds: None,
            weight: None,
            verdicts: Vec::new(),
            audit_head: None,
        }
    }
}

/// One metric's verdict in the analysis interval that decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Verdict {
    pub metric: String,
    /// pass, fail, ... (runway-analysis's verdict word)
    pub verdict: String,
    /// The new release's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<f64>,
    /// The stable release's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<f64>,
    /// The condition judged (`fail_if > 0.05`).
    pub condition: String,
    /// The judge's line with the numbers.
    pub reason: String,
}

/// What became of one notice at one target, after all its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Delivery {
    pub id: i64,
    /// When the last attempt ended.
    pub at: String,
    /// The target's `name`.
    pub target: String,
    pub notice: NoticeKind,
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentId>,
    pub attempts: u32,
    /// `delivered` or `failed`.
    pub outcome: String,
    /// The HTTP status of the last answer, if one came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why the last attempt failed (never the URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /v1/notify/test`: send a test notice to these targets (runway.toml's `[[notify]]`),
/// as the server would send a deployment's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NotifyTestRequest {
    pub service: String,
    pub targets: Vec<NotifySpec>,
}

/// `GET /v1/deliveries`: the newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeliveryQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}
