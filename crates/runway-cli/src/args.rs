//! The command line's definition: every command, argument and flag, with the help text `runway
//! help COMMAND` shows. Each command takes only the options it uses: `--service` and
//! `--state-dir` are declared on the commands that talk to a server about a service (and may
//! also be written before the command, `runway --service web status`), not on `init`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "Deployment runbooks that run themselves";

const EXAMPLES: &str = "\
Examples:
  runway demo                      see it work: deploys, a refused release, a rollback
  runway init                      write a commented runway.toml here
  runway server &                  start the server (state in ~/.local/state/runway)
  runway deploy v1.2.3             run the runbook and roll v1.2.3 out
  runway status                    what serves, what runs, what is under way
  runway rollback                  back to the previous release, with its config

Exit status:
  0    done                      3    not found (service, deployment, node, version)
  1    the operation failed      4    refused by the service's state (busy, frozen, ...)
  2    invalid input             5    no server answers (or it refused the token)
  6    the token's role may not  130  Ctrl-C while following (the operation goes on)

`runway help COMMAND` says more about each command.";

#[derive(Parser, Debug)]
#[command(name = "runway", version, about = ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    /// The server's state dir, where the CLI finds the server's address and token
    /// [default: ~/.local/state/runway]. Also accepted after the command.
    #[arg(
        long,
        env = "RUNWAY_STATE_DIR",
        hide_env_values = true,
        value_name = "DIR"
    )]
    pub state_dir: Option<PathBuf>,

    /// The service description [default: ./runway.toml]. Also accepted after the commands
    /// that read it: `runway deploy v2 -f other.toml`.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Which service the command is about [default: runway.toml's, else the only one the
    /// server runs]. Also accepted after the command.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// `--state-dir` after a command that talks to the server.
#[derive(Args, Debug, Clone, Default)]
pub struct ServerArg {
    /// The server's state dir [default: $RUNWAY_STATE_DIR, else ~/.local/state/runway].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `--state-dir` and `--service` after a command about one service of a server.
#[derive(Args, Debug, Clone, Default)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// Which service [default: runway.toml's, else the only one the server runs].
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
}

/// `-f FILE` after a command that reads runway.toml.
#[derive(Args, Debug, Clone, Default)]
pub struct FileArg {
    /// The service description [default: ./runway.toml].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// `--detach` on the commands that start a deployment.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct DetachArg {
    /// Return once the deployment has started instead of following it to its end (follow it
    /// with `runway status --watch`; its outcome is in `runway history`).
    #[arg(long)]
    pub detach: bool,
}

const DEPLOY_HELP: &str = "\
Runs the whole runbook: preflight checks, backup and migration ([hooks]), the rollout of
[strategy] (rolling, canary, blue-green or recreate), the analysis, verification; on any
failure the previous release comes back by itself.

Exit status:
  0    VERSION serves all traffic
  1    the deployment failed or was rolled back (the reason is printed)
  2    runway.toml is invalid (every problem is printed; nothing was deployed)
  4    refused: another operation runs, the service is frozen, it is deployed from another
       directory, or its listen address is taken (nothing changed)
  5    no server answers for the state dir
  130  Ctrl-C: the CLI stopped following, the deployment goes on in the server

Examples:
  runway deploy v1.2.3
  runway deploy v1.2.3 -f services/api/runway.toml --detach
  runway deploy v1.2.4 --skip-checks          an emergency fix (recorded)";

const ROLLBACK_HELP: &str = "\
Examples:
  runway rollback                     the release before the serving one
  runway rollback v1.2.1
  runway rollback --to-revision 12    the release deployment #12 brought (see `runway history`);
                                      on Kubernetes, the Deployment's revision 12
                                      (see `kubectl rollout history`)";

const CHECK_HELP: &str = "\
Exit status: 0 when no blocker failed, 1 when one did, 2 when runway.toml is invalid.

Examples:
  runway check                    every check of runway.toml
  runway check --phase preflight
  runway check history            the runs of scheduled checklists";

const LOGS_HELP: &str = "\
Examples:
  runway logs -f                  follow every running replica
  runway logs --version v2        the replicas of v2, running or stopped
  runway logs --node web-7        one replica, running or stopped
  runway logs --deployment 12     deployment #12's hook output and the replicas it started";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a commented runway.toml to start from.
    ///
    /// The service is named after the directory.
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        file: FileArg,
    },
    /// Check runway.toml and report every problem.
    ///
    /// Each problem is shown with file:line:col; the exit status is 2 when there is one.
    Validate {
        #[command(flatten)]
        file: FileArg,
    },
    /// Print the steps a deploy of VERSION would take; changes nothing.
    ///
    /// The plan starts from what the server runs now (or from nothing without a server).
    #[command(after_help = "Example:\n  runway plan v1.2.3")]
    Plan {
        /// The version to plan for (any name: nothing is started) [default: shown as "the
        /// new version"].
        version: Option<String>,
        #[command(flatten)]
        file: FileArg,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Run the runway server in the foreground until SIGTERM or SIGINT.
    #[command(
        after_help = "Example:\n  runway server --state-dir /var/lib/runway --api-listen 127.0.0.1:7070"
    )]
    Server {
        /// Address of the API and dashboard (the port chosen is written to server.json in the
        /// state dir). Anything but loopback needs --tls-cert and --tls-key, or
        /// --insecure-http.
        #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
        api_listen: SocketAddr,
        /// Serve the API over TLS with this certificate chain (PEM).
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
        /// Serve the API in plain HTTP on a non-loopback address: tokens and session cookies
        /// cross the network readable. Only behind a proxy that terminates TLS.
        #[arg(long, conflicts_with = "tls_cert")]
        insecure_http: bool,
        /// Address of the Prometheus /metrics endpoint (no token needed).
        #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
        metrics_listen: SocketAddr,
        /// The most client connections all services' proxies hold at once; one more is
        /// answered 503. Default: from the open-file limit (raised to its hard limit at
        /// start), leaving a quarter of it to the API, the database and the replicas.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        max_connections: Option<u64>,
        /// On SIGTERM/SIGINT, finish in-flight requests and exit leaving the replicas
        /// running, for a supervisor (systemd, a container runtime) that starts the server
        /// again: the next server adopts them. Without it the server stops its replicas.
        #[arg(long, env = "RUNWAY_KEEP_REPLICAS")]
        keep_replicas: bool,
        /// When another server runs on the state dir, take its listening sockets over (an
        /// upgrade in place: it finishes its requests and exits, its replicas are adopted)
        /// instead of refusing to start.
        #[arg(long)]
        take_over: bool,
        /// How long an ended deployment keeps its full journal, and a stopped replica its
        /// log files. After that, of entries repeated while a stage lasted (an analysis every
        /// interval), only the last of each run stays, and the logs go. Records, reasons and
        /// the deciding verdicts stay for ever. 720h is 30 days; `forever` keeps everything.
        #[arg(long, default_value = "720h", value_name = "DURATION", value_parser = parse_retention)]
        retention: Retention,
        /// Run only while holding this Kubernetes Lease (NAMESPACE/NAME): with two runway
        /// replicas in a cluster, one drives and the other waits to take over.
        #[arg(long, env = "RUNWAY_LEADER_LEASE", value_name = "NAMESPACE/NAME", value_parser = parse_lease)]
        leader_lease: Option<(String, String)>,
        /// How long the Lease lasts without renewal (a standby takes over that long after the
        /// leader stops renewing).
        #[arg(long, default_value = "15s", value_parser = parse_window, requires = "leader_lease")]
        leader_lease_duration: std::time::Duration,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Deploy VERSION with runway.toml and follow it to its outcome.
    #[command(after_help = DEPLOY_HELP)]
    Deploy {
        /// The version to deploy: replaces {version} in [run] command and env.
        version: String,
        #[command(flatten)]
        detach: DetachArg,
        /// Deploy without the preflight checks (an emergency; recorded in the deployment).
        #[arg(long)]
        skip_checks: bool,
        /// Deploy although the service was deployed from another directory (it moves here).
        #[arg(long)]
        from_here: bool,
        /// Why, in your words: recorded with the deployment (required with --override).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// The deployment type, one of runway.toml's [types] (default: [deploy] default_type).
        #[arg(long = "type", value_name = "TYPE")]
        deploy_type: Option<String>,
        /// Deploy although a lock, window or freeze holds (admins only, with --reason;
        /// recorded). It never passes approvals.
        #[arg(long = "override", requires = "reason")]
        override_policy: bool,
        /// The commit VERSION was built from; its time is read from the git repository of
        /// runway.toml's directory (for lead time in `runway report dora`).
        #[arg(long, value_name = "SHA")]
        commit: Option<String>,
        /// When the change was committed (RFC 3339, e.g. 2026-11-30T09:15:00Z), instead of
        /// reading it from git.
        #[arg(long, value_name = "TIME")]
        commit_time: Option<String>,
        #[command(flatten)]
        file: FileArg,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Show what runs: releases, replicas, the deployment under way, request metrics.
    ///
    /// Also the last failure since the serving release. Inside a project (a directory with a
    /// runway.toml), its service only; elsewhere, or with --all, every service.
    Status {
        /// Refresh every second until interrupted (with --json: one snapshot per line).
        #[arg(long)]
        watch: bool,
        /// Print JSON (docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
        /// Every service the server runs, also inside a project directory.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Deployments, newest first.
    ///
    /// Inside a project (a directory with a runway.toml), of its service; elsewhere, or with
    /// --all, of every service.
    History {
        /// Print JSON (docs/json.md) instead of a table.
        #[arg(long)]
        json: bool,
        /// Every service's deployments, also inside a project directory.
        #[arg(long)]
        all: bool,
        /// How many to show.
        #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
        limit: u32,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Roll back to an earlier release, with the config, secrets and schema it had.
    ///
    /// The previous release, or VERSION, or the release of a deployment from `history`.
    #[command(after_help = ROLLBACK_HELP)]
    Rollback {
        /// The version to go back to [default: the release before the serving one].
        version: Option<String>,
        /// The deployment id (from `runway history`) whose release to restore; for a
        /// [kubernetes] service, the Deployment's revision (`kubectl rollout history`).
        #[arg(long, value_name = "N", conflicts_with = "version")]
        to_revision: Option<i64>,
        /// Leave the newer releases' migrations in effect: the old release runs on the new
        /// schema (no undo, no restore).
        #[arg(long)]
        keep_schema: bool,
        /// Why, in your words: recorded with the rollback and said in its notice.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[command(flatten)]
        detach: DetachArg,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// List the service's backups, newest first.
    ///
    /// [hooks.backup] takes one before each migration.
    Backups {
        /// Print JSON (docs/json.md) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Put the database back to BACKUP, with the release that served when it was taken.
    ///
    /// It runs behind the maintenance page; `runway backups` lists the backups.
    #[command(after_help = "Example:\n  runway restore 7")]
    Restore {
        /// The backup's id, from `runway backups`.
        backup: i64,
        #[command(flatten)]
        detach: DetachArg,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Serve a 503 maintenance page for every request, or stop doing so.
    ///
    /// The health path and [maintenance] allow still pass.
    #[command(after_help = "Example:\n  runway maintenance on --message \"Back at 14:00 UTC\"")]
    Maintenance {
        /// on: serve the page; off: traffic flows to the release again.
        #[arg(value_enum)]
        state: OnOff,
        /// The page's message [default: [maintenance] message].
        #[arg(long)]
        message: Option<String>,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Refuse writes with 503 and let reads through, or take all traffic again.
    ///
    /// Writes are anything but GET, HEAD and OPTIONS.
    #[command(
        after_help = "Example:\n  runway traffic read-only --message \"Migrating, back soon\""
    )]
    Traffic {
        /// read-only: refuse writes; normal: take everything again.
        #[arg(value_enum)]
        mode: TrafficArg,
        /// What refused writes are told [default: [maintenance] message].
        #[arg(long)]
        message: Option<String>,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Move a canary to its next step now (or with --full, straight to 100%).
    Promote {
        /// Straight to 100%: the canary becomes the serving release.
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Hold a canary at its current step until `runway resume` or `runway promote`.
    Pause {
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Let a paused canary go on.
    Resume {
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Roll a canary back now.
    ///
    /// Its weight goes to 0 at once, then it is drained and stopped.
    Abort {
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Run the checks of runway.toml and print a table.
    ///
    /// All of them, or one phase with --phase; exit 1 when a blocker failed. `{replica}`
    /// stands for the running replicas of the service.
    #[command(args_conflicts_with_subcommands = true, after_help = CHECK_HELP)]
    Check {
        #[command(subcommand)]
        action: Option<CheckCommand>,
        /// Only the checks of this phase: preflight, verify, smoke, daily, or a named
        /// checklist.
        #[arg(long, value_name = "PHASE")]
        phase: Option<String>,
        /// Print JSON (docs/json.md): an array of results, `[]` when there are no checks.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        file: FileArg,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Capture the serving release's request metrics, or compare with a capture.
    Baseline {
        #[command(subcommand)]
        action: BaselineCommand,
    },
    /// List, restart, stop or start replicas ("nodes").
    Nodes {
        #[command(subcommand)]
        action: NodesCommand,
    },
    /// Change the serving release's number of replicas.
    ///
    /// The next deploy goes back to runway.toml's count, and says so.
    #[command(after_help = "Example:\n  runway scale --count 5")]
    Scale {
        /// The number of replicas.
        #[arg(long, value_name = "N")]
        count: u32,
        #[command(flatten)]
        detach: DetachArg,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Manage the services the server knows.
    Service {
        #[command(subcommand)]
        action: ServiceCommand,
    },
    /// Deployments waiting for approval, with what each needs and who approved it.
    Approvals {
        /// Print JSON (docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Approve deployment ID (as shown by `runway approvals`); it starts once enough approve.
    ///
    /// The approval is bound to the digest of what it is (version, whole config, type): the
    /// CLI sends the digest it shows, and a deployment that changed since is refused.
    #[command(after_help = "Example:
  RUNWAY_TOKEN=... runway approve 12")]
    Approve {
        /// The deployment's id.
        id: i64,
        /// Approve only if its digest is this one (as another screen showed it).
        #[arg(long, value_name = "SHA256")]
        digest: Option<String>,
        #[command(flatten)]
        detach: DetachArg,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Reject deployment ID: it ends, with the reason recorded.
    Reject {
        /// The deployment's id.
        id: i64,
        /// Why (recorded).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Hold every deployment of the service (a named incident, a launch) until `unlock`.
    ///
    /// Rollbacks, restores and scaling still run; an admin may deploy anyway with --override.
    #[command(after_help = "Example:
  runway lock --reason \"INC-4711: checkout outage\"")]
    Lock {
        /// Why (shown to whoever tries to deploy).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Lift `runway lock`.
    Unlock {
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// The deploy calendar of runway.toml: when each day is open, what freezes, the next window.
    #[command(
        after_help = "Examples:\n  runway windows\n  runway windows --type hotfix --days 7\n  runway windows --at 2026-12-20T10:00:00Z"
    )]
    Windows {
        /// For this deployment type (default: [deploy] default_type).
        #[arg(long = "type", value_name = "TYPE")]
        deploy_type: Option<String>,
        /// How many days ahead.
        #[arg(long, default_value_t = 30, value_name = "N")]
        days: u32,
        /// From this instant (RFC 3339) instead of now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Print JSON (docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        file: FileArg,
    },
    /// The audit trail: every state-changing request, who made it, from where, and how it ended.
    #[command(
        after_help = "Examples:\n  runway audit --since 7d\n  runway audit verify\n  runway audit verify --head 3f2a..."
    )]
    Audit {
        #[command(subcommand)]
        action: Option<AuditCommand>,
        /// Only entries of the last DURATION (`7d`, `12h`, `30m`) or since a time (RFC 3339).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Print JSON (docs/json.md) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Notifications: test the [[notify]] targets of runway.toml, or see what became of each
    /// notice (delivered or failed, after how many attempts).
    #[command(
        after_help = "Examples:\n  runway notify test\n  runway notify test --target deploys-channel\n  runway notify log -n 20"
    )]
    Notify {
        #[command(subcommand)]
        action: NotifyCommand,
    },
    /// Reports from runway's records: `dora`, the four key delivery metrics (and rework) with
    /// runbook 001's targets.
    #[command(
        after_help = "Examples:\n  runway report dora\n  runway report dora --since 30d --json"
    )]
    Report {
        #[command(subcommand)]
        action: ReportCommand,
    },
    /// Incidents runway opened (a rollback, a failed deployment that had traffic, a failing
    /// scheduled checklist): list, show, acknowledge, resolve, and runbook 000's post-mortem.
    #[command(
        after_help = "Examples:\n  runway incident list\n  runway incident show 3\n  runway incident ack 3\n  runway incident resolve 3 --note \"fixed in v1.2.4\"\n  runway incident report 3 -o incident-3.md"
    )]
    Incident {
        #[command(subcommand)]
        action: IncidentCommand,
    },
    /// Named tokens: who may use the API, with which role (admin only).
    ///
    /// Roles, each allowed what the ones before it are: viewer (reads), deployer (deploys,
    /// rolls back, scales, steers a rollout), approver (approves others' deployments), admin
    /// (tokens, restores, removing services, overrides). The CLI sends RUNWAY_TOKEN; without
    /// it, the server's own admin token from its state dir.
    #[command(
        after_help = "Examples:\n  runway tokens create alice --role approver\n  runway tokens list\n  runway tokens revoke alice"
    )]
    Tokens {
        #[command(subcommand)]
        action: TokensCommand,
    },
    /// A service's secrets: set (the value from stdin or a prompt, never from the command
    /// line, which other users can read), list (never values), unset. Values are sealed at
    /// rest and opened only by the server; `secret:NAME` in runway.toml refers to one.
    #[command(
        after_help = "Examples:\n  runway secrets set DATABASE_URL < database-url.txt\n  runway secrets set JWT_SECRET          (prompts; nothing is echoed)\n  runway secrets list\n  runway secrets unset OLD_API_KEY\n\nSetting a secret that the serving release uses rolls its replicas with the new value\n(a deployment of kind `secrets`, followed like a deploy); a rollback brings back the\nsecret versions its release ran with."
    )]
    Secrets {
        #[command(subcommand)]
        action: SecretsCommand,
    },
    /// A service's feature flags, which applications read through OpenFeature's OFREP
    /// (base URL `http://SERVER/v1/services/SERVICE`): list, get, set, off (the kill switch),
    /// and rollout in steps, each judged against the service before the rollout.
    #[command(after_help = FLAGS_HELP)]
    Flags {
        #[command(subcommand)]
        action: FlagsCommand,
    },
    /// Which identity and role the CLI's token is.
    Whoami {
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Show replica logs, also of replicas that no longer run.
    ///
    /// The running replicas by default; stopped ones by node, version or deployment (what a
    /// user wants after a failed deploy).
    #[command(after_help = LOGS_HELP)]
    Logs {
        /// Keep printing new lines until interrupted.
        #[arg(short = 'f', long, conflicts_with = "deployment")]
        follow: bool,
        /// Lines per replica.
        #[arg(short = 'n', long, default_value_t = 50, value_name = "N")]
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
        /// One JSON object per line (NDJSON, docs/json.md).
        #[arg(long)]
        json: bool,
        /// Deployment ID's hook output (backup, migrate, undo, restore, [[hooks.run]]), then
        /// the logs of the replicas it started.
        #[arg(long, value_name = "ID")]
        deployment: Option<i64>,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// See it work: deploys under load, a refused bad release, a rollback.
    ///
    /// A server and a demo app in a temporary directory, removed at the end (or on Ctrl-C).
    Demo,
    /// Steady HTTP load with a per-response timeline (used by the benchmarks).
    #[command(hide = true)]
    Loadgen {
        /// host:port to load.
        addr: SocketAddr,
        /// Requests per second, all workers together.
        #[arg(long, default_value_t = 2000)]
        rps: u64,
        /// Concurrent connections.
        #[arg(long, default_value_t = 16)]
        workers: u64,
        /// How long to load.
        #[arg(long, default_value = "30s", value_parser = parse_window)]
        duration: std::time::Duration,
        /// Write "seconds,version,status" per response to this file.
        #[arg(long)]
        timeline: Option<PathBuf>,
    },
    /// The demo app itself (used by the demo, the tests and the benchmarks); its own
    /// arguments follow (`runway demo-app --help`).
    #[command(hide = true, disable_help_flag = true, disable_version_flag = true)]
    DemoApp {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
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
        /// Print JSON (docs/json.md) instead of a table.
        #[arg(long)]
        json: bool,
        /// How many runs to show.
        #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
        limit: u32,
        #[command(flatten)]
        target: ServiceArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum BaselineCommand {
    /// Measure the serving release for a while and store the numbers.
    #[command(after_help = "Example:\n  runway baseline capture --window 1m")]
    Capture {
        /// How long to measure (a duration like "10s").
        #[arg(long, default_value = "10s", value_parser = parse_window)]
        window: std::time::Duration,
        /// Print JSON (docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Measure now and compare with a baseline: Metric | Baseline | Current | Delta | Status.
    Compare {
        /// How long to measure (a duration like "10s").
        #[arg(long, default_value = "10s", value_parser = parse_window)]
        window: std::time::Duration,
        /// The baseline to compare with [default: the newest].
        #[arg(long, value_name = "ID")]
        id: Option<i64>,
        /// Print JSON (docs/json.md) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: ServiceArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Deployment frequency, lead time for changes, deployment and change failure rates, time
    /// to restore and rework rate, each beside runbook 001's target and threshold.
    Dora {
        /// The period: DURATION back (`90d`, `12h`) or since an RFC 3339 time [default: 90d].
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: ServiceArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum IncidentCommand {
    /// Incidents, newest first, with severity, state, deployment and impact.
    List {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// One incident: impact and timeline.
    Show {
        /// The incident's number (`runway incident list`).
        id: i64,
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Acknowledge an incident (someone is on it).
    Ack {
        /// The incident's number (`runway incident list`).
        id: i64,
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Resolve an incident.
    Resolve {
        /// The incident's number (`runway incident list`).
        id: i64,
        /// What fixed it, for the post-mortem.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Runbook 000's post-mortem as Markdown: timeline, impact and actions filled in.
    Report {
        /// The incident's number (`runway incident list`).
        id: i64,
        /// Write it to FILE instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum NotifyCommand {
    /// Send a test notice to each [[notify]] target of runway.toml, now, through the server
    /// (which resolves their env:/secret: URLs), and say what became of it.
    Test {
        /// Only the target of this name.
        #[arg(long, value_name = "NAME")]
        target: Option<String>,
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        file: FileArg,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Recorded deliveries, newest first: target, notice, outcome, attempts, status, error.
    Log {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: ServiceArgs,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum AuditCommand {
    /// Check the trail's hash chain: an entry edited, inserted or deleted is found; with
    /// --head (a hash kept elsewhere, as notifications carry it), newest entries cut off too.
    Verify {
        /// A head hash seen earlier: the trail must still reach it.
        #[arg(long, value_name = "SHA256")]
        head: Option<String>,
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArg,
    },
}

const FLAGS_HELP: &str = r#"Examples (runbook 001):
  runway flags set agent-pack-v2                       a boolean flag, off for everyone
  runway flags set agent-pack-v2 --on --for-keys on=canary-1,canary-2
                                                       on for the canary users only
  runway flags rollout agent-pack-v2 --steps 5%,25%,50%,100% --interval 30m
                                                       each step judged; a failing one turns it off
  runway flags off agent-pack-v2                       the kill switch, at once
  runway flags set banner --kind string --variant a='"Hello"' --variant b='"Hi"' --default a --on
  runway flags set limits --from limits.json           a whole definition (docs/json.md)"#;

#[derive(Subcommand, Debug)]
pub enum FlagsCommand {
    /// The service's flags: kind, on or off, what they serve.
    List {
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// One flag's whole definition.
    Get {
        /// The flag's name.
        name: String,
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Create or change a flag; what is not given stays as it is (a new flag: a boolean, off).
    Set {
        /// The flag's name: letters, digits, `-`, `_` and `.`.
        name: String,
        /// A new flag's kind: boolean (variants on and off), string, number or object.
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
        /// A variant, NAME=JSON (repeat it): replaces the variants.
        #[arg(long = "variant", value_name = "NAME=JSON")]
        variants: Vec<String>,
        /// The variant served when no rule matches and the rollout leaves a key out.
        #[arg(long = "default", value_name = "VARIANT")]
        default_variant: Option<String>,
        /// The variant served when the flag is off.
        #[arg(long, value_name = "VARIANT")]
        off_variant: Option<String>,
        /// Turn the flag on (its rules, rollout and default apply).
        #[arg(long, conflicts_with = "off")]
        on: bool,
        /// Turn the flag off (its off variant for everyone).
        #[arg(long)]
        off: bool,
        /// A rule: these targeting keys get VARIANT (VARIANT=KEY,KEY...; repeat it).
        #[arg(long = "for-keys", value_name = "VARIANT=KEYS")]
        for_keys: Vec<String>,
        /// A rule: contexts whose ATTRIBUTE is one of the values get VARIANT
        /// (VARIANT:ATTRIBUTE=V,V...; repeat it).
        #[arg(long = "for-attribute", value_name = "VARIANT:ATTR=VALUES")]
        for_attribute: Vec<String>,
        /// Drop the flag's rules before adding the ones given.
        #[arg(long)]
        clear_rules: bool,
        /// PERCENT of the targeting keys (consistently hashed) get --percent-variant.
        #[arg(long, value_name = "PERCENT")]
        percent: Option<f64>,
        /// The variant the percentage gets (default: on).
        #[arg(long, value_name = "VARIANT")]
        percent_variant: Option<String>,
        /// Drop the percentage rollout.
        #[arg(long)]
        no_percent: bool,
        /// The whole definition from a JSON file (`-`: stdin); the options above apply after.
        #[arg(long, value_name = "FILE")]
        from: Option<std::path::PathBuf>,
        /// Why (recorded with the change).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// The kill switch: the flag serves its off variant to everyone, now; a rollout under way
    /// ends.
    Off {
        /// The flag's name.
        name: String,
        /// Why (recorded with the change, and in its notification).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Roll the flag out in steps; each is judged by the service's metrics against the
    /// baseline taken before the rollout (the canary's judge); a failing step turns it off.
    Rollout {
        /// The flag's name.
        name: String,
        /// The shares of the targeting keys, rising: 5%,25%,50%,100%.
        #[arg(long, value_name = "STEPS")]
        steps: String,
        /// How long each step is watched: 30m, 90s.
        #[arg(long, value_name = "DURATION")]
        interval: String,
        /// The variant rolled out (default: on).
        #[arg(long, value_name = "VARIANT")]
        variant: Option<String>,
        /// Why (recorded with the rollout).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[command(flatten)]
        detach: DetachArg,
        #[command(flatten)]
        target: ServiceArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    /// Set secret NAME to the value read from stdin (or typed at a prompt): its next version.
    Set {
        /// The secret's name: letters, digits, `_`, `-` and `.`.
        name: String,
        #[command(flatten)]
        detach: DetachArg,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// List the service's secrets: name, version, who set it and when, and the version the
    /// serving release runs with. Never a value.
    List {
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Unset secret NAME for the deployments to come (releases that ran with it keep their
    /// versions, for rollbacks).
    Unset {
        /// The secret's name, as `runway secrets list` shows it.
        name: String,
        #[command(flatten)]
        target: ServiceArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokensCommand {
    /// Create a token NAME with ROLE; its secret is printed once and kept only hashed.
    Create {
        /// Who it is: a person or a system (alice, ci-bot); recorded with what it does.
        name: String,
        /// viewer, deployer, approver or admin.
        #[arg(long, value_parser = parse_role)]
        role: runway_wire::api::Role,
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArg,
    },
    /// List the tokens (never their secrets), revoked ones too.
    List {
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Revoke token NAME: it is refused from now on.
    Revoke {
        /// The token's name, as `runway tokens list` shows it.
        name: String,
        #[command(flatten)]
        server: ServerArg,
    },
}

fn parse_role(s: &str) -> Result<runway_wire::api::Role, String> {
    runway_wire::api::Role::parse(s)
        .ok_or_else(|| format!("`{s}` is not a role: viewer, deployer, approver or admin"))
}

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Forget a service: it leaves `status` and stops being anyone's default.
    ///
    /// Refused while it serves unless --force, which stops its replicas and closes its
    /// address. Its deployments stay in `history`.
    #[command(
        after_help = "Examples:\n  runway service remove web-test\n  runway service remove web-test --force"
    )]
    Remove {
        /// The service's name (as `runway status` shows it).
        name: String,
        /// Remove it although it serves: stop its replicas and close its listen address.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        server: ServerArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum NodesCommand {
    /// The replicas, running or starting.
    List {
        /// Print JSON (docs/json.md) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Replace a replica by a fresh one (the new one serves before the old one stops).
    Restart {
        /// The replica, e.g. web-3 (see `runway nodes list`).
        node: String,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Drain and stop a replica.
    Stop {
        /// The replica, e.g. web-3 (see `runway nodes list`).
        node: String,
        #[command(flatten)]
        target: ServiceArgs,
    },
    /// Start a stopped replica of the serving release again.
    Start {
        /// The replica, e.g. web-3 (see `runway nodes list`).
        node: String,
        #[command(flatten)]
        target: ServiceArgs,
    },
}

/// `--retention`: a duration, or `forever`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(pub Option<std::time::Duration>);

fn parse_retention(s: &str) -> Result<Retention, String> {
    if s == "forever" {
        return Ok(Retention(None));
    }
    match runway_spec::parse_duration(s) {
        Ok(keep_for) if keep_for.is_zero() => Err(format!(
            "`{s}` would thin every ended deployment's journal at once; to keep everything, \
             say `forever`"
        )),
        Ok(keep_for) => Ok(Retention(Some(keep_for))),
        Err(e) => Err(format!("{e}; or `forever` to keep everything")),
    }
}

fn parse_window(s: &str) -> Result<std::time::Duration, String> {
    runway_spec::parse_duration(s)
}

/// `NAMESPACE/NAME` of a Lease.
fn parse_lease(s: &str) -> Result<(String, String), String> {
    let valid = |part: &str| {
        !part.is_empty()
            && part.len() <= 63
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    match s.split_once('/') {
        Some((namespace, name)) if valid(namespace) && valid(name) => {
            Ok((namespace.to_string(), name.to_string()))
        }
        _ => Err(format!(
            "`{s}` is not NAMESPACE/NAME of a Lease, e.g. `ops/runway` (lowercase letters, \
             digits and `-`)"
        )),
    }
}

impl Command {
    /// The options after the command: `-f`, `--state-dir`, `--service`, whichever it takes.
    pub(super) fn options(&self) -> (Option<&FileArg>, Option<&ServerArg>, Option<&str>) {
        use Command::*;
        fn service(t: &ServiceArgs) -> (Option<&ServerArg>, Option<&str>) {
            (Some(&t.server), t.service.as_deref())
        }
        let (server, name) = match self {
            Plan { server, .. }
            | Server { server, .. }
            | Deploy { server, .. }
            | Check { server, .. } => (Some(server), None),
            Service {
                action: ServiceCommand::Remove { server, .. },
            } => (Some(server), None),
            Approve { server, .. } | Reject { server, .. } => (Some(server), None),
            Audit {
                action: Some(AuditCommand::Verify { server, .. }),
                ..
            } => (Some(server), None),
            Audit { server, .. } => (Some(server), None),
            Notify {
                action: NotifyCommand::Test { server, .. },
            } => (Some(server), None),
            Report {
                action: ReportCommand::Dora { target, .. },
            } => service(target),
            Incident { action } => match action {
                IncidentCommand::List { target, .. } => service(target),
                IncidentCommand::Show { server, .. }
                | IncidentCommand::Ack { server, .. }
                | IncidentCommand::Resolve { server, .. }
                | IncidentCommand::Report { server, .. } => (Some(server), None),
            },
            Notify {
                action: NotifyCommand::Log { target, .. },
            } => service(target),
            Approvals { target, .. } | Lock { target, .. } | Unlock { target } => service(target),
            Flags { action } => match action {
                FlagsCommand::List { target, .. }
                | FlagsCommand::Get { target, .. }
                | FlagsCommand::Set { target, .. }
                | FlagsCommand::Off { target, .. }
                | FlagsCommand::Rollout { target, .. } => service(target),
            },
            Secrets { action } => match action {
                SecretsCommand::Set { target, .. }
                | SecretsCommand::List { target, .. }
                | SecretsCommand::Unset { target, .. } => service(target),
            },
            Windows { .. } => (None, None),
            Whoami { server, .. }
            | Tokens {
                action:
                    TokensCommand::Create { server, .. }
                    | TokensCommand::List { server, .. }
                    | TokensCommand::Revoke { server, .. },
            } => (Some(server), None),
            Status { target, .. }
            | History { target, .. }
            | Rollback { target, .. }
            | Backups { target, .. }
            | Restore { target, .. }
            | Maintenance { target, .. }
            | Traffic { target, .. }
            | Promote { target, .. }
            | Pause { target }
            | Resume { target }
            | Abort { target }
            | Scale { target, .. }
            | Logs { target, .. } => service(target),
            Baseline { action } => match action {
                BaselineCommand::Capture { target, .. }
                | BaselineCommand::Compare { target, .. } => service(target),
            },
            Nodes { action } => match action {
                NodesCommand::List { target, .. }
                | NodesCommand::Restart { target, .. }
                | NodesCommand::Stop { target, .. }
                | NodesCommand::Start { target, .. } => service(target),
            },
            Init { .. } | Validate { .. } | Demo | Loadgen { .. } | DemoApp { .. } => (None, None),
        };
        // `runway check history --service web`: the subcommand's own options.
        let (server, name) = match self {
            Check {
                action: Some(CheckCommand::History { target, .. }),
                ..
            } => service(target),
            _ => (server, name),
        };
        let file = match self {
            Init { file, .. }
            | Validate { file }
            | Plan { file, .. }
            | Deploy { file, .. }
            | Windows { file, .. }
            | Notify {
                action: NotifyCommand::Test { file, .. },
            }
            | Check { file, .. } => Some(file),
            _ => None,
        };
        (file, server, name)
    }
}
