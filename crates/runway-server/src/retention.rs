//! The retention pass on a timer (`runway server --retention`): at start, then every hour, the
//! engine thins the journals of deployments that ended longer ago than the period and removes
//! the logs of replicas long stopped (runway_engine::retention says what is kept). Each pass
//! starts where the last one stopped, so it reads only the deployments that crossed the line
//! since.

use std::sync::Arc;
use std::time::Duration;

use runway_engine::retention::Pruned;
use runway_engine::Engine;
use tokio_util::sync::CancellationToken;

/// How often the pass runs.
pub const EVERY: Duration = Duration::from_secs(3600);

pub async fn keep(engine: Arc<Engine>, keep_for: Duration, stopping: CancellationToken) {
    let mut from: Option<String> = None;
    loop {
        let (pass_engine, pass_from) = (engine.clone(), from.clone());
        let pass =
            tokio::task::spawn_blocking(move || pass_engine.prune(keep_for, pass_from.as_deref()))
                .await;
        match pass {
            Ok(Ok((pruned, until))) => {
                if pruned != Pruned::default() {
                    tracing::info!(
                        deployments = pruned.deployments,
                        journal_entries = pruned.entries,
                        log_files = pruned.log_files,
                        "retention: thinned the journals of deployments ended before {until}"
                    );
                }
                from = Some(until);
            }
            Ok(Err(e)) => tracing::warn!("retention pass failed (tried again in an hour): {e:#}"),
            Err(e) => tracing::warn!("retention pass failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stopping.cancelled() => return,
        }
    }
}
