//! Where a release runs, behind a boundary: a [`Platform`] gives each replica a [`Workload`],
//! whose [`Instance`]s the replica starts, probes and stops.
//!
//! A [`Replica`](crate::replica::Replica) is platform-neutral: it keeps the status the engine
//! and the router watch, asks its workload whether the instance is ready, restarts it with
//! backoff once it has served, and records what happens. What it runs is a workload's
//! instance: a local process (crates/runway-platform-process); a container of the release's
//! image on Docker is another workload with the same replica around it; a fake one serves
//! the engine's own tests (crates/runway-fakes).
//!
//! The boundary is drawn where the three platforms differ and no further: how an instance is
//! started, found again after a server restart (a pid and its start time, a container id, a
//! pod name: the *handle*, kept by the store without being read), probed, reached (its
//! endpoint), stopped and logged. Everything else (rolling steps, drain, restarts with backoff,
//! records) is the engine's, the same on every platform.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use runway_spec::Spec;

use crate::router::BoxFuture;
use crate::Release;

/// What a platform can do beyond starting and stopping instances, so that the engine (and a
/// user, through its errors) knows before asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Instances outlive the server and are adopted from their handles after a restart.
    pub adopt: bool,
    /// One instance can be restarted on its own (`runway nodes restart`).
    pub restart_one: bool,
    /// The platform keeps its instances' output for `runway logs` ([`Platform::read_log`]).
    pub logs: bool,
}

/// Where a service's releases run: the workload of each replica, an address for a new one,
/// and finding a replica again from the handle the store kept.
pub trait Platform: Send + Sync {
    /// Its name in records and errors (`process`, `docker`, `kubernetes`).
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// What replica `replica` of `release` in `service` runs.
    fn workload(&self, service: &str, release: &Release, replica: &str) -> Arc<dyn Workload>;

    /// Gets what `release` needs before any of its instances start (a container platform
    /// pulls its image, per its pull policy); an error, in the platform's words, fails the
    /// deployment before anything changes. It may answer the release's config with what it
    /// pinned (the image id its tag named), which the engine records with the release, so
    /// that a rollback to it runs exactly that. Nothing to do for a local process.
    /// `progress` takes a line for the deployment's journal as the work goes (a layer of the
    /// image pulled).
    fn prepare<'a>(
        &'a self,
        release: &'a Release,
        progress: &'a Progress<'a>,
    ) -> BoxFuture<'a, Result<Prepared, String>> {
        let _ = (release, progress);
        Box::pin(async { Ok(Prepared::default()) })
    }

    /// After a server restart: removes the instances of `service` that belong to none of the
    /// `replicas` the records know (a container of a release that no longer exists). A local
    /// process cannot be found without its record: nothing to do there.
    fn sweep<'a>(&'a self, service: &'a str, replicas: &'a [String]) -> BoxFuture<'a, ()> {
        let _ = (service, replicas);
        Box::pin(async {})
    }

    /// The port a new replica serves on, and the handle to record before it starts.
    fn allocate(&self) -> Result<(u16, serde_json::Value), String>;

    /// The instance a stored handle names, if it still runs (after a server restart), and the
    /// port it serves on; `None` for a handle that is not this platform's or names nothing;
    /// `Some((None, port))` for a handle that is ours whose instance is gone. (A container
    /// platform asks its engine: this is async.) `replica` is the replica's name: a platform
    /// that labels its instances with it finds one that started after the handle was last
    /// recorded (the server died in between).
    fn adopt<'a>(
        &'a self,
        replica: &'a str,
        handle: &'a serde_json::Value,
    ) -> BoxFuture<'a, Adopted>;

    /// Replica `replica` of `service`'s output, running or not: its last lines, or what it
    /// wrote since a cursor of an earlier read (follow mode); with the cursor to pass next.
    /// A file read for a local process, the Docker API's log stream, a pod's log on
    /// Kubernetes. An error says why there is nothing to read.
    fn read_log(&self, service: &str, replica: &str, read: LogRead) -> Result<LogChunk, String>;

    /// Removes the output runway keeps of replicas that are not `running` (`(service,
    /// replica)`) and wrote nothing since `older_than` (the retention pass, retention.rs);
    /// how many files went. A platform that keeps no output of its own (a cluster's logs are
    /// its own business) has nothing to remove.
    fn prune_logs(
        &self,
        older_than: std::time::SystemTime,
        running: &std::collections::BTreeSet<(String, String)>,
    ) -> Result<u64, String> {
        let _ = (older_than, running);
        Ok(0)
    }
}

/// What [`Platform::read_log`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRead {
    /// The last `n` lines.
    Tail(usize),
    /// What was written since this cursor (from an earlier [`LogChunk`]).
    Since(u64),
}

/// Lines of a replica's output, and where the next read goes on from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogChunk {
    pub lines: Vec<String>,
    pub cursor: u64,
}

/// Where [`Platform::prepare`] reports its progress, a line at a time.
pub type Progress<'a> = dyn Fn(String) + Send + Sync + 'a;

/// What [`Platform::prepare`] did.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// The release's config with what was pinned (its image id), to record with the release.
    pub spec: Option<Spec>,
    /// One line for the deployment's journal (`pulled registry/atom:v2 as sha256:...`).
    pub what: Option<String>,
}

/// What [`Platform::adopt`] found: the instance if it still runs, and its port; `None` for a
/// handle that is not the platform's.
pub type Adopted = Option<(Option<Box<dyn Instance>>, u16)>;

/// How the instances of one replica are started, reached and probed.
pub trait Workload: Send + Sync + std::fmt::Debug {
    /// Starts a new instance that serves on `port` (spawns a process; creates and starts a
    /// container).
    fn start(&self, port: u16) -> BoxFuture<'_, Result<Box<dyn Instance>, String>>;

    /// Where an instance serving on `port` is reached: what the router sends requests to.
    fn endpoint(&self, port: u16) -> SocketAddr;

    /// Whether the instance serving on `port` is ready for requests (the release's health
    /// check); otherwise one line saying why not.
    fn probe(&self, port: u16) -> BoxFuture<'_, Result<(), String>>;

    /// The port a restarted instance serves on: `port` again when it is still free (so logs
    /// and dashboards stay stable), else a new one.
    fn port_after_exit(&self, port: u16) -> u16 {
        port
    }

    /// What an instance that failed said last (its last output, secrets masked), to put in the
    /// failure's reason; empty when there is nothing.
    fn last_words(&self) -> String;

    /// Periodic upkeep while the replica runs (rotating its log file).
    fn tidy(&self) {}
}

/// A running instance of a workload.
pub trait Instance: Send {
    /// What the platform needs to find the instance again after a server restart, serving
    /// on `port` (the store keeps it as the replica's handle).
    fn handle(&self, port: u16) -> serde_json::Value;

    /// Its process id, for a local process (shown in `status`).
    fn pid(&self) -> Option<i32>;

    /// Its container's id, for a container (shown in `status --json` and `nodes --json`).
    fn container(&self) -> Option<String> {
        None
    }

    /// The image id it runs, for a container (shown with the container).
    fn image(&self) -> Option<String> {
        None
    }

    /// Resolves when the instance has exited, saying how.
    fn exited(&mut self) -> BoxFuture<'_, String>;

    /// Stops it politely, then after `grace` firmly; resolves when it is gone.
    fn stop(&mut self, grace: Duration) -> BoxFuture<'_, ()>;
}
