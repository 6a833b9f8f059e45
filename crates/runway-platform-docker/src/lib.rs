//! The Docker platform: each replica of a `[docker]` release is a container of its image,
//! its `port` published on a loopback port, so the built-in proxy and the readiness probe
//! reach it on 127.0.0.1 as they reach a process. The engine supervises it like any instance:
//! a container that exits is started again with backoff once it has served; after a server
//! restart it is adopted by its container id.
//!
//! Containers are named `runway-<replica>` (`runway-web-3`) and labelled `runway.service`,
//! `runway.release` (the version) and `runway.replica`, so `docker ps` says what each is.
//! The Docker Engine is found as the docker CLI finds it (`DOCKER_HOST`, the current context,
//! the local socket), and the API version is negotiated with it on first use.

mod credentials;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use runway_engine::platform::{
    Adopted, Capabilities, Instance, LogChunk, LogRead, Platform, Prepared, Progress, Workload,
};
use runway_engine::router::BoxFuture;
use runway_engine::tasks::{keep_the_end, Outcome, Task, TaskRunner};
use runway_engine::{secrets, Release};
use runway_platform_process::health::Prober;
use runway_spec::{DockerSpec, PullPolicy};
use tokio::sync::OnceCell;

/// Releases as Docker containers.
pub struct DockerPlatform {
    client: Arc<Client>,
    state_dir: std::path::PathBuf,
}

/// The Docker Engine, connected (and its API version negotiated) on first use: a server
/// without a `[docker]` service never needs a daemon.
#[derive(Default)]
struct Client {
    docker: OnceCell<Docker>,
}

impl Client {
    async fn get(&self) -> Result<&Docker, String> {
        self.docker
            .get_or_try_init(|| async {
                let docker = Docker::connect_with_defaults()
                    .map_err(|e| format!("cannot reach the Docker Engine: {e}"))?;
                docker.negotiate_version().await.map_err(|e| {
                    format!(
                        "cannot reach the Docker Engine ({e}); is the daemon running, and is \
                         DOCKER_HOST right?"
                    )
                })
            })
            .await
    }
}

/// A container's name: the replica's, prefixed, so containers of two runway services never
/// meet and `docker ps` says whose they are.
fn container_name(replica: &str) -> String {
    format!("runway-{replica}")
}

impl DockerPlatform {
    pub fn new(state_dir: &std::path::Path) -> DockerPlatform {
        DockerPlatform {
            client: Arc::new(Client::default()),
            state_dir: state_dir.to_path_buf(),
        }
    }

    /// Whether replica `replica` is (or was) a container of this platform.
    pub async fn has_container(&self, replica: &str) -> bool {
        match self.client.get().await {
            Ok(docker) => docker
                .inspect_container(&container_name(replica), None)
                .await
                .is_ok(),
            Err(_) => false,
        }
    }
}

impl Platform for DockerPlatform {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            adopt: true,
            restart_one: true,
            logs: true,
        }
    }

    fn workload(&self, service: &str, release: &Release, replica: &str) -> Arc<dyn Workload> {
        // Only a [docker] release comes here (the server picks the platform by it); anything
        // else gets a workload that cannot start.
        let spec = release.spec.docker.clone().unwrap_or_else(|| DockerSpec {
            pull: PullPolicy::Never,
            ..DockerSpec::default()
        });
        let fill = |s: &str| {
            s.replace("{version}", &release.version)
                .replace("{port}", &spec.port.to_string())
        };
        let mut env = release.spec.run.env.clone();
        env.insert("RUNWAY_VERSION".into(), release.version.clone());
        env.insert("RUNWAY_SERVICE".into(), service.to_string());
        env.insert("RUNWAY_REPLICA".into(), replica.to_string());
        env.insert("PORT".into(), spec.port.to_string());
        let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        labels.insert("runway.service".into(), service.to_string());
        labels.insert("runway.release".into(), release.version.clone());
        labels.insert("runway.replica".into(), replica.to_string());
        Arc::new(ContainerWorkload {
            client: self.client.clone(),
            log_file: runway_platform_process::logfile::log_path(&self.state_dir, service, replica),
            name: container_name(replica),
            // A release deployed before runs the image id it ran then, not its tag's today.
            image: spec.image_id.clone().unwrap_or_else(|| fill(&spec.image)),
            command: spec.command.iter().map(|a| fill(a)).collect(),
            env,
            secrets: release.secrets.clone(),
            labels,
            spec,
            health_path: release.spec.health.path.clone(),
            prober: Prober::new(release.spec.health.timeout.0),
        })
    }

    /// Pulls the image per the policy, and pins the release to the image id its tag names
    /// now.
    fn prepare<'a>(
        &'a self,
        release: &'a Release,
        progress: &'a Progress<'a>,
    ) -> BoxFuture<'a, Result<Prepared, String>> {
        Box::pin(async move {
            let Some(spec) = &release.spec.docker else {
                return Ok(Prepared::default());
            };
            let docker = self.client.get().await?;
            let image = spec.image.replace("{version}", &release.version);
            let pulled = ensure_image(docker, &image, spec.pull, Some(progress)).await?;
            // A hook's own image (a pg_dump image for backups) is had now too: a missing one
            // fails the deployment before any change, not halfway through its runbook.
            for own in hook_images(release) {
                if ensure_image(docker, &own, spec.pull, Some(progress)).await? {
                    progress(format!("pulled {own} for a hook"));
                }
            }
            let inspected = docker.inspect_image(&image).await.ok();
            let id = inspected.as_ref().and_then(|i| i.id.clone());
            // The registry's digest of what the tag names, for a rollback whose image id was
            // pruned from the engine (a locally built image has none).
            let repository = repository_of(&image);
            let digest = inspected
                .and_then(|i| i.repo_digests)
                .unwrap_or_default()
                .into_iter()
                .find(|d| d.split('@').next() == Some(repository));
            let mut pinned = release.spec.clone();
            if let Some(docker) = &mut pinned.docker {
                docker.image_id = id.clone();
                docker.image_digest = digest.clone();
            }
            let id = id.unwrap_or_default();
            let short = id.get(..19).unwrap_or(&id);
            let mut what = if pulled {
                format!("pulled {image} as {short}")
            } else {
                format!("image {image} is {short}")
            };
            if let Some(digest) = &digest {
                what.push_str(&format!(" ({digest})"));
            }
            Ok(Prepared {
                spec: Some(pinned),
                what: Some(what),
            })
        })
    }

    /// Containers labelled with `service` whose replica the records do not know are removed
    /// (one-off hook containers included: a hook interrupted by a crash runs again).
    fn sweep<'a>(&'a self, service: &'a str, replicas: &'a [String]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // Only where the Docker Engine is in use already (a container was adopted): a
            // server of processes never waits for a daemon it does not need.
            let Some(docker) = self.client.docker.get() else {
                return;
            };
            let filters = HashMap::from([(
                "label".to_string(),
                vec![format!("runway.service={service}")],
            )]);
            let options = ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build();
            let Ok(found) = docker.list_containers(Some(options)).await else {
                return;
            };
            for container in found {
                let replica = container
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("runway.replica"))
                    .cloned()
                    .unwrap_or_default();
                if replicas.contains(&replica) {
                    continue;
                }
                if let Some(id) = container.id {
                    tracing::info!(%service, container = %id, %replica, "removing a container no replica owns");
                    let remove = RemoveContainerOptionsBuilder::default().force(true).build();
                    let _ = docker.remove_container(&id, Some(remove)).await;
                }
            }
        })
    }

    fn allocate(&self) -> Result<(u16, serde_json::Value), String> {
        let port = runway_platform_process::process::free_port()
            .map_err(|e| format!("cannot find a free loopback port: {e}"))?;
        Ok((
            port,
            serde_json::json!({"platform": "docker", "port": port}),
        ))
    }

    /// A container is adopted when it still runs under the id the store kept, or, when that
    /// one is gone, the replica's running container found by its labels: one that a server
    /// started (a restart after a crash of the container) and died before it recorded.
    fn adopt<'a>(
        &'a self,
        replica: &'a str,
        handle: &'a serde_json::Value,
    ) -> BoxFuture<'a, Adopted> {
        Box::pin(async move {
            if handle["platform"] != "docker" {
                return None;
            }
            let recorded_port = handle["port"].as_u64()? as u16;
            let docker = self.client.get().await.ok()?;
            let running = |c: &bollard::models::ContainerInspectResponse| {
                c.state.as_ref().and_then(|s| s.running).unwrap_or(false)
            };
            let mut found = match handle["container"].as_str() {
                Some(id) => docker
                    .inspect_container(id, None)
                    .await
                    .ok()
                    .filter(|c| running(c)),
                None => None,
            };
            if found.is_none() {
                let filters = HashMap::from([
                    (
                        "label".to_string(),
                        vec![format!("runway.replica={replica}")],
                    ),
                    ("status".to_string(), vec!["running".to_string()]),
                ]);
                let options = ListContainersOptionsBuilder::default()
                    .filters(&filters)
                    .build();
                let labelled = docker
                    .list_containers(Some(options))
                    .await
                    .ok()
                    .and_then(|list| list.into_iter().find_map(|c| c.id));
                if let Some(id) = labelled {
                    tracing::info!(%replica, container = %id, "adopting the replica's container by its labels");
                    found = docker
                        .inspect_container(&id, None)
                        .await
                        .ok()
                        .filter(|c| running(c));
                }
            }
            let Some(container) = found else {
                return Some((None, recorded_port));
            };
            // The port it publishes on loopback (a restart may have moved it).
            let port = container
                .host_config
                .as_ref()
                .and_then(|h| h.port_bindings.as_ref())
                .and_then(|b| {
                    b.values()
                        .flatten()
                        .flatten()
                        .find_map(|p| p.host_port.clone())
                })
                .and_then(|p| p.parse().ok())
                .unwrap_or(recorded_port);
            let log_file = handle["log"].as_str().map(std::path::PathBuf::from);
            let instance = Box::new(Container {
                client: self.client.clone(),
                id: container.id.unwrap_or_default(),
                image: container.image,
                log_file,
            }) as Box<dyn Instance>;
            Some((Some(instance), port))
        })
    }

    /// The container's log (stdout and stderr); the cursor is the Unix time of the last read.
    fn read_log(&self, _service: &str, replica: &str, read: LogRead) -> Result<LogChunk, String> {
        let client = self.client.clone();
        let name = container_name(replica);
        // The trait is synchronous (a file read for processes); this asks the daemon on the
        // runtime's blocking-capable context.
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(read_container_log(&client, &name, read))
        })
    }
}

async fn read_container_log(
    client: &Client,
    name: &str,
    read: LogRead,
) -> Result<LogChunk, String> {
    let docker = client.get().await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // Each line comes with the daemon's timestamp; the cursor is the newest line's, in
    // nanoseconds. The daemon's `since` counts whole seconds and includes that second, so a
    // follow skips what it has shown by timestamp instead of showing it twice.
    let (options, after) = match read {
        LogRead::Tail(n) => (
            LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .timestamps(true)
                .tail(&if n == usize::MAX {
                    "all".to_string()
                } else {
                    n.to_string()
                })
                .build(),
            0,
        ),
        LogRead::Since(cursor) => (
            LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .timestamps(true)
                .since((cursor / 1_000_000_000).min(i32::MAX as u64) as i32)
                .build(),
            cursor,
        ),
    };
    let mut stream = docker.logs(name, Some(options));
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(output) => text.push_str(&output.to_string()),
            Err(e) => return Err(format!("cannot read the log of container {name}: {e}")),
        }
    }
    let mut lines = Vec::new();
    let mut newest = None;
    for line in text.lines() {
        let (at, line) = match line
            .split_once(' ')
            .and_then(|(ts, rest)| Some((nanos_of(ts)?, rest)))
        {
            Some((at, rest)) => (Some(at), rest),
            None => (None, line),
        };
        if let Some(at) = at {
            if at <= after {
                continue;
            }
            newest = Some(at);
        }
        lines.push(line.to_string());
    }
    Ok(LogChunk {
        lines,
        cursor: newest.unwrap_or(if after > 0 { after } else { now }),
    })
}

/// A log timestamp of the daemon (RFC 3339 with nanoseconds) as nanoseconds since the epoch.
fn nanos_of(timestamp: &str) -> Option<u64> {
    let at = time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
        .ok()?;
    u64::try_from(at.unix_timestamp_nanos()).ok()
}

/// The image of a container or hook about to start: already had by `prepare`, so pulled
/// only when it is missing (never again under `pull = "always"`), and a pinned id that was
/// pruned comes back by the registry digest recorded with it.
async fn ensure_pinned(docker: &Docker, image: &str, spec: &DockerSpec) -> Result<(), String> {
    if image.starts_with("sha256:") && docker.inspect_image(image).await.is_err() {
        if let (Some(digest), false) = (&spec.image_digest, spec.pull == PullPolicy::Never) {
            ensure_image(docker, digest, PullPolicy::Missing, None).await?;
            if docker.inspect_image(image).await.is_err() {
                return Err(format!(
                    "pulled {digest}, but it is not the image this release ran ({image})"
                ));
            }
            return Ok(());
        }
    }
    let policy = match spec.pull {
        PullPolicy::Always => PullPolicy::Missing,
        other => other,
    };
    ensure_image(docker, image, policy, None).await.map(|_| ())
}

/// The images the release's hooks name for themselves, each once.
fn hook_images(release: &Release) -> Vec<String> {
    let hooks = &release.spec.hooks;
    let mut images: Vec<String> = hooks
        .backup
        .iter()
        .filter_map(|h| h.image.clone())
        .chain(hooks.migrate.iter().filter_map(|h| h.image.clone()))
        .chain(hooks.run.iter().filter_map(|h| h.image.clone()))
        .map(|i| i.replace("{version}", &release.version))
        .collect();
    images.sort();
    images.dedup();
    images
}

/// `registry:5000/team/app` of `registry:5000/team/app:v1` (a port is not a tag).
fn repository_of(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(colon) if !image[colon..].contains('/') => &image[..colon],
        _ => image,
    }
}

/// The image there, per the pull policy; an image that cannot be had is the error, in the
/// Docker Engine's (or the registry's) words.
/// Whether it pulled. Each layer pulled is a line for `report`, when given.
async fn ensure_image(
    docker: &Docker,
    image: &str,
    pull: PullPolicy,
    report: Option<&Progress<'_>>,
) -> Result<bool, String> {
    let present = docker.inspect_image(image).await.is_ok();
    if image.starts_with("sha256:") {
        // An id a release ran: it cannot be pulled by id, it must still be here.
        return if present {
            Ok(false)
        } else {
            Err(format!(
                "the image this release ran ({image}) is no longer on this Docker Engine; \
                 deploy the version again to take what its tag names now"
            ))
        };
    }
    let pull = match pull {
        PullPolicy::Always => true,
        PullPolicy::Missing => !present,
        PullPolicy::Never if present => false,
        PullPolicy::Never => {
            return Err(format!(
                "image {image} is not on this Docker Engine and [docker] pull = \"never\": build \
                 or load it here, or allow pulling"
            ))
        }
    };
    if !pull {
        return Ok(false);
    }
    tracing::info!(%image, "pulling");
    let options = CreateImageOptionsBuilder::default()
        .from_image(image)
        .build();
    // A credential helper is a program that may wait (a keyring's prompt): off the runtime.
    let reference = image.to_string();
    let credentials = tokio::task::spawn_blocking(move || credentials::for_image(&reference))
        .await
        .ok()
        .flatten();
    let mut progress = docker.create_image(Some(options), None, credentials);
    while let Some(step) = progress.next().await {
        match step {
            Ok(info) => {
                if let Some(status) = &info.status {
                    tracing::debug!(%image, "{status}");
                    // A layer done, and the final word; not every byte's progress.
                    let done = status == "Pull complete" || status.starts_with("Status:");
                    if let (true, Some(report)) = (done, report) {
                        let layer = info
                            .id
                            .as_deref()
                            .map(|id| format!("layer {id}: "))
                            .unwrap_or_default();
                        report(format!("pulling {image}: {layer}{status}"));
                    }
                }
            }
            Err(e) => return Err(format!("cannot pull image {image}: {e}")),
        }
    }
    Ok(true)
}

/// A replica's container: created from the release's image and started, its port published
/// on `127.0.0.1:<port>`.
struct ContainerWorkload {
    client: Arc<Client>,
    /// Where a stopped container's output is kept.
    log_file: std::path::PathBuf,
    name: String,
    image: String,
    command: Vec<String>,
    /// `env:` and `secret:` references resolved only when a container is created.
    env: BTreeMap<String, String>,
    /// Where `secret:NAME` references are read: the release's secret versions.
    secrets: secrets::Secrets,
    labels: HashMap<String, String>,
    spec: DockerSpec,
    health_path: String,
    prober: Prober,
}

impl std::fmt::Debug for ContainerWorkload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "container {} of {}", self.name, self.image)
    }
}

impl ContainerWorkload {
    async fn create_and_start(&self, port: u16) -> Result<Box<dyn Instance>, String> {
        let docker = self.client.get().await?;
        // The deployment got the image before any change (`prepare`); a start or a restart
        // of a container never pulls again (a tag moved meanwhile, a registry down), it only
        // finds a pruned image again by its digest.
        ensure_pinned(docker, &self.image, &self.spec).await?;
        // A container left by an earlier life of this replica (it crashed, or the server
        // did) goes first, its output kept: the name is the replica's.
        if docker.inspect_container(&self.name, None).await.is_ok() {
            let earlier = Container {
                client: self.client.clone(),
                id: self.name.clone(),
                image: None,
                log_file: Some(self.log_file.clone()),
            };
            earlier.keep_log(&self.log_file).await;
            let remove = RemoveContainerOptionsBuilder::default().force(true).build();
            let _ = docker.remove_container(&self.name, Some(remove)).await;
        }

        let env = secrets::resolve_env(&self.env, &self.secrets)?;
        let exposed = format!("{}/tcp", self.spec.port);
        let bindings = HashMap::from([(
            exposed.clone(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(port.to_string()),
            }]),
        )]);
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: (!self.command.is_empty()).then(|| self.command.clone()),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(self.labels.clone()),
            user: self.spec.user.clone(),
            exposed_ports: Some(vec![exposed]),
            host_config: Some(HostConfig {
                port_bindings: Some(bindings),
                network_mode: self.spec.network.clone(),
                binds: (!self.spec.volumes.is_empty()).then(|| self.spec.volumes.clone()),
                memory: self.spec.memory.map(|m| m.min(i64::MAX as u64) as i64),
                nano_cpus: self.spec.cpus.map(|c| (c * 1e9) as i64),
                ..Default::default()
            }),
            ..Default::default()
        };
        let create = CreateContainerOptionsBuilder::default()
            .name(&self.name)
            .build();
        let created = docker
            .create_container(Some(create), body)
            .await
            .map_err(|e| {
                format!(
                    "cannot create container {} of {}: {e}",
                    self.name, self.image
                )
            })?;
        docker
            .start_container(&created.id, None)
            .await
            .map_err(|e| {
                format!(
                    "cannot start container {} of {}: {e}",
                    self.name, self.image
                )
            })?;
        let image = docker
            .inspect_container(&created.id, None)
            .await
            .ok()
            .and_then(|c| c.image);
        Ok(Box::new(Container {
            client: self.client.clone(),
            id: created.id,
            image,
            log_file: Some(self.log_file.clone()),
        }))
    }
}

impl Workload for ContainerWorkload {
    fn start(&self, port: u16) -> BoxFuture<'_, Result<Box<dyn Instance>, String>> {
        Box::pin(self.create_and_start(port))
    }

    fn endpoint(&self, port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn probe(&self, port: u16) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.prober.probe(port, &self.health_path))
    }

    fn port_after_exit(&self, port: u16) -> u16 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
        runway_platform_process::process::free_port().unwrap_or(port)
    }

    fn last_words(&self) -> String {
        String::new()
    }
}

/// A running container.
struct Container {
    client: Arc<Client>,
    id: String,
    /// The image id it runs, when known.
    image: Option<String>,
    /// Where its output is kept once it is removed (a replica's, not a hook's): the same
    /// file as a process's log, so `runway logs --version` finds a stopped replica's.
    log_file: Option<std::path::PathBuf>,
}

impl Container {
    async fn wait(&self) -> String {
        let Ok(docker) = self.client.get().await else {
            return "exited (the Docker Engine is gone)".into();
        };
        let mut waits = docker.wait_container(&self.id, None);
        let short = &self.id[..self.id.len().min(12)];
        match waits.next().await {
            Some(Ok(exit)) => format!("container {short} exited with status {}", exit.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                format!("container {short} exited with status {code}")
            }
            Some(Err(e)) => format!("container {short} exited ({e})"),
            None => format!("container {short} exited"),
        }
    }

    /// Waits for the container to exit; its exit status.
    async fn exit_code(&self) -> Result<i64, String> {
        let docker = self.client.get().await?;
        let mut waits = docker.wait_container(&self.id, None);
        match waits.next().await {
            Some(Ok(exit)) => Ok(exit.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(format!("waiting for the container: {e}")),
            None => Err("the container's wait ended without a status".into()),
        }
    }

    /// Appends the container's whole output to `path` before it is removed.
    async fn keep_log(&self, path: &std::path::Path) {
        use std::io::Write;
        let Ok(chunk) = read_container_log(&self.client, &self.id, LogRead::Tail(usize::MAX)).await
        else {
            return;
        };
        let written = runway_platform_process::logfile::open_for_append(path).and_then(|mut f| {
            for line in &chunk.lines {
                writeln!(f, "{line}")?;
            }
            Ok(())
        });
        if let Err(e) = written {
            tracing::warn!(container = %self.id, "cannot keep its log in {}: {e}", path.display());
        }
    }

    async fn stop_and_remove(&self, grace: Duration) {
        let Ok(docker) = self.client.get().await else {
            return;
        };
        let stop = StopContainerOptionsBuilder::default()
            // Whole seconds for the daemon, rounded up: a grace of 500ms is not an instant
            // SIGKILL.
            .t(grace.as_millis().div_ceil(1000).min(i32::MAX as u128) as i32)
            .build();
        if let Err(e) = docker.stop_container(&self.id, Some(stop)).await {
            tracing::debug!(container = %self.id, "stop: {e}");
        }
        if let Some(path) = &self.log_file {
            self.keep_log(path).await;
        }
        let remove = RemoveContainerOptionsBuilder::default().force(true).build();
        if let Err(e) = docker.remove_container(&self.id, Some(remove)).await {
            tracing::warn!(container = %self.id, "cannot remove the container: {e}");
        }
    }
}

impl Instance for Container {
    fn handle(&self, port: u16) -> serde_json::Value {
        serde_json::json!({
            "platform": "docker",
            "container": self.id,
            "port": port,
            "log": self.log_file,
        })
    }

    fn pid(&self) -> Option<i32> {
        None
    }

    fn container(&self) -> Option<String> {
        Some(self.id.chars().take(12).collect())
    }

    fn image(&self) -> Option<String> {
        self.image
            .as_ref()
            .map(|id| id.chars().take("sha256:".len() + 12).collect())
    }

    fn exited(&mut self) -> BoxFuture<'_, String> {
        Box::pin(self.wait())
    }

    fn stop(&mut self, grace: Duration) -> BoxFuture<'_, ()> {
        Box::pin(self.stop_and_remove(grace))
    }
}

/// Hooks (backup, migration, undo, restore, `[[hooks.run]]`) of a `[docker]` release as
/// one-off containers of its image, as `release_command` runs on fly.io: the release's env,
/// network, volumes and user; the argv run exactly (no shell unless it says `sh -c`); the
/// backup directory mounted at its own path so `$RUNWAY_BACKUP_DIR` means the same inside.
pub struct DockerTasks {
    client: Arc<Client>,
}

impl DockerPlatform {
    /// One-off tasks on the same Docker Engine.
    pub fn tasks(&self) -> DockerTasks {
        DockerTasks {
            client: self.client.clone(),
        }
    }
}

impl TaskRunner for DockerTasks {
    fn run<'a>(&'a self, task: Task<'a>) -> BoxFuture<'a, (Outcome, String, String)> {
        Box::pin(async move {
            match self.run_container(task).await {
                Ok(ended) => ended,
                Err(e) => (Outcome::Failed, e, String::new()),
            }
        })
    }
}

impl DockerTasks {
    async fn run_container(&self, task: Task<'_>) -> Result<(Outcome, String, String), String> {
        let spec = task
            .release
            .spec
            .docker
            .as_ref()
            .ok_or("a task of a release without [docker] cannot run in a container")?;
        let (program, args) = task.argv.split_first().ok_or("has an empty command")?;
        let docker = self.client.get().await?;
        // The release's hooks run the image its replicas run: the id pinned when it deployed.
        let image = match task.image {
            Some(own) => own.to_string(),
            None => spec
                .image_id
                .clone()
                .unwrap_or_else(|| spec.image.replace("{version}", &task.release.version)),
        };
        ensure_pinned(docker, &image, spec).await?;
        let mut binds = spec.volumes.clone();
        if let Some(dir) = task.env.get("RUNWAY_BACKUP_DIR") {
            binds.push(format!("{dir}:{dir}"));
        }
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            entrypoint: Some(vec![program.clone()]),
            cmd: Some(args.to_vec()),
            env: Some(task.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(HashMap::from([
                (
                    "runway.service".to_string(),
                    task.release.spec.service.name.clone(),
                ),
                ("runway.release".to_string(), task.release.version.clone()),
                ("runway.task".to_string(), "hook".to_string()),
            ])),
            user: spec.user.clone(),
            host_config: Some(HostConfig {
                network_mode: spec.network.clone(),
                binds: (!binds.is_empty()).then_some(binds),
                memory: spec.memory.map(|m| m.min(i64::MAX as u64) as i64),
                nano_cpus: spec.cpus.map(|c| (c * 1e9) as i64),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .map_err(|e| format!("cannot create a container of {image}: {e}"))?;
        let container = Container {
            client: self.client.clone(),
            id: created.id.clone(),
            image: None,
            log_file: None,
        };
        if let Err(e) = docker.start_container(&created.id, None).await {
            container.stop_and_remove(Duration::ZERO).await;
            return Err(format!("cannot start `{program}` in {image}: {e}"));
        }
        let ended = tokio::time::timeout(task.timeout, container.exit_code()).await;
        let (outcome, detail) = match ended {
            Ok(Ok(0)) => (Outcome::Ok, "exited with status 0".to_string()),
            Ok(Ok(code)) => (Outcome::Failed, format!("exited with status {code}")),
            Ok(Err(e)) => (Outcome::Failed, e),
            Err(_) => (
                Outcome::TimedOut,
                format!("timed out after {}s", task.timeout.as_secs()),
            ),
        };
        let output = read_container_log(&self.client, &created.id, LogRead::Tail(usize::MAX))
            .await
            .map(|chunk| chunk.lines.join("\n"))
            .unwrap_or_default();
        let output = keep_the_end(output);
        container.stop_and_remove(Duration::from_secs(5)).await;
        Ok((outcome, detail, output))
    }
}

#[cfg(test)]
mod tests {
    use super::{nanos_of, repository_of};

    #[test]
    fn the_repository_of_an_image_keeps_a_registry_port() {
        assert_eq!(repository_of("app:v1"), "app");
        assert_eq!(
            repository_of("127.0.0.1:5000/team/app:v1"),
            "127.0.0.1:5000/team/app"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/team/app"),
            "127.0.0.1:5000/team/app"
        );
        assert_eq!(repository_of("app@sha256:ab"), "app");
    }

    #[test]
    fn log_timestamps_order_lines_within_a_second() {
        let a = nanos_of("2026-11-30T22:10:00.000000001Z").unwrap();
        let b = nanos_of("2026-11-30T22:10:00.500000000Z").unwrap();
        assert!(a < b && b - a == 499_999_999);
        assert_eq!(nanos_of("not a time"), None);
    }
}
