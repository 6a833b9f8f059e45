//! Incidents runway opens itself: a release rolled back (judged, aborted, or by `runway
//! rollback`), a deployment that failed after its release had traffic, a failing scheduled
//! checklist. Each is tied to the deployment that caused it (exact: runway made both), with a
//! severity from `[incidents]` rules and the impact the proxy measured of the affected
//! release; its timeline is that deployment's journal.

use runway_wire::api::DeploymentView;
use runway_wire::id::DeploymentId;
use runway_wire::incident::{Impact, Incident, IncidentDetail};
use runway_wire::record::Status;

use crate::{Engine, EngineError, Service};

/// Why an incident opens.
pub(crate) enum Cause<'a> {
    /// Deployment `deployment` was rolled back (its own outcome, or a later rollback).
    RolledBack { version: &'a str, reason: &'a str },
    /// Deployment `deployment` failed after its release had traffic.
    Failed { version: &'a str, reason: &'a str },
    /// A scheduled checklist failed.
    Checklist { reason: &'a str },
}

impl Engine {
    /// Opens an incident about `deployment` of `svc` (at most one a deployment; at most one
    /// open checklist incident a service). The severity comes from the deployment's
    /// `[incidents]` rules; the impact from the proxy's numbers for the affected release.
    pub(crate) fn open_incident(&self, svc: &Service, deployment: DeploymentId, cause: Cause<'_>) {
        let existing = self
            .store
            .incidents(Some(&svc.name), 1000)
            .unwrap_or_default();
        let (word, version, reason) = match &cause {
            Cause::RolledBack { version, reason } => ("rolled_back", Some(*version), *reason),
            Cause::Failed { version, reason } => ("failed", Some(*version), *reason),
            Cause::Checklist { reason } => ("checklist", None, *reason),
        };
        let duplicate = existing.iter().any(|i| match &cause {
            Cause::Checklist { .. } => i.cause == "checklist" && i.resolved_at.is_none(),
            _ => i.deployment == Some(deployment) && i.cause != "checklist",
        });
        if duplicate {
            return;
        }
        let record = self.store.deployment(deployment).ok().flatten();
        let metrics =
            version.and_then(|v| svc.router.metrics().into_iter().find(|m| m.release == v));
        let (requests, failed) = metrics
            .as_ref()
            .map_or((0, 0), |m| (m.requests, m.status_5xx + m.failed));
        // From when the release began to affect users: a deployment's start, or for a release
        // that served and was rolled back later, when its deployment ended.
        let since = record
            .as_ref()
            .map(|d| match (&cause, d.status, &d.finished_at) {
                (Cause::RolledBack { .. }, Status::Succeeded, Some(end)) => end.clone(),
                _ => d.started_at.clone(),
            });
        let seconds = since.as_deref().and_then(seconds_since).unwrap_or_default();
        let policy = record
            .as_ref()
            .and_then(|d| d.spec.as_ref())
            .map(|s| s.incidents.clone())
            .unwrap_or_default();
        let severity = policy.severity(requests, failed).to_string();
        let title = match (&cause, version) {
            (Cause::RolledBack { .. }, Some(v)) => {
                format!("{} {v} rolled back: {reason}", svc.name)
            }
            (Cause::Failed { .. }, Some(v)) => {
                format!("{} {v} failed with traffic: {reason}", svc.name)
            }
            _ => format!("{} checklist failed: {reason}", svc.name),
        };
        let incident = Incident {
            id: 0,
            service: svc.name.clone(),
            deployment: Some(deployment),
            cause: word.into(),
            severity,
            title: clip(&title, 300),
            opened_at: runway_wire::record::now(),
            impact: Impact {
                release: version.map(str::to_string),
                requests,
                failed,
                error_rate: if requests == 0 {
                    0.0
                } else {
                    failed as f64 / requests as f64
                },
                seconds,
            },
            acked_at: None,
            acked_by: None,
            resolved_at: None,
            resolved_by: None,
            resolution: None,
        };
        match self.store.insert_incident(&incident) {
            Ok(id) => {
                tracing::warn!(incident = id, service = %svc.name, severity = %incident.severity, "incident opened: {}", incident.title)
            }
            Err(e) => tracing::error!(service = %svc.name, "cannot record an incident: {e:#}"),
        }
    }

    pub fn incidents(
        &self,
        service: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Incident>, EngineError> {
        Ok(self.store.incidents(service, limit)?)
    }

    /// The incident with its deployment and that deployment's journal.
    pub fn incident(&self, id: i64) -> Result<IncidentDetail, EngineError> {
        let incident = self.store.incident(id)?.ok_or_else(|| {
            EngineError::NotFound(format!("no incident #{id}; see `runway incident list`"))
        })?;
        let (record, journal) = match incident.deployment {
            Some(d) => (
                self.store.deployment(d)?.map(|d| DeploymentView::from(&d)),
                self.store.journal_since(d, 0)?,
            ),
            None => (None, Vec::new()),
        };
        Ok(IncidentDetail {
            incident,
            deployment_record: record,
            journal,
        })
    }

    pub fn ack_incident(&self, id: i64, by: &str) -> Result<IncidentDetail, EngineError> {
        let detail = self.incident(id)?;
        if !self.store.ack_incident(id, by)? {
            return Err(EngineError::Conflict(format!(
                "incident #{id} is {} already",
                detail.incident.state()
            )));
        }
        self.incident(id)
    }

    pub fn resolve_incident(
        &self,
        id: i64,
        by: &str,
        note: Option<&str>,
    ) -> Result<IncidentDetail, EngineError> {
        let detail = self.incident(id)?;
        if !self.store.resolve_incident(id, by, note)? {
            return Err(EngineError::Conflict(format!(
                "incident #{id} is {} already",
                detail.incident.state()
            )));
        }
        self.incident(id)
    }
}

/// Seconds from a record's time (the system clock's, as records are written) to now.
fn seconds_since(rfc3339: &str) -> Option<f64> {
    let then = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    let elapsed = chrono::Utc::now().signed_duration_since(then);
    Some((elapsed.num_milliseconds() as f64 / 1000.0).max(0.0))
}

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
