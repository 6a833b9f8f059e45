//! The blue-green strategy: the whole new release starts beside the old one with no traffic,
//! is reachable for smoke tests through a preview address (and the force header), then takes
//! all traffic at once. The old release stays up, out of rotation, for `scale_down_delay`: a
//! rollback (or `runway abort`) in that window switches back instantly, with no start-up.

use runway_wire::id::DeploymentId;
use runway_wire::Event;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::router::{Endpoint, Preview, Split};
use runway_spec::BlueGreenSpec;
use tokio::sync::mpsc;

use super::canary::{Analysis, Control};
use super::{measure, Engine, Failure, Release, Service};
use runway_analysis::{Decision, Judge};

impl Engine {
    pub(super) async fn run_blue_green(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        target: &Release,
        stable: &Release,
        bg: &BlueGreenSpec,
        mut controls: mpsc::UnboundedReceiver<Control>,
    ) -> Result<(), Failure> {
        if target.spec.kubernetes.is_some() {
            return self
                .blue_green_on_cluster(svc, id, target, stable, bg, controls)
                .await;
        }
        let fingerprint = target.fingerprint();
        let only = |version: &str| {
            let mut w = BTreeMap::new();
            w.insert(version.to_string(), 100);
            Some(w)
        };
        // Green starts with no traffic: only the preview and the force header reach it.
        svc.set_weights(only(&stable.version));
        let have = svc
            .replicas()
            .iter()
            .filter(|r| r.fingerprint == fingerprint && r.in_rotation())
            .count() as u32;
        let replicas = target.spec.run.replicas;
        if replicas > have {
            self.start_replicas(svc, id, target, replicas - have, true)
                .await
                .map_err(Failure::failed)?;
        }
        let preview = match bg.preview_listen {
            Some(addr) => Some(
                self.open_preview(svc, &fingerprint, addr)
                    .await
                    .map_err(Failure::failed)?,
            ),
            None => None,
        };
        self.journal(
            id,
            Event::PreviewReady {
                version: target.version.clone(),
                preview: bg.preview_listen.map(|a| a.to_string()),
                header: svc
                    .router
                    .force_header()
                    .map(|h| format!("{h}: {}", target.version))
                    .unwrap_or_default(),
            },
        );

        // Smoke tests against the preview, while all traffic still goes to the old release.
        let addrs = self.release_addrs(svc, target);
        self.checks_gate(id, target, "smoke", addrs)
            .await
            .map_err(Failure::failed)?;
        self.journal(
            id,
            Event::Switched {
                from: stable.version.clone(),
                to: target.version.clone(),
            },
        );
        svc.set_weights(only(&target.version));
        // The preview's work is done once the new release has all traffic.
        drop(preview);
        let switch_back = |reason: String| {
            svc.set_weights(only(&stable.version));
            Failure::rolled_back(reason)
        };

        if let Some(window) = bg.analysis_for {
            self.analyse_after_switch(svc, id, target, stable, window.0, &mut controls)
                .await
                .map_err(switch_back)?;
        }

        // Blue stays up, out of rotation, so that a rollback now is a route change.
        if self.scale_down_window(id, stable, bg, &mut controls).await {
            return Err(switch_back("rolled back within the scale-down window (`runway abort`): the old release took all traffic again at once".into()));
        }
        let old: Vec<_> = svc
            .replicas()
            .into_iter()
            .filter(|r| r.fingerprint != fingerprint)
            .collect();
        self.retire(svc, id, old).await;
        svc.set_weights(None);
        Ok(())
    }

    /// Blue-green on a cluster, as runbook 001 does it: the new release rolled out in the idle
    /// slot's Deployment with no traffic, the preview Service pointed at it for the smoke
    /// tests, then the Service's selector switched to it at once. The old slot keeps running
    /// for `scale_down_delay`: an abort in that window (or a failed analysis) switches the
    /// selector back, with nothing to start. Then the old slot is scaled to zero.
    async fn blue_green_on_cluster(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        target: &Release,
        stable: &Release,
        bg: &BlueGreenSpec,
        mut controls: mpsc::UnboundedReceiver<Control>,
    ) -> Result<(), Failure> {
        let failed = |e: String| Failure::failed(e);
        // `None` (or `main`): the old release runs in the service's own Deployment (its first
        // blue-green release, or one deployed before).
        let live = self.cluster.live_slot(target).await.map_err(failed)?;
        let old_slot = live.as_deref().filter(|s| *s != "main");
        let idle = if live.as_deref() == Some("blue") {
            "green"
        } else {
            "blue"
        };
        let release = self.as_template(target);
        let progress = move |message: String| self.journal(id, Event::RolloutProgress { message });
        // The way out of any failure: the Service back on the old release's pods (when it had
        // been switched), and the rejected release's slot scaled down (its pods, and the
        // preview's, must not keep running).
        let give_up = |failure: Failure, switched: bool| async move {
            let mut reason = failure.reason;
            if switched {
                if let Err(e) = self
                    .cluster
                    .select(stable, false, old_slot.unwrap_or("main"))
                    .await
                {
                    reason = format!("{reason}; switching back failed: {e}");
                }
            }
            if let Err(e) = self.cluster.stop(target, Some(idle), &progress).await {
                reason = format!("{reason}; scaling the {idle} slot down failed: {e}");
            }
            Failure { reason, ..failure }
        };
        let rolled = match self.cluster.roll(&release, Some(idle), &progress).await {
            Ok(rolled) => rolled,
            Err(e) => return Err(give_up(failed(e), false).await),
        };
        self.journal(
            id,
            Event::RolledOut {
                revision: rolled.revision,
                message: rolled.message,
            },
        );
        if let Err(e) = self.cluster.select(target, true, idle).await {
            return Err(give_up(failed(e), false).await);
        }
        let k8s = target.spec.kubernetes.as_ref();
        self.journal(
            id,
            Event::PreviewReady {
                version: target.version.clone(),
                preview: None,
                header: k8s
                    .map(|k| {
                        format!(
                            "Service {}/{}-preview (slot {idle})",
                            k.namespace, k.service
                        )
                    })
                    .unwrap_or_default(),
            },
        );
        if let Err(e) = self.checks_gate(id, target, "smoke", Vec::new()).await {
            return Err(give_up(failed(e), false).await);
        }
        self.journal(
            id,
            Event::Switched {
                from: stable.version.clone(),
                to: target.version.clone(),
            },
        );
        if let Err(e) = self.cluster.select(target, false, idle).await {
            // It may have been written before the error: switch back to be sure.
            return Err(give_up(failed(e), true).await);
        }
        let switch_back = |reason: String| give_up(Failure::rolled_back(reason), true);
        if let Some(window) = bg.analysis_for {
            if let Err(reason) = self
                .analyse_after_switch(svc, id, target, stable, window.0, &mut controls)
                .await
            {
                return Err(switch_back(reason).await);
            }
        }
        if self.scale_down_window(id, stable, bg, &mut controls).await {
            return Err(switch_back("rolled back within the scale-down window (`runway abort`): the Service selects the old release's pods again".into()).await);
        }
        self.cluster
            .stop(stable, old_slot, &progress)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// The scale-down delay after the switch, journaled, during which the old release stays up
    /// for an instant switch back: whether `runway abort` asked for it.
    async fn scale_down_window(
        &self,
        id: DeploymentId,
        stable: &Release,
        bg: &BlueGreenSpec,
        controls: &mut mpsc::UnboundedReceiver<Control>,
    ) -> bool {
        self.journal(
            id,
            Event::ScaleDownPending {
                version: stable.version.clone(),
                seconds: bg.scale_down_delay.0.as_secs_f64(),
            },
        );
        let delay = tokio::time::sleep(bg.scale_down_delay.0);
        tokio::pin!(delay);
        loop {
            tokio::select! {
                _ = &mut delay => return false,
                control = controls.recv() => match control {
                    Some(Control::Abort) => return true,
                    Some(_) => {} // promote/pause/resume mean nothing here
                    None => return false,
                }
            }
        }
    }

    /// A preview on the preview address that routes only to the new release's replicas.
    async fn open_preview(
        &self,
        svc: &Arc<Service>,
        fingerprint: &str,
        addr: std::net::SocketAddr,
    ) -> Result<Box<dyn Preview>, String> {
        let green: Vec<_> = svc
            .replicas()
            .into_iter()
            .filter(|r| r.fingerprint == fingerprint)
            .collect();
        let split = Split {
            release: green.first().map(|r| r.version.clone()).unwrap_or_default(),
            weight: 1,
            endpoints: green
                .iter()
                .map(|r| Endpoint {
                    id: r.name.clone(),
                    addr: r.endpoint(),
                })
                .collect(),
        };
        svc.router.preview(addr, split).await
    }

    /// Watches the new release for `window` after the switch with the absolute conditions of
    /// `[analysis]` (the old release has no traffic to compare with). Err: why to switch back.
    async fn analyse_after_switch(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        target: &Release,
        stable: &Release,
        window: Duration,
        controls: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Result<(), String> {
        let analysis = Analysis::from_spec(&target.spec)?;
        let mut judge = Judge::new();
        let mut ticker = tokio::time::interval(analysis.interval);
        ticker.tick().await;
        let proxy_window = svc.router.open_window();
        let queries = analysis
            .prometheus
            .as_deref()
            .map(|url| self.queries.prometheus(url));
        let started = tokio::time::Instant::now();
        let mut last = started;
        let outcome = loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let elapsed = last.elapsed();
                    last = tokio::time::Instant::now();
                    let input = measure::interval(
                        proxy_window.as_ref(), &analysis.sources, queries.as_deref(), &svc.name,
                        &target.version, &stable.version, elapsed, started.elapsed(),
                    ).await;
                    let result = judge.judge(&analysis.policy, input);
                    self.journal(id, Event::Analysis(serde_json::to_value(&result).unwrap_or_default()));
                    if let Decision::Rollback(reason) = &result.decision {
                        break Err(format!("analysis after the switch failed: {reason}"));
                    }
                    if started.elapsed() >= window {
                        break Ok(());
                    }
                }
                control = controls.recv() => if let Some(Control::Abort) = control {
                    break Err("aborted by an operator (`runway abort`)".into());
                }
            }
        };
        outcome
    }
}
