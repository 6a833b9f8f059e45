//! The clean, validated model of a service: what the rest of runway codes against.
//!
//! These types carry no positions and no "maybe" fields: defaults are filled in by the
//! time a [`Spec`] exists. They are plain serde types because runway stores a spec as
//! JSON (in its state database) and sends it over HTTP; that JSON uses the same key
//! names as `runway.toml`, durations as their canonical strings (`"1m30s"`) and the
//! listen address as `"ip:port"`, and it round-trips exactly.
//!
//! A spec read from JSON has not been through the TOML reader, so call
//! [`Spec::validate`] on it; it applies the same rules (see `rules.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use runway_checks::model::{CheckKind, CheckSpec};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::Dur;
use crate::rules::checks as check_rules;
use crate::rules::hooks as hook_rules;
use crate::rules::{self, Problem};

/// A whole `runway.toml`.
///
/// `Eq` holds because the only floats (in analysis metrics and checks) are never NaN
/// in a valid spec (see [`Spec::validate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `[service]`: what the service is called and where its traffic arrives.
    pub service: ServiceSpec,
    /// `[run]`: how to start one replica on the local machine. For a `[docker]` service, the
    /// replica count, env and timeouts of `[docker]` (its `command` is empty).
    pub run: RunSpec,
    /// `[docker]`: the release is a container image (replaces `[run]`). `None` for processes
    /// (the JSON form then omits the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerSpec>,
    /// `[kubernetes]`: the release is a Deployment on a Kubernetes cluster (replaces `[run]`;
    /// its replicas, env and stop timeout are in `run`). `None` elsewhere (the JSON form then
    /// omits the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSpec>,
    /// `[health]`: how runway decides a replica is ready.
    #[serde(default)]
    pub health: HealthSpec,
    /// `[strategy]`: how a new release replaces the old one.
    #[serde(default)]
    pub strategy: StrategySpec,
    /// `[analysis]`: how a progressive rollout judges the new release. `None` when the
    /// section is absent (the JSON form then omits the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,
    /// `[[checks]]`: the runbook's checklist items, run as preflight gates, verification
    /// of a new release, smoke tests and scheduled checklists. Empty when there are none
    /// (the JSON form then omits the key). A prometheus check without its own `url` has
    /// `[analysis] prometheus` filled in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
    /// `[hooks]`: the database work and notifications around a deployment (backup,
    /// migration, named phase hooks). Empty when absent (the JSON form then omits it).
    #[serde(default, skip_serializing_if = "HooksSpec::is_empty")]
    pub hooks: HooksSpec,
    /// `[maintenance]`: what the proxy answers while the service is in maintenance or
    /// read-only. Defaults when absent.
    #[serde(default)]
    pub maintenance: MaintenanceSpec,
    /// `[proxy]`: how runway's proxy treats the service's clients. Defaults when absent
    /// (the JSON form then omits it).
    #[serde(default, skip_serializing_if = "ProxySpec::is_default")]
    pub proxy: ProxySpec,
    /// `[deploy]`: the default deployment type, the windows and the freezes.
    #[serde(default)]
    pub deploy: crate::policy::DeployPolicy,
    /// `[types.NAME]`: deployment types (approvals, windows, strategy, monitoring).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub types: crate::policy::DeployTypes,
    /// `[[notify]]`: where deployments, rollbacks and failing checklists are announced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<crate::notify::NotifySpec>,
    /// `[incidents]`: the severity rules incidents open with (runbook 002's by default).
    #[serde(
        default,
        skip_serializing_if = "crate::incidents::IncidentPolicy::is_default"
    )]
    pub incidents: crate::incidents::IncidentPolicy,
}

impl Eq for Spec {}

/// `[docker]`: each replica is a container of `image`, its `port` published on loopback.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSpec {
    /// The image, `{version}` filled in per release (`registry.example.com/atom:{version}`).
    pub image: String,
    /// Where the app listens inside the container.
    pub port: u16,
    /// Overrides the image's command (`{port}` is `port`, `{version}` the version); the
    /// image's own when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// A Docker network to attach the containers to (the default bridge when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Bind mounts and volumes, as `docker run -v` takes them (`/srv/data:/data:ro`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// The user the container runs as (`1000:1000`, `app`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Memory limit in bytes (`memory = "512MiB"` in runway.toml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// CPU limit in cores (`cpus = 1.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Labels added to every container (runway's own `runway.*` labels come on top).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// When the image is pulled before anything changes.
    #[serde(default)]
    pub pull: PullPolicy,
    /// The image id (`sha256:...`) the release ran, recorded when it was deployed: a rollback
    /// to it runs exactly that, not whatever its tag names by then. Not in runway.toml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// The registry digest of that image (`registry/repo@sha256:...`) when it came from a
    /// registry: a rollback whose image id was pruned from the engine pulls exactly this.
    /// Not in runway.toml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

impl Eq for DockerSpec {}

/// `[kubernetes]`: the release runs as a Deployment of `image` in `namespace`; the cluster's
/// Deployment controller rolls its pods, and runway drives and follows it through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSpec {
    /// The namespace of the Deployment, Services, routes and Jobs (default `default`).
    pub namespace: String,
    /// The kubeconfig context; the current one (or the in-cluster config when runway runs in
    /// a pod) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The image, `{version}` filled in per release.
    pub image: String,
    /// The container of the pod template that runs `image` (default: the service's name).
    pub container: String,
    /// The container port the app listens on, declared in a Deployment runway creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The Deployment runway updates (default: the service's name). An existing one is
    /// adopted: its template is the base runway sets the image and env of.
    pub deployment: String,
    /// How a canary's share of the traffic is set.
    #[serde(default)]
    pub traffic: ClusterTraffic,
    /// The HTTPRoute whose backend weights split the traffic (`traffic = "gateway-api"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The Service in front of the releases (default: the service's name).
    pub service: String,
    /// Where the cluster's per-release metrics are queried (the built-in proxy is not in the
    /// path on Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<String>,
    /// How long a rollout may go without progress before it fails (the Deployment's
    /// `progressDeadlineSeconds`; default 600s, as Kubernetes').
    pub progress_deadline: Dur,
    /// The PersistentVolumeClaim `[hooks.backup]` keeps backups on (a Job's own disk is gone
    /// with its pod); required with `[hooks.backup]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_claim: Option<String>,
}

impl KubernetesSpec {
    pub const DEFAULT_NAMESPACE: &'static str = "default";
    pub const DEFAULT_PROGRESS_DEADLINE: Dur = Dur(std::time::Duration::from_secs(600));
}

/// `[kubernetes] traffic`: how traffic is shifted between two releases on a cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterTraffic {
    /// By the replica counts of the two Deployments behind one Service: approximate (the
    /// default).
    #[default]
    ReplicaRatio,
    /// By the backend weights of a Gateway API HTTPRoute: per request.
    GatewayApi,
    /// By the Service's selector: all or nothing (blue-green).
    Service,
}

impl ClusterTraffic {
    pub const ALL: [ClusterTraffic; 3] = [
        ClusterTraffic::ReplicaRatio,
        ClusterTraffic::GatewayApi,
        ClusterTraffic::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClusterTraffic::ReplicaRatio => "replica-ratio",
            ClusterTraffic::GatewayApi => "gateway-api",
            ClusterTraffic::Service => "service",
        }
    }
}

/// `[docker] pull`: when runway pulls the release's image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// Only when the Docker Engine does not have it (the default).
    #[default]
    Missing,
    /// Every deployment, so a tag that moved is followed.
    Always,
    /// Never: the image must be there (built on this host, loaded by hand).
    Never,
}

impl PullPolicy {
    pub const ALL: [PullPolicy; 3] = [PullPolicy::Missing, PullPolicy::Always, PullPolicy::Never];

    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Missing => "missing",
            PullPolicy::Always => "always",
            PullPolicy::Never => "never",
        }
    }
}

/// `[hooks]`: `[hooks.backup]`, `[hooks.migrate]` and any number of `[[hooks.run]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksSpec {
    /// `[hooks.backup]`: taken before the migration, once per deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupHook>,
    /// `[hooks.migrate]`: the schema migration, run once per deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<MigrateHook>,
    /// `[[hooks.run]]`: commands run at a named phase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run: Vec<PhaseHook>,
}

impl HooksSpec {
    /// Whether no hook is configured.
    pub fn is_empty(&self) -> bool {
        self.backup.is_none() && self.migrate.is_none() && self.run.is_empty()
    }

    /// The `[[hooks.run]]` entries of `phase`, in file order.
    pub fn at(&self, phase: HookPhase) -> impl Iterator<Item = &PhaseHook> {
        self.run.iter().filter(move |h| h.at == phase)
    }
}

/// `[hooks.backup]`. Every command is an argv (never a shell line) and runs with
/// `RUNWAY_BACKUP_DIR` set to the backup's own directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupHook {
    /// The image its one-off container or Job runs (`[docker]`, `[kubernetes]`); `None`:
    /// the release's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Writes the backup into `$RUNWAY_BACKUP_DIR`; non-empty.
    pub command: Vec<String>,
    /// Exits 0 when the backup just written is usable; optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Vec<String>>,
    /// Puts a backup (in `$RUNWAY_BACKUP_DIR`) back into the database: what
    /// `runway restore` and `on_failure = "restore"` run. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Vec<String>>,
    /// How many backups of the service to keep (older ones are deleted); at least 1.
    /// Defaults to 5.
    #[serde(default = "BackupHook::default_keep")]
    pub keep: u32,
    /// How long each of its commands may run; greater than 0. Defaults to 30m.
    #[serde(default = "BackupHook::default_timeout")]
    pub timeout: Dur,
}

impl BackupHook {
    /// `keep` when not given.
    pub const DEFAULT_KEEP: u32 = 5;
    /// `timeout` when not given.
    pub const DEFAULT_TIMEOUT: Dur = Dur::from_secs(30 * 60);

    fn default_keep() -> u32 {
        Self::DEFAULT_KEEP
    }
    fn default_timeout() -> Dur {
        Self::DEFAULT_TIMEOUT
    }
}

/// `[hooks.migrate]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrateHook {
    /// The image its one-off container or Job runs (`[docker]`, `[kubernetes]`); `None`:
    /// the release's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Applies the release's migrations; non-empty.
    pub command: Vec<String>,
    /// Reverts what `command` applied (e.g. `alembic downgrade -1`); run on rollback
    /// after the old release has all traffic back. Not allowed with `irreversible`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Vec<String>>,
    /// How long `command` and `undo` may run; greater than 0. Defaults to 5m.
    #[serde(default = "MigrateHook::default_timeout")]
    pub timeout: Dur,
    /// The migration cannot be undone and the old release cannot run on the new
    /// schema; then `on_failure` is required. Defaults to false.
    #[serde(default)]
    pub irreversible: bool,
    /// What a rollback across this migration does when there is no `undo`. Required
    /// when `irreversible`; otherwise defaults to [`OnFailure::Rollback`] (without
    /// `undo`, a reversible migration is one the old release runs on, e.g. an added
    /// column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
}

impl MigrateHook {
    /// `timeout` when not given.
    pub const DEFAULT_TIMEOUT: Dur = Dur::from_secs(5 * 60);

    fn default_timeout() -> Dur {
        Self::DEFAULT_TIMEOUT
    }

    /// The rollback policy in effect: `None` when `undo` reverts the migration.
    pub fn policy(&self) -> Option<OnFailure> {
        match (&self.undo, self.on_failure) {
            (Some(_), _) => None,
            (None, Some(p)) => Some(p),
            (None, None) => Some(OnFailure::Rollback),
        }
    }
}

/// `on_failure` of an irreversible migration: what happens when the deployment that
/// ran it fails or is rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Keep both releases' replicas as they are (a rolling release keeps its traffic;
    /// a canary judged bad has already handed its traffic back), run the `on-failure`
    /// hooks and wait for a human.
    Freeze,
    /// Bring the old release back on the new schema.
    Rollback,
    /// Maintenance on, restore the deployment's backup, bring the old release back.
    Restore,
}

impl OnFailure {
    /// Every policy, in documentation order.
    pub const ALL: [OnFailure; 3] = [OnFailure::Freeze, OnFailure::Rollback, OnFailure::Restore];

    /// The word written in `runway.toml`.
    pub fn as_str(&self) -> &'static str {
        match self {
            OnFailure::Freeze => "freeze",
            OnFailure::Rollback => "rollback",
            OnFailure::Restore => "restore",
        }
    }
}

impl FromStr for OnFailure {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or(())
    }
}

/// One `[[hooks.run]]`: `at = "post-deploy"`, `command = [...]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseHook {
    /// The image its one-off container or Job runs (`[docker]`, `[kubernetes]`); `None`:
    /// the release's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// When it runs.
    pub at: HookPhase,
    /// The argv; non-empty.
    pub command: Vec<String>,
    /// How long it may run; greater than 0. Defaults to 5m.
    #[serde(default = "PhaseHook::default_timeout")]
    pub timeout: Dur,
}

impl PhaseHook {
    /// `timeout` when not given.
    pub const DEFAULT_TIMEOUT: Dur = Dur::from_secs(5 * 60);

    fn default_timeout() -> Dur {
        Self::DEFAULT_TIMEOUT
    }
}

/// The phases a `[[hooks.run]]` can run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookPhase {
    /// After preflight, before the backup and any change; a failure stops the deploy.
    PreDeploy,
    /// After the new release serves all traffic and passed its verify checks.
    PostDeploy,
    /// Before a rollback (or a failed deployment's revert) moves traffic.
    PreRollback,
    /// After the old release has all traffic back (and `undo` ran).
    PostRollback,
    /// When a deployment fails or is rolled back (alerting).
    OnFailure,
}

impl HookPhase {
    /// Every phase, in the order of a deployment.
    pub const ALL: [HookPhase; 5] = [
        HookPhase::PreDeploy,
        HookPhase::PostDeploy,
        HookPhase::PreRollback,
        HookPhase::PostRollback,
        HookPhase::OnFailure,
    ];

    /// The word written in `runway.toml` (and given to hooks as RUNWAY_PHASE).
    pub fn as_str(&self) -> &'static str {
        match self {
            HookPhase::PreDeploy => "pre-deploy",
            HookPhase::PostDeploy => "post-deploy",
            HookPhase::PreRollback => "pre-rollback",
            HookPhase::PostRollback => "post-rollback",
            HookPhase::OnFailure => "on-failure",
        }
    }
}

impl FromStr for HookPhase {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or(())
    }
}

/// `[maintenance]`: the answer the proxy gives in maintenance or read-only mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceSpec {
    /// The default message of the page (`runway maintenance on --message` overrides it).
    pub message: String,
    /// The Retry-After of the 503 answers; greater than 0. Defaults to 30s.
    pub retry_after: Dur,
    /// Paths that still reach the replicas in maintenance: exact paths, or prefixes
    /// written with a trailing `*` (`"/health/*"`). Each starts with `/`. The health
    /// check path is always allowed.
    pub allow: Vec<String>,
}

impl MaintenanceSpec {
    /// `message` when not given.
    pub const DEFAULT_MESSAGE: &'static str =
        "The service is undergoing maintenance and will be back shortly.";
    /// `retry_after` when not given.
    pub const DEFAULT_RETRY_AFTER: Dur = Dur::from_secs(30);
}

impl Default for MaintenanceSpec {
    fn default() -> Self {
        MaintenanceSpec {
            message: Self::DEFAULT_MESSAGE.to_owned(),
            retry_after: Self::DEFAULT_RETRY_AFTER,
            allow: Vec::new(),
        }
    }
}

/// `[proxy]`: the limits runway's proxy holds the service's clients to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySpec {
    /// How long a client has to send a whole request head (from its connection's accept,
    /// or from the first byte of a next request on a keep-alive connection); then it is
    /// answered `408` and its connection ends. Greater than 0. Defaults to 15s.
    pub header_timeout: Dur,
    /// How long a keep-alive connection stays open without a request; then it closes.
    /// Greater than 0. Defaults to 75s.
    pub idle_timeout: Dur,
    /// How long the proxy waits for the next bytes of an HTTP/1 request body (a client that
    /// trickles or stops its upload); then `408` and the connection ends. Greater than 0.
    /// Defaults to 60s.
    pub body_timeout: Dur,
    /// How long a client may take no byte of its answer; then the connection ends. Greater
    /// than 0. Defaults to 60s.
    pub send_timeout: Dur,
    /// Forward `Upgrade: h2c` requests to the replicas. Off by default: the header is
    /// dropped and the request served as HTTP/1.1, as nginx does.
    pub h2c_upgrade: bool,
}

impl ProxySpec {
    /// `header_timeout` when not given.
    pub const DEFAULT_HEADER_TIMEOUT: Dur = Dur::from_secs(15);
    /// `idle_timeout` when not given.
    pub const DEFAULT_IDLE_TIMEOUT: Dur = Dur::from_secs(75);
    /// `body_timeout` when not given.
    pub const DEFAULT_BODY_TIMEOUT: Dur = Dur::from_secs(60);
    /// `send_timeout` when not given.
    pub const DEFAULT_SEND_TIMEOUT: Dur = Dur::from_secs(60);

    /// Whether nothing was configured (the JSON form then omits the section).
    pub fn is_default(&self) -> bool {
        *self == ProxySpec::default()
    }
}

impl Default for ProxySpec {
    fn default() -> Self {
        ProxySpec {
            header_timeout: Self::DEFAULT_HEADER_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            body_timeout: Self::DEFAULT_BODY_TIMEOUT,
            send_timeout: Self::DEFAULT_SEND_TIMEOUT,
            h2c_upgrade: false,
        }
    }
}

/// `[service]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Matches `[a-z0-9][a-z0-9-_.]*`, at most 63 characters.
    pub name: String,
    /// Where runway's built-in proxy accepts the service's traffic; [`ServiceSpec::NO_LISTEN`]
    /// for a `[kubernetes]` service, whose traffic arrives through the cluster.
    pub listen: SocketAddr,
}

impl ServiceSpec {
    /// The `listen` of a service runway's proxy is not in front of (`0.0.0.0:0`).
    pub const NO_LISTEN: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);
}

/// `[run]`: the embedded default platform, local supervised processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// The argv of one replica; non-empty, and the program (first element) is non-empty.
    /// `{port}` and `{version}` are placeholders filled in per replica by the runner.
    pub command: Vec<String>,
    /// How many replicas to run; at least 1. Defaults to 1.
    #[serde(default = "RunSpec::default_replicas")]
    pub replicas: u32,
    /// Extra environment variables; keys match `[A-Za-z_][A-Za-z0-9_]*`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory; a relative path is relative to the directory of `runway.toml`
    /// (resolving it is the caller's job). `None` means that directory itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// How long to wait after SIGTERM before SIGKILL. Defaults to 10s.
    #[serde(default = "RunSpec::default_stop_timeout")]
    pub stop_timeout: Dur,
    /// How long to wait for in-flight requests to finish before SIGTERM. Defaults to 30s.
    #[serde(default = "RunSpec::default_drain_timeout")]
    pub drain_timeout: Dur,
}

impl RunSpec {
    /// Replicas when `replicas` is not given.
    pub const DEFAULT_REPLICAS: u32 = 1;
    /// `stop_timeout` when not given.
    pub const DEFAULT_STOP_TIMEOUT: Dur = Dur::from_secs(10);
    /// `drain_timeout` when not given.
    pub const DEFAULT_DRAIN_TIMEOUT: Dur = Dur::from_secs(30);

    fn default_replicas() -> u32 {
        Self::DEFAULT_REPLICAS
    }
    fn default_stop_timeout() -> Dur {
        Self::DEFAULT_STOP_TIMEOUT
    }
    fn default_drain_timeout() -> Dur {
        Self::DEFAULT_DRAIN_TIMEOUT
    }
}

/// `[health]`: an HTTP GET of `path` on each replica must answer 2xx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSpec {
    /// Starts with `/`. Defaults to `/`.
    pub path: String,
    /// Time between checks; greater than 0. Defaults to 1s.
    pub interval: Dur,
    /// Time one check may take; greater than 0. Defaults to 2s. (It may exceed
    /// `interval`; checks of one replica never overlap.)
    pub timeout: Dur,
    /// A replica not healthy this long after starting fails the deployment; greater
    /// than 0. Defaults to 30s.
    pub deadline: Dur,
}

impl HealthSpec {
    /// `path` when not given.
    pub const DEFAULT_PATH: &'static str = "/";
    /// `interval` when not given.
    pub const DEFAULT_INTERVAL: Dur = Dur::from_secs(1);
    /// `timeout` when not given.
    pub const DEFAULT_TIMEOUT: Dur = Dur::from_secs(2);
    /// `deadline` when not given.
    pub const DEFAULT_DEADLINE: Dur = Dur::from_secs(30);
}

impl Default for HealthSpec {
    fn default() -> Self {
        HealthSpec {
            path: Self::DEFAULT_PATH.to_owned(),
            interval: Self::DEFAULT_INTERVAL,
            timeout: Self::DEFAULT_TIMEOUT,
            deadline: Self::DEFAULT_DEADLINE,
        }
    }
}

/// `[strategy]`: how a release is rolled out, chosen by `kind`.
///
/// In JSON the kind is a field next to the kind's own settings:
/// `{"kind": "rolling", "max_surge": 1, "max_unavailable": 0}`. New kinds are added as
/// new variants (the TOML reader dispatches on `kind` itself, keeping positions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StrategySpec {
    /// `kind = "rolling"`: replace replicas a few at a time.
    Rolling(RollingSpec),
    /// `kind = "canary"`: send a growing share of the traffic to the new release, judged
    /// by `[analysis]` at every step.
    Canary(CanarySpec),
    /// `kind = "blue-green"`: start the whole new release next to the old one, then
    /// switch all traffic at once.
    BlueGreen(BlueGreenSpec),
    /// `kind = "recreate"`: maintenance page on, drain and stop the old release,
    /// backup, migrate, start the new one, verify, page off. For changes the old and
    /// new release cannot run side by side.
    Recreate(RecreateSpec),
}

impl StrategySpec {
    /// The `kind` string of this strategy, as written in `runway.toml`.
    pub fn kind(&self) -> &'static str {
        match self {
            StrategySpec::Rolling(_) => "rolling",
            StrategySpec::Canary(_) => "canary",
            StrategySpec::BlueGreen(_) => "blue-green",
            StrategySpec::Recreate(_) => "recreate",
        }
    }
}

impl Default for StrategySpec {
    fn default() -> Self {
        StrategySpec::Rolling(RollingSpec::default())
    }
}

/// Settings of the recreate strategy: none yet (the drain and stop timeouts are
/// `[run]`'s, the page is `[maintenance]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecreateSpec {}

/// Settings of the rolling strategy. Not both 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RollingSpec {
    /// How many replicas may run above `replicas` during a rollout. Defaults to 1.
    pub max_surge: u32,
    /// How many replicas may be missing below `replicas` during a rollout. Defaults to 0.
    pub max_unavailable: u32,
}

impl Default for RollingSpec {
    fn default() -> Self {
        RollingSpec {
            max_surge: 1,
            max_unavailable: 0,
        }
    }
}

/// Settings of the canary strategy. (How many canary replicas to run is the engine's
/// business, not the spec's.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySpec {
    /// The traffic steps, in order: non-empty, weights strictly increasing, the last
    /// one 100.
    pub steps: Vec<CanaryStep>,
    /// Whether a cookie keeps a client on the release it first got. Defaults to false.
    #[serde(default)]
    pub sticky: bool,
}

/// One step of a canary rollout: `{ weight = 10, pause = "1m" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryStep {
    /// Percentage of the requests sent to the new release during this step, 1..=100.
    pub weight: u32,
    /// When to go on to the next step. The JSON form omits [`Pause::None`].
    #[serde(default, skip_serializing_if = "Pause::is_none")]
    pub pause: Pause,
}

/// How long a canary step lasts. Written as `pause = "10s"` or `pause = "manual"`, or
/// left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pause {
    /// `pause` absent: go on as soon as the step's analysis has passed at least once.
    #[default]
    None,
    /// `pause = "10s"`: stay on the step this long (greater than 0); the analysis keeps
    /// running meanwhile.
    For(Dur),
    /// `pause = "manual"`: wait for `runway promote`.
    Manual,
}

impl Pause {
    /// The word that selects [`Pause::Manual`].
    pub const MANUAL: &'static str = "manual";

    /// Whether this is [`Pause::None`] (the key was left out).
    pub fn is_none(&self) -> bool {
        matches!(self, Pause::None)
    }
}

impl Serialize for Pause {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Pause::None => serializer.serialize_none(),
            Pause::For(d) => serializer.collect_str(d),
            Pause::Manual => serializer.serialize_str(Self::MANUAL),
        }
    }
}

impl<'de> Deserialize<'de> for Pause {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Pause;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"10s\", or \"manual\"")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Pause, E> {
                if s == Pause::MANUAL {
                    return Ok(Pause::Manual);
                }
                s.parse().map(Pause::For).map_err(|e| {
                    E::custom(format_args!(
                        "invalid pause {s:?}: {e} (write a duration or \"manual\")"
                    ))
                })
            }

            fn visit_none<E: de::Error>(self) -> Result<Pause, E> {
                Ok(Pause::None)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Pause, E> {
                Ok(Pause::None)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Pause, D::Error> {
                d.deserialize_str(self)
            }
        }

        deserializer.deserialize_option(Visitor)
    }
}

/// Settings of the blue-green strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlueGreenSpec {
    /// An address serving only the new release before the switch (differs from
    /// `service.listen`). `None`: no preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_listen: Option<SocketAddr>,
    /// How long the old release stays up, out of rotation, after the switch, so that a
    /// rollback is instant. Defaults to 30s.
    #[serde(default = "BlueGreenSpec::default_scale_down_delay")]
    pub scale_down_delay: Dur,
    /// How long to analyse the new release after the switch (greater than 0); `None`:
    /// no analysis after the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_for: Option<Dur>,
}

impl BlueGreenSpec {
    /// `scale_down_delay` when not given.
    pub const DEFAULT_SCALE_DOWN_DELAY: Dur = Dur::from_secs(30);

    fn default_scale_down_delay() -> Dur {
        Self::DEFAULT_SCALE_DOWN_DELAY
    }
}

impl Default for BlueGreenSpec {
    fn default() -> Self {
        BlueGreenSpec {
            preview_listen: None,
            scale_down_delay: Self::DEFAULT_SCALE_DOWN_DELAY,
            analysis_for: None,
        }
    }
}

/// `[analysis]`: how the new release is judged during a progressive rollout, one
/// `interval` at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisSpec {
    /// Length of one analysis interval; greater than 0. Defaults to 10s.
    pub interval: Dur,
    /// Consecutive failed intervals that trigger the rollback; at least 1. Defaults to 2.
    pub failure_limit: u32,
    /// With fewer requests to the new release in an interval, the interval is
    /// inconclusive (never a pass). Defaults to 50.
    pub min_requests: u64,
    /// That many intervals in a row without data to judge (no canary request, a
    /// source error) pause the rollout; at least 1. Defaults to 3.
    pub inconclusive_limit: u32,
    /// That many intervals in a row whose data could not decide yet (a confidence
    /// interval still straddles a line) pause the rollout; at least 1. Defaults to 60.
    pub max_intervals: u32,
    /// Base URL of the Prometheus server (`http://` or `https://`), required when a
    /// metric has `source = "prometheus"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<String>,
    /// A PromQL query for the new release's requests in the last interval (`{service}`,
    /// `{version}` filled in), counted for `min_requests` where runway's proxy does not see
    /// them (on Kubernetes). `None`: the proxy counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<String>,
    /// The metrics and their conditions. Empty: the engine applies its default policy.
    pub metrics: Vec<AnalysisMetric>,
}

impl AnalysisSpec {
    /// `interval` when not given.
    pub const DEFAULT_INTERVAL: Dur = Dur::from_secs(10);
    /// `failure_limit` when not given.
    pub const DEFAULT_FAILURE_LIMIT: u32 = 2;
    /// `min_requests` when not given.
    pub const DEFAULT_MIN_REQUESTS: u64 = 50;
    /// `inconclusive_limit` when not given.
    pub const DEFAULT_INCONCLUSIVE_LIMIT: u32 = 3;
    /// `max_intervals` when not given: ten minutes of 10s intervals.
    pub const DEFAULT_MAX_INTERVALS: u32 = 60;
}

impl Default for AnalysisSpec {
    fn default() -> Self {
        AnalysisSpec {
            interval: Self::DEFAULT_INTERVAL,
            failure_limit: Self::DEFAULT_FAILURE_LIMIT,
            min_requests: Self::DEFAULT_MIN_REQUESTS,
            inconclusive_limit: Self::DEFAULT_INCONCLUSIVE_LIMIT,
            max_intervals: Self::DEFAULT_MAX_INTERVALS,
            prometheus: None,
            requests: None,
            metrics: Vec::new(),
        }
    }
}

/// One `[[analysis.metrics]]` entry: a measurement and the conditions that fail the
/// rollout (`fail_if`) or pause it (`pause_if`).
///
/// `Eq` holds because the only floats, `confidence` and `min_effect`, are never NaN in
/// a valid spec (see [`Spec::validate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisMetric {
    /// Non-empty, unique within `[analysis]`.
    pub name: String,
    /// Where the measurement comes from.
    pub source: MetricSource,
    /// Which proxy measurement: required for `source = "proxy"`, forbidden otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<ProxyMetric>,
    /// PromQL: required for `source = "prometheus"`, forbidden otherwise. May contain
    /// the placeholders `{service}`, `{version}` and `{stable_version}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The condition that fails the interval, e.g. `"> 0.05"` or `"> 2x stable"`.
    pub fail_if: String,
    /// A condition that pauses the rollout instead of failing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_if: Option<String>,
    /// How long a condition must hold before it counts (TOML key `for`); greater than 0.
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub for_: Option<Dur>,
    /// Confidence level of a statistical condition, strictly between 0.5 and 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Smallest effect size a statistical condition fails on, 0..=1: |Cliff's delta|, the
    /// difference between P(canary > stable) and P(canary < stable) for one request each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_effect: Option<f64>,
}

impl Eq for AnalysisMetric {}

/// `source` of an analysis metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricSource {
    /// `"proxy"`: measured by runway's own proxy, per release.
    Proxy,
    /// `"prometheus"`: the result of a PromQL `query` against `[analysis] prometheus`.
    Prometheus,
}

impl MetricSource {
    /// Every source, in documentation order.
    pub const ALL: [MetricSource; 2] = [MetricSource::Proxy, MetricSource::Prometheus];

    /// The name as written in `runway.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricSource::Proxy => "proxy",
            MetricSource::Prometheus => "prometheus",
        }
    }
}

impl fmt::Display for MetricSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricSource {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|m| m.as_str() == s).ok_or(())
    }
}

/// `metric` of a proxy-sourced analysis metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyMetric {
    /// Share of the requests that got a 5xx or failed.
    ErrorRate,
    /// Median latency.
    LatencyP50,
    /// 95th percentile latency.
    LatencyP95,
    /// 99th percentile latency.
    LatencyP99,
    /// Requests per second.
    RequestRate,
    /// The per-request latency samples, for a statistical comparison with the stable
    /// release.
    Latency,
}

impl ProxyMetric {
    /// Every proxy metric, in documentation order.
    pub const ALL: [ProxyMetric; 6] = [
        ProxyMetric::ErrorRate,
        ProxyMetric::LatencyP50,
        ProxyMetric::LatencyP95,
        ProxyMetric::LatencyP99,
        ProxyMetric::RequestRate,
        ProxyMetric::Latency,
    ];

    /// The name as written in `runway.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMetric::ErrorRate => "error_rate",
            ProxyMetric::LatencyP50 => "latency_p50",
            ProxyMetric::LatencyP95 => "latency_p95",
            ProxyMetric::LatencyP99 => "latency_p99",
            ProxyMetric::RequestRate => "request_rate",
            ProxyMetric::Latency => "latency",
        }
    }
}

impl fmt::Display for ProxyMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProxyMetric {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|m| m.as_str() == s).ok_or(())
    }
}

impl Spec {
    /// Checks the semantic rules that `runway.toml` parsing enforces, for a spec that
    /// arrived another way (e.g. as JSON). The error names the field:
    /// `run.replicas: replicas must be at least 1 (hint: set replicas = 1 or more)`.
    pub fn validate(&self) -> Result<(), String> {
        let fail = |field: &str, problem: Problem| match problem.hint {
            Some(hint) => format!("{field}: {} (hint: {hint})", problem.message),
            None => format!("{field}: {}", problem.message),
        };
        let check = |field: &str, rule: Result<(), Problem>| rule.map_err(|p| fail(field, p));

        check("service.name", rules::service_name(&self.service.name))?;
        crate::notify::validate_targets(&self.notify)?;
        // `[deploy]` and `[types]`: every type's calendar builds, the default type exists.
        let (default_name, default_type) = self
            .deploy_type(None)
            .map_err(|e| format!("deploy.default_type: {e}"))?;
        self.calendar(&default_name, &default_type)?;
        for (name, t) in &self.types {
            self.calendar(name, t)?;
        }

        let run = &self.run;
        if let Some(k8s) = &self.kubernetes {
            check(
                "kubernetes.namespace",
                rules::k8s_name("namespace", &k8s.namespace),
            )?;
            check("kubernetes.image", rules::image(&k8s.image))?;
            check(
                "kubernetes.container",
                rules::k8s_name("container", &k8s.container),
            )?;
            check(
                "kubernetes.deployment",
                rules::k8s_name("deployment", &k8s.deployment),
            )?;
            check(
                "kubernetes.service",
                rules::k8s_name("service", &k8s.service),
            )?;
            if let Some(port) = k8s.port {
                check("kubernetes.port", rules::container_port(port))?;
            }
            check(
                "kubernetes.route",
                rules::gateway_route(k8s.traffic, k8s.route.as_deref()),
            )?;
            if let Some(route) = &k8s.route {
                check("kubernetes.route", rules::k8s_name("route", route))?;
            }
            if let Some(url) = &k8s.prometheus {
                check("kubernetes.prometheus", rules::prometheus_url(url))?;
            }
            check(
                "kubernetes.progress_deadline",
                rules::positive("progress_deadline", k8s.progress_deadline, "600s"),
            )?;
            for value in run.env.values() {
                check("run.env", rules::cluster_env_value(value))?;
            }
            match &k8s.backup_claim {
                Some(claim) => check(
                    "kubernetes.backup_claim",
                    rules::k8s_name("backup_claim", claim),
                )?,
                None if self.hooks.backup.is_some() => {
                    return Err(fail(
                        "kubernetes.backup_claim",
                        Problem {
                            message: "a backup on Kubernetes needs a PersistentVolumeClaim to \
                                      keep it on (a Job's own disk is gone when it ends)"
                                .into(),
                            hint: Some("set backup_claim to a claim in the same namespace".into()),
                        },
                    ))
                }
                None => {}
            }
        }
        if self.docker.is_none() && self.kubernetes.is_none() {
            check("run.command", rules::command_not_empty(run.command.len()))?;
            check("run.command", rules::program(&run.command[0]))?;
        }
        check("run.replicas", rules::replicas(run.replicas))?;
        for name in run.env.keys() {
            check("run.env", rules::env_name(name))?;
        }
        if let Some(dir) = &run.dir {
            check("run.dir", rules::dir(dir))?;
        }

        let health = &self.health;
        check("health.path", rules::health_path(&health.path))?;
        check(
            "health.interval",
            rules::interval("interval", health.interval, "1s"),
        )?;
        check(
            "health.timeout",
            rules::positive("timeout", health.timeout, "2s"),
        )?;
        check(
            "health.deadline",
            rules::positive("deadline", health.deadline, "30s"),
        )?;

        match &self.strategy {
            StrategySpec::Rolling(r) => {
                check("strategy", rules::rolling(r.max_surge, r.max_unavailable))?;
            }
            StrategySpec::Recreate(_) => {}
            StrategySpec::Canary(canary) => {
                check("strategy.steps", rules::steps_not_empty(canary.steps.len()))?;
                let mut previous = None;
                for (i, step) in canary.steps.iter().enumerate() {
                    check(
                        &format!("strategy.steps[{i}].weight"),
                        rules::step_weight(step.weight, previous),
                    )?;
                    if let Pause::For(d) = step.pause {
                        check(&format!("strategy.steps[{i}].pause"), rules::pause(d))?;
                    }
                    previous = Some(step.weight);
                }
                if let Some(last) = canary.steps.last() {
                    let field = format!("strategy.steps[{}].weight", canary.steps.len() - 1);
                    check(&field, rules::last_step_weight(last.weight))?;
                }
            }
            StrategySpec::BlueGreen(bg) => {
                if let Some(preview) = bg.preview_listen {
                    check(
                        "strategy.preview_listen",
                        rules::preview_listen(preview, self.service.listen),
                    )?;
                }
                if let Some(d) = bg.analysis_for {
                    check(
                        "strategy.analysis_for",
                        rules::positive("analysis_for", d, "5m"),
                    )?;
                }
            }
        }

        if let Some(analysis) = &self.analysis {
            analysis.validate_with(&check)?;
        }
        for (i, c) in self.checks.iter().enumerate() {
            let field = |key: &str| format!("checks[{i}].{key}");
            if let Some(first) = self.checks[..i].iter().position(|o| o.name == c.name) {
                check(
                    &field("name"),
                    check_rules::check_name_unique(&c.name, &format!("checks[{first}]")),
                )?;
            }
            validate_check(c, &field, &check)?;
        }
        // In the reader's order, so that both report the same first problem.
        self.hooks.validate_with(&check)?;
        self.maintenance.validate_with(&check)
    }
}

/// The rules of one check (see [`Spec::validate`]); `field` names a key of it.
fn validate_check(
    c: &CheckSpec,
    field: &dyn Fn(&str) -> String,
    check: &Check<'_>,
) -> Result<(), String> {
    check(&field("name"), check_rules::check_name(&c.name))?;
    check(
        &field("timeout"),
        rules::positive("timeout", c.timeout.into(), "5s"),
    )?;
    for (key, d, example) in [("timeout", c.timeout, "5s"), ("backoff", c.backoff, "1s")] {
        check(&field(key), check_rules::at_most_a_day(key, d, example))?;
    }
    check(
        &field("phases"),
        check_rules::phases_not_empty(c.phases.len()),
    )?;
    for (j, phase) in c.phases.iter().enumerate() {
        let earlier: Vec<&str> = c.phases[..j].iter().map(String::as_str).collect();
        check(
            &format!("{}[{j}]", field("phases")),
            check_rules::phase(phase, &earlier),
        )?;
    }
    if let Some(schedule) = &c.schedule {
        check(&field("schedule"), check_rules::schedule(schedule))?;
    }
    match &c.kind {
        CheckKind::Http {
            method,
            url,
            headers,
            body: _,
            expect_status,
            expect_json,
            max_latency,
        } => {
            check(&field("url"), check_rules::http_url(url))?;
            check(&field("method"), check_rules::http_method(method))?;
            for (name, value) in headers {
                let at = format!("{}.{name}", field("headers"));
                check(&at, check_rules::header_name(name))?;
                check(&at, check_rules::reference(value))?;
            }
            if let Some(status) = expect_status {
                check(
                    &field("expect_status"),
                    check_rules::expect_status((*status).into()),
                )?;
            }
            for path in expect_json.keys() {
                check(&field("expect_json"), check_rules::json_path(path))?;
            }
            if let Some(d) = max_latency {
                check(
                    &field("max_latency"),
                    rules::positive("max_latency", (*d).into(), "500ms"),
                )?;
                check(
                    &field("max_latency"),
                    check_rules::at_most_a_day("max_latency", *d, "500ms"),
                )?;
            }
        }
        CheckKind::Tcp { address } => check(
            &field("address"),
            check_rules::address("address", address, "127.0.0.1:5672"),
        )?,
        CheckKind::Postgres {
            url,
            query,
            expect: _,
            max_connections_share,
        } => {
            check(&field("url"), check_rules::postgres_url(url))?;
            if let Some(query) = query {
                check(
                    &field("query"),
                    check_rules::not_blank("query", query, "query = \"SELECT 1\""),
                )?;
            }
            if let Some(x) = max_connections_share {
                let key = "max_connections_share";
                check(&field(key), check_rules::share(key, *x))?;
            }
        }
        CheckKind::Redis {
            url,
            max_memory_share,
        } => {
            check(&field("url"), check_rules::redis_url(url))?;
            if let Some(x) = max_memory_share {
                let key = "max_memory_share";
                check(&field(key), check_rules::share(key, *x))?;
            }
        }
        CheckKind::Disk { path, min_free } => {
            check(
                &field("path"),
                check_rules::not_blank("path", path, "path = \"/\""),
            )?;
            check(&field("min_free"), check_rules::min_free(*min_free))?;
        }
        CheckKind::Tls {
            file,
            address,
            server_name,
            min_days: _,
        } => {
            check(
                &field("file"),
                check_rules::tls_target(file.is_some(), address.is_some()),
            )?;
            if let Some(file) = file {
                let example = "file = \"/etc/ssl/certs/web.pem\"";
                check(
                    &field("file"),
                    check_rules::not_blank("file", file, example),
                )?;
            }
            if let Some(address) = address {
                check(
                    &field("address"),
                    check_rules::address("address", address, "example.com:443"),
                )?;
            }
            if let Some(name) = server_name {
                check(
                    &field("server_name"),
                    check_rules::server_name_allowed(address.is_some()),
                )?;
                let example = "server_name = \"example.com\"";
                check(
                    &field("server_name"),
                    check_rules::not_blank("server_name", name, example),
                )?;
            }
        }
        CheckKind::Env { vars } => {
            check(&field("vars"), check_rules::vars_not_empty(vars.len()))?;
            for (j, var) in vars.iter().enumerate() {
                check(&format!("{}[{j}]", field("vars")), rules::env_name(var))?;
            }
        }
        CheckKind::Command {
            command,
            expect_exit,
            expect_stdout,
            env,
        } => {
            check(&field("command"), check_rules::check_command(command))?;
            check(
                &field("expect_exit"),
                check_rules::expect_exit((*expect_exit).into()),
            )?;
            if let Some(pattern) = expect_stdout {
                let example = "expect_stdout = \"accepting connections\"";
                check(
                    &field("expect_stdout"),
                    check_rules::not_blank("expect_stdout", pattern, example),
                )?;
            }
            for (name, value) in env {
                let at = format!("{}.{name}", field("env"));
                check(&at, rules::env_name(name))?;
                check(&at, check_rules::reference(value))?;
            }
        }
        CheckKind::Prometheus {
            url,
            query,
            condition,
        } => {
            check(&field("url"), check_rules::prometheus_check_url(url))?;
            let example = "query = \"up\"";
            check(
                &field("query"),
                check_rules::not_blank("query", query, example),
            )?;
            check(
                &field("condition"),
                check_rules::check_condition(condition).map(|_| ()),
            )?;
        }
        CheckKind::File { path, exists: _ } => {
            let example = "path = \"/etc/maintenance\"";
            check(
                &field("path"),
                check_rules::not_blank("path", path, example),
            )?;
        }
    }
    // The runner's own rules, last (the ones above say the same, naming the field).
    c.validate()
        .map_err(|message| format!("{}: {message}", field("kind").trim_end_matches(".kind")))
}

/// Turns a rule's outcome into [`Spec::validate`]'s error, naming the field.
type Check<'a> = dyn Fn(&str, Result<(), Problem>) -> Result<(), String> + 'a;

impl AnalysisSpec {
    /// The rules of `[analysis]`, reported through `check` (see [`Spec::validate`]).
    fn validate_with(&self, check: &Check<'_>) -> Result<(), String> {
        check(
            "analysis.interval",
            rules::interval("interval", self.interval, "10s"),
        )?;
        check(
            "analysis.failure_limit",
            rules::at_least_one(
                "failure_limit",
                self.failure_limit,
                Self::DEFAULT_FAILURE_LIMIT,
            ),
        )?;
        check(
            "analysis.inconclusive_limit",
            rules::at_least_one(
                "inconclusive_limit",
                self.inconclusive_limit,
                Self::DEFAULT_INCONCLUSIVE_LIMIT,
            ),
        )?;
        check(
            "analysis.max_intervals",
            rules::at_least_one(
                "max_intervals",
                self.max_intervals,
                Self::DEFAULT_MAX_INTERVALS,
            ),
        )?;
        if let Some(url) = &self.prometheus {
            check("analysis.prometheus", rules::prometheus_url(url))?;
        }
        for (i, m) in self.metrics.iter().enumerate() {
            let field = |key: &str| format!("analysis.metrics[{i}].{key}");
            check(&field("name"), rules::metric_name(&m.name))?;
            if let Some(first) = self.metrics[..i].iter().position(|o| o.name == m.name) {
                check(
                    &field("name"),
                    rules::metric_name_unique(&m.name, &format!("analysis.metrics[{first}]")),
                )?;
            }
            check(
                &field("source"),
                rules::prometheus_configured(m.source, self.prometheus.is_some()),
            )?;
            if m.metric.is_some() {
                check(&field("metric"), rules::metric_allowed(m.source))?;
            }
            if let Some(query) = &m.query {
                check(&field("query"), rules::query_allowed(m.source))?;
                check(&field("query"), rules::query(query))?;
            }
            check(
                &field("source"),
                rules::source_needs(m.source, m.metric.is_some(), m.query.is_some()),
            )?;
            check(
                &field("fail_if"),
                rules::condition("fail_if", &m.fail_if, m.metric),
            )?;
            if let Some(pause_if) = &m.pause_if {
                check(
                    &field("pause_if"),
                    rules::condition("pause_if", pause_if, m.metric),
                )?;
            }
            if let Some(d) = m.for_ {
                check(&field("for"), rules::positive("for", d, "30s"))?;
            }
            if let Some(x) = m.confidence {
                let key = "confidence";
                check(&field(key), rules::statistical_option(key, m.metric))?;
                check(&field(key), rules::confidence(x))?;
            }
            if let Some(x) = m.min_effect {
                let key = "min_effect";
                check(&field(key), rules::statistical_option(key, m.metric))?;
                check(&field(key), rules::min_effect(x))?;
            }
        }
        Ok(())
    }
}

/// Checks a hook command (`field` names it, `key` is its key) with the reader's argv
/// rules (see [`Spec::validate`]).
fn validate_argv(
    field: &str,
    key: &str,
    argv: &[String],
    example: &str,
    check: &Check<'_>,
) -> Result<(), String> {
    check(field, hook_rules::argv_not_empty(key, argv.len(), example))?;
    check(field, hook_rules::argv_program(key, &argv[0], example))
}

impl HooksSpec {
    /// The rules of `[hooks]`, reported through `check` (see [`Spec::validate`]).
    fn validate_with(&self, check: &Check<'_>) -> Result<(), String> {
        if let Some(backup) = &self.backup {
            let field = |key: &str| format!("hooks.backup.{key}");
            let commands = [
                ("command", Some(&backup.command), hook_rules::BACKUP_COMMAND),
                ("verify", backup.verify.as_ref(), hook_rules::BACKUP_VERIFY),
                (
                    "restore",
                    backup.restore.as_ref(),
                    hook_rules::BACKUP_RESTORE,
                ),
            ];
            for (key, argv, example) in commands {
                if let Some(argv) = argv {
                    validate_argv(&field(key), key, argv, example, check)?;
                }
            }
            check(
                &field("keep"),
                rules::at_least_one("keep", backup.keep, BackupHook::DEFAULT_KEEP),
            )?;
            check(
                &field("timeout"),
                rules::positive("timeout", backup.timeout, "30m"),
            )?;
        }
        if let Some(migrate) = &self.migrate {
            let field = |key: &str| format!("hooks.migrate.{key}");
            let example = hook_rules::MIGRATE_COMMAND;
            validate_argv(
                &field("command"),
                "command",
                &migrate.command,
                example,
                check,
            )?;
            if let Some(undo) = &migrate.undo {
                let example = hook_rules::MIGRATE_UNDO;
                validate_argv(&field("undo"), "undo", undo, example, check)?;
            }
            check(
                &field("timeout"),
                rules::positive("timeout", migrate.timeout, "5m"),
            )?;
            let facts = hook_rules::MigrateFacts {
                has_undo: migrate.undo.is_some(),
                irreversible: migrate.irreversible,
                on_failure: migrate.on_failure,
                has_backup: self.backup.is_some(),
                has_restore: self.backup.as_ref().is_some_and(|b| b.restore.is_some()),
            };
            if let Err(broken) = hook_rules::migrate(&facts) {
                let (key, problem) = match broken {
                    hook_rules::MigrateRule::Undo(p) => ("undo", p),
                    hook_rules::MigrateRule::OnFailure(p) => ("on_failure", p),
                    hook_rules::MigrateRule::Irreversible(p) => ("irreversible", p),
                };
                check(&field(key), Err(problem))?;
            }
        }
        for (i, hook) in self.run.iter().enumerate() {
            let field = |key: &str| format!("hooks.run[{i}].{key}");
            let example = hook_rules::RUN_COMMAND;
            validate_argv(&field("command"), "command", &hook.command, example, check)?;
            check(
                &field("timeout"),
                rules::positive("timeout", hook.timeout, "5m"),
            )?;
        }
        Ok(())
    }
}

impl MaintenanceSpec {
    /// The rules of `[maintenance]`, reported through `check` (see [`Spec::validate`]).
    fn validate_with(&self, check: &Check<'_>) -> Result<(), String> {
        check(
            "maintenance.message",
            check_rules::not_blank("message", &self.message, hook_rules::MAINTENANCE_MESSAGE),
        )?;
        check(
            "maintenance.retry_after",
            rules::positive("retry_after", self.retry_after, "30s"),
        )?;
        for (i, path) in self.allow.iter().enumerate() {
            check(
                &format!("maintenance.allow[{i}]"),
                hook_rules::allow_path(path),
            )?;
        }
        Ok(())
    }
}
