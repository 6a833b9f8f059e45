//! `runway service remove`: forget a service, so that a test service does not linger in
//! `status` and as everyone's default.
//!
//! A service that serves is refused unless forced: removing it stops its replicas and closes
//! its listen address, which is an outage for whoever uses it. Its deployments, journals and
//! backups stay in the store as records; a later deploy under the same name starts afresh.

use runway_wire::id::DeploymentId;
use std::sync::Arc;

use super::{service::Operation, Engine, EngineError};
use crate::text::plural;

impl Engine {
    /// Removes `name`; `force` stops what still runs. Returns what was done, for the CLI.
    pub async fn remove_service(
        self: &Arc<Self>,
        name: &str,
        force: bool,
    ) -> Result<String, EngineError> {
        let known_to_store = self.store.services()?.iter().any(|(n, _)| n == name);
        // A removed service's waiting requests must not bring it back when approved.
        let end_waiting = || {
            for waiting in self.store.awaiting_approval(Some(name)).unwrap_or_default() {
                let _ = self
                    .store
                    .end_awaiting(waiting.id, "the service was removed before it was approved");
            }
        };
        let Ok(svc) = self.service(name) else {
            if !known_to_store {
                return Err(EngineError::NotFound(format!(
                    "no service named `{name}`; `runway status` lists the services"
                )));
            }
            // Known but never brought up (it never served): nothing runs, only forget it.
            end_waiting();
            self.store.remove_service(name)?;
            return Ok(format!(
                "service `{name}` removed (nothing of it was running)"
            ));
        };
        let (_guard, ()) = svc.begin(
            || {
                Ok((
                    Operation {
                        deployment_id: DeploymentId::NONE,
                        description: "the removal of the service".into(),
                    },
                    (),
                ))
            },
            |op| {
                EngineError::Busy(format!(
                    "service `{name}` is busy with {}; wait for it to end (or `runway abort` a \
                     canary), then remove the service",
                    describe(op)
                ))
            },
        )?;
        let replicas = svc.replicas();
        let serving = self.serving(name)?;
        if !force && (serving.is_some() || !replicas.is_empty()) {
            let what = match &serving {
                Some(release) => format!("serves {}", release.version),
                None => "has replicas running".to_string(),
            };
            return Err(EngineError::Conflict(format!(
                "service `{name}` {what} with {} on {}: removing it stops them and closes that \
                 address. `runway service remove {name} --force` does it anyway",
                plural(replicas.len() as u64, "replica"),
                svc.listen
            )));
        }
        let stopped = replicas.len();
        self.retire(&svc, DeploymentId::NONE, replicas).await;
        svc.router.close().await;
        if let Some(scheduler) = self
            .schedulers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
        {
            scheduler.cancel();
        }
        self.services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        end_waiting();
        self.store.remove_service(name)?;
        tracing::info!(service = %name, stopped, "service removed");
        Ok(format!(
            "service `{name}` removed: {} stopped, {} closed; its deployments stay in the \
             records",
            plural(stopped as u64, "replica"),
            svc.listen
        ))
    }
}

fn describe(op: &Operation) -> String {
    if op.deployment_id != DeploymentId::NONE {
        format!("deployment #{} ({})", op.deployment_id, op.description)
    } else {
        op.description.clone()
    }
}
