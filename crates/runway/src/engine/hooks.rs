//! Running hook commands: the backup, the migration and its undo, a restore, and the named
//! `[[hooks.run]]` phases.
//!
//! A hook is an argv (never a shell line, unless the config itself says `sh -c`), started in
//! its own process group in the replicas' working directory, with the process environment, the
//! service's `[run] env` and the RUNWAY_* variables on top. It is stopped (SIGTERM, then SIGKILL
//! to the whole group) when its timeout passes. Its combined stdout and stderr are kept (the
//! last [`OUTPUT_CAP`] bytes), redacted, stored with the deployment, and shown by
//! `runway logs --deployment ID`.

use runway_wire::Event;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{Engine, Release};
use crate::platform::process::describe_exit;
use crate::secrets::redactor_for_resolved;

/// How much of a hook's output is kept: the end, where the error usually is.
pub const OUTPUT_CAP: usize = 256 * 1024;

/// How long a hook gets between SIGTERM and SIGKILL when its timeout passes.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Who a hook runs for: the RUNWAY_* variables and where it runs.
#[derive(Debug, Clone)]
pub struct HookContext {
    pub service: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub deployment_id: i64,
    pub env: BTreeMap<String, String>,
    pub dir: PathBuf,
}

impl HookContext {
    /// The context of operation `id` that moves the service to `release` from `previous`.
    pub fn new(id: i64, release: &Release, previous: Option<&str>) -> HookContext {
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
        let env = crate::secrets::resolve_env(&declared, Some(&self.state_dir.join("secrets")))?;
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
        let (outcome, detail, output) = execute(hook.argv, &env, &ctx.dir, hook.timeout).await;
        let output = redactor.redact(&output);
        let detail = redactor.redact(&detail);
        let label = match outcome {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
        };
        if let Err(e) = self.store.finish_hook_run(run_id, label, &detail, &output) {
            tracing::error!(
                id,
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
                    },
                )
                .await;
            if let Err(e) = result {
                if fatal {
                    return Err(e);
                }
                tracing::warn!(deployment = ctx.deployment_id, "{e}");
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Failed,
    TimedOut,
}

/// Runs `argv` to its end or its timeout; returns how it ended, a one-line detail and its
/// output (stdout and stderr interleaved as they arrived).
async fn execute(
    argv: &[String],
    env: &BTreeMap<String, String>,
    dir: &Path,
    timeout: Duration,
) -> (Outcome, String, String) {
    let Some((program, args)) = argv.split_first() else {
        return (
            Outcome::Failed,
            "has an empty command".into(),
            String::new(),
        );
    };
    // "./scripts/x.sh" is relative to the working directory, not to the server's.
    let program_path = if program.contains('/') && Path::new(program).is_relative() {
        dir.join(program)
    } else {
        PathBuf::from(program)
    };
    let spawned = tokio::process::Command::new(&program_path)
        .args(args)
        .envs(env)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return (
                Outcome::Failed,
                format!("could not start in {}: {e}", dir.display()),
                String::new(),
            )
        }
    };
    let pid = child.id().map(|p| Pid::from_raw(p as i32));
    let output = Arc::new(Mutex::new(Capped::default()));
    let readers = [
        child.stdout.take().map(|s| spawn_reader(s, output.clone())),
        child.stderr.take().map(|s| spawn_reader(s, output.clone())),
    ];
    let (outcome, detail) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => (Outcome::Ok, describe_exit(status)),
        Ok(Ok(status)) => (Outcome::Failed, describe_exit(status)),
        Ok(Err(e)) => (Outcome::Failed, format!("lost track of the process: {e}")),
        Err(_) => {
            if let Some(pid) = pid {
                let _ = killpg(pid, Signal::SIGTERM);
                if tokio::time::timeout(KILL_GRACE, child.wait())
                    .await
                    .is_err()
                {
                    let _ = killpg(pid, Signal::SIGKILL);
                    let _ = child.wait().await;
                }
            }
            (
                Outcome::TimedOut,
                format!("timed out after {}", humantime_secs(timeout)),
            )
        }
    };
    // Whatever the hook left running in its group would hold the pipes open forever.
    if let Some(pid) = pid {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    for reader in readers.into_iter().flatten() {
        // A process that left the group (setsid) may hold the pipe open: stop reading it.
        let abort = reader.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), reader)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    let text = output.lock().unwrap_or_else(|e| e.into_inner()).text();
    (outcome, detail, text)
}

fn humantime_secs(d: Duration) -> String {
    runway_spec::Dur(d).to_string()
}

fn spawn_reader(
    mut stream: impl AsyncRead + Unpin + Send + 'static,
    output: Arc<Mutex<Capped>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 8192];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            output
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(&buf[..n]);
        }
    })
}

/// The last [`OUTPUT_CAP`] bytes of a stream, and how many were dropped before them.
#[derive(Default)]
struct Capped {
    bytes: std::collections::VecDeque<u8>,
    dropped: u64,
}

impl Capped {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(OUTPUT_CAP);
        if excess > 0 {
            self.bytes.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let mut raw = Vec::with_capacity(a.len() + b.len());
        raw.extend_from_slice(a);
        raw.extend_from_slice(b);
        let body = String::from_utf8_lossy(&raw).into_owned();
        if self.dropped > 0 {
            format!("[{} earlier bytes not kept]\n{body}", self.dropped)
        } else {
            body
        }
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

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[tokio::test]
    async fn output_exit_and_environment() {
        let env = BTreeMap::from([("GREETING".to_string(), "hi".to_string())]);
        let dir = std::env::temp_dir();
        let (outcome, detail, output) = execute(
            &argv(&["sh", "-c", "echo out $GREETING; echo err >&2; exit 3"]),
            &env,
            &dir,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(outcome, Outcome::Failed);
        assert_eq!(detail, "exited with status 3");
        assert!(output.contains("out hi"), "{output}");
        assert!(output.contains("err"), "{output}");
    }

    #[tokio::test]
    async fn a_hook_past_its_timeout_is_killed_with_its_children() {
        let started = std::time::Instant::now();
        let (outcome, detail, _) = execute(
            &argv(&["sh", "-c", "sleep 30 & sleep 30"]),
            &BTreeMap::new(),
            &std::env::temp_dir(),
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(outcome, Outcome::TimedOut);
        assert!(detail.starts_with("timed out after"), "{detail}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[tokio::test]
    async fn a_missing_program_says_so() {
        let (outcome, detail, _) = execute(
            &argv(&["/nonexistent/tool"]),
            &BTreeMap::new(),
            &std::env::temp_dir(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(outcome, Outcome::Failed);
        assert!(detail.contains("No such file"), "{detail}");
    }

    #[test]
    fn output_keeps_the_end() {
        let mut c = Capped::default();
        c.push(&vec![b'a'; OUTPUT_CAP]);
        c.push(b"tail");
        let text = c.text();
        assert!(text.starts_with("[4 earlier bytes not kept]"));
        assert!(text.ends_with("tail"));
    }

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
