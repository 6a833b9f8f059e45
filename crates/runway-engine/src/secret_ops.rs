//! `runway secrets`: setting, unsetting and listing a service's secrets, and the operation that
//! rolls a serving release's replicas when a secret it uses gets a new value.

use std::sync::Arc;

use runway_wire::api::{DeploymentView, SecretSet, SecretView};
use runway_wire::record::Kind;

use crate::{secrets, Engine, EngineError, NewOperation, Release, Result};

/// The longest value a secret may have: a PEM bundle fits, a file that is not a secret does not.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

impl Engine {
    /// Seals `value` as the next version of `service`'s secret `name`. When the serving
    /// release refers to it, its replicas roll with the new value: a deployment of kind
    /// `secrets`, judged as any other, which goes back to the old versions if it fails.
    /// Refused, changing nothing, when that service is busy or frozen.
    pub async fn set_secret(
        self: &Arc<Self>,
        service: &str,
        name: &str,
        value: &str,
        by: &str,
    ) -> Result<SecretSet> {
        valid_names(service, name)?;
        if value.is_empty() {
            return Err(EngineError::BadRequest(format!(
                "the value of secret {name} is empty: give the value on stdin"
            )));
        }
        if value.len() > MAX_SECRET_BYTES {
            return Err(EngineError::BadRequest(format!(
                "the value of secret {name} has {} bytes; a secret has at most {MAX_SECRET_BYTES}",
                value.len()
            )));
        }
        let serving = self.serving(service)?;
        let rolls = serving
            .as_ref()
            .filter(|s| secrets::referenced(&s.spec).contains(name));
        if let Some(serving) = rolls {
            self.may_roll(service, serving)?;
        }
        let version = self.store.set_secret(service, name, value, by)?;
        tracing::info!(service, secret = name, version, by, "secret set");
        let (rollout, not_rolled) = match rolls {
            None => (None, None),
            Some(serving) => {
                let base_dir = serving.base_dir.to_string_lossy().to_string();
                let started = self
                    .start_operation(NewOperation {
                        reason: Some(&format!("secret {name} is now version {version}")),
                        ..NewOperation::on_release(
                            Kind::Secrets,
                            &serving.version,
                            serving.spec.clone(),
                            &base_dir,
                            by,
                        )
                    })
                    .await;
                // The value is stored: say so, and why its replicas did not roll, rather than
                // an error that reads as if nothing changed.
                match started {
                    Ok(started) => (Some(DeploymentView::from(&started)), None),
                    Err(e @ (EngineError::Busy(_) | EngineError::Frozen(_))) => (
                        None,
                        Some(format!(
                            "{e}; version {version} is stored and the next deployment of `{service}` \
                             runs with it"
                        )),
                    ),
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(SecretSet {
            service: service.to_string(),
            name: name.to_string(),
            version,
            rollout,
            not_rolled,
        })
    }

    /// Forgets `service`'s secret `name` for the deployments to come; the releases that ran
    /// with it keep its versions (a rollback to one brings them back). Refused while the
    /// serving release uses it: a replica restarted later could not start.
    pub fn unset_secret(&self, service: &str, name: &str, by: &str) -> Result<()> {
        valid_names(service, name)?;
        if let Some(serving) = self.serving(service)? {
            if secrets::referenced(&serving.spec).contains(name) {
                return Err(EngineError::Conflict(format!(
                    "the serving release {} of `{service}` uses secret:{name}: deploy a config \
                     without it first, then unset it",
                    serving.version
                )));
            }
        }
        if !self.store.unset_secret(service, name, by)? {
            return Err(EngineError::NotFound(format!(
                "`{service}` has no secret {name}; see `runway secrets list`"
            )));
        }
        tracing::info!(service, secret = name, by, "secret unset");
        Ok(())
    }

    /// `service`'s secrets: names, versions, who set them and when, and the version the
    /// serving release runs with. Never a value.
    pub fn secrets(&self, service: &str) -> Result<Vec<SecretView>> {
        let serving = self.serving(service)?;
        let used = serving.as_ref().map(|s| secrets::referenced(&s.spec));
        Ok(self
            .store
            .secrets(service)?
            .into_iter()
            .map(|row| SecretView {
                serving_version: serving
                    .as_ref()
                    .filter(|_| used.as_ref().is_some_and(|u| u.contains(&row.name)))
                    .and_then(|s| s.secret_versions.get(&row.name).copied()),
                name: row.name,
                version: row.version,
                set_by: row.set_by,
                set_at: row.set_at,
            })
            .collect())
    }

    /// Whether a rollout of `serving` could start now; checked before the new value is
    /// stored, so that a refused `set` changes nothing.
    fn may_roll(&self, service: &str, serving: &Release) -> Result<()> {
        if let Some(frozen) = self.frozen(service) {
            return Err(EngineError::Frozen(format!(
                "service `{service}` is frozen by deployment #{}: decide first (`runway status` \
                 says how), then set the secret",
                frozen.deployment_id
            )));
        }
        if let Some(op) = self.service(service).ok().and_then(|svc| svc.operation()) {
            return Err(EngineError::Busy(format!(
                "service `{service}` is busy with {} and its release {} uses this secret; wait \
                 for it (`runway status`) and set the secret again",
                op.description, serving.version
            )));
        }
        Ok(())
    }
}

fn valid_names(service: &str, name: &str) -> Result<()> {
    if !runway_checks::run::valid_secret_name(name) {
        return Err(EngineError::BadRequest(format!(
            "`{name}` is not a secret name: 1 to 128 letters, digits, `_`, `-` or `.`, not \
             starting with a dot"
        )));
    }
    if !runway_spec::is_valid_service_name(service) {
        return Err(EngineError::BadRequest(format!(
            "`{service}` is not a service name"
        )));
    }
    Ok(())
}
