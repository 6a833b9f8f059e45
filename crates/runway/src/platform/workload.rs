//! What a replica runs, behind a boundary: a [`Workload`] starts [`Instance`]s of a release.
//!
//! A [`Replica`](super::replica::Replica) is platform-neutral: it keeps the status the engine
//! and the router watch, probes the instance's health endpoint, restarts it with backoff once
//! it has served, and records what happens. What it runs is a workload's instance: a local
//! process here ([`ProcessWorkload`]); a container of the release's image on Docker, started
//! through the Docker API, is another workload with the same replica around it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::logfile;
use super::process::{self, Command, Process};
use crate::engine::router::BoxFuture;
use crate::engine::Release;

/// Where a service's releases run: the workload of each replica, an endpoint for a new one,
/// and finding a replica again from the handle the store kept. Local processes here
/// ([`ProcessPlatform`]); Docker containers and Kubernetes pods next.
pub trait Platform: Send + Sync {
    /// What replica `replica` of `release` in `service` runs.
    fn workload(&self, service: &str, release: &Release, replica: &str) -> Arc<dyn Workload>;

    /// The port a new replica serves on, and the handle to record before it starts.
    fn allocate(&self) -> std::io::Result<(u16, serde_json::Value)>;

    /// The instance a stored handle names, if it still runs (after a server restart), and the
    /// port it serves on; `None` for a handle that is not this platform's or names nothing.
    fn adopt(&self, handle: &serde_json::Value) -> Option<(Option<Box<dyn Instance>>, u16)>;
}

/// Releases as supervised local processes, their logs in the state dir.
pub struct ProcessPlatform {
    pub state_dir: PathBuf,
}

impl Platform for ProcessPlatform {
    fn workload(&self, service: &str, release: &Release, replica: &str) -> Arc<dyn Workload> {
        let spec = &release.spec;
        let dir = match &spec.run.dir {
            Some(d) => release.base_dir.join(d),
            None => release.base_dir.clone(),
        };
        let mut env = spec.run.env.clone();
        env.insert("RUNWAY_VERSION".into(), release.version.clone());
        env.insert("RUNWAY_SERVICE".into(), service.to_string());
        env.insert("RUNWAY_REPLICA".into(), replica.to_string());
        Arc::new(ProcessWorkload {
            argv_template: spec
                .run
                .command
                .iter()
                .map(|a| a.replace("{version}", &release.version))
                .collect(),
            command: Command {
                argv: Vec::new(),
                env,
                dir,
                secrets_dir: Some(self.state_dir.join("secrets")),
            },
            log_path: logfile::log_path(&self.state_dir, service, replica),
        })
    }

    fn allocate(&self) -> std::io::Result<(u16, serde_json::Value)> {
        let port = process::free_port()?;
        let handle = super::replica::ProcessHandle {
            pid: None,
            start: None,
            port,
        };
        Ok((port, handle.to_json()))
    }

    /// A process is the same one only if its pid *and* start time match: a recycled pid is
    /// not adopted. `Some((None, port))`: the handle is ours but its process is gone.
    fn adopt(&self, handle: &serde_json::Value) -> Option<(Option<Box<dyn Instance>>, u16)> {
        let handle = super::replica::ProcessHandle::from_json(Some(handle))?;
        let process = handle
            .pid
            .zip(handle.start)
            .and_then(|(pid, start)| Process::adopt(pid, start))
            .map(|p| Box::new(p) as Box<dyn Instance>);
        Some((process, handle.port))
    }
}

/// How the instances of one replica are started.
pub trait Workload: Send + Sync + std::fmt::Debug {
    /// Starts a new instance that serves on `port`.
    fn start(&self, port: u16) -> Result<Box<dyn Instance>, String>;

    /// What an instance that failed said last (its last output, secrets masked), to put in the
    /// failure's reason; empty when there is nothing.
    fn last_words(&self) -> String;
}

/// A running instance of a workload.
pub trait Instance: Send {
    /// What the platform needs to find the instance again after a server restart, serving
    /// on `port` (the store keeps it as the replica's handle).
    fn handle(&self, port: u16) -> serde_json::Value;

    /// Its process id, for a local process (shown in `status`).
    fn pid(&self) -> Option<i32>;

    /// Resolves when the instance has exited, saying how.
    fn exited(&mut self) -> BoxFuture<'_, String>;

    /// Stops it politely, then after `grace` firmly; resolves when it is gone.
    fn stop(&mut self, grace: Duration) -> BoxFuture<'_, ()>;
}

/// A replica as a supervised local process: argv never through a shell, `{port}` filled in,
/// output into the replica's log file.
#[derive(Debug, Clone)]
pub struct ProcessWorkload {
    /// argv with `{port}` still in it; `{version}` is already filled in.
    pub argv_template: Vec<String>,
    pub command: Command,
    pub log_path: PathBuf,
}

impl ProcessWorkload {
    fn command_for(&self, port: u16) -> Command {
        let mut cmd = self.command.clone();
        cmd.argv = self
            .argv_template
            .iter()
            .map(|a| a.replace("{port}", &port.to_string()))
            .collect();
        cmd.env.insert("PORT".into(), port.to_string());
        cmd
    }
}

impl Workload for ProcessWorkload {
    fn start(&self, port: u16) -> Result<Box<dyn Instance>, String> {
        let process = Process::spawn(&self.command_for(port), &self.log_path)?;
        Ok(Box::new(process))
    }

    fn last_words(&self) -> String {
        process::last_words(&self.log_path, &self.command)
    }
}

impl Instance for Process {
    fn handle(&self, port: u16) -> serde_json::Value {
        let pid = Process::pid(self);
        super::replica::ProcessHandle {
            pid,
            start: pid.and_then(process::start_time),
            port,
        }
        .to_json()
    }

    fn pid(&self) -> Option<i32> {
        Process::pid(self)
    }

    fn exited(&mut self) -> BoxFuture<'_, String> {
        Box::pin(self.wait())
    }

    fn stop(&mut self, grace: Duration) -> BoxFuture<'_, ()> {
        Box::pin(self.terminate(grace))
    }
}
