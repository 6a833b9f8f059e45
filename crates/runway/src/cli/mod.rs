//! The command line: parsing, and dispatch to one module per group of commands.

mod client;
mod deploy;
mod inspect;
mod local;
mod output;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use client::{Client, ClientError};

#[derive(Parser, Debug)]
#[command(
    name = "runway",
    version,
    about = "Deployment runbooks that run themselves"
)]
pub struct Cli {
    /// The server's state dir: the CLI finds the server's address and token there.
    #[arg(long, global = true, env = "RUNWAY_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// The service description (default: ./runway.toml). Also accepted after the
    /// subcommand by the commands that read it: `runway deploy v2 -f other.toml`.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Which service (default: the one in runway.toml, or the only one the server runs).
    #[arg(long, global = true, value_name = "NAME")]
    pub service: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a commented runway.toml to start from.
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        file: FileArg,
    },
    /// Check runway.toml and report every problem with file:line:col.
    Validate {
        #[command(flatten)]
        file: FileArg,
    },
    /// Print the steps a deploy would take; changes nothing.
    Plan {
        /// The version to plan for.
        #[arg(default_value = "NEXT")]
        version: String,
        #[command(flatten)]
        file: FileArg,
    },
    /// Run the runway server in the foreground until SIGTERM or SIGINT.
    Server {
        /// Address of the API the CLI talks to (the chosen port is written to the state dir).
        #[arg(long, default_value = "127.0.0.1:0")]
        api_listen: SocketAddr,
        /// Address of the Prometheus /metrics endpoint.
        #[arg(long, default_value = "127.0.0.1:0")]
        metrics_listen: SocketAddr,
    },
    /// Deploy VERSION with runway.toml and wait for the outcome.
    Deploy {
        version: String,
        /// Return once the deployment has started instead of following it.
        #[arg(long)]
        detach: bool,
        /// Deploy without the preflight checks (an emergency; recorded in the deployment).
        #[arg(long)]
        skip_checks: bool,
        /// Deploy although the service was deployed from another directory (it moves here).
        #[arg(long)]
        from_here: bool,
        #[command(flatten)]
        file: FileArg,
    },
    /// Show what runs: serving releases, replicas, the deployment in progress, request metrics.
    /// Inside a project (a directory with a runway.toml), its service only.
    Status {
        /// Refresh every second until interrupted.
        #[arg(long)]
        watch: bool,
        /// Print the documented JSON shape instead of text.
        #[arg(long)]
        json: bool,
        /// Every service the server runs, also inside a project directory.
        #[arg(long, conflicts_with = "service")]
        all: bool,
    },
    /// Deployments, newest first.
    History {
        #[arg(long)]
        json: bool,
        /// How many to show.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
    },
    /// Roll back to the previous release (or VERSION, or a revision from `history`), with the
    /// config it had.
    Rollback {
        version: Option<String>,
        /// The deployment id (from `runway history`) whose release to restore.
        #[arg(long, value_name = "N", conflicts_with = "version")]
        to_revision: Option<i64>,
        /// Leave the newer releases' migrations in effect: the old release runs on the new
        /// schema (no undo, no restore).
        #[arg(long)]
        keep_schema: bool,
        #[arg(long)]
        detach: bool,
    },
    /// List the service's backups (taken by [hooks.backup] before each migration), newest first.
    Backups {
        #[arg(long)]
        json: bool,
    },
    /// Put the database back to BACKUP (see `runway backups`) behind the maintenance page, with
    /// the release that served when it was taken.
    Restore {
        backup: i64,
        #[arg(long)]
        detach: bool,
    },
    /// Answer every request with a 503 maintenance page (the health path and
    /// [maintenance] allow still pass), or stop doing so.
    Maintenance {
        #[arg(value_enum)]
        state: OnOff,
        /// The page's message (default: [maintenance] message).
        #[arg(long)]
        message: Option<String>,
    },
    /// Refuse writes (anything but GET, HEAD, OPTIONS) with 503 and let reads through, or
    /// take all traffic normally again.
    Traffic {
        #[arg(value_enum)]
        mode: TrafficArg,
        #[arg(long)]
        message: Option<String>,
    },
    /// Move a canary to its next step now (or with --full, straight to 100%).
    Promote {
        #[arg(long)]
        full: bool,
    },
    /// Hold a canary at its current step until `runway resume` or `runway promote`.
    Pause,
    /// Let a paused canary go on.
    Resume,
    /// Roll a canary back now: its weight goes to 0 at once, then it is drained and stopped.
    Abort,
    /// Run the checks of runway.toml (one phase with --phase) and print a table; exit 1 when a
    /// blocker failed. `{replica}` stands for the running replicas of the service.
    #[command(args_conflicts_with_subcommands = true)]
    Check {
        #[command(subcommand)]
        action: Option<CheckCommand>,
        /// preflight, verify, smoke, daily, or a named checklist.
        #[arg(long)]
        phase: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        file: FileArg,
    },
    /// Capture the serving release's request metrics as a baseline, or compare with one.
    Baseline {
        #[command(subcommand)]
        action: BaselineCommand,
    },
    /// List, restart, stop or start replicas ("nodes").
    Nodes {
        #[command(subcommand)]
        action: NodesCommand,
    },
    /// Manage the services the server knows.
    Service {
        #[command(subcommand)]
        action: ServiceCommand,
    },
    /// Change the serving release's number of replicas.
    Scale {
        #[arg(long)]
        count: u32,
        #[arg(long)]
        detach: bool,
    },
    /// Show replica logs: of the running replicas, or of stopped ones by node, version or
    /// deployment (what a user wants after a failed deploy).
    #[command(
        after_help = "Examples:\n  runway logs -f                  follow every running replica\n  runway logs --version v2        the replicas of v2, running or stopped\n  runway logs --node web-7        one replica, running or stopped\n  runway logs --deployment 12     deployment #12's hook output and the replicas it started"
    )]
    Logs {
        /// Keep printing new lines until interrupted.
        #[arg(short = 'f', long, conflicts_with = "deployment")]
        follow: bool,
        /// Lines per replica.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
        /// Only replicas of this version (the 10 newest stopped ones too).
        #[arg(
            long = "version",
            value_name = "VERSION",
            conflicts_with = "deployment"
        )]
        release: Option<String>,
        /// Only this replica (a name from `runway nodes list` or the deploy's output).
        #[arg(long, value_name = "NODE", conflicts_with = "deployment")]
        node: Option<String>,
        /// One JSON object per line (NDJSON): replica, version, line.
        #[arg(long)]
        json: bool,
        /// Deployment ID's hook output (backup, migrate, undo, restore, [[hooks.run]]), then
        /// the logs of the replicas it started.
        #[arg(long, value_name = "ID")]
        deployment: Option<i64>,
    },
    /// The demo: a server, a demo app, steady load, deploys, a refused bad release, a rollback.
    Demo,
    /// Steady HTTP load with a per-response timeline (used by the benchmarks).
    #[command(hide = true)]
    Loadgen {
        /// host:port to load.
        addr: SocketAddr,
        #[arg(long, default_value_t = 2000)]
        rps: u64,
        #[arg(long, default_value_t = 16)]
        workers: u64,
        #[arg(long, default_value = "30s", value_parser = parse_window)]
        duration: std::time::Duration,
        /// Write "seconds,version,status" per response to this file.
        #[arg(long)]
        timeline: Option<PathBuf>,
    },
    /// The demo app itself (used by the demo, the tests and the benchmarks).
    #[command(hide = true, disable_version_flag = true)]
    DemoApp(runway_demo_app::Args),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrafficArg {
    ReadOnly,
    Normal,
}

#[derive(Subcommand, Debug)]
pub enum CheckCommand {
    /// The runs of scheduled checklists the server recorded, newest first.
    History {
        #[arg(long)]
        json: bool,
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum BaselineCommand {
    /// Measure the serving release for a while and store the numbers.
    Capture {
        /// How long to measure (a duration like "10s").
        #[arg(long, default_value = "10s", value_parser = parse_window)]
        window: std::time::Duration,
        #[arg(long)]
        json: bool,
    },
    /// Measure now and compare with a baseline: Metric | Baseline | Current | Delta | Status.
    Compare {
        #[arg(long, default_value = "10s", value_parser = parse_window)]
        window: std::time::Duration,
        /// The baseline to compare with (default: the newest).
        #[arg(long)]
        id: Option<i64>,
        #[arg(long)]
        json: bool,
    },
}

fn parse_window(s: &str) -> Result<std::time::Duration, String> {
    runway_spec::parse_duration(s)
}

/// `-f FILE` after a subcommand that reads runway.toml.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FileArg {
    /// The service description (default: ./runway.toml).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Forget a service: it leaves `status` and stops being anyone's default. Refused while
    /// it serves unless --force, which stops its replicas and closes its address. Its
    /// deployments stay in `history`.
    #[command(
        after_help = "Example:\n  runway service remove web-test\n  runway service remove web-test --force"
    )]
    Remove {
        /// The service's name (as `runway status` shows it).
        name: String,
        /// Remove it although it serves: stop its replicas and close its listen address.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum NodesCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    /// Replace a replica by a fresh one (the new one serves before the old one stops).
    Restart { node: String },
    /// Drain and stop a replica.
    Stop { node: String },
    /// Start a stopped replica again.
    Start { node: String },
}

impl Cli {
    /// runway.toml's path: after the subcommand, else before it, else ./runway.toml.
    pub fn file(&self) -> PathBuf {
        let after = match &self.command {
            Command::Init { file, .. }
            | Command::Validate { file }
            | Command::Plan { file, .. }
            | Command::Deploy { file, .. }
            | Command::Check { file, .. } => file.file.clone(),
            _ => None,
        };
        after
            .or_else(|| self.file.clone())
            .unwrap_or_else(|| PathBuf::from("runway.toml"))
    }

    pub fn state_dir(&self) -> PathBuf {
        crate::state_dir::resolve(self.state_dir.as_deref())
    }

    pub fn client(&self) -> Client {
        Client::new(&self.state_dir())
    }

    /// The service a command is about: --service, else runway.toml's, else the only one running.
    pub async fn service(&self, client: &Client) -> Result<String> {
        if let Some(s) = &self.service {
            // A name the server does not know is a typo, not an empty answer.
            let status: crate::api_types::StatusView = client.get("/v1/status").await?;
            known_service(&status, s)?;
            return Ok(s.clone());
        }
        if let Ok(spec) = runway_spec::parse_file(&self.file()) {
            return Ok(spec.service.name);
        }
        let status: crate::api_types::StatusView = client.get("/v1/status").await?;
        match status.services.as_slice() {
            [one] => Ok(one.name.clone()),
            [] => anyhow::bail!(
                "the server runs no service yet; deploy one with `runway deploy VERSION`"
            ),
            many => anyhow::bail!(
                "the server runs several services ({}); say which with --service NAME",
                many.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// `name` when the server runs it; otherwise an error that lists what it runs.
pub fn known_service(status: &crate::api_types::StatusView, name: &str) -> Result<()> {
    if status.services.iter().any(|s| s.name == name) {
        return Ok(());
    }
    let names: Vec<&str> = status.services.iter().map(|s| s.name.as_str()).collect();
    if names.is_empty() {
        anyhow::bail!("no service `{name}`: the server runs none yet");
    }
    anyhow::bail!(
        "no service `{name}`: the server runs {}",
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Init { force, .. } => local::init(&cli.file(), *force),
        Command::Validate { .. } => local::validate(&cli.file()),
        Command::Plan { version, .. } => local::plan(&cli, version).await,
        Command::Server {
            api_listen,
            metrics_listen,
        } => {
            crate::server::run(crate::server::ServerOptions {
                state_dir: cli.state_dir(),
                api_listen: *api_listen,
                metrics_listen: *metrics_listen,
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Deploy {
            version,
            detach,
            skip_checks,
            from_here,
            ..
        } => deploy::deploy(&cli, version, *detach, *skip_checks, *from_here).await,
        Command::Rollback {
            version,
            to_revision,
            keep_schema,
            detach,
        } => {
            deploy::rollback(
                &cli,
                version.as_deref(),
                *to_revision,
                *keep_schema,
                *detach,
            )
            .await
        }
        Command::Backups { json } => inspect::backups(&cli, *json).await,
        Command::Restore { backup, detach } => deploy::restore(&cli, *backup, *detach).await,
        Command::Maintenance { state, message } => {
            deploy::set_mode(&cli, "maintenance", *state == OnOff::On, message.as_deref()).await
        }
        Command::Traffic { mode, message } => {
            deploy::set_mode(
                &cli,
                "read-only",
                *mode == TrafficArg::ReadOnly,
                message.as_deref(),
            )
            .await
        }
        Command::Promote { full } => {
            deploy::control(&cli, if *full { "promote-full" } else { "promote" }).await
        }
        Command::Pause => deploy::control(&cli, "pause").await,
        Command::Resume => deploy::control(&cli, "resume").await,
        Command::Abort => deploy::control(&cli, "abort").await,
        Command::Check {
            action: Some(CheckCommand::History { json, limit }),
            ..
        } => inspect::check_history(&cli, *json, *limit).await,
        Command::Check { phase, json, .. } => local::check(&cli, phase.as_deref(), *json).await,
        Command::Baseline { action } => inspect::baseline(&cli, action).await,
        Command::Service {
            action: ServiceCommand::Remove { name, force },
        } => deploy::remove_service(&cli, name, *force).await,
        Command::Scale { count, detach } => deploy::scale(&cli, *count, *detach).await,
        Command::Status { watch, json, all } => inspect::status(&cli, *watch, *json, *all).await,
        Command::History { json, limit } => inspect::history(&cli, *json, *limit).await,
        Command::Nodes { action } => inspect::nodes(&cli, action).await,
        Command::Logs {
            lines,
            json,
            deployment: Some(id),
            ..
        } => inspect::deployment_logs(&cli, *id, *lines, *json).await,
        Command::Logs {
            follow,
            lines,
            release,
            node,
            json,
            deployment: None,
        } => {
            let filter = inspect::LogFilter {
                version: release.as_deref(),
                node: node.as_deref(),
            };
            inspect::logs(&cli, *follow, *lines, filter, *json).await
        }
        Command::Demo => crate::demo::run().await,
        Command::Loadgen {
            addr,
            rps,
            workers,
            duration,
            timeline,
        } => {
            let load = crate::loadgen::Load::start_recording(
                *addr,
                "/",
                *workers,
                *rps,
                timeline.is_some(),
            );
            tokio::time::sleep(*duration).await;
            let mut seen = load.stop().await;
            if let Some(path) = timeline {
                seen.timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
                let lines: String = seen
                    .timeline
                    .iter()
                    .map(|(t, v, s)| format!("{t:.6},{v},{s}\n"))
                    .collect();
                std::fs::write(path, lines)?;
            }
            println!(
                "{}",
                serde_json::json!({ "ok": seen.ok, "failed": seen.failed, "rps": (seen.ok + seen.failed) as f64 / duration.as_secs_f64(), "versions": seen.versions })
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::DemoApp(args) => {
            runway_demo_app::run(args.clone()).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The absolute directory of runway.toml: replicas run there unless [run] dir says otherwise.
pub fn base_dir_of(file: &Path) -> Result<String> {
    let abs = std::path::absolute(file)?;
    let dir = abs.parent().unwrap_or(Path::new("/"));
    Ok(dir.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap checks conflicting flags only when a subcommand is used; check them all now.
        super::Cli::command().debug_assert();
    }

    #[test]
    fn file_is_accepted_before_and_after_the_subcommand() {
        use clap::Parser;
        let before = super::Cli::parse_from(["runway", "-f", "a.toml", "deploy", "v1"]);
        assert_eq!(before.file(), std::path::PathBuf::from("a.toml"));
        let after = super::Cli::parse_from(["runway", "deploy", "v1", "-f", "b.toml"]);
        assert_eq!(after.file(), std::path::PathBuf::from("b.toml"));
        let default = super::Cli::parse_from(["runway", "logs", "-f"]);
        assert_eq!(default.file(), std::path::PathBuf::from("runway.toml"));
    }
}
