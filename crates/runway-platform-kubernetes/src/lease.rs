//! Leader election through a `coordination.k8s.io/v1` Lease, so that two runway replicas in a
//! cluster never drive one service at once: only the holder of the Lease opens the state and
//! runs deployments; another waits until the holder stops renewing, then takes over (and
//! resumes what was under way, as after any restart).
//!
//! The rules are client-go's leader election: the holder renews the Lease every
//! [`LeaseTiming::renew_every`]; a candidate takes a Lease only when it has seen the Lease's
//! record unchanged for `leaseDurationSeconds` *on its own clock* (another machine's
//! `renewTime` is never compared with this one's clock, so clock skew cannot make a live Lease
//! look expired); every write carries the `resourceVersion` it read, so two candidates racing
//! for an expired Lease cannot both win (one gets 409 Conflict). A holder that has not renewed
//! within its renew deadline (two thirds of the duration, counted from *before* the request
//! that renewed it, every request bounded by what is left of it) stops, so it is gone before
//! a candidate can take the Lease.

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
    /// The other holder's record (holder, renewTime, resourceVersion) as last seen, and when
    /// (on this machine's clock) it was first seen so.
    observed: std::sync::Mutex<Option<(String, tokio::time::Instant)>>,
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
            observed: std::sync::Mutex::new(None),
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
                let lasts = spec.lease_duration_seconds.unwrap_or(15) as f64;
                let ours = holder == self.identity;
                if !ours && !holder.is_empty() {
                    // Expired only when the record has not changed for its duration, as this
                    // machine's clock counts it.
                    let record = format!(
                        "{holder}/{:?}/{:?}",
                        spec.renew_time.as_ref().map(|t| t.0),
                        lease.metadata.resource_version
                    );
                    let unchanged_for = {
                        let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
                        match observed.as_ref() {
                            Some((seen, since)) if *seen == record => since.elapsed().as_secs_f64(),
                            _ => {
                                *observed = Some((record, tokio::time::Instant::now()));
                                0.0
                            }
                        }
                    };
                    if unchanged_for < lasts {
                        return Ok(Some((holder, unchanged_for)));
                    }
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

    /// Keeps renewing the Lease; resolves (with why) when it was not renewed within its renew
    /// deadline, or another holds it: the process must stop driving at once.
    pub async fn hold(self) -> String {
        // Counted from before the request that renewed it: the renewTime it wrote is no
        // older than this.
        let mut renewed_at = tokio::time::Instant::now();
        let deadline = self.timing.duration * 2 / 3;
        loop {
            tokio::time::sleep(self.timing.renew_every).await;
            let attempt = tokio::time::Instant::now();
            let left = deadline.saturating_sub(renewed_at.elapsed());
            match tokio::time::timeout(left, self.try_hold()).await {
                Ok(Ok(None)) => renewed_at = attempt,
                Ok(Ok(Some((holder, _)))) => {
                    return format!("the Lease {} is held by {holder} now", self.name)
                }
                Ok(Err(e)) => {
                    tracing::warn!(lease = %self.name, "cannot renew the Lease: {e}");
                }
                Err(_) => tracing::warn!(lease = %self.name, "renewing the Lease did not answer"),
            }
            if renewed_at.elapsed() + self.timing.renew_every >= deadline {
                return format!(
                    "the Lease {} was not renewed for {:.1}s (its renew deadline is {:.1}s of \
                     its {}s)",
                    self.name,
                    renewed_at.elapsed().as_secs_f64(),
                    deadline.as_secs_f64(),
                    self.timing.duration.as_secs()
                );
            }
        }
    }
}
