//! Which replica logs `runway logs` reads: the running replicas, or, after a failed deploy,
//! exactly the ones a user wants and that no longer run (by node, version or deployment).
//!
//! A replica's output outlives it on its platform (a log file on disk, rotated like any other;
//! a container's log until it is removed), so a stopped replica is found through its record in
//! the store, or through the journal of the deployment that started it; the platform reads it.

use runway_wire::id::{DeploymentId, ReplicaId};

use runway_wire::Event;

use super::{Engine, EngineError};

/// How many stopped replicas of one version `logs --version` reads at most (the newest).
const STOPPED_PER_VERSION: usize = 10;

/// Which replicas' logs are asked for.
#[derive(Debug, Default, Clone)]
pub struct LogSelection {
    pub node: Option<String>,
    pub version: Option<String>,
    pub deployment: Option<DeploymentId>,
}

/// One replica whose output is asked for (its platform reads it: [`Platform::read_log`]).
///
/// [`Platform::read_log`]: crate::platform::Platform::read_log
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    pub replica: String,
    pub version: String,
}

impl Engine {
    /// The logs `selection` names in `service`, oldest replica first. Without a selection,
    /// the running replicas; a node, version or deployment that `service` never had is an
    /// error (not an empty answer).
    pub fn log_sources(
        &self,
        service: &str,
        selection: &LogSelection,
    ) -> Result<Vec<LogSource>, EngineError> {
        if !self.platform.capabilities().logs {
            return Err(EngineError::BadRequest(format!(
                "the {} platform keeps no output of its replicas for runway to read; use its own logs",
                self.platform.name()
            )));
        }
        let svc = self.service(service);
        // A removed service keeps its records: its deployments' logs stay reachable.
        let known = svc.is_ok()
            || selection.deployment.is_some()
            || self.store.services()?.iter().any(|(n, _)| n == service);
        if !known {
            return Err(EngineError::NotFound(format!(
                "no service named `{service}`; `runway status` lists the services"
            )));
        }
        let running: Vec<LogSource> = svc
            .map(|svc| svc.replicas())
            .unwrap_or_default()
            .iter()
            .map(|r| LogSource {
                replica: r.name.clone(),
                version: r.version.clone(),
            })
            .collect();
        let mut sources = if let Some(id) = selection.deployment {
            self.started_by(service, id)?
        } else if let Some(version) = &selection.version {
            let mut of_version: Vec<LogSource> = self
                .store
                .replicas_of_version(service, version, STOPPED_PER_VERSION)?
                .into_iter()
                .map(|row| self.source(service, row.id, &row.version))
                .collect();
            of_version.extend(running.iter().filter(|s| &s.version == version).cloned());
            if of_version.is_empty() {
                return Err(EngineError::NotFound(format!(
                    "service `{service}` has run no replica of {version}; `runway history` \
                     lists its versions"
                )));
            }
            of_version
        } else if let Some(node) = &selection.node {
            vec![self.node_source(service, node, &running)?]
        } else {
            running
        };
        if let Some(node) = &selection.node {
            sources.retain(|s| &s.replica == node);
        }
        // Each once (a replica can be both recorded and running), oldest first.
        sources.sort_by_key(|s| (replica_number(&s.replica), s.replica.clone()));
        sources.dedup_by(|a, b| a.replica == b.replica);
        Ok(sources)
    }

    /// The replicas deployment `id` of `service` started, from its journal.
    fn started_by(&self, service: &str, id: DeploymentId) -> Result<Vec<LogSource>, EngineError> {
        let belongs = self
            .store
            .deployment(id)?
            .is_some_and(|d| d.service == service);
        if !belongs {
            return Err(EngineError::NotFound(format!(
                "service `{service}` has no deployment #{id}; `runway history` lists them"
            )));
        }
        Ok(self
            .store
            .journal_since(id, 0)?
            .into_iter()
            .filter_map(|e| match e.typed()? {
                Event::ReplicaStarting {
                    replica, version, ..
                } => Some(LogSource { replica, version }),
                _ => None,
            })
            .collect())
    }

    /// Node `node` of `service`, running or not.
    fn node_source(
        &self,
        service: &str,
        node: &str,
        running: &[LogSource],
    ) -> Result<LogSource, EngineError> {
        if let Some(source) = running.iter().find(|s| s.replica == node) {
            return Ok(source.clone());
        }
        let not_found = || {
            EngineError::NotFound(format!(
                "no node `{node}` in service `{service}`: see `runway nodes list`"
            ))
        };
        let id = replica_number(node).ok_or_else(not_found)?;
        let row = self
            .store
            .replica(ReplicaId(id))?
            .filter(|row| row.service == service && format!("{service}-{id}") == node)
            .ok_or_else(not_found)?;
        Ok(self.source(service, row.id, &row.version))
    }

    fn source(&self, service: &str, replica_id: ReplicaId, version: &str) -> LogSource {
        let name = format!("{service}-{replica_id}");
        LogSource {
            replica: name,
            version: version.to_string(),
        }
    }
}

/// The number of a replica name (`web-12` → 12).
fn replica_number(name: &str) -> Option<i64> {
    name.rsplit('-').next()?.parse().ok()
}

impl Engine {
    /// For a `[kubernetes]` service, the pods whose logs `selection` names (all of them, or
    /// the one `--node` names, or those of `--version`); `None` for a service of another
    /// platform, or when a deployment's logs are asked for (those are its hooks', kept in the
    /// store).
    pub async fn pod_log_sources(
        &self,
        service: &str,
        selection: &LogSelection,
    ) -> Result<Option<Vec<LogSource>>, EngineError> {
        let Some(release) = self
            .serving(service)?
            .filter(|r| r.spec.kubernetes.is_some())
        else {
            return Ok(None);
        };
        if selection.deployment.is_some() {
            return Ok(None);
        }
        let pods = self
            .cluster
            .pods(&release)
            .await
            .map_err(EngineError::Failed)?;
        let sources: Vec<LogSource> = pods
            .into_iter()
            .filter(|p| selection.node.as_ref().is_none_or(|n| n == &p.name))
            .filter(|p| {
                selection
                    .version
                    .as_ref()
                    .is_none_or(|v| p.version.as_ref() == Some(v))
            })
            .map(|p| LogSource {
                replica: p.name,
                version: p.version.unwrap_or_default(),
            })
            .collect();
        if sources.is_empty() {
            if let Some(node) = &selection.node {
                return Err(EngineError::NotFound(format!(
                    "no pod `{node}` in service `{service}`: `runway status` lists its pods"
                )));
            }
        }
        Ok(Some(sources))
    }

    /// What pod `pod` of `service` printed (see [`Engine::pod_log_sources`]).
    pub async fn read_pod_log(
        &self,
        service: &str,
        pod: &str,
        read: crate::platform::LogRead,
    ) -> Result<crate::platform::LogChunk, EngineError> {
        let release = self.serving(service)?.ok_or_else(|| {
            EngineError::NotFound(format!("service `{service}` serves no release"))
        })?;
        self.cluster
            .pod_log(&release, pod, read)
            .await
            .map_err(EngineError::Failed)
    }
}
