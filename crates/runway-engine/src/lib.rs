//! The deployment engine: turns "serve this release" into steps, journals each step before it
//! takes effect, runs it, and on failure brings the previous release back.
//!
//! Every operation (deploy, rollback, scale, a server restart resuming an interrupted
//! deployment) is the same thing: `converge` the service to a target release with the rolling
//! rules of that release's strategy. Reverting a failed deployment is converging to the previous
//! release. That one code path is what makes "resume exactly where it was" simple: after a crash
//! the engine re-adopts the replicas that still run and converges again from there.

pub mod backups;
pub mod baseline;
mod bluegreen;
pub mod canary;
pub mod checks;
pub mod clock;
pub mod cluster;
mod converge;
pub mod dora;
pub mod feed;
pub mod flags;
pub mod hooks;
pub mod incidents;
pub mod logs;
pub mod measure;
mod monitor;
pub mod nodes;
pub mod notify;
mod operation;
pub mod plan;
pub mod platform;
pub mod policy;
pub mod records;
mod recovery;
mod recreate;
mod remove;
pub mod replica;
pub mod retention;
pub mod router;
pub mod runbook;
pub mod schedule;
mod secret_ops;
pub mod secrets;
mod service;
pub mod store_faults;
pub mod tasks;
pub mod text;
pub mod traffic;

use runway_wire::id::{BackupId, DeploymentId};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use runway_spec::Spec;
use runway_wire::Event;
use tokio::sync::watch;

use runway_wire::api::{
    DeployRequest, OperationView, ReleaseView, ReplicaView, ServiceView, StatusView,
};
use runway_wire::record::{Deployment, Kind, NewDeployment, ServiceFlag, Status};
use runway_wire::ErrorCode;

use backups::BackupStorage;
use checks::CheckRunner;
use clock::Clock;
use cluster::Cluster;
use measure::QuerySources;
use platform::Platform;
use records::Records;
use router::Routers;
pub use service::Service;
use tasks::TaskRunner;

/// An operation about to start: what it is, with what, and who asked for it and why.
struct NewOperation<'a> {
    kind: Kind,
    version: &'a str,
    spec: Spec,
    base_dir: &'a str,
    args: operation::OperationArgs,
    preflight: Preflight,
    /// The identity that asked for it.
    by: &'a str,
    reason: Option<&'a str>,
    /// A deploy's type and digest (`[types]`, approvals).
    deploy_type: Option<&'a str>,
    digest: Option<&'a str>,
    /// The commit a deploy ships and when it was made (lead time).
    commit: Option<&'a str>,
    commit_time: Option<&'a str>,
    /// The record of a deployment that waited for approval, which this starts.
    existing: Option<DeploymentId>,
}

impl<'a> NewOperation<'a> {
    /// An operation on a release that serves or served (a rollback, a restore, a scale): no
    /// preflight, no type, no approval.
    fn on_release(
        kind: Kind,
        version: &'a str,
        spec: Spec,
        base_dir: &'a str,
        by: &'a str,
    ) -> NewOperation<'a> {
        NewOperation {
            kind,
            version,
            spec,
            base_dir,
            args: Default::default(),
            preflight: Preflight::NotApplicable,
            by,
            reason: None,
            deploy_type: None,
            digest: None,
            commit: None,
            commit_time: None,
            existing: None,
        }
    }
}

/// Whether a deployment runs its preflight checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preflight {
    Run,
    /// `--skip-checks`, recorded in the journal.
    Skipped,
    /// Rollbacks, scale changes and resumed deployments: preflight gates a change before it
    /// starts, and these are not new changes.
    NotApplicable,
}

/// An error the API turns into a stable code (see [`ErrorCode`]) and a message a user can act
/// on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// Another operation holds the service.
    #[error("{0}")]
    Busy(String),
    /// The service is frozen until a human decides.
    #[error("{0}")]
    Frozen(String),
    #[error("{0}")]
    Conflict(String),
    /// The identity may not do this (approve their own deployment, approve without the role).
    #[error("{0}")]
    Forbidden(String),
    /// The operation ran and did not succeed.
    #[error("{0}")]
    Failed(String),
    /// The engine cannot do it now: its store refuses writes (store_faults.rs).
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl EngineError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::BadRequest(_) => ErrorCode::InvalidRequest,
            EngineError::NotFound(_) => ErrorCode::NotFound,
            EngineError::Busy(_) => ErrorCode::Busy,
            EngineError::Unavailable(_) => ErrorCode::Unavailable,
            EngineError::Frozen(_) => ErrorCode::Frozen,
            EngineError::Conflict(_) => ErrorCode::Conflict,
            EngineError::Forbidden(_) => ErrorCode::Forbidden,
            EngineError::Failed(_) => ErrorCode::Failed,
            EngineError::Internal(_) => ErrorCode::Internal,
        }
    }
}

type Result<T, E = EngineError> = std::result::Result<T, E>;

/// How an operation ended badly: `failed` (it could not complete; the previous release was put
/// back) or `rolled_back` (it was judged or aborted and taken back on purpose).
#[derive(Debug)]
pub struct Failure {
    pub reason: String,
    pub rolled_back: bool,
}

impl Failure {
    pub fn failed(reason: String) -> Failure {
        Failure {
            reason,
            rolled_back: false,
        }
    }
    pub fn rolled_back(reason: String) -> Failure {
        Failure {
            reason,
            rolled_back: true,
        }
    }
}

/// A release: a version with the config it runs with. Its id is the deployment that introduced
/// it; a replica belongs to a release.
#[derive(Debug, Clone)]
pub struct Release {
    pub id: DeploymentId,
    pub version: String,
    pub spec: Spec,
    pub base_dir: PathBuf,
    /// The version of each of its service's secrets it runs with.
    pub secret_versions: BTreeMap<String, u64>,
    /// Where its `secret:NAME` references are read: those versions.
    pub secrets: secrets::Secrets,
}

impl Release {
    fn from_deployment(d: &Deployment, secrets: &secrets::SecretsOf) -> Result<Release> {
        let spec = d.spec.clone().ok_or_else(|| {
            EngineError::Internal(anyhow::anyhow!(
                "deployment #{} has no readable config",
                d.id
            ))
        })?;
        Ok(Release {
            id: d.id,
            version: d.version.clone(),
            base_dir: PathBuf::from(&d.base_dir),
            secrets: secrets.of(&spec.service.name, &d.secret_versions),
            secret_versions: d.secret_versions.clone(),
            spec,
        })
    }

    /// Replicas of two releases with equal fingerprints are interchangeable: same version, same
    /// config except the replica count. A scale change therefore keeps its replicas.
    pub fn fingerprint(&self) -> String {
        let mut spec = self.spec.clone();
        spec.run.replicas = 0;
        // The image id recorded when it deployed is the same release, pinned.
        if let Some(docker) = &mut spec.docker {
            docker.image_id = None;
            docker.image_digest = None;
        }
        serde_json::json!([self.version, spec, self.base_dir, self.secret_versions]).to_string()
    }

    /// For a `[kubernetes]` release, what reaches its pods: the version, the image, the
    /// container and its port, the env and the grace period. Two releases with equal pod
    /// fingerprints are one pod template, whatever else of runway.toml (checks, strategy,
    /// analysis) differs: a change of those alone restarts no pod.
    pub fn pod_fingerprint(&self) -> String {
        let k8s = self.spec.kubernetes.as_ref();
        serde_json::json!([
            self.version,
            k8s.map(|k| (&k.image, &k.container, k.port, &k.namespace, &k.deployment)),
            self.spec.run.env,
            self.spec.run.stop_timeout,
            self.secret_versions,
        ])
        .to_string()
    }
}

/// What an engine is made of: its records and the boundaries it works through. The binary
/// passes the SQLite store, the process platform, the built-in proxy and Prometheus; the
/// engine's tests pass fakes (crates/runway-fakes).
pub struct Context {
    pub records: Arc<dyn Records>,
    /// Where releases run.
    pub platform: Arc<dyn Platform>,
    /// Where `[kubernetes]` releases run: a cluster that rolls them itself.
    pub cluster: Arc<dyn Cluster>,
    /// How hooks, backups and migrations run.
    pub tasks: Arc<dyn TaskRunner>,
    /// Where backups are kept.
    pub backups: Arc<dyn BackupStorage>,
    /// How each service's traffic is split (a router per service).
    pub routers: Arc<dyn Routers>,
    /// Where `source = "prometheus"` metrics come from.
    pub queries: Arc<dyn QuerySources>,
    /// How `[[checks]]` run.
    pub checks: Arc<dyn CheckRunner>,
    /// The time windows, freezes and approval expiry are judged by.
    pub clock: Arc<dyn Clock>,
    /// Where `[[notify]]` notices go.
    pub notifier: Arc<dyn notify::Notifier>,
    /// Secrets (and on the host, backups) live under it.
    pub state_dir: PathBuf,
}

pub struct Engine {
    store: Arc<dyn Records>,
    /// Where releases run.
    platform: Arc<dyn Platform>,
    cluster: Arc<dyn Cluster>,
    /// How hooks run.
    tasks: Arc<dyn TaskRunner>,
    backups: Arc<dyn BackupStorage>,
    routers: Arc<dyn Routers>,
    queries: Arc<dyn QuerySources>,
    checks: Arc<dyn CheckRunner>,
    clock: Arc<dyn Clock>,
    notifier: Arc<dyn notify::Notifier>,
    state_dir: PathBuf,
    /// Reads releases' secrets: the records, and the state dir's `secrets/` files.
    secrets_of: secrets::SecretsOf,
    services: Mutex<BTreeMap<String, Arc<Service>>>,
    /// Bumped on every journal entry, so event streams wake up without polling the store.
    journal_tick: watch::Sender<u64>,
    /// The command channels of running progressive rollouts, by service.
    controls: Mutex<BTreeMap<String, tokio::sync::mpsc::UnboundedSender<canary::Control>>>,
    /// The scheduled-checks task of each service, to replace when its release changes.
    schedulers: schedule::Schedulers,
    /// Writes the store refused (a full disk), held until it takes them again.
    store_faults: Arc<store_faults::StoreFaults>,
    /// The rollouts stopped because the store refused writes, by service, with why: their
    /// outcome says so (and not "aborted by an operator").
    store_stops: Mutex<BTreeMap<String, String>>,
}

impl Engine {
    pub fn new(context: Context) -> Arc<Engine> {
        let engine = Arc::new(Engine {
            store: context.records.clone(),
            platform: context.platform,
            cluster: context.cluster,
            tasks: context.tasks,
            backups: context.backups,
            routers: context.routers,
            queries: context.queries,
            checks: context.checks,
            clock: context.clock,
            notifier: context.notifier,
            secrets_of: secrets::SecretsOf::new(
                context.records.clone(),
                context.state_dir.join("secrets"),
            ),
            state_dir: context.state_dir,
            services: Mutex::new(BTreeMap::new()),
            journal_tick: watch::Sender::new(0),
            controls: Mutex::new(BTreeMap::new()),
            schedulers: Mutex::new(BTreeMap::new()),
            store_faults: Arc::default(),
            store_stops: Mutex::new(BTreeMap::new()),
        });
        Engine::follow_notices(&engine);
        Engine::keep_retrying_held_writes(&engine);
        engine
    }

    pub fn records(&self) -> &dyn Records {
        &*self.store
    }

    pub fn platform(&self) -> &dyn Platform {
        &*self.platform
    }

    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }

    pub fn journal_ticks(&self) -> watch::Receiver<u64> {
        self.journal_tick.subscribe()
    }

    pub fn services(&self) -> Vec<Arc<Service>> {
        self.services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn service(&self, name: &str) -> Result<Arc<Service>> {
        self.services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| {
                EngineError::NotFound(format!("no service named `{name}` has been deployed"))
            })
    }

    /// Appends to a deployment's journal. Called *before* the step it describes takes effect.
    /// Node actions run outside any deployment and pass id 0: they are only logged.
    fn journal(&self, deployment_id: DeploymentId, event: Event) {
        let (name, detail) = event.to_row();
        if deployment_id == DeploymentId::NONE {
            tracing::info!(%detail, "{name}");
            return;
        }
        if matches!(
            event,
            Event::Started { .. } | Event::Resumed { .. } | Event::InternalError { .. }
        ) {
            tracing::info!(deployment = %deployment_id, %detail, "deployment {name}");
        }
        self.write_or_hold(store_faults::HeldWrite::Journal {
            id: deployment_id,
            event: name,
            detail,
            at: runway_wire::record::now(),
        });
        // The notices follow the journal (feed.rs): they are told of this entry from there.
        self.journal_tick.send_modify(|t| *t += 1);
    }

    /// Hands the notice a journal entry is worth to the notifier (which returns at once).
    fn announce(&self, id: DeploymentId, event: &Event) {
        let worth_it = matches!(
            event,
            Event::Started { .. }
                | Event::AwaitingApproval { .. }
                | Event::Approved { .. }
                | Event::Rejected { .. }
                | Event::CanaryStep { .. }
                | Event::Paused { .. }
                | Event::Promoted { .. }
                | Event::Switched { .. }
                | Event::Succeeded { .. }
                | Event::Failed { .. }
                | Event::RollingBack { .. }
                | Event::FlagChanged { .. }
                | Event::FlagStep { .. }
        );
        if !worth_it {
            return;
        }
        let Ok(Some(d)) = self.store.deployment(id) else {
            return;
        };
        // A rollback or restore runs an older release's config; who hears of it is the
        // serving (newest) config's business.
        let serving = match d.kind {
            Kind::Rollback | Kind::Restore => d
                .previous_release_id
                .and_then(|p| self.store.deployment(p).ok().flatten()),
            _ => None,
        };
        let notify_of = |d: &Deployment| d.spec.as_ref().map(|s| s.notify.clone());
        let targets = serving
            .as_ref()
            .and_then(notify_of)
            .filter(|t| !t.is_empty())
            .or_else(|| notify_of(&d))
            .unwrap_or_default();
        if targets.is_empty() {
            return;
        }
        let analysis = match event {
            Event::RollingBack { .. } => self
                .last_journaled(id, |e| matches!(e, Event::Analysis(_)))
                .and_then(|e| match e {
                    Event::Analysis(a) => Some(a),
                    _ => None,
                }),
            _ => None,
        };
        if let Some(notice) = notify::notice_of(&d, event, analysis.as_ref()) {
            self.notifier.notify(&targets, notice);
        }
    }

    /// The newest entry of deployment `id`'s journal that `matches`: how a resumed operation
    /// finds out what it had already done.
    fn last_journaled(&self, id: DeploymentId, matches: impl Fn(&Event) -> bool) -> Option<Event> {
        self.store
            .journal_since(id, 0)
            .ok()?
            .into_iter()
            .rev()
            .filter_map(|e| e.typed())
            .find(|e| matches(e))
    }

    /// The service's runtime, creating it (and binding its proxy listener) on first use.
    /// With `open` false the listener is bound but accepts nothing until `Service::open`, so a
    /// recovering server can re-check its replicas before traffic arrives.
    async fn service_for(&self, name: &str, spec: &Spec, open: bool) -> Result<Arc<Service>> {
        if let Ok(svc) = self.service(name) {
            if svc.listen != spec.service.listen {
                return Err(EngineError::Conflict(format!(
                    "service `{name}` listens on {} and this config says {}: moving a running service \
                     to another address is not supported; keep service.listen = \"{}\"",
                    svc.listen, spec.service.listen, svc.listen
                )));
            }
            svc.router.set_client_limits(&spec.proxy);
            return Ok(svc);
        }
        let router = self
            .routers
            .bind(name, spec)
            .await
            .map_err(EngineError::Conflict)?;
        let svc = Service::new(name, spec.service.listen, router);
        svc.router.set_client_limits(&spec.proxy);
        // A page or read-only mode set before a restart answers from the first request on.
        self.apply_traffic_modes(&svc, Some(spec));
        self.services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), svc.clone());
        if open {
            svc.router.open();
        }
        Ok(svc)
    }

    /// Deployment `id`'s stored progress as a `T`; the default when there is none (or it is of
    /// another shape: a fresh start).
    fn progress<T: serde::de::DeserializeOwned + Default>(&self, id: DeploymentId) -> T {
        self.store
            .deployment(id)
            .ok()
            .flatten()
            .and_then(|d| d.progress)
            .and_then(|p| serde_json::from_value(p).ok())
            .unwrap_or_default()
    }

    fn serving(&self, service: &str) -> Result<Option<Release>> {
        match self.store.serving_release(service)? {
            Some(id) => {
                let d = self.store.deployment(id)?.ok_or_else(|| {
                    EngineError::Internal(anyhow::anyhow!("serving release #{id} is missing"))
                })?;
                Ok(Some(Release::from_deployment(&d, &self.secrets_of)?))
            }
            None => Ok(None),
        }
    }

    /// Starts a deployment of `version` with `spec`; returns its id at once. The outcome is in
    /// the deployment's record and journal.
    pub async fn deploy(self: &Arc<Self>, request: DeployRequest, by: &str) -> Result<Deployment> {
        validate_version(&request.version)?;
        request.spec.validate().map_err(EngineError::BadRequest)?;
        let base_dir = request.base_dir.as_str();
        if !std::path::Path::new(base_dir).is_absolute() {
            return Err(EngineError::BadRequest(format!(
                "base_dir must be absolute, got `{base_dir}`"
            )));
        }
        // Two projects that kept `init`'s default name would silently deploy into one service.
        let name = &request.spec.service.name;
        if let Some(serving) = self.serving(name)? {
            if serving.base_dir != std::path::Path::new(base_dir) && !request.from_here {
                return Err(EngineError::Conflict(format!(
                    "service `{name}` is deployed from {}, and this runway.toml is in {base_dir}. \
                     If this is another project, give it its own name in [service] name; to \
                     deploy `{name}` from here from now on, add --from-here",
                    serving.base_dir.display()
                )));
            }
        }
        let admitted = match self.admit(&request) {
            Ok(admitted) => admitted,
            Err(refused @ EngineError::Conflict(_)) => {
                // A lock, window or freeze said no: the channel hears of it.
                let mut notice = runway_wire::notice::Notice::new(
                    runway_wire::notice::NoticeKind::Refused,
                    name,
                );
                notice.version = Some(request.version.clone());
                notice.by = Some(by.to_string());
                notice.reason = Some(refused.to_string());
                self.notifier.notify(&request.spec.notify, notice);
                return Err(refused);
            }
            Err(e) => return Err(e),
        };
        if admitted.deploy_type.approvals > 0 {
            return self.await_approval(&request, admitted, by);
        }
        let pending = policy::PendingStart {
            skip_checks: admitted.skip_all_checks,
            overridden: admitted.overridden,
        };
        let (type_name, changes) = (admitted.type_name.clone(), admitted.changes);
        let deployment = self
            .start_operation(NewOperation {
                kind: Kind::Deploy,
                version: &request.version,
                spec: admitted.spec,
                base_dir,
                args: Default::default(),
                preflight: if pending.skip_checks {
                    Preflight::Skipped
                } else {
                    Preflight::Run
                },
                by,
                reason: request.reason.as_deref(),
                deploy_type: Some(&admitted.type_name),
                digest: Some(&admitted.digest),
                commit: request.commit.as_deref(),
                commit_time: request.commit_time.as_deref(),
                existing: None,
            })
            .await?;
        self.supersede_waiting(name, deployment.id, "deployment");
        self.journal_type(deployment.id, &type_name, changes);
        self.journal_override(deployment.id, pending.overridden, by, request.reason);
        Ok(deployment)
    }

    /// Starts a deployment that waited for its approvals, as it was requested.
    pub(crate) async fn start_approved(
        self: &Arc<Self>,
        d: Deployment,
        spec: Spec,
        pending: policy::PendingStart,
    ) -> Result<Deployment> {
        self.start_operation(NewOperation {
            kind: Kind::Deploy,
            version: &d.version,
            spec,
            base_dir: &d.base_dir,
            args: Default::default(),
            preflight: if pending.skip_checks {
                Preflight::Skipped
            } else {
                Preflight::Run
            },
            by: &d.requested_by,
            reason: d.request_reason.as_deref(),
            deploy_type: d.deploy_type.as_deref(),
            digest: d.digest.as_deref(),
            commit: d.commit.as_deref(),
            commit_time: d.commit_time.as_deref(),
            existing: Some(d.id),
        })
        .await
    }

    /// Journals what an admin's `--override` passed.
    fn journal_override(
        &self,
        id: DeploymentId,
        rules: Vec<String>,
        by: &str,
        reason: Option<String>,
    ) {
        if !rules.is_empty() {
            tracing::warn!(deployment = %id, by, "policy overridden: {}", rules.join("; "));
            self.journal(
                id,
                Event::Overridden {
                    rules,
                    by: by.to_string(),
                    reason: reason.unwrap_or_default(),
                },
            );
        }
    }

    /// Rolls back to an earlier release: by default the newest succeeded release before the one
    /// serving whose version differs; or the newest succeeded release of `version`; or exactly
    /// deployment `revision`. The config stored with that release comes back with it.
    pub async fn rollback(
        self: &Arc<Self>,
        service: &str,
        request: &runway_wire::api::RollbackRequest,
        by: &str,
    ) -> Result<Deployment> {
        let (version, revision, keep_schema) = (
            request.version.as_deref(),
            request.revision,
            request.keep_schema,
        );
        let serving = self.serving(service)?.ok_or_else(|| {
            EngineError::Conflict(format!(
                "service `{service}` has no serving release to roll back from"
            ))
        })?;
        // On a cluster, revisions are the Deployment's own (`kubectl rollout history`): each
        // names the runway release it runs.
        let revision = match revision {
            Some(number) if serving.spec.kubernetes.is_some() => Some(
                self.release_of_revision(service, &serving, number.0)
                    .await?,
            ),
            other => other,
        };
        let history = self.store.history(Some(service), 10_000)?;
        // A release that served; a flag's change is not one.
        let usable = |d: &&Deployment| {
            matches!(d.status, Status::Succeeded | Status::RolledBack) && d.kind != Kind::Flag
        };
        let target = match (version, revision) {
            (Some(_), Some(_)) => {
                return Err(EngineError::BadRequest(
                    "give a version or --to-revision, not both".into(),
                ))
            }
            (_, Some(rev)) => history
                .iter()
                .filter(usable)
                .find(|d| d.id == rev)
                .ok_or_else(|| {
                    EngineError::NotFound(format!(
                    "no deployment #{rev} of `{service}` that ever served; see `runway history`"
                ))
                })?,
            (Some(v), None) => history
                .iter()
                .filter(usable)
                .find(|d| d.version == v)
                .ok_or_else(|| {
                    EngineError::NotFound(format!(
                        "`{service}` never served version {v}; see `runway history`"
                    ))
                })?,
            // Frozen: the release that served before the failed deployment is still the
            // serving one, and going back means back to it, whole.
            (None, None) if self.frozen(service).is_some() => {
                history.iter().find(|d| d.id == serving.id).ok_or_else(|| {
                    EngineError::NotFound(format!("release #{} is missing", serving.id))
                })?
            }
            (None, None) => history
                .iter()
                .filter(|d| {
                    d.status == Status::Succeeded
                        && d.rolled_back_by.is_none()
                        && d.id < serving.id
                        && d.kind != Kind::Flag
                })
                // Another version, or the same one with other secret versions: a rollback
                // after `runway secrets set` brings the old values back.
                .find(|d| {
                    d.version != serving.version || d.secret_versions != serving.secret_versions
                })
                .ok_or_else(|| {
                    EngineError::NotFound(format!(
                        "`{service}` has no earlier release to roll back to from {}",
                        serving.version
                    ))
                })?,
        };
        let release = Release::from_deployment(target, &self.secrets_of)?;
        // Back is always open; a "rollback" to a version first deployed after the serving one
        // goes forward, and is judged as a deploy is by the lock and the calendar.
        let first_deployed = |version: &str| {
            history
                .iter()
                .filter(|d| d.kind == Kind::Deploy && d.version == version)
                .map(|d| d.id)
                .min()
        };
        if first_deployed(&release.version) > first_deployed(&serving.version) {
            self.admit_forward(service, target)?;
        }
        if !keep_schema {
            if let Ok(runbook::SchemaPlan::Freeze { deployment_id }) =
                self.schema_plan(service, &release)
            {
                return Err(EngineError::Frozen(format!(
                    "deployment #{deployment_id} applied an irreversible migration \
                     (on_failure = \"freeze\"): runway will not take it back by itself. Run \
                     `runway rollback --keep-schema` to run {} on the new schema, or \
                     `runway restore BACKUP` (see `runway backups`) to restore the database \
                     with the release that matches it",
                    release.version
                )));
            }
        }
        let base_dir = release.base_dir.to_string_lossy().to_string();
        let rollback = self
            .start_operation(NewOperation {
                args: operation::OperationArgs {
                    release_of: Some(release.id),
                    keep_schema,
                    backup_id: None,
                },
                reason: request.reason.as_deref(),
                ..NewOperation::on_release(
                    Kind::Rollback,
                    &release.version,
                    release.spec,
                    &base_dir,
                    by,
                )
            })
            .await?;
        self.supersede_waiting(service, rollback.id, "rollback");
        Ok(rollback)
    }

    /// The release that revision `number` of the Deployment of `service` (which serves
    /// `serving`) runs.
    async fn release_of_revision(
        &self,
        service: &str,
        serving: &Release,
        number: i64,
    ) -> Result<DeploymentId> {
        let revisions = self
            .cluster
            .revisions(serving)
            .await
            .map_err(EngineError::Failed)?;
        let Some(revision) = revisions.iter().find(|r| r.number as i64 == number) else {
            let known: Vec<String> = revisions.iter().map(|r| r.number.to_string()).collect();
            return Err(EngineError::NotFound(format!(
                "the Deployment of `{service}` has no revision {number} (it has {}); see \
                 `kubectl rollout history`",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )));
        };
        let first = revision.deployment.ok_or_else(|| {
            EngineError::Conflict(format!(
                "revision {number} of `{service}`'s Deployment was not written by runway (the \
                 Deployment was changed directly, e.g. by `kubectl set image`), so runway has no \
                 release with its config to go back to: deploy the version you want with runway"
            ))
        })?;
        // The template names the first deployment of its release; the newest deployment of
        // that release that served is the one to go back to (with its replica count).
        let first = self
            .store
            .deployment(first)?
            .ok_or_else(|| EngineError::NotFound(format!("deployment #{first} is missing")))?;
        let fingerprint = Release::from_deployment(&first, &self.secrets_of)?.pod_fingerprint();
        let served = self
            .store
            .history(Some(service), 10_000)?
            .into_iter()
            .filter(|d| matches!(d.status, Status::Succeeded | Status::RolledBack))
            .filter(|d| d.kind != Kind::Flag)
            .find(|d| {
                Release::from_deployment(d, &self.secrets_of)
                    .is_ok_and(|r| r.pod_fingerprint() == fingerprint)
            })
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "revision {number} runs {} of deployment #{}, which never served; see \
                     `runway history`",
                    first.version, first.id
                ))
            })?;
        Ok(served.id)
    }

    /// `runway restore BACKUP`: the database goes back to the backup, and the release that
    /// served when it was taken (whose code matches its schema) comes back with it.
    pub async fn restore(
        self: &Arc<Self>,
        service: &str,
        backup_id: BackupId,
        by: &str,
    ) -> Result<Deployment> {
        let backup = self
            .store
            .backup(backup_id)?
            .filter(|b| b.service == service)
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "`{service}` has no backup #{backup_id}; see `runway backups`"
                ))
            })?;
        if backup.state != "ok" {
            return Err(EngineError::Conflict(format!(
                "backup #{backup_id} is {} and cannot be restored; see `runway backups`",
                backup.state
            )));
        }
        let taken_by = self
            .store
            .deployment(backup.deployment_id)?
            .ok_or_else(|| {
                EngineError::NotFound(format!("deployment #{} is missing", backup.deployment_id))
            })?;
        let release_row = match taken_by.previous_release_id {
            Some(prev) => self.store.deployment(prev)?.unwrap_or(taken_by),
            None => taken_by,
        };
        let release = Release::from_deployment(&release_row, &self.secrets_of)?;
        let has_restore = |s: &Spec| s.hooks.backup.as_ref().is_some_and(|b| b.restore.is_some());
        let configured = release_row.spec.as_ref().is_some_and(has_restore)
            || self
                .store
                .deployment(backup.deployment_id)?
                .and_then(|d| d.spec)
                .is_some_and(|s| has_restore(&s));
        if !configured {
            return Err(EngineError::BadRequest(
                "no restore command is configured: add restore = [\"...\"] to [hooks.backup] \
                 (it runs with RUNWAY_BACKUP_DIR set to the backup's directory)"
                    .into(),
            ));
        }
        self.backups.reachable(&release, &backup.dir).map_err(|e| {
            EngineError::Conflict(format!("cannot restore backup #{backup_id}: {e}"))
        })?;
        let base_dir = release.base_dir.to_string_lossy().to_string();
        self.start_operation(NewOperation {
            args: operation::OperationArgs {
                release_of: Some(release.id),
                keep_schema: false,
                backup_id: Some(backup_id),
            },
            ..NewOperation::on_release(Kind::Restore, &release.version, release.spec, &base_dir, by)
        })
        .await
    }

    /// Changes the serving release's replica count; existing replicas keep running.
    pub async fn scale(
        self: &Arc<Self>,
        service: &str,
        count: u32,
        by: &str,
    ) -> Result<Deployment> {
        if count == 0 {
            return Err(EngineError::BadRequest(
                "--count must be at least 1 (to stop a service, stop its nodes)".into(),
            ));
        }
        if let Some(frozen) = self.frozen(service) {
            return Err(EngineError::Frozen(format!(
                "service `{service}` is frozen by deployment #{}: decide first (`runway status` \
                 says how), then scale",
                frozen.deployment_id
            )));
        }
        let serving = self.serving(service)?.ok_or_else(|| {
            EngineError::Conflict(format!(
                "service `{service}` has no serving release to scale"
            ))
        })?;
        let mut spec = serving.spec.clone();
        spec.run.replicas = count;
        let base_dir = serving.base_dir.to_string_lossy().to_string();
        self.start_operation(NewOperation::on_release(
            Kind::Scale,
            &serving.version,
            spec,
            &base_dir,
            by,
        ))
        .await
    }

    async fn start_operation(self: &Arc<Self>, op: NewOperation<'_>) -> Result<Deployment> {
        self.store_writable()?;
        let NewOperation {
            kind,
            version,
            spec,
            base_dir,
            args,
            preflight,
            by,
            reason,
            deploy_type,
            digest,
            commit,
            commit_time,
            existing,
        } = op;
        let name = spec.service.name.clone();
        if spec.kubernetes.is_some() {
            cluster_supports(&spec).map_err(EngineError::BadRequest)?;
        }
        let svc = self.service_for(&name, &spec, true).await?;
        if matches!(spec.strategy, runway_spec::StrategySpec::Canary(_))
            && svc.router.granularity() == router::Granularity::SwitchOnly
        {
            return Err(EngineError::BadRequest(format!(
                "the traffic router of `{name}` can only switch all traffic at once, so it cannot \
                 run a canary's weighted steps: use [strategy] kind = \"blue-green\""
            )));
        }
        if self.frozen(&name).is_some() && svc.operation().is_none() {
            // The human has decided: the split the service froze with ends here.
            svc.set_weights(None);
            svc.router.set_sticky(false);
        }
        let previous = self.serving(&name)?;
        // The secret versions it runs with: those of the release it brings back, the serving
        // ones for a scale, the current ones of the names it refers to otherwise.
        let secret_versions = match (args.release_of, kind) {
            (Some(release), _) => self
                .store
                .deployment(release)?
                .map(|d| d.secret_versions)
                .unwrap_or_default(),
            (None, Kind::Scale) => previous
                .as_ref()
                .map(|p| p.secret_versions.clone())
                .unwrap_or_default(),
            (None, _) => {
                let used = secrets::referenced(&spec);
                self.store
                    .secrets(&name)?
                    .into_iter()
                    .filter(|s| used.contains(&s.name))
                    .map(|s| (s.name, s.version))
                    .collect()
            }
        };
        let (guard, id) = svc.begin(
            || {
                let id = match existing {
                    // Approved: the waiting record becomes the running deployment.
                    Some(id) => {
                        let serving = previous.as_ref().map(|p| (p.version.as_str(), p.id));
                        if !self.store.activate_deployment(id, serving)? {
                            return Err(EngineError::Conflict(format!(
                                "deployment #{id} is not waiting for approval any more"
                            )));
                        }
                        id
                    }
                    None => self.store.insert_deployment(NewDeployment {
                        service: &name,
                        kind,
                        version,
                        previous_version: previous.as_ref().map(|p| p.version.as_str()),
                        previous_release_id: previous.as_ref().map(|p| p.id),
                        spec: &spec,
                        base_dir,
                        requested_by: by,
                        request_reason: reason,
                        deploy_type,
                        digest,
                        commit,
                        commit_time,
                        status: Status::Running,
                    })?,
                };
                self.store.ensure_service(&name)?;
                // Pinned with the record, so that a deployment resumed after a crash runs
                // with the versions it started with.
                if !secret_versions.is_empty() {
                    self.store.set_secret_versions(id, &secret_versions)?;
                }
                // Only rollbacks and restores have arguments; a canary's progress starts empty.
                if args != operation::OperationArgs::default() {
                    let args = serde_json::to_value(&args).map_err(anyhow::Error::from)?;
                    self.store.set_progress(id, &args)?;
                }
                let what = match kind {
                    Kind::Deploy => "deployment",
                    Kind::Rollback => "rollback",
                    Kind::Scale => "scale",
                    Kind::Restore => "restore",
                    Kind::Secrets => "restart with new secrets",
                    Kind::Flag => "flag change",
                };
                Ok((
                    service::Operation {
                        deployment_id: id,
                        description: format!("{what} #{id} of {version}"),
                    },
                    id,
                ))
            },
            |op| {
                EngineError::Busy(format!(
                    "service `{name}` is busy with {}; wait for it (`runway status`) and try again",
                    op.description
                ))
            },
        )?;
        self.journal(
            id,
            Event::Started {
                kind,
                version: version.to_string(),
                previous_version: previous.as_ref().map(|p| p.version.clone()),
                replicas: spec.run.replicas,
                by: by.to_string(),
                reason: reason.map(str::to_string),
            },
        );
        let deployment = self
            .store
            .deployment(id)?
            .ok_or_else(|| anyhow::anyhow!("deployment vanished"))?;
        let target = Release::from_deployment(&deployment, &self.secrets_of)?;
        let engine = self.clone();
        tokio::spawn(async move {
            engine
                .run_guarded(svc, id, target, previous, kind, preflight)
                .await;
            drop(guard);
        });
        Ok(deployment)
    }

    /// Runs an operation's strategy: the canary's steps for a new canary release, the rolling
    /// update otherwise (and for every rollback, which must be quick and sure).
    async fn execute(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        target: &Release,
        previous: Option<&Release>,
        progressive: bool,
        keep_on_failure: bool,
    ) -> std::result::Result<(), Failure> {
        use runway_spec::StrategySpec;
        let stable = match (&target.spec.strategy, previous) {
            (StrategySpec::Canary(_) | StrategySpec::BlueGreen(_), Some(stable)) if progressive => {
                stable
            }
            _ => {
                return self
                    .converge(svc, id, target, progressive)
                    .await
                    .map_err(Failure::failed)
            }
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(svc.name.clone(), tx.clone());
        // A store fault that began since the last stage's look stopped the rollouts there
        // were; this one was not among them yet.
        if self.store_fault().is_some() {
            self.stop_rollout(&svc.name, &tx);
        }
        let outcome = match &target.spec.strategy {
            StrategySpec::Canary(canary) => {
                self.run_canary(svc, id, target, stable, canary, rx).await
            }
            StrategySpec::BlueGreen(bg) => {
                self.run_blue_green(svc, id, target, stable, bg, rx).await
            }
            StrategySpec::Rolling(_) | StrategySpec::Recreate(_) => self
                .converge(svc, id, target, progressive)
                .await
                .map_err(Failure::failed),
        };
        self.controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&svc.name);
        if outcome.is_err() && !keep_on_failure {
            // The new release has no traffic any more; drain and stop its replicas before the
            // revert (in `run`) checks that the previous release is whole.
            let fingerprint = target.fingerprint();
            let new = svc
                .replicas()
                .into_iter()
                .filter(|r| r.fingerprint == fingerprint)
                .collect();
            self.retire(svc, id, new).await;
            svc.set_weights(None);
        }
        outcome
    }

    /// Sends a command to the service's running canary or blue-green rollout.
    pub fn control(&self, service: &str, control: canary::Control, by: &str) -> Result<String> {
        // The lock is let go before the journal is written: a write the store refuses stops
        // every rollout (store_faults.rs), which takes this lock too.
        let tx = self
            .controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(service)
            .cloned()
            .ok_or_else(|| {
                EngineError::Conflict(format!(
                    "service `{service}` has no canary in progress; `runway status` shows what runs"
                ))
            })?;
        let running = self.service(service).ok().and_then(|s| s.operation());
        if let Some(op) = running {
            self.journal(
                op.deployment_id,
                Event::Commanded {
                    command: format!("{control:?}").to_lowercase(),
                    by: by.to_string(),
                },
            );
        }
        tx.send(control).map_err(|_| {
            EngineError::Conflict(format!("the canary of `{service}` has just ended"))
        })?;
        Ok(format!("{control:?} sent to the canary of `{service}`").to_lowercase())
    }

    pub async fn status(&self) -> Result<StatusView> {
        let mut services = Vec::new();
        for svc in self.services() {
            let serving: Vec<ReleaseView> = self
                .serving(&svc.name)?
                .map(|r| ReleaseView {
                    deployment_id: r.id,
                    version: r.version,
                    replicas: r.spec.run.replicas,
                })
                .into_iter()
                .collect();
            let replicas = svc.replicas().iter().map(|r| replica_view(r)).collect();
            // A cluster's replicas are its pods, read from it (bounded: status never hangs on
            // a cluster that does not answer).
            let (pods, pods_error) = match self.serving(&svc.name)? {
                Some(release) if release.spec.kubernetes.is_some() => {
                    let read = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        self.cluster.pods(&release),
                    )
                    .await;
                    match read {
                        Ok(Ok(pods)) => (pods, None),
                        Ok(Err(e)) => (Vec::new(), Some(e)),
                        Err(_) => (
                            Vec::new(),
                            Some("the cluster did not answer within 5s".to_string()),
                        ),
                    }
                }
                _ => (Vec::new(), None),
            };
            let deployment = match svc.operation() {
                Some(op) => {
                    let d = self.store.deployment(op.deployment_id)?;
                    Some(OperationView {
                        deployment_id: op.deployment_id,
                        version: d.as_ref().map(|d| d.version.clone()),
                        kind: d.as_ref().map(|d| d.kind),
                        started_at: d.as_ref().map(|d| d.started_at.clone()),
                        description: op.description,
                        last_event: self.store.journal_since(op.deployment_id, 0)?.pop(),
                        canary: d.as_ref().and_then(canary::view),
                    })
                }
                None => None,
            };
            // Failures since the serving release (the one `serving()` just read).
            let since = serving
                .first()
                .map_or(DeploymentId::NONE, |r| r.deployment_id);
            let last_failure = self
                .store
                .history(Some(&svc.name), 20)?
                .into_iter()
                .map(|d| self.overlay(d))
                .take_while(|d| d.id > since)
                .find(|d| matches!(d.status, Status::Failed | Status::RolledBack));
            services.push(ServiceView {
                name: svc.name.clone(),
                listen: svc.listen.to_string(),
                serving,
                replicas,
                pods,
                pods_error,
                deployment,
                last_failure: last_failure.map(Into::into),
                metrics: svc.router.metrics(),
                maintenance: self.store.flag(&svc.name, ServiceFlag::Maintenance)?,
                read_only: self.store.flag(&svc.name, ServiceFlag::ReadOnly)?,
                frozen: self.frozen(&svc.name),
                locked: self.store.flag(&svc.name, ServiceFlag::Locked)?,
                refused: svc.router.refused(),
                client_errors: svc.router.client_errors(),
            });
        }
        Ok(StatusView {
            at: runway_wire::record::now(),
            services,
            store_fault: self.store_fault(),
        })
    }

    /// Stops every replica (on a graceful server shutdown): the proxy goes down with the server,
    /// so leaving them running would only leave orphans. Deployments still running stay
    /// `running` in the store and resume at the next start.
    /// For a successor server that took every listener over: each service's router stops
    /// accepting and finishes the requests it is serving. Replicas, records and operations
    /// are left as they are, for the successor to adopt and resume as after a crash.
    pub async fn hand_over(&self) {
        let routers: Vec<_> = self
            .services()
            .into_iter()
            .map(|s| s.router.clone())
            .collect();
        futures_util::future::join_all(routers.iter().map(|r| r.hand_over())).await;
    }

    pub async fn shutdown(&self) {
        let mut stops = Vec::new();
        for svc in self.services() {
            for r in svc.replicas() {
                stops.push(async move { r.stop().await });
            }
        }
        futures_util::future::join_all(stops).await;
    }
}

pub fn replica_view(r: &replica::Replica) -> ReplicaView {
    let s = r.status();
    ReplicaView {
        id: r.id,
        name: r.name.clone(),
        version: r.version.clone(),
        release_id: r.release_id,
        port: s.port,
        pid: s.pid,
        container: s.container,
        image: s.image,
        state: serde_json::to_value(s.phase)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        health: if s.healthy { "healthy" } else { "unhealthy" }.to_string(),
        in_rotation: r.in_rotation(),
        restarts: r.restarts(),
        last_error: s.last_error,
    }
}

/// What this runway does on a cluster: every strategy (a canary by replica ratio or Gateway
/// API weights, judged on Prometheus), hooks and backups as Jobs, checks from runway's host.
/// What it cannot do is refused before anything changes, with what to use instead.
fn cluster_supports(spec: &Spec) -> std::result::Result<(), String> {
    if matches!(spec.strategy, runway_spec::StrategySpec::Canary(_)) {
        cluster_canary(spec)?;
    }
    Ok(())
}

/// A canary on a cluster is judged on Prometheus alone (runway's proxy is not in the path) and
/// shifted by replica ratio or Gateway API weights (a Service's selector can only switch).
fn cluster_canary(spec: &Spec) -> std::result::Result<(), String> {
    let k8s = spec.kubernetes.as_ref().ok_or("not a cluster")?;
    match k8s.traffic {
        runway_spec::ClusterTraffic::Service => {
            return Err(
                "with [kubernetes] traffic = \"service\" the Service's selector can only switch \
                 all traffic at once, so it cannot run a canary's weighted steps: use [strategy] \
                 kind = \"blue-green\", or traffic = \"replica-ratio\" or \"gateway-api\""
                    .into(),
            )
        }
        runway_spec::ClusterTraffic::GatewayApi if k8s.port.is_none() => {
            return Err(
                "a canary with traffic = \"gateway-api\" needs [kubernetes] port: the port of \
                 the stable and canary Services the route's backends are"
                    .into(),
            )
        }
        _ => {}
    }
    let analysis = spec.analysis.clone().unwrap_or_default();
    let proxy: Vec<&str> = analysis
        .metrics
        .iter()
        .filter(|m| m.source != runway_spec::MetricSource::Prometheus)
        .map(|m| m.name.as_str())
        .collect();
    if analysis.metrics.is_empty() || !proxy.is_empty() {
        return Err(format!(
            "on Kubernetes runway's proxy is not in the path, so a canary is judged on \
             Prometheus metrics alone: give [[analysis.metrics]] with source = \"prometheus\"{}",
            if proxy.is_empty() {
                String::new()
            } else {
                format!(" instead of the proxy's ({})", proxy.join(", "))
            }
        ));
    }
    if analysis.prometheus.is_none() {
        return Err(
            "a canary on Kubernetes needs the Prometheus address: set [kubernetes] prometheus \
             (or [analysis] prometheus)"
                .into(),
        );
    }
    if analysis.requests.is_none() && analysis.min_requests > 0 {
        return Err(
            "a canary on Kubernetes needs [analysis] requests, a PromQL query for the new \
             release's requests in an interval (e.g. 'sum(increase(http_requests_total\
             {version=\"{version}\"}[10s]))'): runway never promotes without them"
                .into(),
        );
    }
    Ok(())
}

fn validate_version(version: &str) -> Result<()> {
    if version.is_empty() || version.len() > 128 || version.chars().any(char::is_control) {
        return Err(EngineError::BadRequest(
            "the version must be 1 to 128 characters without control characters".into(),
        ));
    }
    Ok(())
}
