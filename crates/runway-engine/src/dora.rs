//! DORA's delivery metrics from runway's own records, with runbook 001's targets.
//!
//! Definitions (each figure's `basis` says what it counted):
//! - **deployment frequency**: deploys (not rollbacks, scale changes or restores) that
//!   succeeded in the period, per day;
//! - **lead time for changes**: median from a deploy's commit time (`--commit`,
//!   `--commit-time`) to the end of its deployment, over the succeeded deploys that have one;
//! - **deployment failure rate**: deploys that reached production (changed anything) and did
//!   not succeed, over those that reached production;
//! - **change failure rate**: deploys that reached production and were rolled back (by
//!   themselves or later) or tied to an incident, over those that reached production;
//! - **time to restore**: median time the incidents of rolled-back or failed releases affected
//!   users (the proxy's measure, `impact.seconds`);
//! - **rework rate**: deploys that reached production right after one that failed or was
//!   rolled back (a fix forward), over those that reached production.
//!
//! A deploy that failed before any change (a preflight check, a missing image, a refused
//! migration) never reached production and counts in none of them.

use chrono::{DateTime, Utc};
use runway_wire::dora::{DoraMetric, DoraReport};
use runway_wire::incident::Incident;
use runway_wire::record::{Deployment, Kind, Status};

/// What is known of one deployment beyond its row: whether it changed anything.
pub struct Outcome<'a> {
    pub deployment: &'a Deployment,
    /// False for one that failed before any change.
    pub reached_production: bool,
}

fn at(rfc3339: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

fn duration(seconds: f64) -> String {
    if seconds < 3600.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 2.0 * 86400.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.1} days", seconds / 86400.0)
    }
}

fn rating(value: Option<f64>, target: f64, threshold: f64, lower_is_better: bool) -> String {
    let Some(v) = value else {
        return "no data".into();
    };
    let (meets, within) = if lower_is_better {
        (v < target, v < threshold)
    } else {
        (v >= target, v >= threshold)
    };
    if meets {
        "meets target"
    } else if within {
        "within threshold"
    } else {
        "below threshold"
    }
    .into()
}

/// The report over `[since, until]` of `outcomes` (deployments of the service or services
/// reported on, any period) and `incidents`.
pub fn report(
    outcomes: &[Outcome<'_>],
    incidents: &[Incident],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    service: Option<&str>,
) -> DoraReport {
    let in_period = |d: &Deployment| at(&d.started_at).is_some_and(|t| t >= since && t <= until);
    // Oldest first, as they happened.
    let mut deploys: Vec<&Outcome<'_>> = outcomes
        .iter()
        .filter(|o| o.deployment.kind == Kind::Deploy)
        .filter(|o| {
            !matches!(
                o.deployment.status,
                Status::Running | Status::AwaitingApproval
            )
        })
        .collect();
    deploys.sort_by_key(|o| o.deployment.id);
    let incident_of = |d: &Deployment| {
        incidents
            .iter()
            .any(|i| i.deployment == Some(d.id) && i.cause != "checklist")
    };
    let produced: Vec<&Outcome<'_>> = deploys
        .iter()
        .copied()
        .filter(|o| o.reached_production && in_period(o.deployment))
        .collect();
    let days = ((until - since).num_seconds() as f64 / 86400.0).max(1.0 / 24.0);

    // Frequency.
    let succeeded: Vec<&Deployment> = produced
        .iter()
        .map(|o| o.deployment)
        .filter(|d| d.status == Status::Succeeded)
        .collect();
    let per_day = succeeded.len() as f64 / days;
    let frequency = DoraMetric {
        name: "deployment_frequency".into(),
        value: Some(per_day),
        unit: "per_day".into(),
        shown: if per_day >= 1.0 {
            format!("{per_day:.1} a day")
        } else {
            format!("{:.1} a week", per_day * 7.0)
        },
        target: "daily".into(),
        threshold: "weekly minimum".into(),
        rating: if succeeded.is_empty() {
            "below threshold".into()
        } else {
            rating(Some(per_day), 1.0, 1.0 / 7.0, false)
        },
        basis: format!("{} deploys succeeded in {days:.1} days", succeeded.len()),
    };

    // Lead time.
    let leads: Vec<f64> = succeeded
        .iter()
        .filter_map(|d| {
            let committed = at(d.commit_time.as_deref()?)?;
            let done = at(d.finished_at.as_deref()?)?;
            Some((done - committed).num_milliseconds() as f64 / 1000.0)
        })
        .collect();
    let lead = median(leads.clone());
    let lead_time = DoraMetric {
        name: "lead_time".into(),
        value: lead,
        unit: "seconds".into(),
        shown: lead.map_or_else(|| "-".into(), duration),
        target: "< 1 day".into(),
        threshold: "< 1 week".into(),
        rating: rating(lead, 86400.0, 7.0 * 86400.0, true),
        basis: format!(
            "median of {} of {} succeeded deploys with a commit time",
            leads.len(),
            succeeded.len()
        ),
    };

    // Failure rates.
    let ratio = |n: usize| (!produced.is_empty()).then(|| n as f64 / produced.len() as f64);
    let percent = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{:.1}%", v * 100.0));
    let not_succeeded = produced
        .iter()
        .filter(|o| o.deployment.status != Status::Succeeded)
        .count();
    let failure_rate = ratio(not_succeeded);
    let deployment_failure = DoraMetric {
        name: "deployment_failure_rate".into(),
        value: failure_rate,
        unit: "ratio".into(),
        shown: percent(failure_rate),
        target: "< 5%".into(),
        threshold: "< 15%".into(),
        rating: rating(failure_rate, 0.05, 0.15, true),
        basis: format!(
            "{not_succeeded} of {} deploys that reached production",
            produced.len()
        ),
    };
    let changed_for_the_worse = produced
        .iter()
        .filter(|o| {
            let d = o.deployment;
            d.status == Status::RolledBack || d.rolled_back_by.is_some() || incident_of(d)
        })
        .count();
    let change_rate = ratio(changed_for_the_worse);
    let change_failure = DoraMetric {
        name: "change_failure_rate".into(),
        value: change_rate,
        unit: "ratio".into(),
        shown: percent(change_rate),
        target: "< 10%".into(),
        threshold: "< 25%".into(),
        rating: rating(change_rate, 0.10, 0.25, true),
        basis: format!(
            "{changed_for_the_worse} of {} deploys rolled back or tied to an incident",
            produced.len()
        ),
    };

    // Time to restore.
    let restores: Vec<f64> = incidents
        .iter()
        .filter(|i| i.cause != "checklist")
        .filter(|i| service.is_none_or(|s| i.service == s))
        .filter(|i| at(&i.opened_at).is_some_and(|t| t >= since && t <= until))
        .map(|i| i.impact.seconds)
        .collect();
    let restore = median(restores.clone());
    let time_to_restore = DoraMetric {
        name: "time_to_restore".into(),
        value: restore,
        unit: "seconds".into(),
        shown: restore.map_or_else(|| "-".into(), duration),
        target: "< 1 hour".into(),
        threshold: "< 4 hours".into(),
        rating: rating(restore, 3600.0, 4.0 * 3600.0, true),
        basis: format!("median of {} incidents of a bad release", restores.len()),
    };

    // Rework: a deploy right after a failed or rolled-back one of the same service.
    let mut rework = 0;
    for (i, o) in deploys.iter().enumerate() {
        if !(o.reached_production && in_period(o.deployment)) {
            continue;
        }
        let before = deploys[..i]
            .iter()
            .rev()
            .find(|p| p.deployment.service == o.deployment.service && p.reached_production);
        if before.is_some_and(|p| {
            p.deployment.status != Status::Succeeded || p.deployment.rolled_back_by.is_some()
        }) {
            rework += 1;
        }
    }
    let rework_rate = ratio(rework);
    let rework = DoraMetric {
        name: "rework_rate".into(),
        value: rework_rate,
        unit: "ratio".into(),
        shown: percent(rework_rate),
        target: "-".into(),
        threshold: "-".into(),
        rating: "-".into(),
        basis: format!(
            "{rework} of {} deploys right after a failed or rolled-back one",
            produced.len()
        ),
    };

    DoraReport {
        since: since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        until: until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        service: service.map(str::to_string),
        metrics: vec![
            frequency,
            lead_time,
            deployment_failure,
            change_failure,
            time_to_restore,
            rework,
        ],
    }
}

impl crate::Engine {
    /// DORA's figures since `since` (default 90 days back) for `service` (all when `None`).
    pub fn dora(
        &self,
        service: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<DoraReport, crate::EngineError> {
        let until = Utc::now();
        let since = since.unwrap_or(until - chrono::Duration::days(90));
        let history = self.store.history(service, 100_000)?;
        let outcomes: Vec<Outcome<'_>> = history
            .iter()
            .map(|d| Outcome {
                deployment: d,
                reached_production: self.reached_production(d),
            })
            .collect();
        let incidents = self.store.incidents(service, 100_000)?;
        Ok(report(&outcomes, &incidents, since, until, service))
    }

    /// Whether deployment `d` changed anything: not one that failed before any change.
    fn reached_production(&self, d: &Deployment) -> bool {
        if d.status != Status::Failed {
            return d.status != Status::AwaitingApproval;
        }
        // Rejected or superseded while it waited for approval: it never started.
        if self
            .last_journaled(d.id, |e| matches!(e, runway_wire::Event::Started { .. }))
            .is_none()
        {
            return false;
        }
        !matches!(
            self.last_journaled(d.id, |e| matches!(e, runway_wire::Event::Failed { .. })),
            Some(runway_wire::Event::Failed {
                before_change: Some(true),
                ..
            })
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runway_wire::id::DeploymentId;
    use runway_wire::incident::Impact;

    fn deploy(id: i64, status: Status, started: &str, finished: &str) -> Deployment {
        Deployment {
            id: DeploymentId(id),
            service: "api".into(),
            kind: Kind::Deploy,
            version: format!("v{id}"),
            previous_version: None,
            previous_release_id: None,
            status,
            reason: None,
            started_at: started.into(),
            finished_at: Some(finished.into()),
            progress: None,
            spec: None,
            base_dir: "/srv".into(),
            requested_by: "alice".into(),
            request_reason: None,
            deploy_type: None,
            digest: None,
            rolled_back_by: None,
            commit: None,
            commit_time: None,
            secret_versions: Default::default(),
        }
    }

    fn incident(deployment: i64, opened: &str, seconds: f64) -> Incident {
        Incident {
            id: deployment,
            service: "api".into(),
            deployment: Some(DeploymentId(deployment)),
            cause: "rolled_back".into(),
            severity: "SEV-2".into(),
            title: "t".into(),
            opened_at: opened.into(),
            impact: Impact {
                seconds,
                ..Impact::default()
            },
            acked_at: None,
            acked_by: None,
            resolved_at: None,
            resolved_by: None,
            resolution: None,
        }
    }

    /// Ten days of a service's history, every figure worked out by hand below.
    #[test]
    fn figures_from_a_constructed_history_match_the_hand_computed_ones() {
        let t = |day: u32, hour: u32| format!("2026-11-{day:02}T{hour:02}:00:00Z");
        let mut d1 = deploy(1, Status::Succeeded, &t(11, 10), &t(11, 11));
        d1.commit_time = Some(t(11, 5)); // lead 6 h
        let mut d2 = deploy(2, Status::Succeeded, &t(12, 10), &t(12, 10));
        d2.commit_time = Some(t(10, 10)); // lead 48 h
        d2.rolled_back_by = Some(DeploymentId(3)); // later rolled back
        let mut d3 = deploy(3, Status::Succeeded, &t(12, 12), &t(12, 12));
        d3.kind = Kind::Rollback; // not a deploy
        let d4 = deploy(4, Status::RolledBack, &t(13, 10), &t(13, 11)); // judged
        let mut d5 = deploy(5, Status::Succeeded, &t(14, 10), &t(14, 12)); // fix forward
        d5.commit_time = Some(t(14, 9)); // lead 3 h
        let d6 = deploy(6, Status::Failed, &t(15, 10), &t(15, 10)); // before any change
        let d7 = deploy(7, Status::Succeeded, &t(16, 10), &t(16, 10)); // not after a failure
        let d8 = deploy(8, Status::Failed, &t(17, 10), &t(17, 11)); // failed with traffic
        let old = deploy(9, Status::RolledBack, &t(1, 10), &t(1, 11)); // before the period
        let all = [&old, &d1, &d2, &d3, &d4, &d5, &d6, &d7, &d8];
        let outcomes: Vec<Outcome<'_>> = all
            .iter()
            .map(|d| Outcome {
                deployment: d,
                reached_production: d.id != DeploymentId(6),
            })
            .collect();
        let incidents = [
            incident(4, &t(13, 11), 1800.0),
            incident(8, &t(17, 11), 5400.0),
            incident(2, &t(12, 12), 7200.0),
            incident(9, &t(1, 11), 99999.0), // before the period
        ];
        let since = at(&t(11, 0)).unwrap();
        let until = at(&t(21, 0)).unwrap(); // 10 days
        let r = report(&outcomes, &incidents, since, until, Some("api"));
        let m = |name: &str| r.metrics.iter().find(|m| m.name == name).unwrap().clone();

        // Deploys that reached production in the period: 1, 2, 4, 5, 7, 8 (not the rollback
        // 3, not 6 that failed before any change, not 9 before the period).
        // Frequency: 1, 2, 5, 7 succeeded in 10 days = 0.4 a day, weekly minimum met.
        let f = m("deployment_frequency");
        assert!((f.value.unwrap() - 0.4).abs() < 1e-9, "{f:?}");
        assert_eq!(f.rating, "within threshold");
        // Lead time: median of 6 h, 48 h, 3 h = 6 h: under a day.
        let l = m("lead_time");
        assert_eq!(l.value, Some(6.0 * 3600.0), "{l:?}");
        assert_eq!(l.rating, "meets target");
        assert_eq!(
            l.basis,
            "median of 3 of 4 succeeded deploys with a commit time"
        );
        // Deployment failure rate: 4 (rolled back) and 8 (failed) of 6 = 33.3%.
        let df = m("deployment_failure_rate");
        assert!((df.value.unwrap() - 2.0 / 6.0).abs() < 1e-9, "{df:?}");
        assert_eq!(df.rating, "below threshold");
        // Change failure rate: 2 (rolled back later), 4 (rolled back), 8 (incident) of 6 = 50%.
        let cf = m("change_failure_rate");
        assert!((cf.value.unwrap() - 0.5).abs() < 1e-9, "{cf:?}");
        assert_eq!(cf.shown, "50.0%");
        // Time to restore: median of 1800, 5400, 7200 s (not the one before the period) = 1.5 h.
        let tr = m("time_to_restore");
        assert_eq!(tr.value, Some(5400.0), "{tr:?}");
        assert_eq!(tr.rating, "within threshold");
        assert_eq!(tr.shown, "1.5 h");
        // Rework: 4 (after 2, later rolled back), 5 (after 4) and 7? No: 7 follows 5, which
        // succeeded (6 never reached production). 8 follows 7. So 2 of 6.
        let rw = m("rework_rate");
        assert!((rw.value.unwrap() - 2.0 / 6.0).abs() < 1e-9, "{rw:?}");
    }

    #[test]
    fn no_deployment_is_no_data_not_a_zero_that_looks_good() {
        let now = Utc::now();
        let r = report(&[], &[], now - chrono::Duration::days(90), now, None);
        let m = |name: &str| r.metrics.iter().find(|m| m.name == name).unwrap().clone();
        assert_eq!(m("change_failure_rate").value, None);
        assert_eq!(m("change_failure_rate").rating, "no data");
        assert_eq!(m("lead_time").rating, "no data");
        assert_eq!(m("deployment_frequency").rating, "below threshold");
    }
}
