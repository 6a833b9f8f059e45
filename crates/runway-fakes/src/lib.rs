//! In-memory stand-ins for the engine's boundaries, as a second implementation of each would
//! be: a [`FakePlatform`] whose instances are entries in a table, a [`FakeCluster`] whose
//! Deployments roll at once, a [`FakeRouter`] that
//! records the splits it is given and reports scripted traffic, scripted [`FakeTasks`],
//! [`FakeChecks`] and [`FakeQueries`].
//!
//! They are deterministic and touch no process, port or clock of their own: with tokio's
//! paused clock the engine's whole deployments (health probes every second, canary intervals
//! of a minute, pauses of ten) run in milliseconds. What they do not model is said where it
//! matters; the end-to-end tests (crates/runway/tests/e2e) run the real adapters.
//!
//! A [`Fakes`] bundle builds an engine [`Context`] over them, and can build it again on the same
//! fakes and store: a server that crashed and started again, with its instances still running.

mod checks;
mod clock;
mod cluster;
mod notifier;
mod platform;
mod router;
mod tasks;

use std::path::Path;
use std::sync::Arc;

use runway_engine::records::Records;
use runway_engine::Context;

pub use checks::{FakeChecks, FakeQueries};
pub use clock::FakeClock;
pub use cluster::FakeCluster;
pub use notifier::FakeNotifier;
pub use platform::{Behavior, FakePlatform, Happened};
pub use router::{Drain, FakeRouter, FakeRouters, Traffic};
pub use tasks::FakeTasks;

/// One of each fake, shared by every engine built from them.
#[derive(Clone, Default)]
pub struct Fakes {
    pub platform: Arc<FakePlatform>,
    pub cluster: Arc<FakeCluster>,
    pub routers: Arc<FakeRouters>,
    pub tasks: Arc<FakeTasks>,
    pub checks: Arc<FakeChecks>,
    pub queries: Arc<FakeQueries>,
    pub clock: Arc<FakeClock>,
    pub notifier: Arc<FakeNotifier>,
}

impl Fakes {
    /// An engine's context over these fakes, `records` and `state_dir`.
    pub fn context(&self, records: Arc<dyn Records>, state_dir: &Path) -> Context {
        Context {
            records,
            platform: self.platform.clone(),
            cluster: self.cluster.clone(),
            tasks: self.tasks.clone(),
            // The real host storage, in the test's state directory: a scripted task writes
            // nothing, so its backups are empty directories.
            backups: Arc::new(runway_engine::backups::HostBackups::new(state_dir)),
            routers: self.routers.clone(),
            queries: self.queries.clone(),
            checks: self.checks.clone(),
            clock: self.clock.clone(),
            notifier: self.notifier.clone(),
            state_dir: state_dir.to_path_buf(),
        }
    }
}
