//! Where a release runs as one object that a cluster rolls by itself: a Kubernetes Deployment.
//!
//! On processes and Docker the engine owns every replica: it starts each one, probes it, routes
//! it and retires the old ones by the rolling rules ([`crate::platform`]). A cluster already has
//! a controller that does exactly that, and a team that runs one wants its Deployments to stay
//! what `kubectl` shows them to be. So here the engine hands the cluster the whole release and
//! follows the rollout the cluster carries out, the way `kubectl rollout status` does; the
//! runbook around it (checks, hooks, backups, migrations, records, the way back) is the same.
//!
//! The implementation is crates/runway-platform-kubernetes; a scripted one serves the engine's
//! tests (crates/runway-fakes).

use runway_wire::api::PodView;

use crate::platform::{LogChunk, LogRead, Progress};
use crate::router::BoxFuture;
use crate::Release;

/// A cluster that runs releases (see the module documentation).
pub trait Cluster: Send + Sync {
    /// Makes the release's Deployment run `release` (its image, env, replica count and runway's
    /// marks) and follows the rollout until every replica runs it and is available. `progress`
    /// gets a line each time the rollout's state changes (`2 of 3 updated replicas are
    /// available...`). A release the Deployment already runs is followed, not changed again:
    /// a deployment resumed after a crash calls this again. The error says why the rollout
    /// will not finish (its progress deadline passed) in the cluster's words. With a `slot`,
    /// the Deployment is that blue-green slot's (created from the service's own when missing).
    fn roll<'a>(
        &'a self,
        release: &'a Release,
        slot: Option<&'a str>,
        progress: &'a Progress<'a>,
    ) -> BoxFuture<'a, Result<Rolled, String>>;

    /// A canary by Gateway API: the route's backend weights, `canary` percent to the canary's
    /// Deployment (through its Service), the rest to the service's own.
    fn set_weights<'a>(
        &'a self,
        release: &'a Release,
        canary: u32,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// Blue-green: the slot the service's Service selects now; `None` when it selects none
    /// (the service's own Deployment serves, or there is no Service yet).
    fn live_slot<'a>(
        &'a self,
        release: &'a Release,
    ) -> BoxFuture<'a, Result<Option<String>, String>>;

    /// Blue-green: points the service's Service (or with `preview`, its preview Service) at
    /// the pods of `slot`: the switch, and the switch back.
    fn select<'a>(
        &'a self,
        release: &'a Release,
        preview: bool,
        slot: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// The Deployment's revisions, oldest first (`kubectl rollout history`).
    fn revisions<'a>(
        &'a self,
        release: &'a Release,
    ) -> BoxFuture<'a, Result<Vec<Revision>, String>>;

    /// Scales the release's Deployment (or `slot`'s) to zero and waits until its pods are gone
    /// (recreate's "stop the old release", blue-green's scale-down); `progress` as for
    /// [`Cluster::roll`].
    fn stop<'a>(
        &'a self,
        release: &'a Release,
        slot: Option<&'a str>,
        progress: &'a Progress<'a>,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// The pods of the release's Deployment, of every revision, by name.
    fn pods<'a>(&'a self, release: &'a Release) -> BoxFuture<'a, Result<Vec<PodView>, String>>;

    /// Deletes pod `pod` of the release's Deployment; its ReplicaSet starts a replacement
    /// (`runway nodes restart`, as `kubectl delete pod`).
    fn delete_pod<'a>(
        &'a self,
        release: &'a Release,
        pod: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// What pod `pod` printed: its last lines, or what it printed after a cursor of an earlier
    /// read (the time of the last line read).
    fn pod_log<'a>(
        &'a self,
        release: &'a Release,
        pod: &'a str,
        read: LogRead,
    ) -> BoxFuture<'a, Result<LogChunk, String>>;
}

/// A rollout that finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rolled {
    /// The Deployment's revision that runs the release.
    pub revision: u64,
    /// The cluster's own words (`deployment "api" successfully rolled out`).
    pub message: String,
}

/// One revision of a release's Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub number: u64,
    /// The runway deployment whose release it runs; `None` for a revision runway did not write
    /// (a `kubectl set image`).
    pub deployment: Option<runway_wire::id::DeploymentId>,
}
