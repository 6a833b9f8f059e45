//! Announcing what the engine does: the [`Notifier`] boundary, and which journal entries are
//! worth a [`Notice`].
//!
//! The engine decides *what* is announced, with the numbers (a rollback carries the metric
//! values, thresholds and verdicts of the interval that decided it); a notifier decides how it
//! reaches people (runway-notify: Slack-compatible and JSON webhooks, with retries, each
//! delivery recorded). `notify` must return at once: a target that fails or hangs never delays
//! or fails a deployment.

use runway_wire::notice::{Notice, NoticeKind, NotifySpec, Verdict};
use runway_wire::record::{Deployment, Kind};
use runway_wire::Event;

use crate::router::BoxFuture;

/// Where notices go.
pub trait Notifier: Send + Sync {
    /// Queues `notice` for each of `targets` that wants its kind and returns at once.
    fn notify(&self, targets: &[NotifySpec], notice: Notice);

    /// Sends `notice` to every one of `targets` now, and answers once each delivery ended
    /// (`runway notify test`).
    fn send_now<'a>(
        &'a self,
        targets: &'a [NotifySpec],
        notice: Notice,
    ) -> BoxFuture<'a, Vec<runway_wire::notice::Delivery>>;
}

/// A notifier that announces nothing (a server without targets, most tests).
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn notify(&self, _targets: &[NotifySpec], _notice: Notice) {}

    fn send_now<'a>(
        &'a self,
        _targets: &'a [NotifySpec],
        _notice: Notice,
    ) -> BoxFuture<'a, Vec<runway_wire::notice::Delivery>> {
        Box::pin(async { Vec::new() })
    }
}

/// The notice journal entry `event` of deployment `d` is worth, if any; `analysis` is the
/// deployment's last analysis interval (the numbers behind a rollback).
pub fn notice_of(
    d: &Deployment,
    event: &Event,
    analysis: Option<&serde_json::Value>,
) -> Option<Notice> {
    let about = |kind: NoticeKind| {
        let mut n = Notice::new(kind, &d.service);
        n.deployment = Some(d.id);
        n.version = Some(d.version.clone());
        n.previous_version = d.previous_version.clone();
        n.by = (!d.requested_by.is_empty()).then(|| d.requested_by.clone());
        n.reason = d.request_reason.clone();
        n
    };
    let notice = match event {
        // A rollback asked for by a human is announced as runbook 001 does: ROLLBACK
        // INITIATED, from what serves to the release it brings back.
        Event::Started {
            kind: Kind::Rollback,
            ..
        } => {
            let mut n = about(NoticeKind::RolledBack);
            n.version = d.previous_version.clone();
            n.previous_version = Some(d.version.clone());
            n.reason = Some(
                d.request_reason
                    .clone()
                    .unwrap_or_else(|| "`runway rollback`".to_string()),
            );
            n
        }
        Event::Started { .. } => about(NoticeKind::Started),
        Event::AwaitingApproval { .. } => about(NoticeKind::AwaitingApproval),
        Event::Approved { by, .. } => {
            let mut n = about(NoticeKind::Approved);
            n.by = Some(by.clone());
            n
        }
        Event::Rejected { by, reason } => {
            let mut n = about(NoticeKind::Rejected);
            n.by = Some(by.clone());
            n.reason = Some(reason.clone());
            n
        }
        Event::CanaryStep { weight, .. } => {
            let mut n = about(NoticeKind::Step);
            n.weight = Some(*weight);
            n
        }
        Event::Paused { reason, by } => {
            let mut n = about(NoticeKind::Paused);
            n.reason = reason.clone().or_else(|| Some(format!("paused by {by}")));
            n
        }
        Event::Promoted { full, weight, .. } if *full == Some(true) || *weight >= 100 => {
            about(NoticeKind::Promoted)
        }
        Event::Switched { .. } => about(NoticeKind::Promoted),
        Event::FlagChanged { change, by, .. } => {
            let mut n = about(NoticeKind::FlagChanged);
            n.reason = Some(change.clone());
            if !by.is_empty() {
                n.by = Some(by.clone());
            }
            n
        }
        Event::FlagStep { percent, .. } => {
            let mut n = about(NoticeKind::Step);
            n.weight = Some(percent.round() as u32);
            n
        }
        Event::Succeeded { seconds } => {
            let mut n = about(NoticeKind::Succeeded);
            n.seconds = Some(*seconds);
            n
        }
        Event::Failed { reason, .. } => {
            let mut n = about(NoticeKind::Failed);
            n.reason = Some(reason.clone());
            n
        }
        Event::RollingBack { reason } => {
            let mut n = about(NoticeKind::RolledBack);
            n.reason = Some(reason.clone());
            n.verdicts = analysis.map(verdicts_of).unwrap_or_default();
            n
        }
        _ => return None,
    };
    Some(notice)
}

/// Each metric of an analysis interval as runway-analysis serialized it.
pub fn verdicts_of(analysis: &serde_json::Value) -> Vec<Verdict> {
    let Some(metrics) = analysis["metrics"].as_array() else {
        return Vec::new();
    };
    metrics
        .iter()
        .map(|m| Verdict {
            metric: m["name"].as_str().unwrap_or_default().to_string(),
            verdict: match &m["verdict"] {
                serde_json::Value::String(s) => s.to_lowercase(),
                other => other
                    .as_object()
                    .and_then(|o| o.keys().next().cloned())
                    .unwrap_or_default()
                    .to_lowercase(),
            },
            canary: m["canary"].as_f64(),
            stable: m["stable"].as_f64(),
            condition: m["condition"].as_str().unwrap_or_default().to_string(),
            reason: m["reason"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

impl crate::Engine {
    /// `runway notify test`: a test notice to every one of `targets`, now; each delivery
    /// as it ended (also recorded).
    pub async fn notify_test(
        &self,
        service: &str,
        targets: &[NotifySpec],
        by: &str,
    ) -> Vec<runway_wire::notice::Delivery> {
        let mut notice = Notice::new(NoticeKind::Test, service);
        notice.by = Some(by.to_string());
        self.notifier.send_now(targets, notice).await
    }

    /// Recorded deliveries, newest first.
    pub fn deliveries(
        &self,
        service: Option<&str>,
        limit: u32,
    ) -> Result<Vec<runway_wire::notice::Delivery>, crate::EngineError> {
        Ok(self.store.deliveries(service, limit)?)
    }
}
