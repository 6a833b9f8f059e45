//! Leader election through a `coordination.k8s.io/v1` Lease, so that two runway replicas in a
//! cluster never drive one service at once: only the holder of the Lease opens the state and
//! runs deployments; another waits until the holder stops renewing, then takes over (and
//! resumes what was under way, as after any restart).
//!
//! The rules are client-go's leader election: the holder renews the Lease every
//! [`LeaseTiming::renew_every`]; a Lease whose `renewTime` is older than its
//! `leaseDurationSeconds` may be taken; every write carries the `resourceVersion` it read, so
//! two candidates racing for an expired Lease cannot both win (one gets 409 Conflict). A holder
//! that cannot renew before its own Lease would expire stops, rather than keep driving while
//! another may have taken over.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::Error;

/// How long a Lease lasts without renewal, and how often its holder renews it.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    pub duration: Duration,
    pub renew_every: Duration,
}

impl Default for LeaseTiming {
    /// client-go's defaults: 15 s, renewed every 2 s.
    fn default() -> Self {
        LeaseTiming {
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(2),
        }
    }
}

/// A Lease this process holds.
pub struct Leader {
    leases: Api<Lease>,
    name: String,
    identity: String,
    timing: LeaseTiming,
}

/// Who holds the Lease now, when it is not us: (holder, seconds since it renewed).
pub type Held = (String, f64);

impl Leader {
    /// Waits until this process (`identity`) holds Lease `name` in `namespace`; `waiting` is
    /// told who holds it while another does.
    pub async fn acquire(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: LeaseTiming,
        waiting: impl Fn(&Held),
    ) -> Result<Leader, Error> {
        let leader = Leader {
            leases: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            timing,
        };
        loop {
            match leader.try_hold().await? {
                None => return Ok(leader),
                Some(held) => waiting(&held),
            }
            tokio::time::sleep(timing.renew_every).await;
        }
    }

    /// Takes or renews the Lease if it is free, expired or ours: `None` when we hold it now,
    /// else who does.
    async fn try_hold(&self) -> Result<Option<Held>, Error> {
        let what = || format!("the Lease {}", self.name);
        let now = Timestamp::now();
        let current = self
            .leases
            .get_opt(&self.name)
            .await
            .map_err(|e| Error::api(format!("reading {}", what()), e))?;
        let mine = LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.timing.duration.as_secs().max(1) as i32),
            renew_time: Some(MicroTime(now)),
            ..Default::default()
        };
        let written = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        acquire_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..mine
                    }),
                };
                self.leases.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                let spec = lease.spec.clone().unwrap_or_default();
                let holder = spec.holder_identity.clone().unwrap_or_default();
                let age = spec
                    .renew_time
                    .as_ref()
                    .map_or(f64::INFINITY, |t| now.duration_since(t.0).as_secs_f64());
                let lasts = spec.lease_duration_seconds.unwrap_or(15) as f64;
                let ours = holder == self.identity;
                if !ours && !holder.is_empty() && age < lasts {
                    return Ok(Some((holder, age)));
                }
                lease.spec = Some(LeaseSpec {
                    acquire_time: if ours {
                        spec.acquire_time
                    } else {
                        Some(MicroTime(now))
                    },
                    lease_transitions: Some(spec.lease_transitions.unwrap_or(0) + i32::from(!ours)),
                    ..mine
                });
                self.leases
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(_) => Ok(None),
            // Another candidate wrote first: it holds it (for now).
            Err(kube::Error::Api(status)) if status.code == 409 => {
                Ok(Some(("another candidate".into(), 0.0)))
            }
            Err(e) => Err(Error::api(format!("writing {}", what()), e)),
        }
    }

    /// Keeps renewing the Lease; resolves (with why) when it could not be renewed before it
    /// would expire, or another holds it: the process must stop driving at once.
    pub async fn hold(self) -> String {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.timing.renew_every).await;
            match self.try_hold().await {
                Ok(None) => last_renewed = tokio::time::Instant::now(),
                Ok(Some((holder, _))) => {
                    return format!("the Lease {} is held by {holder} now", self.name)
                }
                Err(e) => {
                    tracing::warn!(lease = %self.name, "cannot renew the Lease: {e}");
                    if last_renewed.elapsed() + self.timing.renew_every >= self.timing.duration {
                        return format!(
                            "the Lease {} could not be renewed for {}s: {e}",
                            self.name,
                            last_renewed.elapsed().as_secs()
                        );
                    }
                }
            }
        }
    }
}
