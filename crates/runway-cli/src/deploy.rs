//! `deploy`, `rollback` and `scale`: start an operation, then follow its journal to the end.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;

use futures_util::StreamExt;
use runway_wire::api::DeploymentView;
use runway_wire::api::{
    CanaryCommand, DeployRequest, Message, ModeRequest, RestoreRequest, RollbackRequest,
    ScaleRequest,
};
use runway_wire::client::StreamItem;
use runway_wire::id::{BackupId, DeploymentId};
use runway_wire::record::{Kind, Status};
use runway_wire::Event;

use super::output::{describe, seconds_between, Progress};
use super::{base_dir_of, Cli, ClientError};

/// How long the CLI keeps waiting for a server that went away in the middle of a deployment
/// (e.g. it was killed and is being restarted): the deployment resumes when it is back.
const RECONNECT_FOR: Duration = Duration::from_secs(120);
/// A stream that says nothing for this long is opened again (keep-alives do not count).
const QUIET_FOR: Duration = Duration::from_secs(60);

/// What `runway deploy` was asked besides the version.
#[derive(Debug, Default)]
pub struct DeployOptions {
    pub detach: bool,
    pub skip_checks: bool,
    pub from_here: bool,
    pub reason: Option<String>,
    pub deploy_type: Option<String>,
    pub override_policy: bool,
    pub commit: Option<String>,
    pub commit_time: Option<String>,
}

pub async fn deploy(cli: &Cli, version: &str, options: DeployOptions) -> Result<ExitCode> {
    let DeployOptions {
        detach,
        skip_checks,
        from_here,
        reason,
        deploy_type,
        override_policy,
        commit,
        commit_time,
    } = options;
    let spec = match runway_spec::parse_file(&cli.file()) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("nothing was deployed");
            return Ok(ExitCode::from(2));
        }
    };
    let base_dir = base_dir_of(&cli.file())?;
    let commit_time = match commit_time_of(commit.as_deref(), commit_time, &base_dir) {
        Ok(time) => time,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("nothing was deployed");
            return Ok(ExitCode::from(2));
        }
    };
    let client = cli.client();
    // A count set by `runway scale` is not kept by the next deploy: runway.toml's is. Say so
    // before it happens, so that nobody loses a scale-up without a word.
    if let Ok(status) = client.status().await {
        let serving = status
            .services
            .iter()
            .find(|s| s.name == spec.service.name)
            .and_then(|s| s.serving.last());
        if let Some(serving) = serving.filter(|r| r.replicas != spec.run.replicas) {
            eprintln!(
                "note: {} serves on {} now (as `runway scale` or the last deploy left it); this \
                 deploy runs {}, as [run] replicas in {} says. To keep {}, set replicas = {} there.",
                serving.version,
                plural(serving.replicas, "replica"),
                plural(spec.run.replicas, "replica"),
                cli.file().display(),
                serving.replicas,
                serving.replicas
            );
        }
    }
    let req = DeployRequest {
        version: version.to_string(),
        spec,
        base_dir,
        skip_checks,
        from_here,
        reason,
        deploy_type,
        override_policy,
        commit,
        commit_time,
    };
    let d = start(client.deploy(&req).await)?;
    if d.status == runway_wire::record::Status::AwaitingApproval {
        return crate::policy::said_waiting(cli, &d).await;
    }
    follow(cli, d, detach).await
}

/// When the deployed change was committed: `--commit-time` as given (RFC 3339, normalized to
/// UTC), else `--commit`'s committer time read from the git repository at `dir` (git run
/// directly, no shell), else unknown.
fn commit_time_of(
    commit: Option<&str>,
    given: Option<String>,
    dir: &str,
) -> Result<Option<String>, String> {
    use time::format_description::well_known::Rfc3339;
    if let Some(given) = given {
        let at = time::OffsetDateTime::parse(&given, &Rfc3339).map_err(|e| {
            format!("--commit-time `{given}` is not an RFC 3339 time ({e}); write e.g. 2026-11-30T09:15:00Z")
        })?;
        return Ok(Some(
            at.to_offset(time::UtcOffset::UTC)
                .format(&Rfc3339)
                .map_err(|e| e.to_string())?,
        ));
    }
    let Some(sha) = commit else { return Ok(None) };
    if sha.is_empty() || sha.starts_with('-') || !sha.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "--commit `{sha}` is not a commit id (hex digits, as `git rev-parse HEAD` prints)"
        ));
    }
    let out = std::process::Command::new("git")
        .args(["-C", dir, "show", "-s", "--format=%cI", sha, "--"])
        .output()
        .map_err(|e| {
            format!("cannot run git to read commit {sha}'s time: {e}; give --commit-time")
        })?;
    if !out.status.success() {
        return Err(format!(
            "git in {dir} does not know commit {sha}: {}; give --commit-time",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    commit_time_of(None, Some(text), dir)
}

pub async fn rollback(
    cli: &Cli,
    version: Option<&str>,
    revision: Option<i64>,
    keep_schema: bool,
    reason: Option<&str>,
    detach: bool,
) -> Result<ExitCode> {
    let client = cli.client();
    let service = cli.service(&client).await?;
    let req = RollbackRequest {
        version: version.map(str::to_string),
        revision: revision.map(DeploymentId),
        keep_schema,
        reason: reason.map(str::to_string),
    };
    let d = start(client.rollback(&service, &req).await)?;
    follow(cli, d, detach).await
}

/// `runway restore BACKUP`: the database back to the backup, with the release that matches it.
pub async fn restore(cli: &Cli, backup_id: i64, detach: bool) -> Result<ExitCode> {
    let client = cli.client();
    let service = cli.service(&client).await?;
    let d = start(
        client
            .restore(
                &service,
                &RestoreRequest {
                    backup_id: BackupId(backup_id),
                },
            )
            .await,
    )?;
    follow(cli, d, detach).await
}

/// Which traffic mode `set_mode` sets.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// `runway maintenance on|off`.
    Maintenance,
    /// `runway traffic read-only|normal`.
    ReadOnly,
}

/// `runway maintenance on|off` and `runway traffic read-only|normal`.
pub async fn set_mode(cli: &Cli, mode: Mode, on: bool, message: Option<&str>) -> Result<ExitCode> {
    let body = ModeRequest {
        on,
        message: message.map(str::to_string),
    };
    let client = cli.client();
    let service = cli.service(&client).await?;
    let answer = match mode {
        Mode::Maintenance => client.maintenance(&service, &body).await,
        Mode::ReadOnly => client.read_only(&service, &body).await,
    };
    print_message(answer)
}

/// Prints the server's message, or says that the server refused.
fn print_message(answer: Result<Message, ClientError>) -> Result<ExitCode> {
    let answer = answer.map_err(refused)?;
    println!("{}", answer.message);
    Ok(ExitCode::SUCCESS)
}

/// A refusal of the server as the CLI says it (`refused: ...`), keeping the error's code for
/// the exit status; other errors as they are.
pub(crate) fn refused(e: ClientError) -> anyhow::Error {
    match e {
        api @ ClientError::Api { .. } => anyhow::Error::new(api).context("refused"),
        other => other.into(),
    }
}

pub async fn scale(cli: &Cli, count: u32, detach: bool) -> Result<ExitCode> {
    let client = cli.client();
    let service = cli.service(&client).await?;
    let d = start(client.scale(&service, &ScaleRequest { count }).await)?;
    follow(cli, d, detach).await
}

/// Sends promote / pause / resume / abort to the service's running canary.
pub async fn control(cli: &Cli, command: CanaryCommand) -> Result<ExitCode> {
    let client = cli.client();
    let service = cli.service(&client).await?;
    print_message(client.canary(&service, command).await)
}

fn start(answer: Result<DeploymentView, ClientError>) -> Result<DeploymentView> {
    answer.map_err(refused)
}

/// Prints the deployment's journal as it grows and exits 0 only when it succeeded.
pub async fn follow(cli: &Cli, d: DeploymentView, detach: bool) -> Result<ExitCode> {
    let kind = format!("{:?}", d.kind).to_lowercase();
    println!("{kind} #{}: {} {}", d.id, d.service, d.version);
    if detach {
        println!("follow it with `runway status --watch`; the outcome will be in `runway history`");
        return Ok(ExitCode::SUCCESS);
    }
    // Ctrl-C stops following, not the deployment: the server carries it on. Say so, and how to
    // follow, stop or undo it.
    tokio::select! {
        outcome = follow_to_the_end(cli, &d, &kind) => outcome,
        _ = tokio::signal::ctrl_c() => {
            eprintln!(
                "\n{kind} #{} of {} goes on in the server: Ctrl-C only stopped following it.\n\
                 follow it: `runway status --watch` (the outcome will be in `runway history`)\n\
                 stop it: `runway abort` (a canary or blue-green step), or `runway rollback` once it has ended",
                d.id, d.version
            );
            Ok(ExitCode::from(130))
        }
    }
}

/// [`follow`] until the deployment ends.
async fn follow_to_the_end(cli: &Cli, d: &DeploymentView, kind: &str) -> Result<ExitCode> {
    let client = cli.client();
    let progress = Progress::new();
    let mut after = 0;
    let mut lost_since: Option<Instant> = None;
    let started_at = d.started_at.clone();
    // Said once when the server goes away; past RECONNECT_FOR, give up (exit 5: no server,
    // not a failed deployment, which resumes with the server).
    let gone = |lost_since: &mut Option<Instant>| -> Result<()> {
        let since = *lost_since.get_or_insert_with(|| {
            progress.line(
                "  lost the server; waiting for it to come back (the deployment resumes then)",
            );
            Instant::now()
        });
        if since.elapsed() > RECONNECT_FOR {
            progress.finish();
            return Err(ClientError::NoServer(format!(
                "the server has been gone for {}s; deployment #{} will resume when it restarts",
                RECONNECT_FOR.as_secs(),
                d.id
            ))
            .into());
        }
        Ok(())
    };
    // The deployment's event stream; when it breaks (the server restarts), it is opened
    // again after the last entry shown.
    let ended: DeploymentView = 'follow: loop {
        let mut stream = match client.deployment_stream(d.id, after).await {
            Ok(stream) => stream,
            Err(ClientError::NoServer(_)) | Err(ClientError::Other(_)) => {
                gone(&mut lost_since)?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        loop {
            let item = match tokio::time::timeout(QUIET_FOR, stream.next()).await {
                // Nothing for a while (a long pause): open it again, quietly; a connection
                // that died without a word would otherwise hang here.
                Err(_) => continue 'follow,
                // The stream broke: open it again (below), after what was shown.
                Ok(None) | Ok(Some(Err(_))) => break,
                Ok(Some(Ok(item))) => item,
            };
            let e = match item {
                StreamItem::Journal(e) => e,
                StreamItem::Deployment(dep) if dep.status.is_final() => break 'follow *dep,
                _ => continue,
            };
            if lost_since.take().is_some() {
                progress.line("  server is back");
            }
            let event = e.typed();
            if matches!(event, Some(Event::StageDone { .. })) {
                // Bookkeeping for resuming after a crash; the stage's own events say what ran.
                after = e.seq;
                continue;
            }
            let at = seconds_between(&started_at, &e.at).unwrap_or(0.0);
            let text = describe(&e);
            progress.line(&format!("  [{at:6.1}s] {text}"));
            progress.step(&text);
            after = e.seq;
            if let Some(Event::ScaleDownPending { seconds, .. }) = event {
                // Blue-green: the new release serves all traffic; the old one only waits to be
                // stopped, and the deployment finishes then.
                progress.finish();
                println!(
                    "{kind} #{}: {} serves all traffic; the previous release stays up for an instant rollback (`runway abort`) for {seconds}s",
                    d.id, d.version
                );
                return Ok(ExitCode::SUCCESS);
            }
        }
        // The stream ended without the deployment's end: the server went away.
        gone(&mut lost_since)?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let dep = &ended;
    progress.finish();
    let took = dep
        .finished_at
        .as_deref()
        .and_then(|f| seconds_between(&dep.started_at, f))
        .map(|s| format!(" in {s:.1}s"))
        .unwrap_or_default();
    Ok(match dep.status {
        Status::Succeeded => {
            println!(
                "{kind} #{} succeeded{took}: {} serves all traffic",
                dep.id, dep.version
            );
            ExitCode::SUCCESS
        }
        status => {
            let reason = dep.reason.as_deref().unwrap_or("no reason recorded");
            eprintln!("{kind} #{} {}{took}: {reason}", dep.id, status.as_str());
            // Whether the failure froze the service: from its state, not the text.
            let frozen = client
                .status()
                .await
                .ok()
                .and_then(|st| st.services.into_iter().find(|s| s.name == dep.service))
                .is_some_and(|s| s.frozen.is_some());
            if frozen {
                eprintln!("the service is frozen: `runway status` shows what serves");
            } else if let (Some(prev), Kind::Deploy | Kind::Scale) =
                (&dep.previous_version, dep.kind)
            {
                eprintln!("{prev} still serves all traffic");
            }
            ExitCode::FAILURE
        }
    })
}

pub use runway_engine::text::plural;

/// `runway service remove NAME [--force]`.
pub async fn remove_service(cli: &Cli, name: &str, force: bool) -> Result<ExitCode> {
    // A name runway.toml's rule refuses cannot exist, and must not reach the URL path.
    if !runway_spec::is_valid_service_name(name) {
        return Err(ClientError::not_found(format!(
            "no service named `{name}`; `runway status` lists the services"
        ))
        .into());
    }
    let answer = cli.client().remove_service(name, force).await;
    print_message(answer)
}

#[cfg(test)]
mod commit_tests {
    use super::commit_time_of;

    fn git(dir: &std::path::Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_COMMITTER_DATE", "2026-11-29T08:30:00+01:00")
            .env("GIT_AUTHOR_DATE", "2026-11-29T08:30:00+01:00")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn the_commit_time_comes_from_git_or_the_flag_and_bad_input_is_refused() {
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path();
        git(dir, &["init", "-q"]);
        std::fs::write(dir.join("runway.toml"), "").unwrap();
        git(dir, &["add", "."]);
        git(
            dir,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "commit",
                "-qm",
                "x",
            ],
        );
        let sha = git(dir, &["rev-parse", "HEAD"]);
        let d = dir.to_str().unwrap();
        // Read from git, normalized to UTC.
        assert_eq!(
            commit_time_of(Some(&sha), None, d).unwrap().as_deref(),
            Some("2026-11-29T07:30:00Z")
        );
        // Given: wins over git.
        assert_eq!(
            commit_time_of(Some(&sha), Some("2026-11-28T10:00:00-05:00".into()), d)
                .unwrap()
                .as_deref(),
            Some("2026-11-28T15:00:00Z")
        );
        assert_eq!(commit_time_of(None, None, d).unwrap(), None);
        let bad_time = commit_time_of(None, Some("yesterday".into()), d).unwrap_err();
        assert!(bad_time.contains("not an RFC 3339 time"), "{bad_time}");
        let unknown = commit_time_of(Some("deadbeef"), None, d).unwrap_err();
        assert!(
            unknown.contains("does not know commit deadbeef"),
            "{unknown}"
        );
        // An option in disguise never reaches git as one.
        let option = commit_time_of(Some("--output=/tmp/x"), None, d).unwrap_err();
        assert!(option.contains("is not a commit id"), "{option}");
    }
}
