//! The engine on fakes: a [`Harness`] is an engine over crates/runway-fakes and the real store in
//! a temporary directory, on tokio's paused clock. No process, port or sleep: a health probe
//! every second and a canary interval of ten seconds cost nothing, and a deployment that takes
//! ten virtual minutes runs in milliseconds.
//!
//! A crash is a runtime dropped in the middle of an operation (every task of the engine goes
//! with it, as with `kill -9`); the fakes' instances and the store survive it, and a second
//! engine on them recovers.

#![allow(dead_code)]

use runway_wire::api::DeployRequest;
use std::sync::Arc;
use std::time::Duration;

use runway_engine::records::Records;
use runway_engine::Engine;
use runway_fakes::{FakeRouter, Fakes, Traffic};
use runway_spec::Spec;
use runway_store::Store;
use runway_wire::id::DeploymentId;
use runway_wire::record::{Deployment, Status};
use runway_wire::Event;

/// runway.toml's start for every test: three replicas of `web`, a 30 s health deadline.
pub const BASE: &str = r#"
[service]
name = "web"
listen = "127.0.0.1:18080"

[run]
command = ["app", "--port", "{port}"]
replicas = 3
drain_timeout = "5s"

[health]
path = "/health"
deadline = "30s"
"#;

/// A runtime on a paused clock: time moves only when every task waits for a timer.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime")
}

pub struct Harness {
    pub fakes: Fakes,
    pub store: Arc<Store>,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Harness {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Arc::new(Store::open(&dir.path().join("state.db")).expect("the store"));
        Harness {
            fakes: Fakes::default(),
            store,
            dir,
        }
    }

    /// A new engine on the harness's fakes and store: the first server, or the one that
    /// starts after a crash. Must be called inside the runtime it is to run on.
    pub fn engine(&self) -> Arc<Engine> {
        Engine::new(self.fakes.context(self.store.clone(), self.dir.path()))
    }

    /// runway.toml: [`BASE`] and `more`.
    pub fn spec(&self, more: &str) -> Spec {
        let text = format!("{BASE}\n{more}");
        runway_spec::parse_str(&text, "runway.toml")
            .unwrap_or_else(|e| panic!("bad test config: {e}\n{text}"))
    }

    pub async fn deploy(&self, engine: &Arc<Engine>, version: &str, spec: Spec) -> DeploymentId {
        let base_dir = self.dir.path().to_string_lossy().to_string();
        engine
            .deploy(DeployRequest::new(version, spec, &base_dir), "tester")
            .await
            .unwrap_or_else(|e| panic!("deploy {version} refused: {e}"))
            .id
    }

    /// Deploys and waits for the outcome.
    pub async fn deploy_and_wait(
        &self,
        engine: &Arc<Engine>,
        version: &str,
        spec: Spec,
    ) -> Deployment {
        let id = self.deploy(engine, version, spec).await;
        self.finished(engine, id).await
    }

    pub fn deployment(&self, id: DeploymentId) -> Deployment {
        self.store
            .deployment(id)
            .expect("the store reads")
            .expect("the deployment exists")
    }

    /// Waits (on the engine's journal, not on a timer) until deployment `id` has ended and the
    /// engine has let go of the service; at most two virtual hours.
    pub async fn finished(&self, engine: &Arc<Engine>, id: DeploymentId) -> Deployment {
        let mut ticks = engine.journal_ticks();
        let wait = async {
            loop {
                let d = self.deployment(id);
                let busy = engine
                    .service(&d.service)
                    .is_ok_and(|s| s.operation().is_some());
                if d.status != Status::Running && !busy {
                    return d;
                }
                // A timer too: the operation lock is released without a journal entry.
                tokio::select! {
                    _ = ticks.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        };
        let ended = tokio::time::timeout(Duration::from_secs(7200), wait)
            .await
            .unwrap_or_else(|_| panic!("deployment #{id} did not end: {:#?}", self.events(id)));
        // The notices follow the journal in a task of their own (feed.rs): a moment of virtual
        // time lets it catch up with the last entries.
        tokio::time::sleep(Duration::from_millis(1)).await;
        ended
    }

    /// Waits until service `web` has no operation (one stopped without its outcome written,
    /// say); at most ten virtual minutes.
    pub async fn operation_stopped(&self, engine: &Arc<Engine>) {
        let busy = || {
            engine
                .service("web")
                .expect("service web exists")
                .operation()
                .is_some()
        };
        let wait = async {
            while busy() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(600), wait)
            .await
            .expect("the operation did not stop within ten virtual minutes");
    }

    /// Waits until deployment `id`'s journal has an event that `matches`.
    pub async fn journaled(
        &self,
        engine: &Arc<Engine>,
        id: DeploymentId,
        matches: impl Fn(&Event) -> bool,
    ) {
        let mut ticks = engine.journal_ticks();
        let wait = async {
            loop {
                if self.events(id).iter().any(&matches) {
                    return;
                }
                let _ = ticks.changed().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(7200), wait)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "deployment #{id} never journaled it: {:#?}",
                    self.events(id)
                )
            })
    }

    /// Deployment `id`'s journal, typed.
    pub fn events(&self, id: DeploymentId) -> Vec<Event> {
        self.store
            .journal_since(id, 0)
            .expect("the journal reads")
            .iter()
            .filter_map(|e| e.typed())
            .collect()
    }

    pub fn router(&self) -> Arc<FakeRouter> {
        self.fakes
            .routers
            .of("web")
            .expect("the service has a router")
    }

    /// The version each running instance runs, sorted: `["v1", "v1", "v1"]`.
    pub fn running(&self) -> Vec<String> {
        self.fakes.platform.running_versions()
    }

    pub fn serving_version(&self) -> Option<String> {
        let id = self
            .store
            .serving_release("web")
            .expect("the store reads")?;
        Some(self.deployment(id).version)
    }
}

/// What a healthy release answers in the fake router: 50 requests a second, none
/// failed, 40 ms each.
pub fn healthy_traffic() -> Traffic {
    Traffic::new(50, 0, Duration::from_millis(40))
}

/// `n` times `version`.
pub fn all(version: &str, n: usize) -> Vec<String> {
    vec![version.to_string(); n]
}
