//! One supervised replica: its instance (restarted with backoff once it has served), its
//! readiness probe, and a watchable status the engine and the router react to. The same on
//! every platform: what runs is the platform's [`Workload`].

use runway_wire::id::{DeploymentId, ReplicaId};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::platform::{Instance, Workload};
use crate::records::Records;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Starting,
    Running,
    Restarting,
    Exited,
    Stopping,
    Stopped,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplicaStatus {
    pub phase: Phase,
    pub healthy: bool,
    pub pid: Option<i32>,
    /// The container's id, for a container.
    pub container: Option<String>,
    /// The image id the container runs.
    pub image: Option<String>,
    pub port: u16,
    /// Why it is not healthy, or how it exited.
    pub last_error: Option<String>,
}

/// Everything needed to (re)start a replica; fixed for the replica's life.
#[derive(Debug, Clone)]
pub struct Launch {
    /// What runs, and how it is reached and probed (the platform's).
    pub workload: Arc<dyn Workload>,
    pub health_interval: Duration,
    pub stop_timeout: Duration,
    pub drain_timeout: Duration,
}

pub struct Replica {
    pub id: ReplicaId,
    pub name: String,
    pub release_id: DeploymentId,
    pub version: String,
    /// Identity of the release config, so a scale change does not replace replicas.
    pub fingerprint: String,
    pub launch: Launch,
    status: watch::Sender<ReplicaStatus>,
    in_rotation: AtomicBool,
    /// Restart on crash: only once the replica has been put into rotation. A new replica that
    /// dies before that fails its deployment instead of crash-looping.
    restart: AtomicBool,
    restarts: AtomicU32,
    /// Set when the supervisor task has ended: the replica will not change by itself any more.
    supervisor_done: AtomicBool,
    stop: CancellationToken,
    changed: Arc<Notify>,
    store: Arc<dyn Records>,
}

pub struct NewReplica {
    pub id: ReplicaId,
    pub name: String,
    pub release_id: DeploymentId,
    pub version: String,
    pub fingerprint: String,
    pub port: u16,
    pub launch: Launch,
    pub in_rotation: bool,
    pub restarts: u32,
    /// An instance recorded before a server restart that still runs.
    pub adopt: Option<Box<dyn Instance>>,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a starting replica may fail its health checks before a deploy says so.
pub const PROBE_REPORT_GRACE: Duration = Duration::from_secs(2);
/// How often a deploy repeats that a starting replica's health checks still fail.
pub const PROBE_REPORT_EVERY: Duration = Duration::from_secs(5);
/// When a report is due but no probe has failed yet (one may hang until its timeout), how soon
/// to look again.
const PROBE_RECHECK: Duration = Duration::from_millis(500);
/// A healthy replica must fail this many probes in a row to leave rotation: one slow answer
/// under load is not an outage.
const UNHEALTHY_AFTER: u32 = 3;

impl Replica {
    /// Starts (or adopts) the instance and its readiness probe. `changed` is notified whenever the
    /// replica's routability may have changed.
    pub fn start(new: NewReplica, store: Arc<dyn Records>, changed: Arc<Notify>) -> Arc<Replica> {
        let replica = Arc::new(Replica {
            id: new.id,
            name: new.name,
            release_id: new.release_id,
            version: new.version,
            fingerprint: new.fingerprint,
            launch: new.launch,
            status: watch::Sender::new(ReplicaStatus {
                phase: Phase::Starting,
                healthy: false,
                pid: None,
                container: None,
                image: None,
                port: new.port,
                last_error: None,
            }),
            in_rotation: AtomicBool::new(new.in_rotation),
            restart: AtomicBool::new(new.in_rotation),
            restarts: AtomicU32::new(new.restarts),
            supervisor_done: AtomicBool::new(false),
            stop: CancellationToken::new(),
            changed,
            store,
        });
        tokio::spawn(replica.clone().supervise(new.adopt));
        tokio::spawn(replica.clone().probe_health());
        replica
    }

    pub fn status(&self) -> ReplicaStatus {
        self.status.borrow().clone()
    }

    pub fn port(&self) -> u16 {
        self.status.borrow().port
    }

    /// Where the replica serves: what the router sends requests to and checks reach it at.
    pub fn endpoint(&self) -> std::net::SocketAddr {
        self.launch.workload.endpoint(self.port())
    }

    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::SeqCst)
    }

    pub fn in_rotation(&self) -> bool {
        self.in_rotation.load(Ordering::SeqCst)
    }

    /// Whether the router may send it traffic right now.
    pub fn routable(&self) -> bool {
        let s = self.status.borrow();
        self.in_rotation() && s.healthy && s.phase == Phase::Running
    }

    pub fn set_in_rotation(&self, on: bool) {
        self.in_rotation.store(on, Ordering::SeqCst);
        if on {
            self.restart.store(true, Ordering::SeqCst);
        }
        if let Err(e) = self.store.set_replica_rotation(self.id, on) {
            tracing::error!(replica = %self.name, "cannot record rotation: {e:#}");
        }
        self.changed.notify_one();
    }

    /// Waits until the replica passes a health check, exits, or `deadline` passes.
    pub async fn wait_healthy(&self, deadline: Duration) -> Result<(), String> {
        self.wait_healthy_reporting(deadline, |_, _| {}).await
    }

    /// [`Replica::wait_healthy`], telling `report` why the health checks fail while it waits
    /// (with how long it has waited): a wrong health path should not be 30 s of silence. Not
    /// at once (an app that needs a second to bind its port is normal) and not on every probe:
    /// after [`PROBE_REPORT_GRACE`], then every [`PROBE_REPORT_EVERY`] while they still fail.
    pub async fn wait_healthy_reporting(
        &self,
        deadline: Duration,
        mut report: impl FnMut(&str, Duration),
    ) -> Result<(), String> {
        let mut rx = self.status.subscribe();
        let began = tokio::time::Instant::now();
        let mut next_report = began + PROBE_REPORT_GRACE;
        let outcome = tokio::time::timeout(deadline, async {
            loop {
                {
                    let s = rx.borrow_and_update();
                    if s.healthy && s.phase == Phase::Running {
                        return Ok(());
                    }
                    if matches!(s.phase, Phase::Exited | Phase::Stopped) {
                        return Err(format!(
                            "{} ({}) {} before becoming healthy{}",
                            self.name,
                            self.version,
                            s.last_error.as_deref().unwrap_or("exited"),
                            self.launch.workload.last_words()
                        ));
                    }
                    let now = tokio::time::Instant::now();
                    if now >= next_report {
                        // Due: report the failure, or (none yet: a probe may still be hanging)
                        // look again shortly. The timer never points into the past.
                        next_report = match &s.last_error {
                            Some(error) => {
                                report(error, now - began);
                                now + PROBE_REPORT_EVERY
                            }
                            None => now + PROBE_RECHECK,
                        };
                    }
                }
                // Probes change the status; the timer makes a report due even when the same
                // failure repeats without a change.
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() {
                        return Err(format!("{} was dropped", self.name));
                    },
                    _ = tokio::time::sleep_until(next_report) => {}
                }
            }
        })
        .await;
        outcome.unwrap_or_else(|_| {
            let s = self.status();
            Err(format!(
                "{} ({}) was not healthy within {}: {}",
                self.name,
                self.version,
                runway_spec::Dur(deadline),
                s.last_error
                    .as_deref()
                    .unwrap_or("no successful health check")
            ))
        })
    }

    /// Stops the instance (politely, then firmly after the stop timeout) and waits for it.
    /// A replica whose instance already exited for good is simply marked stopped.
    pub async fn stop(&self) {
        self.restart.store(false, Ordering::SeqCst);
        self.stop.cancel();
        let mut rx = self.status.subscribe();
        let _ = rx
            .wait_for(|s| s.phase == Phase::Stopped || self.supervisor_done.load(Ordering::SeqCst))
            .await;
        self.record_state("stopped");
        self.status.send_modify(|s| s.phase = Phase::Stopped);
    }

    fn update(&self, f: impl FnOnce(&mut ReplicaStatus)) {
        let mut routable_before = false;
        let mut routable_after = false;
        self.status.send_modify(|s| {
            routable_before = s.healthy && s.phase == Phase::Running;
            f(s);
            routable_after = s.healthy && s.phase == Phase::Running;
        });
        if routable_before != routable_after {
            self.changed.notify_one();
        }
    }

    fn record_state(&self, state: &str) {
        if let Err(e) = self.store.set_replica_state(self.id, state) {
            tracing::error!(replica = %self.name, "cannot record state {state}: {e:#}");
        }
    }

    async fn supervise(self: Arc<Self>, mut adopt: Option<Box<dyn Instance>>) {
        let mut backoff = Duration::from_millis(500);
        loop {
            let port = self.port();
            let mut proc = match adopt.take() {
                Some(p) => p,
                None => match self.launch.workload.start(port).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(replica = %self.name, "{e}");
                        self.update(|s| {
                            s.phase = Phase::Exited;
                            s.healthy = false;
                            s.last_error = Some(e);
                        });
                        if !self.wait_to_restart(&mut backoff).await {
                            return self.finish_stopped(false);
                        }
                        continue;
                    }
                },
            };
            let pid = proc.pid();
            let container = proc.container();
            let image = proc.image();
            if let Err(e) = self.store.set_replica_handle(self.id, &proc.handle(port)) {
                tracing::error!(replica = %self.name, "cannot record pid: {e:#}");
            }
            self.record_state("running");
            self.update(|s| {
                s.phase = Phase::Running;
                s.pid = pid;
                s.container = container;
                s.image = image;
                s.last_error = None;
            });
            tracing::info!(replica = %self.name, version = %self.version, pid = pid.unwrap_or_default(), port, "replica running");

            tokio::select! {
                how = proc.exited() => {
                    tracing::warn!(replica = %self.name, "replica {how}");
                    self.update(|s| {
                        s.phase = Phase::Exited;
                        s.healthy = false;
                        s.last_error = Some(how);
                    });
                    if !self.wait_to_restart(&mut backoff).await {
                        return self.finish_stopped(false);
                    }
                    self.restarts.fetch_add(1, Ordering::SeqCst);
                    if let Err(e) = self.store.bump_replica_restarts(self.id) {
                        tracing::error!("cannot record restart: {e:#}");
                    }
                    let next = self.launch.workload.port_after_exit(port);
                    if next != port {
                        self.update(|s| s.port = next);
                    }
                }
                _ = self.stop.cancelled() => {
                    self.update(|s| { s.phase = Phase::Stopping; s.healthy = false; });
                    proc.stop(self.launch.stop_timeout).await;
                    return self.finish_stopped(true);
                }
            }
        }
    }

    /// After an exit: false when the replica should stay down; otherwise sleeps the backoff.
    async fn wait_to_restart(&self, backoff: &mut Duration) -> bool {
        if !self.restart.load(Ordering::SeqCst) || self.stop.is_cancelled() {
            return false;
        }
        self.record_state("restarting");
        self.update(|s| s.phase = Phase::Restarting);
        let delay = *backoff;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        tokio::select! {
            _ = tokio::time::sleep(delay) => !self.stop.is_cancelled(),
            _ = self.stop.cancelled() => false,
        }
    }

    /// The supervisor's last act. An exit that will not be restarted keeps the phase `Exited`
    /// (and its reason) for the engine's error message; a requested stop ends in `Stopped`.
    fn finish_stopped(&self, stopped_on_request: bool) {
        self.record_state(if stopped_on_request {
            "stopped"
        } else {
            "failed"
        });
        self.supervisor_done.store(true, Ordering::SeqCst);
        self.update(|s| {
            s.phase = if stopped_on_request {
                Phase::Stopped
            } else {
                Phase::Exited
            };
            s.healthy = false;
            s.pid = None;
        });
    }

    /// Probes the health endpoint: quickly while the replica has never been healthy (so a deploy
    /// does not wait a whole interval for a replica that is ready), then every `interval`.
    async fn probe_health(self: Arc<Self>) {
        let mut failures = 0u32;
        let mut probes = 0u64;
        loop {
            let status = self.status();
            let delay = if status.healthy {
                self.launch.health_interval
            } else {
                self.launch.health_interval.min(Duration::from_millis(100))
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.stop.cancelled() => return,
            }
            if self.status().phase != Phase::Running {
                failures = 0;
                continue;
            }
            let port = self.port();
            match self.launch.workload.probe(port).await {
                Ok(()) => {
                    failures = 0;
                    self.update(|s| {
                        if s.phase == Phase::Running && s.port == port {
                            s.healthy = true;
                            s.last_error = None;
                        }
                    });
                }
                Err(e) => {
                    failures += 1;
                    let drop_out = !status.healthy || failures >= UNHEALTHY_AFTER;
                    self.update(|s| {
                        s.last_error = Some(e);
                        if drop_out {
                            s.healthy = false;
                        }
                    });
                }
            }
            probes += 1;
            if probes.is_multiple_of(50) {
                self.launch.workload.tidy();
            }
        }
    }
}
