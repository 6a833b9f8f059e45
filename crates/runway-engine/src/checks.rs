//! Running the runbook's checklists (`[[checks]]`) where they belong: `runway check`, the
//! preflight gate of a deploy, verification of a new release, smoke tests of a canary or a
//! blue-green preview. This module decides which checks run and against what; a
//! [`CheckRunner`] runs them (the binary's runs runway-checks from this host; the engine's
//! tests script the results).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use runway_checks::{CheckResult, CheckSpec, Context};
use runway_spec::Spec;

use crate::router::BoxFuture;

/// Runs checks to their results (every check, each bounded by its own timeout).
pub trait CheckRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        checks: &'a [CheckSpec],
        context: &'a Context,
    ) -> BoxFuture<'a, Vec<CheckResult>>;
}

/// The checks of `spec` in `phase` (all checks when `phase` is None).
pub fn in_phase(spec: &Spec, phase: Option<&str>) -> Vec<CheckSpec> {
    spec.checks
        .iter()
        .filter(|c| phase.is_none_or(|p| c.phases.iter().any(|x| x == p)))
        .cloned()
        .collect()
}

/// What a check sees: the process environment plus the service's `[run] env` (for `env:`
/// references), the release's secrets (for `secret:` references), the replicas `{replica}`
/// stands for, and runway.toml's directory.
pub fn context(
    spec: &Spec,
    base_dir: &Path,
    secrets: &crate::secrets::Secrets,
    replicas: Vec<String>,
) -> Context {
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    env.extend(spec.run.env.clone());
    Context {
        env,
        secrets: secrets.shared(),
        replica_addrs: replicas,
        workdir: PathBuf::from(base_dir),
        // Set by the runner that knows the server's own limits (runway-server's LocalChecks).
        open_files: None,
    }
}

/// Runs a phase's checks; Err names every failed blocker with its one-line detail.
pub async fn gate(
    runner: &dyn CheckRunner,
    spec: &Spec,
    phase: &str,
    base_dir: &Path,
    secrets: &crate::secrets::Secrets,
    replicas: Vec<String>,
) -> (Vec<CheckResult>, Result<(), String>) {
    let checks = in_phase(spec, Some(phase));
    if checks.is_empty() {
        return (Vec::new(), Ok(()));
    }
    let context = context(spec, base_dir, secrets, replicas);
    let results = runner.run(&checks, &context).await;
    let blocking = runway_checks::blocking_failures(&results);
    let outcome = if blocking.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{phase} checks failed: {}",
            blocking
                .iter()
                .map(|r| match &r.target {
                    Some(t) => format!("{} ({t}): {}", r.name, r.detail),
                    None => format!("{}: {}", r.name, r.detail),
                })
                .collect::<Vec<_>>()
                .join("; ")
        ))
    };
    (results, outcome)
}
