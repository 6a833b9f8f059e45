//! The process platform: releases run as supervised local processes on this host, behind
//! runway's own proxy. It is the embedded default, and the one a `[run]` section asks for.
//!
//! - [`ProcessPlatform`]: the engine's [`Platform`]: a replica is a process whose argv comes
//!   from `[run] command` (never through a shell), listening on a free loopback port, writing
//!   into its log file in the state dir; found again after a server restart by its pid *and*
//!   start time ([`ProcessHandle`]), so a recycled pid is never mistaken for it.
//! - [`ProcessTasks`]: the engine's [`TaskRunner`](runway_engine::tasks::TaskRunner): a hook
//!   is a process in its own group, killed as a group at its timeout.
//! - [`health::Prober`]: readiness is an HTTP GET of `[health] path` on the replica's port.

pub mod health;
pub mod logfile;
pub mod open_files;
pub mod process;
mod tasks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use runway_engine::platform::{
    Adopted, Capabilities, Instance, LogChunk, LogRead, Platform, Workload,
};
use runway_engine::router::BoxFuture;
use runway_engine::Release;

use health::Prober;
use process::{Command, Process};
pub use tasks::ProcessTasks;

/// Releases as supervised local processes, their logs in the state dir.
pub struct ProcessPlatform {
    pub state_dir: PathBuf,
}

impl Platform for ProcessPlatform {
    fn name(&self) -> &'static str {
        "process"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            adopt: true,
            restart_one: true,
            logs: true,
        }
    }

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
                secrets: release.secrets.clone(),
            },
            log_path: logfile::log_path(&self.state_dir, service, replica),
            health_path: spec.health.path.clone(),
            prober: Prober::new(spec.health.timeout.0),
        })
    }

    fn allocate(&self) -> Result<(u16, serde_json::Value), String> {
        let port =
            process::free_port().map_err(|e| format!("cannot find a free loopback port: {e}"))?;
        let handle = ProcessHandle {
            pid: None,
            start: None,
            port,
        };
        Ok((port, handle.to_json()))
    }

    /// A process is the same one only if its pid *and* start time match: a recycled pid is
    /// not adopted.
    fn adopt<'a>(
        &'a self,
        _replica: &'a str,
        handle: &'a serde_json::Value,
    ) -> BoxFuture<'a, Adopted> {
        let adopted = ProcessHandle::from_json(Some(handle)).map(|handle| {
            let process = handle
                .pid
                .zip(handle.start)
                .and_then(|(pid, start)| Process::adopt(pid, start))
                .map(|p| Box::new(p) as Box<dyn Instance>);
            (process, handle.port)
        });
        Box::pin(async move { adopted })
    }

    /// The replica's log file in the state dir; the cursor is a byte offset into it.
    fn read_log(&self, service: &str, replica: &str, read: LogRead) -> Result<LogChunk, String> {
        let path = logfile::log_path(&self.state_dir, service, replica);
        let (lines, cursor) = match read {
            LogRead::Since(offset) => logfile::read_from(&path, offset).unwrap_or_default(),
            LogRead::Tail(n) => {
                let tail = logfile::tail_lines(&path, n).unwrap_or_default();
                (tail, std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0))
            }
        };
        Ok(LogChunk { lines, cursor })
    }

    fn prune_logs(
        &self,
        older_than: std::time::SystemTime,
        running: &std::collections::BTreeSet<(String, String)>,
    ) -> Result<u64, String> {
        logfile::prune(&self.state_dir, older_than, running).map_err(|e| {
            format!(
                "pruning the replicas' logs in {}: {e}",
                self.state_dir.display()
            )
        })
    }
}

/// What the process platform keeps in a replica's row to find it again after a server
/// restart: the pid *and* its start time (a recycled pid is never mistaken for the replica), and
/// the port it serves on. Stored as JSON (`{"platform":"process","pid":…,"start":…,"port":…}`);
/// the store does not interpret it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "platform", rename = "process")]
pub struct ProcessHandle {
    pub pid: Option<i32>,
    pub start: Option<u64>,
    pub port: u16,
}

impl ProcessHandle {
    pub fn to_json(self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The handle in a replica row, when it is a process's.
    pub fn from_json(handle: Option<&serde_json::Value>) -> Option<ProcessHandle> {
        serde_json::from_value(handle?.clone()).ok()
    }
}

/// A replica as a supervised local process: argv never through a shell, `{port}` filled in,
/// output into the replica's log file.
#[derive(Debug)]
pub struct ProcessWorkload {
    /// argv with `{port}` still in it; `{version}` is already filled in.
    pub argv_template: Vec<String>,
    pub command: Command,
    pub log_path: PathBuf,
    pub health_path: String,
    prober: Prober,
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
    fn start(&self, port: u16) -> BoxFuture<'_, Result<Box<dyn Instance>, String>> {
        let started = Process::spawn(&self.command_for(port), &self.log_path)
            .map(|process| Box::new(process) as Box<dyn Instance>);
        Box::pin(async move { started })
    }

    fn endpoint(&self, port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn probe(&self, port: u16) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.prober.probe(port, &self.health_path))
    }

    fn port_after_exit(&self, port: u16) -> u16 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
        process::free_port().unwrap_or(port)
    }

    fn last_words(&self) -> String {
        process::last_words(&self.log_path, &self.command)
    }

    fn tidy(&self) {
        let _ = logfile::rotate_if_needed(&self.log_path, logfile::MAX_BYTES, logfile::KEEP);
    }
}

impl Instance for Process {
    fn handle(&self, port: u16) -> serde_json::Value {
        let pid = Process::pid(self);
        ProcessHandle {
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
