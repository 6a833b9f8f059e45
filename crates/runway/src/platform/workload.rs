//! What a replica runs, behind a boundary: a [`Workload`] starts [`Instance`]s of a release.
//!
//! A [`Replica`](super::replica::Replica) is platform-neutral: it keeps the status the engine
//! and the router watch, probes the instance's health endpoint, restarts it with backoff once
//! it has served, and records what happens. What it runs is a workload's instance: a local
//! process here ([`ProcessWorkload`]); a container of the release's image on Docker, started
//! through the Docker API, is another workload with the same replica around it.

use std::path::PathBuf;
use std::time::Duration;

use super::process::{self, Command, Process};
use crate::engine::router::BoxFuture;

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
