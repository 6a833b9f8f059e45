//! Where a Deployment's rollout stands, judged the way `kubectl rollout status` judges it, so
//! that runway and kubectl pointed at the same cluster always say the same thing.
//!
//! The rules (kubectl's `DeploymentStatusViewer`): nothing counts until the controller has
//! observed the newest spec (`observedGeneration >= generation`); then a `Progressing`
//! condition with reason `ProgressDeadlineExceeded` is a failure; otherwise the rollout waits
//! for every replica to be updated, for the old ones to be gone, and for the updated ones to be
//! available, in that order.

use k8s_openapi::api::apps::v1::Deployment;

/// The annotation the Deployment controller numbers revisions with, on the Deployment and on
/// each of its ReplicaSets.
pub const REVISION: &str = "deployment.kubernetes.io/revision";

/// One look at a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Every replica runs the template and is available.
    Complete(String),
    /// Still going; the line kubectl prints while it waits.
    Waiting(String),
    /// It will not finish by itself (the progress deadline passed).
    Failed(String),
}

/// The counts a rollout is judged by, for the journal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
}

/// The Deployment's counts (zero where the status has none yet).
pub fn counts(d: &Deployment) -> Counts {
    let status = d.status.clone().unwrap_or_default();
    Counts {
        replicas: status.replicas.unwrap_or(0),
        updated: status.updated_replicas.unwrap_or(0),
        ready: status.ready_replicas.unwrap_or(0),
        available: status.available_replicas.unwrap_or(0),
    }
}

/// The Deployment's revision (its `deployment.kubernetes.io/revision` annotation), 0 when it
/// has none yet.
pub fn revision(d: &Deployment) -> u64 {
    d.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Where `d`'s rollout stands. `want_revision`, when given, must be the Deployment's revision
/// (kubectl's `--revision`): a different one means someone else changed it meanwhile.
pub fn status(d: &Deployment, want_revision: Option<u64>) -> Rollout {
    let name = d.metadata.name.as_deref().unwrap_or("");
    if let Some(want) = want_revision {
        let running = revision(d);
        if want != running {
            return Rollout::Failed(format!(
                "desired revision ({want}) is different from the running revision ({running})"
            ));
        }
    }
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return Rollout::Waiting("Waiting for deployment spec update to be observed...".into());
    }
    let deadline_passed = status.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if deadline_passed {
        return Rollout::Failed(format!(
            "deployment \"{name}\" exceeded its progress deadline"
        ));
    }
    let c = counts(d);
    let wanted = d.spec.as_ref().and_then(|s| s.replicas);
    if let Some(wanted) = wanted {
        if c.updated < wanted {
            return Rollout::Waiting(format!(
                "Waiting for deployment \"{name}\" rollout to finish: {} out of {wanted} new \
                 replicas have been updated...",
                c.updated
            ));
        }
    }
    if c.replicas > c.updated {
        return Rollout::Waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending \
             termination...",
            c.replicas - c.updated
        ));
    }
    if c.available < c.updated {
        return Rollout::Waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {} of {} updated replicas are \
             available...",
            c.available, c.updated
        ));
    }
    Rollout::Complete(format!("deployment \"{name}\" successfully rolled out"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A Deployment as the API server returns it: `generation` and `replicas` in its spec, the
    /// rest of `status` given.
    fn deployment(generation: i64, replicas: i32, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "api-server", "generation": generation,
                         "annotations": {REVISION: "4"}},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn nothing_counts_until_the_controller_observed_the_spec() {
        let d = deployment(
            3,
            3,
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                   "availableReplicas": 3}),
        );
        assert_eq!(
            status(&d, None),
            Rollout::Waiting("Waiting for deployment spec update to be observed...".into())
        );
    }

    #[test]
    fn a_rollout_waits_for_updated_then_old_gone_then_available() {
        let at = |updated, replicas, available| {
            status(
                &deployment(
                    5,
                    3,
                    json!({"observedGeneration": 5, "replicas": replicas,
                           "updatedReplicas": updated, "availableReplicas": available}),
                ),
                None,
            )
        };
        assert_eq!(
            at(1, 4, 3),
            Rollout::Waiting(
                "Waiting for deployment \"api-server\" rollout to finish: 1 out of 3 new \
                 replicas have been updated..."
                    .into()
            )
        );
        assert_eq!(
            at(3, 4, 3),
            Rollout::Waiting(
                "Waiting for deployment \"api-server\" rollout to finish: 1 old replicas are \
                 pending termination..."
                    .into()
            )
        );
        assert_eq!(
            at(3, 3, 2),
            Rollout::Waiting(
                "Waiting for deployment \"api-server\" rollout to finish: 2 of 3 updated \
                 replicas are available..."
                    .into()
            )
        );
        assert_eq!(
            at(3, 3, 3),
            Rollout::Complete("deployment \"api-server\" successfully rolled out".into())
        );
    }

    #[test]
    fn a_passed_progress_deadline_fails_even_when_counts_look_done() {
        let d = deployment(
            2,
            1,
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
                   "availableReplicas": 1,
                   "conditions": [{"type": "Available", "status": "True"},
                                  {"type": "Progressing", "status": "False",
                                   "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert_eq!(
            status(&d, None),
            Rollout::Failed("deployment \"api-server\" exceeded its progress deadline".into())
        );
    }

    #[test]
    fn another_revision_than_the_one_wanted_is_a_failure() {
        let d = deployment(
            2,
            1,
            json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                   "availableReplicas": 1}),
        );
        assert_eq!(revision(&d), 4);
        assert!(matches!(status(&d, Some(4)), Rollout::Complete(_)));
        assert_eq!(
            status(&d, Some(5)),
            Rollout::Failed(
                "desired revision (5) is different from the running revision (4)".into()
            )
        );
    }

    #[test]
    fn a_deployment_scaled_to_zero_is_rolled_out() {
        let d = deployment(1, 0, json!({"observedGeneration": 1}));
        assert!(matches!(status(&d, None), Rollout::Complete(_)));
    }
}
