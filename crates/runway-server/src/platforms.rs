//! Which platform runs a release: its own section of runway.toml says (`[run]`: local
//! processes; `[docker]`: containers; `[kubernetes]`: a cluster, which the engine drives
//! through its `Cluster`). The engine sees one `Platform`, one `TaskRunner`, one
//! `BackupStorage` and one `Routers`; these hand each call to the platform of the release, or
//! of the handle, at hand.

use std::sync::Arc;

use runway_engine::backups::{BackupStorage, HostBackups};
use runway_engine::platform::{
    Adopted, Capabilities, LogChunk, LogRead, Platform, Prepared, Progress, Workload,
};
use runway_engine::router::{BoxFuture, Routers, TrafficRouter};
use runway_engine::tasks::{Outcome, Task, TaskRunner};
use runway_engine::Release;
use runway_platform_docker::DockerPlatform;
use runway_platform_kubernetes::backups::{ClaimBackups, ClaimPath};
use runway_platform_process::ProcessPlatform;
use runway_wire::id::DeploymentId;

pub struct ByRelease {
    pub process: ProcessPlatform,
    pub docker: DockerPlatform,
}

impl ByRelease {
    fn of(&self, release: &Release) -> &dyn Platform {
        if release.spec.docker.is_some() {
            &self.docker
        } else {
            &self.process
        }
    }
}

impl Platform for ByRelease {
    fn name(&self) -> &'static str {
        "process or docker"
    }

    /// What both can do.
    fn capabilities(&self) -> Capabilities {
        let (p, d) = (self.process.capabilities(), self.docker.capabilities());
        Capabilities {
            adopt: p.adopt && d.adopt,
            restart_one: p.restart_one && d.restart_one,
            logs: p.logs && d.logs,
        }
    }

    fn workload(&self, service: &str, release: &Release, replica: &str) -> Arc<dyn Workload> {
        self.of(release).workload(service, release, replica)
    }

    fn prepare<'a>(
        &'a self,
        release: &'a Release,
        progress: &'a Progress<'a>,
    ) -> BoxFuture<'a, Result<Prepared, String>> {
        self.of(release).prepare(release, progress)
    }

    /// Containers are the ones that can be found without their records.
    fn sweep<'a>(&'a self, service: &'a str, replicas: &'a [String]) -> BoxFuture<'a, ()> {
        self.docker.sweep(service, replicas)
    }

    /// A loopback port either way; the first handle is replaced by the instance's own as soon
    /// as it starts.
    fn allocate(&self) -> Result<(u16, serde_json::Value), String> {
        self.process.allocate()
    }

    fn adopt<'a>(
        &'a self,
        replica: &'a str,
        handle: &'a serde_json::Value,
    ) -> BoxFuture<'a, Adopted> {
        if handle["platform"] == "docker" {
            self.docker.adopt(replica, handle)
        } else {
            self.process.adopt(replica, handle)
        }
    }

    /// A container's log when the replica is (or was) a container, else its log file.
    fn read_log(&self, service: &str, replica: &str, read: LogRead) -> Result<LogChunk, String> {
        let container = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(self.docker.has_container(replica))
        });
        if container {
            self.docker.read_log(service, replica, read)
        } else {
            self.process.read_log(service, replica, read)
        }
    }

    /// Both keep their replicas' output files in the state dir's `logs/`, which the process
    /// platform prunes (a container's own log goes with the container).
    fn prune_logs(
        &self,
        older_than: std::time::SystemTime,
        running: &std::collections::BTreeSet<(String, String)>,
    ) -> Result<u64, String> {
        self.process.prune_logs(older_than, running)
    }
}

/// Hooks run where the release runs: in a one-off container of a `[docker]` release's image,
/// as a Job of a `[kubernetes]` release's pod template, else as a local process.
pub struct TasksByRelease {
    pub process: runway_platform_process::ProcessTasks,
    pub docker: runway_platform_docker::DockerTasks,
    pub kubernetes: runway_platform_kubernetes::KubernetesTasks,
}

impl TaskRunner for TasksByRelease {
    fn run<'a>(&'a self, task: Task<'a>) -> BoxFuture<'a, (Outcome, String, String)> {
        if task.release.spec.docker.is_some() {
            self.docker.run(task)
        } else if task.release.spec.kubernetes.is_some() {
            self.kubernetes.run(task)
        } else {
            self.process.run(task)
        }
    }
}

/// Backups on runway's host for processes and containers (a hook's container mounts the
/// directory), on a PersistentVolumeClaim for `[kubernetes]` releases (whose Jobs' own disk
/// goes with them). A backup is removed where it is, whatever the release is now.
pub struct BackupsByPlatform {
    pub host: HostBackups,
    pub claim: ClaimBackups,
}

impl BackupsByPlatform {
    fn of(&self, release: &Release) -> &dyn BackupStorage {
        if release.spec.kubernetes.is_some() {
            &self.claim
        } else {
            &self.host
        }
    }

    fn holding(&self, location: &str) -> &dyn BackupStorage {
        if ClaimPath::parse(location).is_some() {
            &self.claim
        } else {
            &self.host
        }
    }
}

impl BackupStorage for BackupsByPlatform {
    fn location(&self, release: &Release, id: DeploymentId) -> Result<String, String> {
        self.of(release).location(release, id)
    }

    fn reachable(&self, release: &Release, location: &str) -> Result<(), String> {
        self.of(release).reachable(release, location)
    }

    fn prepare<'a>(
        &'a self,
        release: &'a Release,
        location: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.of(release).prepare(release, location)
    }

    fn size<'a>(
        &'a self,
        release: &'a Release,
        location: &'a str,
    ) -> BoxFuture<'a, Result<u64, String>> {
        self.holding(location).size(release, location)
    }

    fn remove<'a>(
        &'a self,
        release: &'a Release,
        location: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.holding(location).remove(release, location)
    }
}

/// runway's proxy in front of a service of processes or containers; the cluster's own routing
/// for a `[kubernetes]` one.
pub struct RoutersByPlatform {
    pub builtin: runway_builtin_router::BuiltinRouters,
    pub cluster: runway_platform_kubernetes::router::ClusterRouters,
}

impl Routers for RoutersByPlatform {
    fn bind<'a>(
        &'a self,
        service: &'a str,
        spec: &'a runway_spec::Spec,
    ) -> BoxFuture<'a, Result<Arc<dyn TrafficRouter>, String>> {
        if spec.kubernetes.is_some() {
            self.cluster.bind(service, spec)
        } else {
            self.builtin.bind(service, spec)
        }
    }
}
