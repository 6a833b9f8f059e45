//! Traffic modes a service can be put in: maintenance (every request but the allowed paths gets
//! the 503 page), read-only (writes get 503, reads pass) and frozen (a failed deployment with an
//! irreversible migration waits for a human). They live in the store, so they survive a server
//! restart, and are applied to the proxy before it accepts its first connection.

use runway_wire::id::DeploymentId;
use runway_wire::Event;
use std::sync::Arc;

use runway_spec::{MaintenanceSpec, Spec};

use super::router::{MaintenancePage, ReadOnlyPage};
use super::{Engine, EngineError, Service};
use runway_wire::record::{now, ServiceFlag, TrafficMode};

type Result<T, E = EngineError> = std::result::Result<T, E>;

pub use runway_wire::record::Frozen;

impl Engine {
    /// `runway maintenance on|off`.
    pub fn set_maintenance(
        &self,
        service: &str,
        on: bool,
        message: Option<String>,
        by: &str,
    ) -> Result<String> {
        self.set_operator_mode(service, ServiceFlag::Maintenance, on, (message, by))?;
        Ok(format!(
            "maintenance {} for `{service}`",
            if on { "on" } else { "off" }
        ))
    }

    /// `runway traffic read-only|normal`.
    pub fn set_read_only(
        &self,
        service: &str,
        on: bool,
        message: Option<String>,
        by: &str,
    ) -> Result<String> {
        self.set_operator_mode(service, ServiceFlag::ReadOnly, on, (message, by))?;
        Ok(format!(
            "`{service}` is {}",
            if on {
                "read-only: writes get 503, reads pass"
            } else {
                "taking all traffic normally"
            }
        ))
    }

    /// Records an operator's mode change (with their message and identity) and applies it to
    /// the proxy at once.
    fn set_operator_mode(
        &self,
        service: &str,
        flag: ServiceFlag,
        on: bool,
        (message, by): (Option<String>, &str),
    ) -> Result<()> {
        let svc = self.service(service)?;
        if self
            .serving(service)?
            .is_some_and(|r| r.spec.kubernetes.is_some())
        {
            return Err(EngineError::Conflict(format!(
                "`{service}` runs on Kubernetes, where runway's proxy is not in front of it: a \
                 maintenance page or read-only mode there is the cluster's ingress or gateway's \
                 to serve"
            )));
        }
        let mode = on.then(|| TrafficMode {
            message,
            since: now(),
            by: by.to_string(),
            deployment_id: None,
        });
        self.store.set_flag(service, flag, mode.as_ref())?;
        self.apply_traffic_modes(&svc, None);
        tracing::info!(service, ?flag, on, by, "traffic mode set by an operator");
        Ok(())
    }

    /// Puts the page up for operation `id` (a recreate or a restore). A page already up stays
    /// as it is, with its owner: an operator's page is not lifted by the operation.
    pub(super) fn maintenance_for_operation(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        spec: &Spec,
    ) -> anyhow::Result<()> {
        let current: Option<TrafficMode> = self.store.flag(&svc.name, ServiceFlag::Maintenance)?;
        // A page left up by an operation that has ended (a failed restore a human has since
        // looked at) is taken over, so that this one can take it down when it succeeds.
        let orphaned = current
            .as_ref()
            .and_then(|m| m.deployment_id)
            .is_some_and(|owner| {
                owner != id
                    && self
                        .store
                        .deployment(owner)
                        .ok()
                        .flatten()
                        .is_none_or(|d| d.status != runway_wire::record::Status::Running)
            });
        if current.is_none() || orphaned {
            self.journal(id, Event::MaintenanceOn {});
            self.store.set_flag(
                &svc.name,
                ServiceFlag::Maintenance,
                Some(&TrafficMode {
                    message: None,
                    since: now(),
                    by: format!("deployment #{id}"),
                    deployment_id: Some(id),
                }),
            )?;
        }
        self.apply_traffic_modes(svc, Some(spec));
        Ok(())
    }

    /// Takes down the page operation `id` put up, if something healthy serves by now.
    pub(super) fn lift_maintenance_of(&self, svc: &Arc<Service>, id: DeploymentId) {
        // Unreadable counts as not ours: the page stays up.
        let current = self.traffic_mode(&svc.name, ServiceFlag::Maintenance);
        let ours = current.is_some_and(|m| m.deployment_id == Some(id));
        let serving = svc.replicas().iter().any(|r| r.routable());
        if !ours {
            return;
        }
        if !serving {
            self.journal(
                id,
                Event::MaintenanceKept {
                    why: "no healthy replica serves; the page stays up".into(),
                },
            );
            return;
        }
        self.journal(id, Event::MaintenanceOff {});
        if let Err(e) =
            self.store
                .set_flag::<TrafficMode>(&svc.name, ServiceFlag::Maintenance, None)
        {
            tracing::error!("cannot record the end of maintenance: {e:#}");
        }
        self.apply_traffic_modes(svc, None);
    }

    /// Freezes the service after a failed deployment across an irreversible migration.
    pub(super) fn freeze(&self, svc: &Arc<Service>, id: DeploymentId, reason: &str) {
        let frozen = Frozen {
            deployment_id: id,
            reason: reason.to_string(),
            since: now(),
            weights: svc.weights(),
        };
        self.journal(
            id,
            Event::Frozen {
                reason: reason.to_string(),
            },
        );
        if let Err(e) = self
            .store
            .set_flag(&svc.name, ServiceFlag::Frozen, Some(&frozen))
        {
            tracing::error!("cannot record the freeze: {e:#}");
        }
    }

    pub fn frozen(&self, service: &str) -> Option<Frozen> {
        self.store.flag(service, ServiceFlag::Frozen).ok().flatten()
    }

    pub(super) fn unfreeze(&self, service: &str) {
        if self.frozen(service).is_some() {
            if let Err(e) = self
                .store
                .set_flag::<Frozen>(service, ServiceFlag::Frozen, None)
            {
                tracing::error!("cannot clear the freeze: {e:#}");
            }
        }
    }

    /// A stored traffic mode; None (logged) when it cannot be read.
    fn traffic_mode(&self, service: &str, flag: ServiceFlag) -> Option<TrafficMode> {
        self.store.flag(service, flag).unwrap_or_else(|e| {
            tracing::error!(service, ?flag, "cannot read the traffic mode: {e:#}");
            None
        })
    }

    /// Makes the proxy answer as the stored modes say. With `spec`, that config's
    /// `[maintenance]` and health path become the service's page settings.
    pub(super) fn apply_traffic_modes(&self, svc: &Service, spec: Option<&Spec>) {
        if let Some(spec) = spec {
            svc.set_page(spec.maintenance.clone(), spec.health.path.clone());
        }
        let (page, health_path) = svc.page();
        let maintenance = self.traffic_mode(&svc.name, ServiceFlag::Maintenance);
        let read_only = self.traffic_mode(&svc.name, ServiceFlag::ReadOnly);
        svc.router.set_maintenance(maintenance.map(|m| {
            let mut allow = page.allow.clone();
            // The health path passes (monitors keep seeing the truth), unless it is the site
            // root, which the page is there to cover.
            if health_path != "/" {
                allow.push(health_path.clone());
            }
            MaintenancePage {
                message: m.message.unwrap_or_else(|| page.message.clone()),
                retry_after: page.retry_after.0,
                allow,
            }
        }));
        svc.router.set_read_only(read_only.map(|m| ReadOnlyPage {
            message: m.message.unwrap_or_else(|| READ_ONLY_MESSAGE.to_string()),
            retry_after: page.retry_after.0,
        }));
    }
}

const READ_ONLY_MESSAGE: &str =
    "The service is read-only for a moment: reads work, changes are not accepted. Try again shortly.";

/// The page settings before any config is known.
pub fn default_page() -> (MaintenanceSpec, String) {
    (MaintenanceSpec::default(), "/".to_string())
}
