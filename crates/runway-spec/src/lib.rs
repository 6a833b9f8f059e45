//! The model of `runway.toml`: parsing, defaults, validation and error messages.
//!
//! A service deployed by runway is described in one small TOML file:
//!
//! ```toml
//! [service]
//! name = "web"
//! listen = "127.0.0.1:8080"
//!
//! [run]
//! command = ["python3", "app.py", "--port", "{port}"]
//! replicas = 3
//! ```
//!
//! Optional sections: `[health]` (the readiness check), `[strategy]` (how a release
//! replaces the old one: `kind = "rolling"`, the default, `"canary"` with traffic
//! `steps`, `"blue-green"`, or `"recreate"`, which stops the old release behind a
//! maintenance page before starting the new one), `[analysis]` (the metrics and
//! conditions that judge a progressive rollout; the conditions' grammar is
//! `runway-analysis`'s), any number of `[[checks]]` (the runbook's checklist items,
//! run as preflight gates, verification, smoke tests and scheduled checklists; their
//! model is `runway-checks`' [`CheckSpec`], re-exported here), `[hooks]` (the
//! database work around a deployment: `[hooks.backup]`, `[hooks.migrate]` with its
//! rollback policy, and `[[hooks.run]]` commands at named phases) and `[maintenance]`
//! (the page the proxy serves in maintenance or read-only mode).
//!
//! [`parse_str`] / [`parse_file`] turn that text into a complete [`Spec`] (defaults
//! filled in, every rule checked) or a [`SpecError`] that names the file, line and
//! column of the offending text and usually says how to fix it. Unknown keys are
//! errors, because a misspelled optional key would otherwise be silently ignored.
//!
//! The crate is organised by job:
//! - `model`: the public types, their defaults and JSON shape, and [`Spec::validate`];
//! - `reader`: TOML text to [`Spec`], keeping positions for errors (`reader/checks.rs`
//!   for `[[checks]]`, `reader/hooks.rs` for `[hooks]` and `[maintenance]`);
//! - `rules`: the semantic rules, shared by the reader and [`Spec::validate`]
//!   (`rules/checks.rs` for `[[checks]]`, `rules/hooks.rs` for `[hooks]` and
//!   `[maintenance]`);
//! - `duration`: the `"1m30s"` duration syntax ([`parse_duration`], [`Dur`]);
//! - `error`: [`SpecError`] and its rustc-like rendering;
//! - `suggest`: "did you mean" for typos.

mod duration;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod incidents;
mod model;
pub mod notify;
mod policy;
mod reader;
mod rules;
mod suggest;

use std::path::Path;

pub use duration::{parse_duration, Dur};
pub use error::{SpecError, SpecErrors};
pub use model::{
    AnalysisMetric, AnalysisSpec, BackupHook, BlueGreenSpec, CanarySpec, CanaryStep,
    ClusterTraffic, DockerSpec, HealthSpec, HookPhase, HooksSpec, KubernetesSpec, MaintenanceSpec,
    MetricSource, MigrateHook, OnFailure, Pause, PhaseHook, ProxyMetric, ProxySpec, PullPolicy,
    RecreateSpec, RollingSpec, RunSpec, ServiceSpec, Spec, StrategySpec,
};
pub use policy::{DeployPolicy, DeployType, DeployTypes, FreezeSpec, FreezeWhen};
pub use runway_checks::model::{CheckKind, CheckSpec, MinFree, Severity};

/// A commented `runway.toml` that explains every key, written by `runway init`.
pub const INIT_TEMPLATE: &str = include_str!("init_template.toml");

/// Whether `name` is a valid `[service] name`: a name that cannot exist in any runway.toml
/// (e.g. `../etc`) can be refused before it reaches a URL.
pub fn is_valid_service_name(name: &str) -> bool {
    rules::service_name(name).is_ok()
}

/// Parses and validates the text of a `runway.toml`. `origin` is the file name shown in
/// errors (e.g. `"runway.toml"`). On failure, every problem found in one reading.
pub fn parse_str(text: &str, origin: &str) -> Result<Spec, SpecErrors> {
    reader::read(text, origin).map_err(SpecErrors::new)
}

/// Reads, parses and validates the `runway.toml` at `path`. Errors name the file as
/// `path` was given; a read failure is a [`SpecError`] with line and column 0.
pub fn parse_file(path: &Path) -> Result<Spec, SpecErrors> {
    let bytes = std::fs::read(path).map_err(|err| SpecError::read(path, &err))?;
    let origin = path.display().to_string();
    let text =
        std::str::from_utf8(&bytes).map_err(|err| SpecError::not_utf8(&origin, &bytes, &err))?;
    parse_str(text, &origin)
}
