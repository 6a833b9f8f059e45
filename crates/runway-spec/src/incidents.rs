//! `[incidents]`: the severity an incident opens with, by rules on what the proxy measured
//! (runbook 002's SEV-0..SEV-3 by default).

use serde::{Deserialize, Serialize};

/// One rule: an incident whose impact reaches *every* threshold it names gets `severity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityRule {
    pub severity: String,
    /// At least this share of the affected release's requests failed (5xx or no answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// At least this many of its requests failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_requests: Option<u64>,
}

/// `[incidents]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentPolicy {
    /// Tried in order; the first that holds decides.
    pub rules: Vec<SeverityRule>,
    /// When no rule holds.
    pub default: String,
}

impl Default for IncidentPolicy {
    /// Runbook 002: SEV-0 a complete outage (nearly every request fails), SEV-1 a major
    /// degradation (a quarter of them), SEV-2 a user-visible one (more than 1%), SEV-3 the rest
    /// (a rollback nobody saw, a failing checklist).
    fn default() -> Self {
        let rule = |severity: &str, error_rate: f64| SeverityRule {
            severity: severity.into(),
            error_rate: Some(error_rate),
            failed_requests: None,
        };
        IncidentPolicy {
            rules: vec![rule("SEV-0", 0.9), rule("SEV-1", 0.25), rule("SEV-2", 0.01)],
            default: "SEV-3".into(),
        }
    }
}

impl IncidentPolicy {
    pub fn is_default(&self) -> bool {
        *self == IncidentPolicy::default()
    }

    /// The severity of an incident whose affected release served `requests`, `failed` of
    /// them failed.
    pub fn severity(&self, requests: u64, failed: u64) -> &str {
        let rate = if requests == 0 {
            0.0
        } else {
            failed as f64 / requests as f64
        };
        self.rules
            .iter()
            .find(|r| {
                (r.error_rate.is_some() || r.failed_requests.is_some())
                    && r.error_rate.is_none_or(|t| rate >= t)
                    && r.failed_requests.is_none_or(|n| failed >= n)
            })
            .map_or(self.default.as_str(), |r| r.severity.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runbook_002s_severities_by_default() {
        let p = IncidentPolicy::default();
        assert_eq!(p.severity(100, 100), "SEV-0");
        assert_eq!(p.severity(100, 30), "SEV-1");
        assert_eq!(p.severity(100, 2), "SEV-2");
        assert_eq!(p.severity(100, 0), "SEV-3");
        assert_eq!(p.severity(0, 0), "SEV-3");
    }
}
