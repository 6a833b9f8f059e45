//! `runway server`: the daemon. Opens the state, re-adopts what still runs, resumes interrupted
//! deployments, serves the API, and on SIGTERM/SIGINT stops its replicas and exits.

pub mod api;
mod dashboard;
pub mod handover;
pub mod listen;
pub mod openapi;
mod platforms;
mod retention;
pub mod session;
pub mod state_dir;

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use runway_engine::Engine;
use runway_store::Store;

use crate::state_dir::ServerFile;
pub use listen::TlsFiles;

pub struct ServerOptions {
    pub state_dir: PathBuf,
    pub api_listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    /// Serve the API over TLS (required off loopback, unless `insecure_http`).
    pub tls: Option<TlsFiles>,
    /// Serve the API in plain HTTP off loopback (a proxy in front terminates TLS).
    pub insecure_http: bool,
    /// Hold this Lease while running (runway replicated in a cluster).
    pub leader_lease: Option<LeaderLease>,
    /// The most client connections the proxies hold at once (`None`: from the open-file
    /// limit, see [`connection_limit`]).
    pub max_connections: Option<u64>,
    /// At SIGTERM/SIGINT, leave the replicas running for the next server to adopt.
    pub keep_replicas: bool,
    /// When another server holds the state dir, take its listeners over (an upgrade in
    /// place) instead of refusing to start.
    pub take_over: bool,
    /// How long the full journal of an ended deployment and the logs of stopped replicas are
    /// kept (`None`: for ever); see retention.rs.
    pub retention: Option<std::time::Duration>,
}

/// `--leader-lease`: the Lease a server must hold to run.
pub struct LeaderLease {
    pub namespace: String,
    pub name: String,
    pub duration: std::time::Duration,
}

pub async fn run(opts: ServerOptions) -> Result<()> {
    // Before anything is opened or bound: a refused start changes nothing.
    listen::check_exposure(opts.api_listen, opts.tls.is_some(), opts.insecure_http)?;
    let tls = opts.tls.as_ref().map(listen::tls_config).transpose()?;
    if let Some(lease) = &opts.leader_lease {
        lead(lease).await?;
    }
    let systemd = handover::from_systemd()?;
    if let Some(api) = &systemd.api {
        listen::check_exposure(api.local_addr()?, opts.tls.is_some(), opts.insecure_http)?;
    }
    let state_dir = state_dir::prepare(&opts.state_dir)?;
    let mut token_of_predecessor = None;
    let (_lock, inherited) = match state_dir::try_lock(&state_dir)? {
        Some(lock) => (lock, systemd),
        // Says who holds it, and how to upgrade in place.
        None if !opts.take_over => (state_dir::lock(&state_dir)?, systemd),
        // A server runs on this state dir: take its listeners over (an upgrade), then wait
        // for it to finish its requests and exit. Its API's address must pass the same
        // check as this server's flags would (no TLS for an API off loopback, say).
        None => match handover::take_over_checked(&state_dir, |api| {
            listen::check_exposure(api, opts.tls.is_some(), opts.insecure_http)
        })
        .await?
        {
            Some(taken) => {
                // The same token: a CLI call made during the takeover, with the token of the
                // server.json it read, is answered by this server.
                token_of_predecessor = state_dir::read_server_file(&state_dir).map(|f| f.token);
                eprintln!(
                    "runway server taking over: the running server hands over its listeners, \
                     finishes its requests and exits"
                );
                let lock = state_dir::wait_for_lock(&state_dir, TAKEOVER_WAIT).await?;
                (lock, taken)
            }
            // Says who holds it.
            None => (state_dir::lock(&state_dir)?, systemd),
        },
    };
    let (limit, open_files) = connection_limit(opts.max_connections);
    runway_proxy::set_connection_limit(limit);
    tracing::info!(
        open_files,
        max_connections = limit,
        "client connection limit"
    );
    let store = Arc::new(Store::open(&state_dir.join(state_dir::DATABASE))?);
    let engine = embedded_engine(store.clone(), &state_dir);

    let handover::Listeners {
        api,
        metrics,
        services,
    } = inherited;
    runway_builtin_router::listeners::adopt(services);
    let api_listener = listen::bind_or_adopt(api, opts.api_listen, "API").await?;
    let metrics_listener = listen::bind_or_adopt(metrics, opts.metrics_listen, "metrics").await?;
    let offered = handover::Offered {
        api: api_listener.as_fd().try_clone_to_owned()?,
        metrics: metrics_listener.as_fd().try_clone_to_owned()?,
    };
    let api_addr = api_listener.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;

    engine
        .recover()
        .await
        .context("recovering state from the last run")?;

    let token = token_of_predecessor.unwrap_or_else(state_dir::new_token);
    // Cancelled at SIGTERM/SIGINT: event streams end with it, so they do not hold the
    // graceful shutdown up.
    let stopping = tokio_util::sync::CancellationToken::new();
    let app = api::router(api::ApiOptions {
        engine: engine.clone(),
        store,
        token: token.clone(),
        metrics_addr: metrics_addr.to_string(),
        stopping: stopping.clone(),
        secure_cookies: tls.is_some() || opts.insecure_http,
    });
    let metrics = api::metrics_router(engine.clone());
    tokio::spawn(async move { axum::serve(metrics_listener, metrics).await });
    let server_file = ServerFile {
        api: api_addr.to_string(),
        metrics: metrics_addr.to_string(),
        token,
        pid: std::process::id(),
        tls_cert: opts
            .tls
            .as_ref()
            .map(|t| std::path::absolute(&t.cert).unwrap_or_else(|_| t.cert.clone())),
        tls_cert_sha256: tls.as_ref().map(|t| t.leaf_sha256.clone()),
    };
    state_dir::write_server_file(&state_dir, &server_file)?;
    let keeper = tokio::spawn(state_dir::keep_server_file(
        state_dir.clone(),
        server_file,
        stopping.clone(),
    ));
    if let Some(keep_for) = opts.retention {
        tokio::spawn(retention::keep(engine.clone(), keep_for, stopping.clone()));
    }
    tracing::info!(api = %api_addr, metrics = %metrics_addr, state_dir = %state_dir.display(), "runway server ready");
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!(
        "runway server ready: API and dashboard on {scheme}://{api_addr}/, metrics on http://{metrics_addr}/metrics, state in {}",
        state_dir.display()
    );

    let signalled = stopping.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signalled.cancel();
    });
    // A successor that took the listeners over ends this server as SIGTERM would, except
    // that the replicas stay for it to adopt.
    let handed_over = tokio_util::sync::CancellationToken::new();
    // Without the handover socket (a state dir path too long for a unix socket, say) the
    // server runs as before; only an upgrade in place is not possible.
    let offering = match handover::offer(&state_dir, offered, handed_over.clone(), stopping.clone())
    {
        Ok(task) => Some(task),
        Err(e) => {
            tracing::warn!("no handover socket, so no upgrade in place: {e:#}");
            None
        }
    };
    // Once handing over (or stopping with --keep-replicas), the proxies stop accepting and
    // drain at the same time as the API, not after it.
    let proxies_drained = {
        let stopping = stopping.clone();
        let handed_over = handed_over.clone();
        let engine = engine.clone();
        let keep_replicas = opts.keep_replicas;
        tokio::spawn(async move {
            tokio::select! {
                () = handed_over.cancelled() => stopping.cancel(),
                () = stopping.cancelled() => {}
            }
            if handed_over.is_cancelled() || keep_replicas {
                engine.hand_over().await;
            }
        })
    };
    listen::serve(api_listener, app, tls.map(|t| t.config), stopping.clone()).await?;
    if let Some(offering) = offering {
        let _ = offering.await;
    }
    let handing_over = handed_over.is_cancelled();
    if handing_over || opts.keep_replicas {
        if handing_over {
            eprintln!("runway server handing over: finishing in-flight requests, replicas stay");
        } else {
            eprintln!(
                "runway server stopping: finishing in-flight requests, replicas stay for the \
                 next server (--keep-replicas)"
            );
        }
        stopping.cancel();
        let _ = keeper.await;
        let _ = proxies_drained.await;
        if handing_over {
            // server.json stays: the successor writes its own once it holds the lock.
            eprintln!("runway server handed over");
        } else {
            // Without a successor it would name a server that is gone.
            state_dir::remove_server_file(&state_dir);
            eprintln!("runway server stopped; its replicas run on");
        }
        // As after a crash, the successor resumes whatever was under way; nothing here
        // may stop a replica on its way out (no destructors, no runtime shutdown).
        std::process::exit(0);
    }

    eprintln!("runway server stopping: draining and stopping replicas");
    stopping.cancel();
    let _ = keeper.await;
    state_dir::remove_server_file(&state_dir);
    engine.shutdown().await;
    Ok(())
}

/// How long a server taking over waits for the previous one to exit (it drains its
/// in-flight requests for at most 10 s first).
const TAKEOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The proxies' connection limit, and the open-file limit it was derived from. The soft
/// open-file limit is raised to the hard one first (as nginx's `worker_rlimit_nofile` and
/// Go's runtime do): the soft default of 1,024 is a leftover of `select(2)`, and each client
/// connection holds a descriptor. Replicas, hooks and migrations start with the limit the
/// server started with (`open_files`). `--max-connections` overrides the derived limit.
fn connection_limit(configured: Option<u64>) -> (usize, u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let open_files = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                runway_platform_process::open_files::children_start_with(soft, hard);
                hard
            }
            Err(e) => {
                tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    };
    let limit = match configured {
        Some(n) => n as usize,
        None => runway_proxy::limit_for_open_files(open_files),
    };
    (limit, open_files)
}

/// Waits until this process holds the Lease, then keeps it; when it cannot, the process
/// exits at once (a standby takes over and resumes what was under way, as after any crash):
/// two servers never drive one service at once.
async fn lead(lease: &LeaderLease) -> Result<()> {
    use runway_platform_kubernetes::lease::{Leader, LeaseTiming};
    let identity = format!(
        "{}-{}",
        std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "runway".into()),
        std::process::id()
    );
    let timing = LeaseTiming {
        duration: lease.duration,
        renew_every: (lease.duration / 5).max(std::time::Duration::from_millis(200)),
    };
    let client = runway_platform_kubernetes::KubernetesCluster::default()
        .client(None)
        .await?;
    // Said once per holder, not at every look.
    let last_holder = std::sync::Mutex::new(String::new());
    let leader = Leader::acquire(
        client,
        &lease.namespace,
        &lease.name,
        &identity,
        timing,
        |(holder, age)| {
            let mut last = last_holder.lock().unwrap_or_else(|e| e.into_inner());
            if *last != *holder {
                eprintln!(
                    "runway server waiting: the Lease {}/{} is held by {holder} (renewed {age:.1}s ago)",
                    lease.namespace, lease.name
                );
                *last = holder.clone();
            }
        },
    )
    .await?;
    eprintln!(
        "runway server leading: holds the Lease {}/{} as {identity}",
        lease.namespace, lease.name
    );
    tokio::spawn(async move {
        let why = leader.hold().await;
        eprintln!("runway server stopping at once: {why}");
        tracing::error!("leadership lost: {why}");
        std::process::exit(1);
    });
    Ok(())
}

/// The engine of the embedded default: the SQLite store, local processes (`[run]`) or Docker
/// containers (`[docker]`) behind runway's own proxy, or a Kubernetes cluster
/// (`[kubernetes]`) that routes by itself, Prometheus for `source = "prometheus"`
/// metrics, checks run from this host.
pub fn embedded_engine(store: Arc<Store>, state_dir: &std::path::Path) -> Arc<Engine> {
    let docker = runway_platform_docker::DockerPlatform::new(state_dir);
    let docker_tasks = docker.tasks();
    let cluster = Arc::new(runway_platform_kubernetes::KubernetesCluster::default());
    Engine::new(runway_engine::Context {
        records: store.clone(),
        platform: Arc::new(platforms::ByRelease {
            process: runway_platform_process::ProcessPlatform {
                state_dir: state_dir.to_path_buf(),
            },
            docker,
        }),
        tasks: Arc::new(platforms::TasksByRelease {
            process: runway_platform_process::ProcessTasks,
            docker: docker_tasks,
            kubernetes: runway_platform_kubernetes::KubernetesTasks {
                cluster: cluster.clone(),
            },
        }),
        backups: Arc::new(platforms::BackupsByPlatform {
            host: runway_engine::backups::HostBackups::new(state_dir),
            claim: runway_platform_kubernetes::backups::ClaimBackups {
                cluster: cluster.clone(),
            },
        }),
        cluster,
        routers: Arc::new(platforms::RoutersByPlatform {
            builtin: runway_builtin_router::BuiltinRouters,
            cluster: runway_platform_kubernetes::router::ClusterRouters,
        }),
        queries: Arc::new(runway_prometheus::PrometheusSources),
        notifier: Arc::new(runway_notify::Webhooks::new(
            store.clone(),
            Some(runway_engine::secrets::SecretsOf::new(
                store.clone(),
                state_dir.join("secrets"),
            )),
        )),
        checks: Arc::new(LocalChecks),
        clock: Arc::new(runway_engine::clock::SystemClock),
        state_dir: state_dir.to_path_buf(),
    })
}

/// `[[checks]]` run from this host by runway-checks. A command check's program starts with
/// the open-file limit the server started with, as replicas and hooks do.
pub struct LocalChecks;

impl runway_engine::checks::CheckRunner for LocalChecks {
    fn run<'a>(
        &'a self,
        checks: &'a [runway_checks::CheckSpec],
        context: &'a runway_checks::Context,
    ) -> runway_engine::router::BoxFuture<'a, Vec<runway_checks::CheckResult>> {
        Box::pin(async move {
            let context = runway_checks::Context {
                open_files: runway_platform_process::open_files::started_with(),
                ..context.clone()
            };
            runway_checks::run_checks(checks, &context).await
        })
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
