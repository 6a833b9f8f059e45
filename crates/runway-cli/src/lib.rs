//! The command line: parsing, and dispatch to one module per group of commands.

mod access;
mod args;
mod client;
mod deploy;
mod flags;
mod incident;
mod inspect;
mod local;
mod notify;
mod output;
mod policy;
mod secrets;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

pub use args::*;
pub use client::{connect, Client, ClientError};
use runway_wire::api::CanaryCommand;

impl Cli {
    /// runway.toml's path: after the command, else before it, else ./runway.toml.
    pub fn file(&self) -> PathBuf {
        let (after, _, _) = self.command.options();
        after
            .and_then(|f| f.file.clone())
            .or_else(|| self.file.clone())
            .unwrap_or_else(|| PathBuf::from("runway.toml"))
    }

    /// The state dir: after the command, else before it (or RUNWAY_STATE_DIR), else the
    /// default.
    pub fn state_dir(&self) -> PathBuf {
        let (_, after, _) = self.command.options();
        let flag = after
            .and_then(|s| s.state_dir.as_deref())
            .or(self.state_dir.as_deref());
        runway_server::state_dir::resolve(flag)
    }

    /// `--service NAME` as given: after the command, else before it.
    pub fn service_flag(&self) -> Option<&str> {
        let (_, _, after) = self.command.options();
        after.or(self.service.as_deref())
    }

    pub fn client(&self) -> Client {
        connect(&self.state_dir())
    }

    /// The service a command is about: --service, else runway.toml's, else the only one running.
    pub async fn service(&self, client: &Client) -> Result<String> {
        if let Some(s) = self.service_flag() {
            // A name the server does not know is a typo, not an empty answer.
            let status = client.status().await?;
            known_service(&status, s)?;
            return Ok(s.to_string());
        }
        if let Ok(spec) = runway_spec::parse_file(&self.file()) {
            return Ok(spec.service.name);
        }
        let status = client.status().await?;
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

/// `name` when the server runs it; otherwise an error (`not_found`) that lists what it runs.
pub fn known_service(status: &runway_wire::api::StatusView, name: &str) -> Result<()> {
    if status.services.iter().any(|s| s.name == name) {
        return Ok(());
    }
    let names: Vec<&str> = status.services.iter().map(|s| s.name.as_str()).collect();
    let message = if names.is_empty() {
        format!("no service `{name}`: the server runs none yet")
    } else {
        format!(
            "no service `{name}`: the server runs {}",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(ClientError::not_found(message).into())
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Init { force, .. } => local::init(&cli.file(), *force),
        Command::Validate { .. } => local::validate(&cli.file()),
        Command::Plan { version, .. } => {
            local::plan(&cli, version.as_deref().unwrap_or("the new version")).await
        }
        Command::Server {
            api_listen,
            metrics_listen,
            leader_lease,
            leader_lease_duration,
            tls_cert,
            tls_key,
            insecure_http,
            max_connections,
            keep_replicas,
            take_over,
            retention,
            ..
        } => {
            runway_server::run(runway_server::ServerOptions {
                retention: retention.0,
                max_connections: *max_connections,
                keep_replicas: *keep_replicas,
                take_over: *take_over,
                state_dir: cli.state_dir(),
                api_listen: *api_listen,
                metrics_listen: *metrics_listen,
                tls: match (tls_cert, tls_key) {
                    (Some(cert), Some(key)) => Some(runway_server::TlsFiles {
                        cert: cert.clone(),
                        key: key.clone(),
                    }),
                    _ => None,
                },
                insecure_http: *insecure_http,
                leader_lease: leader_lease.clone().map(|(namespace, name)| {
                    runway_server::LeaderLease {
                        namespace,
                        name,
                        duration: *leader_lease_duration,
                    }
                }),
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Deploy {
            version,
            detach,
            skip_checks,
            from_here,
            reason,
            deploy_type,
            override_policy,
            commit,
            commit_time,
            ..
        } => {
            let options = deploy::DeployOptions {
                detach: detach.detach,
                skip_checks: *skip_checks,
                from_here: *from_here,
                reason: reason.clone(),
                deploy_type: deploy_type.clone(),
                override_policy: *override_policy,
                commit: commit.clone(),
                commit_time: commit_time.clone(),
            };
            deploy::deploy(&cli, version, options).await
        }
        Command::Tokens { action } => access::tokens(&cli, action).await,
        Command::Report {
            action: args::ReportCommand::Dora { since, json, .. },
        } => access::dora(&cli, since.as_deref(), *json).await,
        Command::Incident { action } => match action {
            args::IncidentCommand::List { limit, json, .. } => {
                incident::list(&cli, *limit, *json).await
            }
            args::IncidentCommand::Show { id, json, .. } => incident::show(&cli, *id, *json).await,
            args::IncidentCommand::Ack { id, json, .. } => incident::ack(&cli, *id, *json).await,
            args::IncidentCommand::Resolve { id, note, json, .. } => {
                incident::resolve(&cli, *id, note.as_deref(), *json).await
            }
            args::IncidentCommand::Report { id, output, .. } => {
                incident::report(&cli, *id, output.as_deref()).await
            }
        },
        Command::Notify {
            action: args::NotifyCommand::Test { target, json, .. },
        } => notify::test(&cli, target.as_deref(), *json).await,
        Command::Notify {
            action: args::NotifyCommand::Log { limit, json, .. },
        } => notify::log(&cli, *limit, *json).await,
        Command::Audit {
            action: Some(args::AuditCommand::Verify { head, json, .. }),
            ..
        } => access::audit_verify(&cli, head.as_deref(), *json).await,
        Command::Audit { since, json, .. } => access::audit(&cli, since.as_deref(), *json).await,
        Command::Approvals { json, .. } => policy::approvals(&cli, *json).await,
        Command::Approve {
            id, digest, detach, ..
        } => policy::approve(&cli, *id, digest.as_deref(), detach.detach).await,
        Command::Reject { id, reason, .. } => policy::reject(&cli, *id, reason).await,
        Command::Lock { reason, .. } => policy::lock(&cli, Some(reason)).await,
        Command::Unlock { .. } => policy::lock(&cli, None).await,
        Command::Windows {
            deploy_type,
            days,
            at,
            json,
            ..
        } => policy::windows(&cli, deploy_type.as_deref(), *days, at.as_deref(), *json),
        Command::Whoami { json, .. } => access::whoami(&cli, *json).await,
        Command::Secrets { action } => secrets::run(&cli, action).await,
        Command::Flags { action } => flags::run(&cli, action).await,
        Command::Rollback {
            version,
            to_revision,
            keep_schema,
            reason,
            detach,
            ..
        } => {
            deploy::rollback(
                &cli,
                version.as_deref(),
                *to_revision,
                *keep_schema,
                reason.as_deref(),
                detach.detach,
            )
            .await
        }
        Command::Backups { json, .. } => inspect::backups(&cli, *json).await,
        Command::Restore { backup, detach, .. } => {
            deploy::restore(&cli, *backup, detach.detach).await
        }
        Command::Maintenance { state, message, .. } => {
            deploy::set_mode(
                &cli,
                deploy::Mode::Maintenance,
                *state == OnOff::On,
                message.as_deref(),
            )
            .await
        }
        Command::Traffic { mode, message, .. } => {
            deploy::set_mode(
                &cli,
                deploy::Mode::ReadOnly,
                *mode == TrafficArg::ReadOnly,
                message.as_deref(),
            )
            .await
        }
        Command::Promote { full, .. } => {
            let command = if *full {
                CanaryCommand::PromoteFull
            } else {
                CanaryCommand::Promote
            };
            deploy::control(&cli, command).await
        }
        Command::Pause { .. } => deploy::control(&cli, CanaryCommand::Pause).await,
        Command::Resume { .. } => deploy::control(&cli, CanaryCommand::Resume).await,
        Command::Abort { .. } => deploy::control(&cli, CanaryCommand::Abort).await,
        Command::Check {
            action: Some(CheckCommand::History { json, limit, .. }),
            ..
        } => inspect::check_history(&cli, *json, *limit).await,
        Command::Check { phase, json, .. } => local::check(&cli, phase.as_deref(), *json).await,
        Command::Baseline { action } => inspect::baseline(&cli, action).await,
        Command::Service {
            action: ServiceCommand::Remove { name, force, .. },
        } => deploy::remove_service(&cli, name, *force).await,
        Command::Scale { count, detach, .. } => deploy::scale(&cli, *count, detach.detach).await,
        Command::Status {
            watch, json, all, ..
        } => inspect::status(&cli, *watch, *json, *all).await,
        Command::History {
            json, limit, all, ..
        } => inspect::history(&cli, *json, *limit, *all).await,
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
            ..
        } => {
            let filter = inspect::LogFilter {
                version: release.as_deref(),
                node: node.as_deref(),
            };
            inspect::logs(&cli, *follow, *lines, filter, *json).await
        }
        // The demo, the demo app and the load generator live in the binary (src/demo.rs),
        // which runs them before coming here.
        Command::Demo | Command::Loadgen { .. } | Command::DemoApp { .. } => {
            anyhow::bail!(
                "the demo, the demo app and the load generator run from the runway binary"
            )
        }
    }
}

/// The CLI's exit statuses, documented in the README and `runway --help`.
pub mod exit {
    /// The command did what was asked.
    pub const OK: u8 = 0;
    /// It ran and did not succeed (a deployment failed or was rolled back, a blocker check
    /// failed), or failed in a way no other status names.
    pub const FAILED: u8 = 1;
    /// Invalid input: runway.toml is invalid, or the server found the request invalid.
    pub const INVALID: u8 = 2;
    /// What the command names does not exist (service, deployment, node, backup, version).
    pub const NOT_FOUND: u8 = 3;
    /// The service's state refused it: another operation runs, it is frozen, or it is in a
    /// state that does not allow it. Nothing changed.
    pub const REFUSED: u8 = 4;
    /// No server answers for the state dir, or it refused the CLI's token.
    pub const NO_SERVER: u8 = 5;
    /// The token's role may not do it (the message names the role it needs).
    pub const FORBIDDEN: u8 = 6;
    /// Interrupted (Ctrl-C) while following; the operation goes on in the server.
    pub const INTERRUPTED: u8 = 130;
}

/// The exit status for an error that ended a command: by the API's error code, never by the
/// text of a message.
pub fn exit_status_of(error: &anyhow::Error) -> u8 {
    use runway_wire::ErrorCode;
    match error.downcast_ref::<ClientError>() {
        Some(ClientError::NoServer(_)) => exit::NO_SERVER,
        Some(ClientError::Api { code, .. }) => match code {
            ErrorCode::InvalidRequest => exit::INVALID,
            ErrorCode::NotFound => exit::NOT_FOUND,
            ErrorCode::Busy | ErrorCode::Frozen | ErrorCode::Conflict | ErrorCode::Unavailable => {
                exit::REFUSED
            }
            ErrorCode::Unauthorized => exit::NO_SERVER,
            ErrorCode::Forbidden => exit::FORBIDDEN,
            ErrorCode::Failed | ErrorCode::Internal => exit::FAILED,
        },
        _ => exit::FAILED,
    }
}

/// What to do about an error that ended a command, when the server said.
pub fn hint_of(error: &anyhow::Error) -> Option<&str> {
    match error.downcast_ref::<ClientError>() {
        Some(ClientError::Api { hint, .. }) if !hint.is_empty() => Some(hint),
        _ => None,
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

    /// Issue 10: every command, argument and flag a user can see says what it is.
    #[test]
    fn every_visible_command_and_argument_is_described() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !arg.is_hide_set() && !builtin && arg.get_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.is_hide_set() || sub.get_name() == "help" {
                    continue;
                }
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(format!("{sub_path} (the command)"));
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut cmd = super::Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "runway", &mut missing);
        assert!(missing.is_empty(), "undescribed: {missing:#?}");
    }

    /// Issue 10: options appear only where they do something: no `--service` or
    /// `--state-dir` on `init`, `validate` or `demo`; both on the commands about a service.
    #[test]
    fn commands_take_only_the_options_they_use() {
        let mut cmd = super::Cli::command();
        cmd.build();
        let takes = |path: &[&str], id: &str| {
            let mut c = &cmd;
            for name in path {
                c = c.find_subcommand(name).unwrap();
            }
            c.get_arguments().any(|a| a.get_id() == id)
        };
        for path in [&["init"][..], &["validate"], &["demo"]] {
            assert!(!takes(path, "service"), "{path:?} shows --service");
            assert!(!takes(path, "state_dir"), "{path:?} shows --state-dir");
        }
        for path in [
            &["status"][..],
            &["logs"],
            &["nodes", "list"],
            &["check", "history"],
        ] {
            assert!(takes(path, "service"), "{path:?} lacks --service");
            assert!(takes(path, "state_dir"), "{path:?} lacks --state-dir");
        }
        for path in [&["deploy"][..], &["server"], &["plan"]] {
            assert!(!takes(path, "service"), "{path:?} shows --service");
            assert!(takes(path, "state_dir"), "{path:?} lacks --state-dir");
        }
    }

    /// `--service` and `--state-dir` work before and after the command; after wins.
    #[test]
    fn service_and_state_dir_are_accepted_before_and_after_the_command() {
        use clap::Parser;
        let before = super::Cli::parse_from(["runway", "--service", "a", "status"]);
        assert_eq!(before.service_flag(), Some("a"));
        let after = super::Cli::parse_from(["runway", "status", "--service", "b"]);
        assert_eq!(after.service_flag(), Some("b"));
        let both = super::Cli::parse_from([
            "runway",
            "--state-dir",
            "/x",
            "nodes",
            "list",
            "--state-dir",
            "/y",
        ]);
        assert_eq!(both.state_dir(), std::path::PathBuf::from("/y"));
        let nested = super::Cli::parse_from(["runway", "check", "history", "--service", "c"]);
        assert_eq!(nested.service_flag(), Some("c"));
        assert!(super::Cli::try_parse_from(["runway", "init", "--service", "x"]).is_err());
    }

    /// The help shows where the state dir comes from, never an empty `[env: NAME=]`.
    #[test]
    fn help_shows_no_empty_env_values() {
        let help = super::Cli::command().render_long_help().to_string();
        assert!(help.contains("[env: RUNWAY_STATE_DIR]"), "{help}");
        assert!(!help.contains("=]"), "{help}");
    }

    /// Issue 10: the commands runway.toml's template tells users to run exist, with those
    /// options (a bare command name may leave out its required arguments).
    #[test]
    fn the_init_templates_commands_parse() {
        use clap::Parser;
        let template = runway_spec::INIT_TEMPLATE;
        let mentioned: Vec<&str> = template
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|span| span.starts_with("runway "))
            .collect();
        assert!(mentioned.len() >= 4, "{mentioned:?}");
        for command in mentioned {
            let words: Vec<String> = command
                .replace("<name>", "daily")
                .replace("<version>", "v1")
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if let Err(e) = super::Cli::try_parse_from(&words) {
                assert_eq!(
                    e.kind(),
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "`{command}` from the init template: {e}"
                );
            }
        }
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
