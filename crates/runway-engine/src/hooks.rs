//! Running hook commands: the backup, the migration and its undo, a restore, and the named
//! `[[hooks.run]]` phases.
//!
//! A hook is an argv (never a shell line, unless the config itself says `sh -c`), started in
//! its own process group in the replicas' working directory, with the process environment, the
//! service's `[run] env` and the RUNWAY_* variables on top. It is stopped (SIGTERM, then SIGKILL
//! to the whole group) when its timeout passes. Its combined stdout and stderr are kept (the
//! last [`OUTPUT_CAP`] bytes), redacted, stored with the deployment, and shown by
//! `runway logs --deployment ID`.

use runway_wire::id::DeploymentId;
use runway_wire::Event;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{Engine, Release};
use crate::secrets::redactor_for_resolved;
use crate::tasks::{Outcome, Task};

pub use crate::tasks::OUTPUT_CAP;

/// Who a hook runs for: the RUNWAY_* variables and where it runs.
#[derive(Debug, Clone)]
pub struct HookContext {
    pub service: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub deployment_id: DeploymentId,
    pub env: BTreeMap<String, String>,
    pub dir: PathBuf,
    /// The release the hooks run with (on Docker: its image, on Kubernetes: its pod template).
    pub release: Release,
}

impl HookContext {
    /// The context of operation `id` that moves the service to `release` from `previous`.
    pub fn new(id: DeploymentId, release: &Release, previous: Option<&str>) -> HookContext {
        let spec = &release.spec;
        HookContext {
            service: spec.service.name.clone(),
            version: release.version.clone(),
            previous_version: previous.map(str::to_string),
            deployment_id: id,
            env: spec.run.env.clone(),
            dir: match &spec.run.dir {
                Some(d) => release.base_dir.join(d),
                None => release.base_dir.clone(),
            },
            release: release.clone(),
        }
    }

    fn env_for(&self, phase: &str) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        env.insert("RUNWAY_SERVICE".into(), self.service.clone());
        env.insert("RUNWAY_VERSION".into(), self.version.clone());
        env.insert(
            "RUNWAY_PREVIOUS_VERSION".into(),
            self.previous_version.clone().unwrap_or_default(),
        );
        env.insert(
            "RUNWAY_DEPLOYMENT_ID".into(),
            self.deployment_id.to_string(),
        );
        env.insert("RUNWAY_PHASE".into(), phase.to_string());
        env
    }
}

/// One hook command to run.
pub struct Hook<'a> {
    /// `backup`, `migrate`, `undo`, `restore`, `verify-backup` or a phase name; also RUNWAY_PHASE.
    pub phase: &'a str,
    pub argv: &'a [String],
    pub timeout: Duration,
    /// Variables for this hook only (RUNWAY_BACKUP_DIR).
    pub extra_env: Vec<(String, String)>,
    /// The hook's own image (`[docker]` services), else the release's.
    pub image: Option<&'a str>,
}

impl Engine {
    /// Runs a hook for operation `ctx.deployment_id`, journals it and stores its output.
    /// Ok and Err both carry a one-line account of how it ended.
    pub(super) async fn run_hook(
        &self,
        ctx: &HookContext,
        hook: Hook<'_>,
    ) -> Result<String, String> {
        let id = ctx.deployment_id;
        let mut declared = ctx.env_for(hook.phase);
        declared.extend(hook.extra_env.iter().cloned());
        // `[run] env` references resolve for hooks as for replicas; their values are secrets.
        let env = crate::secrets::resolve_env(&declared, &ctx.release.secrets)?;
        let redactor = redactor_for_resolved(&declared, &env);
        let shown_argv: Vec<String> = hook.argv.iter().map(|a| redactor.redact(a)).collect();
        self.journal(
            id,
            Event::HookStarted {
                phase: hook.phase.to_string(),
                argv: shown_argv.clone(),
            },
        );
        let run_id = self
            .store
            .insert_hook_run(id, hook.phase, &shown_argv)
            .map_err(|e| format!("cannot record the {} hook: {e:#}", hook.phase))?;
        let (outcome, detail, output) = self
            .tasks
            .run(Task {
                argv: hook.argv,
                env: &env,
                dir: &ctx.dir,
                timeout: hook.timeout,
                release: &ctx.release,
                image: hook.image,
            })
            .await;
        let output = redactor.redact(&output);
        let detail = redactor.redact(&detail);
        let label = match outcome {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
        };
        if let Err(e) = self.store.finish_hook_run(run_id, label, &detail, &output) {
            tracing::error!(
                deployment = %id,
                "cannot store the output of the {} hook: {e:#}",
                hook.phase
            );
        }
        self.journal(
            id,
            Event::HookFinished {
                phase: hook.phase.to_string(),
                outcome: label.to_string(),
                detail: detail.clone(),
            },
        );
        let program = hook.argv.first().map_or("", String::as_str);
        match outcome {
            Outcome::Ok => Ok(format!("{} hook ({program}) {detail}", hook.phase)),
            _ => Err(format!(
                "{} hook ({program}) {detail}{}; full output: runway logs --deployment {id}",
                hook.phase,
                last_line(&output).map_or(String::new(), |l| format!(": {l}")),
            )),
        }
    }

    /// Runs the `[[hooks.run]]` entries of `phase` in order. With `fatal`, the first failure
    /// stops and is returned; otherwise failures are journaled and the rest still run.
    pub(super) async fn run_phase_hooks(
        &self,
        ctx: &HookContext,
        release: &Release,
        phase: runway_spec::HookPhase,
        fatal: bool,
    ) -> Result<(), String> {
        for hook in release.spec.hooks.at(phase) {
            let result = self
                .run_hook(
                    ctx,
                    Hook {
                        phase: phase.as_str(),
                        argv: &hook.command,
                        timeout: hook.timeout.0,
                        extra_env: Vec::new(),
                        image: hook.image.as_deref(),
                    },
                )
                .await;
            if let Err(e) = result {
                if fatal {
                    return Err(e);
                }
                tracing::warn!(deployment = %ctx.deployment_id, "{e}");
            }
        }
        Ok(())
    }
}

/// The last non-blank line, capped (a failure's one-line summary).
fn last_line(s: &str) -> Option<String> {
    let line = s.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_url_passwords_are_redacted() {
        let env = BTreeMap::from([
            ("DB_PASSWORD".to_string(), "hunter22".to_string()),
            (
                "DATABASE_URL".to_string(),
                "postgres://app:s3cret@127.0.0.1/db".to_string(),
            ),
        ]);
        let r = crate::secrets::redactor_for(&env);
        let out = r.redact("password hunter22 and postgres://app:s3cret@127.0.0.1/db");
        assert!(
            !out.contains("hunter22") && !out.contains("s3cret"),
            "{out}"
        );
    }
}
