//! A platform whose instances are rows in a table: started, probed, crashed and stopped on
//! the test's say-so, and still "running" after the engine that started them is gone (as
//! processes outlive a server killed with -9), so a second engine adopts them by handle.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use runway_engine::platform::{
    Adopted, Capabilities, Instance, LogChunk, LogRead, Platform, Workload,
};
use runway_engine::router::BoxFuture;
use runway_engine::Release;
use tokio::sync::watch;

/// How the instances of a version behave.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Behavior {
    /// Starts and passes every readiness probe.
    #[default]
    Ready,
    /// Starts and never passes a probe (a wrong health path, an app stuck in start-up).
    NeverReady,
    /// Cannot start (a missing binary, an image that does not exist), saying this.
    FailToStart(String),
    /// Starts and exits at once, saying this (an app that crashes on a bad config).
    ExitAtStart(String),
}

#[derive(Default)]
struct State {
    next_port: u16,
    next_instance: u64,
    behaviors: BTreeMap<String, Behavior>,
    instances: BTreeMap<u64, Row>,
    /// Every start, in order: (replica, version).
    starts: Vec<(String, String)>,
    /// Every start and stop, in order.
    history: Vec<Happened>,
    /// Instances die with the server (a platform without adoption).
    no_adoption: bool,
}

/// What happened to an instance, in [`FakePlatform::history`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happened {
    Started { replica: String, version: String },
    Stopped { replica: String },
}

struct Row {
    replica: String,
    version: String,
    port: u16,
    /// `Some(how)` once it has exited.
    exit: watch::Sender<Option<String>>,
}

impl Row {
    fn running(&self) -> bool {
        self.exit.borrow().is_none()
    }
}

/// The platform (see the module's doc). Clone-free: share it in an `Arc`.
#[derive(Default)]
pub struct FakePlatform {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakePlatform {
    /// From now on, instances of `version` behave so (the default is [`Behavior::Ready`]).
    pub fn behave(&self, version: &str, behavior: Behavior) {
        lock(&self.state)
            .behaviors
            .insert(version.to_string(), behavior);
    }

    /// The running instances: (replica, version), oldest first.
    pub fn running(&self) -> Vec<(String, String)> {
        lock(&self.state)
            .instances
            .values()
            .filter(|r| r.running())
            .map(|r| (r.replica.clone(), r.version.clone()))
            .collect()
    }

    /// The versions of the running instances, one entry per instance, sorted.
    pub fn running_versions(&self) -> Vec<String> {
        let mut versions: Vec<String> = self.running().into_iter().map(|(_, v)| v).collect();
        versions.sort();
        versions
    }

    /// From now on the platform's instances do not outlive the server: it adopts none.
    pub fn without_adoption(&self) {
        lock(&self.state).no_adoption = true;
    }

    /// Every instance ever started: (replica, version), in order.
    pub fn starts(&self) -> Vec<(String, String)> {
        lock(&self.state).starts.clone()
    }

    /// Every start and every stop the engine asked for, in order.
    pub fn history(&self) -> Vec<Happened> {
        lock(&self.state).history.clone()
    }

    /// The running instance of `replica` exits, saying `how` (a crash).
    pub fn crash(&self, replica: &str, how: &str) -> bool {
        let state = lock(&self.state);
        let row = state
            .instances
            .values()
            .find(|r| r.replica == replica && r.running());
        match row {
            Some(row) => {
                row.exit.send_replace(Some(how.to_string()));
                true
            }
            None => false,
        }
    }
}

impl FakePlatform {
    /// The instance a handle names, as [`Platform::adopt`] answers.
    fn find(&self, handle: &serde_json::Value) -> Adopted {
        if handle["platform"] != "fake" {
            return None;
        }
        let port = handle["port"].as_u64()? as u16;
        let Some(id) = handle["instance"].as_u64() else {
            return Some((None, port));
        };
        let state = lock(&self.state);
        let instance = state.instances.get(&id).filter(|r| r.running()).map(|row| {
            Box::new(FakeInstance {
                id,
                state: self.state.clone(),
                exit: row.exit.subscribe(),
            }) as Box<dyn Instance>
        });
        Some((instance, port))
    }
}

impl State {
    fn behavior(&self, version: &str) -> Behavior {
        self.behaviors.get(version).cloned().unwrap_or_default()
    }
}

impl Platform for FakePlatform {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            adopt: !lock(&self.state).no_adoption,
            restart_one: true,
            logs: false,
        }
    }

    fn workload(&self, _service: &str, release: &Release, replica: &str) -> Arc<dyn Workload> {
        Arc::new(FakeWorkload {
            state: self.state.clone(),
            version: release.version.clone(),
            replica: replica.to_string(),
        })
    }

    fn allocate(&self) -> Result<(u16, serde_json::Value), String> {
        let mut state = lock(&self.state);
        state.next_port += 1;
        let port = 20_000 + state.next_port;
        Ok((port, serde_json::json!({"platform": "fake", "port": port})))
    }

    fn adopt<'a>(
        &'a self,
        _replica: &'a str,
        handle: &'a serde_json::Value,
    ) -> BoxFuture<'a, Adopted> {
        let adopted = self.find(handle);
        Box::pin(async move { adopted })
    }

    fn read_log(&self, _service: &str, _replica: &str, _read: LogRead) -> Result<LogChunk, String> {
        Err("the fake platform keeps no output".into())
    }
}

/// A replica's workload. Its version's [`Behavior`] is read at each start and probe, so a
/// test's `behave` reaches replicas made before it, and their restarts.
struct FakeWorkload {
    state: Arc<Mutex<State>>,
    version: String,
    replica: String,
}

impl FakeWorkload {
    fn start_now(&self, port: u16) -> Result<Box<dyn Instance>, String> {
        let mut state = lock(&self.state);
        let behavior = state.behavior(&self.version);
        state
            .starts
            .push((self.replica.clone(), self.version.clone()));
        if let Behavior::FailToStart(why) = &behavior {
            return Err(why.clone());
        }
        state.history.push(Happened::Started {
            replica: self.replica.clone(),
            version: self.version.clone(),
        });
        let exited = match &behavior {
            Behavior::ExitAtStart(how) => Some(how.clone()),
            _ => None,
        };
        state.next_instance += 1;
        let id = state.next_instance;
        let (exit, rx) = watch::channel(exited);
        state.instances.insert(
            id,
            Row {
                replica: self.replica.clone(),
                version: self.version.clone(),
                port,
                exit,
            },
        );
        Ok(Box::new(FakeInstance {
            id,
            state: self.state.clone(),
            exit: rx,
        }))
    }
}

impl std::fmt::Debug for FakeWorkload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FakeWorkload({} {})", self.replica, self.version)
    }
}

impl Workload for FakeWorkload {
    fn start(&self, port: u16) -> BoxFuture<'_, Result<Box<dyn Instance>, String>> {
        let started = self.start_now(port);
        Box::pin(async move { started })
    }

    fn endpoint(&self, port: u16) -> SocketAddr {
        // A documentation address (RFC 5737): nothing ever connects to it.
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    fn probe(&self, port: u16) -> BoxFuture<'_, Result<(), String>> {
        let state = lock(&self.state);
        let running = state
            .instances
            .values()
            .any(|r| r.port == port && r.running());
        let answer = match (&state.behavior(&self.version), running) {
            (_, false) => Err(format!("GET :{port}/health failed: connection refused")),
            (Behavior::NeverReady, true) => Err(format!("GET :{port}/health answered 503")),
            _ => Ok(()),
        };
        Box::pin(async move { answer })
    }

    fn last_words(&self) -> String {
        String::new()
    }
}

struct FakeInstance {
    id: u64,
    state: Arc<Mutex<State>>,
    exit: watch::Receiver<Option<String>>,
}

impl Instance for FakeInstance {
    fn handle(&self, port: u16) -> serde_json::Value {
        serde_json::json!({"platform": "fake", "port": port, "instance": self.id})
    }

    fn pid(&self) -> Option<i32> {
        None
    }

    fn exited(&mut self) -> BoxFuture<'_, String> {
        Box::pin(async move {
            match self.exit.wait_for(Option::is_some).await {
                Ok(how) => how.clone().unwrap_or_default(),
                // The platform is gone: so is the instance.
                Err(_) => "exited".to_string(),
            }
        })
    }

    fn stop(&mut self, _grace: Duration) -> BoxFuture<'_, ()> {
        let mut state = lock(&self.state);
        let stopped = match state.instances.get(&self.id) {
            Some(row) if row.running() => {
                row.exit.send_replace(Some("stopped".to_string()));
                Some(row.replica.clone())
            }
            _ => None,
        };
        if let Some(replica) = stopped {
            state.history.push(Happened::Stopped { replica });
        }
        Box::pin(async {})
    }
}
