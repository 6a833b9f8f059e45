//! Scheduled checklists (runbook 003's morning and end-of-day lists): every check with a
//! `schedule` runs inside the server at its times, against the serving release, and each run
//! is kept for `runway check history`.
//!
//! One task per service sleeps until the earliest due check, runs every check due then
//! together, records the run, and computes the next time. A new serving release replaces the
//! task, so the schedule always follows the config that serves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use runway_checks::{CheckSpec, Schedule};
pub use runway_wire::api::CheckRun;
use tokio_util::sync::CancellationToken;

use super::{Engine, Release};

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Engine {
    /// (Re)starts the scheduler of `service` for its serving release.
    pub(super) fn schedule_checks(self: &Arc<Self>, service: &str) {
        let token = CancellationToken::new();
        if let Some(old) = self
            .schedulers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(service.to_string(), token.clone())
        {
            old.cancel();
        }
        let Ok(Some(release)) = self.serving(service) else {
            return;
        };
        let scheduled: Vec<(CheckSpec, Schedule)> = release
            .spec
            .checks
            .iter()
            .filter_map(|c| Some((c.clone(), Schedule::parse(c.schedule.as_deref()?).ok()?)))
            .collect();
        if scheduled.is_empty() {
            return;
        }
        let engine = self.clone();
        let service = service.to_string();
        tokio::spawn(async move {
            let mut next: Vec<i64> = scheduled
                .iter()
                .map(|(_, s)| s.next_after(now_unix()))
                .collect();
            loop {
                let Some(&due) = next.iter().min() else {
                    return;
                };
                let wait = Duration::from_secs(due.saturating_sub(now_unix()).max(0) as u64);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = token.cancelled() => return,
                }
                let batch: Vec<CheckSpec> = scheduled
                    .iter()
                    .zip(&next)
                    .filter(|(_, &t)| t <= due)
                    .map(|((c, _), _)| c.clone())
                    .collect();
                engine.run_scheduled(&service, &release, &batch).await;
                for ((_, schedule), t) in scheduled.iter().zip(next.iter_mut()) {
                    if *t <= due {
                        *t = schedule.next_after(due.max(now_unix()));
                    }
                }
            }
        });
    }

    async fn run_scheduled(&self, service: &str, release: &Release, checks: &[CheckSpec]) {
        let replicas = match self.service(service) {
            Ok(svc) => self.release_addrs(&svc, release),
            Err(_) => Vec::new(),
        };
        let context =
            crate::checks::context(&release.spec, &release.base_dir, &release.secrets, replicas);
        let started_at = runway_wire::record::now();
        let results = self.checks.run(checks, &context).await;
        let passed = runway_checks::blocking_failures(&results).is_empty();
        tracing::info!(
            service,
            passed,
            checks = checks.len(),
            "scheduled checks ran"
        );
        let failing: Vec<&runway_checks::CheckResult> = results
            .iter()
            .filter(|r| r.status == runway_checks::CheckStatus::Fail)
            .collect();
        let described = |rs: &[&runway_checks::CheckResult]| {
            rs.iter()
                .map(|r| format!("{}: {}", r.name, r.detail))
                .collect::<Vec<_>>()
                .join("; ")
        };
        self.announce_checklist(service, release, &failing, passed, &described);
        if !passed {
            if let Ok(svc) = self.service(service) {
                self.open_incident(
                    &svc,
                    release.id,
                    crate::incidents::Cause::Checklist {
                        reason: &described(&failing),
                    },
                );
            }
        }
        let json = serde_json::to_value(&results).unwrap_or_default();
        if let Err(e) = self
            .store
            .insert_check_run(service, &started_at, passed, &json)
        {
            tracing::error!(service, "cannot record a scheduled check run: {e:#}");
        }
    }

    /// Announces what starts failing, once: the checklist when a run fails after one that
    /// passed, a certificate when its check fails and did not in the run before (a warning's
    /// failure leaves the run passed, so runs alone cannot tell).
    fn announce_checklist(
        &self,
        service: &str,
        release: &Release,
        failing: &[&runway_checks::CheckResult],
        passed: bool,
        described: &dyn Fn(&[&runway_checks::CheckResult]) -> String,
    ) {
        use runway_wire::notice::{Notice, NoticeKind};
        if release.spec.notify.is_empty() {
            return;
        }
        // The run before this one (this one is recorded after).
        let before = self
            .store
            .check_runs(service, 1)
            .ok()
            .and_then(|runs| runs.into_iter().next());
        let failed_before: Vec<String> = before
            .as_ref()
            .and_then(|(_, _, _, results)| {
                serde_json::from_value::<Vec<runway_checks::CheckResult>>(results.clone()).ok()
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.status == runway_checks::CheckStatus::Fail)
            .map(|r| r.name)
            .collect();
        let notice = |kind: NoticeKind, reason: String| {
            let mut notice = Notice::new(kind, service);
            notice.version = Some(release.version.clone());
            notice.reason = Some(reason);
            self.notifier.notify(&release.spec.notify, notice);
        };
        // A certificate close to expiry (or past it) is its own notice: it is the one a team
        // forgets until the morning it expires.
        let certificates: Vec<&runway_checks::CheckResult> = failing
            .iter()
            .copied()
            .filter(|r| r.kind == "tls" && !failed_before.contains(&r.name))
            .collect();
        if !certificates.is_empty() {
            notice(NoticeKind::CertificateExpiring, described(&certificates));
        }
        let passed_before = before.is_none_or(|(_, _, passed, _)| passed);
        if !passed && passed_before {
            notice(NoticeKind::ChecklistFailed, described(failing));
        }
    }

    pub fn check_history(
        &self,
        service: &str,
        limit: u32,
    ) -> Result<Vec<CheckRun>, super::EngineError> {
        Ok(self
            .store
            .check_runs(service, limit)?
            .into_iter()
            .map(|(id, started_at, passed, results)| CheckRun {
                id,
                service: service.to_string(),
                started_at,
                passed,
                results,
            })
            .collect())
    }
}

/// The scheduler tasks by service.
pub(super) type Schedulers = std::sync::Mutex<BTreeMap<String, CancellationToken>>;
