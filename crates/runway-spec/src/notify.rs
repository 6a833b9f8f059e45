//! `[[notify]]`: where runway announces what it does (runbooks 001 and 004 post every
//! deployment and rollback to a channel, with a fixed template).
//!
//! A target is a Slack-compatible incoming webhook (`{"text": ...}`) or a generic JSON
//! webhook (the whole notice, its text and the audit trail's head). Its URL is usually a
//! secret (a Slack webhook URL is a credential), so it is written as `env:NAME` or
//! `secret:NAME` and resolved by the server when it sends; runway never shows it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::Dur;

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A deployment started.
    Started,
    /// A canary step began.
    Step,
    /// A rollout paused (by the analysis or an operator).
    Paused,
    /// A deployment waits for approvals.
    AwaitingApproval,
    Approved,
    Rejected,
    /// The release got all traffic (a canary promoted, a blue-green switch).
    Promoted,
    Succeeded,
    Failed,
    /// The release is taken back (judged, aborted, or a failure after it took traffic).
    RolledBack,
    /// A deploy was refused by a lock, a window or a freeze.
    Refused,
    /// A scheduled checklist failed.
    ChecklistFailed,
    /// A certificate check of a scheduled checklist sees a certificate close to expiry.
    CertificateExpiring,
    /// `runway notify test`.
    Test,
    /// A feature flag changed (`runway flags set|off`, or a rollout's step or end).
    FlagChanged,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 15] = [
        NoticeKind::Started,
        NoticeKind::Step,
        NoticeKind::Paused,
        NoticeKind::AwaitingApproval,
        NoticeKind::Approved,
        NoticeKind::Rejected,
        NoticeKind::Promoted,
        NoticeKind::Succeeded,
        NoticeKind::Failed,
        NoticeKind::RolledBack,
        NoticeKind::Refused,
        NoticeKind::ChecklistFailed,
        NoticeKind::CertificateExpiring,
        NoticeKind::Test,
        NoticeKind::FlagChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Started => "started",
            NoticeKind::Step => "step",
            NoticeKind::Paused => "paused",
            NoticeKind::AwaitingApproval => "awaiting_approval",
            NoticeKind::Approved => "approved",
            NoticeKind::Rejected => "rejected",
            NoticeKind::Promoted => "promoted",
            NoticeKind::Succeeded => "succeeded",
            NoticeKind::Failed => "failed",
            NoticeKind::RolledBack => "rolled_back",
            NoticeKind::Refused => "refused",
            NoticeKind::ChecklistFailed => "checklist_failed",
            NoticeKind::CertificateExpiring => "certificate_expiring",
            NoticeKind::Test => "test",
            NoticeKind::FlagChanged => "flag_changed",
        }
    }

    pub fn parse(word: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.as_str() == word)
    }

    /// The text a notice of this kind has unless a target's `templates` says otherwise:
    /// runbook 001's announcements (DEPLOYMENT STARTING / COMPLETE / ROLLBACK INITIATED) and
    /// the same shape for the rest.
    pub fn default_template(self) -> &'static str {
        match self {
            NoticeKind::Started => {
                "DEPLOYMENT STARTING\n--------------------\nService: {service}\nVersion: {version}\nTime: {time} UTC\nOwner: @{by}"
            }
            NoticeKind::Succeeded => {
                "DEPLOYMENT COMPLETE\n--------------------\nService: {service}\nVersion: {version}\nDuration: {duration}\nStatus: SUCCESS"
            }
            NoticeKind::RolledBack => {
                "ROLLBACK INITIATED\n--------------------\nService: {service}\nFrom: {version}\nTo: {previous_version}\nReason: {reason}\nOwner: @{by}\nStatus: IN PROGRESS{details}"
            }
            NoticeKind::Failed => {
                "DEPLOYMENT FAILED\n--------------------\nService: {service}\nVersion: {version}\nReason: {reason}\nOwner: @{by}"
            }
            NoticeKind::Step => "CANARY STEP: {service} {version} takes {weight}% of requests",
            NoticeKind::Paused => "DEPLOYMENT PAUSED: {service} {version}: {reason}",
            NoticeKind::AwaitingApproval => {
                "APPROVAL NEEDED: {service} {version} (deployment #{deployment}, asked by @{by}): {reason}"
            }
            NoticeKind::Approved => "APPROVED: {service} {version} (deployment #{deployment}) by @{by}",
            NoticeKind::Rejected => {
                "REJECTED: {service} {version} (deployment #{deployment}) by @{by}: {reason}"
            }
            NoticeKind::Promoted => "PROMOTED: {service} {version} takes all traffic",
            NoticeKind::Refused => "DEPLOYMENT REFUSED: {service} {version} asked by @{by}: {reason}",
            NoticeKind::ChecklistFailed => "CHECKLIST FAILED: {service}: {reason}",
            NoticeKind::CertificateExpiring => "CERTIFICATE EXPIRING: {service}: {reason}",
            NoticeKind::Test => "runway notify test: {service} can reach this channel ({time} UTC)",
            NoticeKind::FlagChanged => "FLAG CHANGED: {service} flag {version}: {reason} (by @{by})",
        }
    }
}

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "service",
    "version",
    "previous_version",
    "by",
    "reason",
    "time",
    "duration",
    "deployment",
    "status",
    "weight",
    "details",
    "audit_head",
];

/// The shape of what a target receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotifyFormat {
    /// A Slack-compatible incoming webhook: `{"text": "..."}`.
    Slack,
    /// Any JSON endpoint: the notice with its text and the audit trail's head.
    Webhook,
}

/// One `[[notify]]` target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    /// How deliveries to it are recorded (`runway notify log`); default `notify-N`.
    pub name: String,
    pub kind: NotifyFormat,
    /// `https://...`, or `env:NAME` / `secret:NAME` resolved by the server (never shown).
    pub url: String,
    /// The notices it gets; every kind when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NoticeKind>,
    /// How long one attempt may take. Default 5s.
    pub timeout: Dur,
    /// Attempts after the first when one fails. Default 3.
    pub retries: u32,
    /// The wait before the first retry, doubled for each next one. Default 1s.
    pub backoff: Dur,
    /// Texts by notice kind, with `{placeholder}`s; the defaults for the others.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<NoticeKind, String>,
}

impl NotifySpec {
    /// Whether this target gets notices of `kind` (`runway notify test` reaches every one).
    pub fn wants(&self, kind: NoticeKind) -> bool {
        kind == NoticeKind::Test || self.events.is_empty() || self.events.contains(&kind)
    }

    /// The template for `kind`: the target's own, else the default.
    pub fn template(&self, kind: NoticeKind) -> &str {
        self.templates
            .get(&kind)
            .map_or_else(|| kind.default_template(), String::as_str)
    }
}

/// The placeholder names in `template` that runway does not know; `Err` with the first
/// unknown one (or an unclosed brace).
pub fn check_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("a `{{` at `{}` is never closed", &rest[open..]));
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!("unknown placeholder `{{{name}}}`"));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// The rules the reader applies to `[[notify]]`, for targets that come as JSON (a deploy
/// request, `runway notify test`).
pub fn validate_targets(targets: &[NotifySpec]) -> Result<(), String> {
    for (i, target) in targets.iter().enumerate() {
        if targets[..i].iter().any(|t| t.name == target.name) {
            return Err(format!(
                "notify[{i}]: two targets are named `{}`; give each its own name",
                target.name
            ));
        }
        let url = target.url.as_str();
        let reference = url.starts_with("env:") || url.starts_with("secret:");
        if !reference && !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(format!(
                "notify[{i}].url: must be an http:// or https:// URL, or env:NAME / secret:NAME"
            ));
        }
        if target.timeout.is_zero() || target.backoff.is_zero() || target.retries > 10 {
            return Err(format!(
                "notify[{i}]: timeout and backoff must be greater than 0, retries at most 10"
            ));
        }
        for (kind, text) in &target.templates {
            check_template(text)
                .map_err(|e| format!("notify[{i}].templates.{}: {e}", kind.as_str()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_template_uses_known_placeholders_only() {
        for kind in NoticeKind::ALL {
            check_template(kind.default_template()).unwrap();
            assert_eq!(NoticeKind::parse(kind.as_str()), Some(kind));
        }
        assert!(check_template("{service} {nope}")
            .unwrap_err()
            .contains("{nope}"));
        assert!(check_template("{service").is_err());
    }
}
