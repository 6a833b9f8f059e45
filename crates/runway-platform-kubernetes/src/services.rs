//! Blue-green on Kubernetes switches traffic the way runbook 001 does: by the selector of the
//! service's Service. Each release runs in a slot's Deployment (`{deployment}-blue`,
//! `{deployment}-green`, see [`crate::template::slot_deployment`]); the Service selects one
//! slot's pods, and a preview Service (`{service}-preview`) the other's, for smoke tests
//! before the switch. Switching back within the scale-down delay is the same write.
//!
//! A Service the team already has keeps its selector, with the slot label added; one that
//! does not exist is created (it needs `[kubernetes] port`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::PostParams;
use kube::{Api, Client};
use runway_spec::KubernetesSpec;

use crate::template::{APP, SERVICE, SLOT};
use crate::Error;

/// Which of the two Services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The service's own: where its traffic goes.
    Main,
    /// `{service}-preview`: the release not yet switched to.
    Preview,
}

/// The Services of one service.
pub struct Services {
    api: Api<Service>,
    deployments: Api<k8s_openapi::api::apps::v1::Deployment>,
    k8s: KubernetesSpec,
    service: String,
}

impl Services {
    pub fn new(client: Client, k8s: &KubernetesSpec, service: &str) -> Services {
        Services {
            api: Api::namespaced(client.clone(), &k8s.namespace),
            deployments: Api::namespaced(client, &k8s.namespace),
            k8s: k8s.clone(),
            service: service.to_string(),
        }
    }

    fn name(&self, role: Role) -> String {
        match role {
            Role::Main => self.k8s.service.clone(),
            Role::Preview => format!("{}-preview", self.k8s.service),
        }
    }

    /// The slot the main Service selects now; `None` when it selects none (the service's own
    /// Deployment serves) or does not exist.
    pub async fn live_slot(&self) -> Result<Option<String>, Error> {
        let name = self.name(Role::Main);
        let service =
            self.api.get_opt(&name).await.map_err(|e| {
                Error::api(format!("reading Service {}/{name}", self.k8s.namespace), e)
            })?;
        Ok(service
            .and_then(|s| s.spec)
            .and_then(|s| s.selector)
            .and_then(|s| s.get(SLOT).cloned()))
    }

    /// Points the `role` Service at the pods of `slot` (creating the Service when there is
    /// none), retrying a conflict with a fresh read.
    pub async fn select(&self, role: Role, slot: &str) -> Result<(), Error> {
        self.ensure(&self.name(role), slot).await
    }

    /// Points Service `name` at the pods of `slot` (creating it when there is none), retrying
    /// a conflict with a fresh read: a blue-green switch, a canary's stable and canary Services.
    pub async fn ensure(&self, name: &str, slot: &str) -> Result<(), Error> {
        let what = || {
            format!(
                "pointing Service {}/{name} at slot {slot}",
                self.k8s.namespace
            )
        };
        for _ in 0..5 {
            let current = self
                .api
                .get_opt(name)
                .await
                .map_err(|e| Error::api(what(), e))?;
            let written = match current {
                Some(mut service) => {
                    let spec = service.spec.get_or_insert_with(Default::default);
                    let selector = spec.selector.get_or_insert_with(BTreeMap::new);
                    if selector.get(SLOT).map(String::as_str) == Some(slot) {
                        return Ok(());
                    }
                    selector.insert(SLOT.into(), slot.into());
                    self.api
                        .replace(name, &PostParams::default(), &service)
                        .await
                }
                None => {
                    let service = self.new_service(name, slot).await?;
                    self.api.create(&PostParams::default(), &service).await
                }
            };
            match written {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => return Err(Error::api(what(), e)),
            }
        }
        Err(Error::Rollout(format!("{}: 5 conflicts in a row", what())))
    }

    /// A Service runway creates selects what the service's own Deployment selects (an adopted
    /// one's own labels, which every slot's pods carry too), and the slot.
    async fn new_service(&self, name: &str, slot: &str) -> Result<Service, Error> {
        let mut selector = self
            .deployments
            .get_opt(&self.k8s.deployment)
            .await
            .map_err(|e| {
                Error::api(
                    format!(
                        "reading Deployment {}/{}",
                        self.k8s.namespace, self.k8s.deployment
                    ),
                    e,
                )
            })?
            .and_then(|d| d.spec)
            .and_then(|s| s.selector.match_labels)
            .unwrap_or_else(|| BTreeMap::from([(APP.to_string(), self.k8s.deployment.clone())]));
        selector.insert(SLOT.to_string(), slot.to_string());
        let port = self.k8s.port.ok_or_else(|| {
            Error::Template(format!(
                "Service {}/{name} does not exist, and runway needs [kubernetes] port to \
                 create it (the port the app listens on)",
                self.k8s.namespace
            ))
        })?;
        Ok(Service {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(self.k8s.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    SERVICE.to_string(),
                    self.service.clone(),
                )])),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(selector),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: port as i32,
                    target_port: Some(IntOrString::Int(port as i32)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        })
    }
}

impl Services {
    /// The canary's stable and canary Services: `{service}-stable`, `{service}-canary`.
    pub fn canary_names(&self) -> (String, String) {
        (
            format!("{}-stable", self.k8s.service),
            format!("{}-canary", self.k8s.service),
        )
    }
}
