//! A Deployment's history, read the way `kubectl rollout history` and `kubectl rollout undo`
//! read it: each ReplicaSet the Deployment owns is one revision (its
//! `deployment.kubernetes.io/revision`), and its pod template is what that revision ran.
//!
//! runway marks the templates it writes with the deployment that wrote them
//! ([`DEPLOYMENT_ID`]), so a revision maps back to a runway release: `runway rollback
//! --to-revision N` goes back to the release whose template ReplicaSet revision N carries,
//! with its config.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::rollout::REVISION;

/// The label the Deployment controller adds to each ReplicaSet's template (and selector):
/// not part of what the revision runs.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// The pod template annotation naming the runway deployment that wrote the template.
pub const DEPLOYMENT_ID: &str = "runway.dev/deployment";

/// The pod template annotation naming the version it runs.
pub const VERSION: &str = "runway.dev/version";

/// One revision of a Deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub number: u64,
    /// The ReplicaSet that is this revision.
    pub replica_set: String,
    pub template: PodTemplateSpec,
    /// The runway deployment that wrote the template; `None` when runway did not (someone ran
    /// `kubectl set image`).
    pub deployment_id: Option<u64>,
    pub version: Option<String>,
}

/// `deployment`'s revisions, oldest first: the ReplicaSets it controls (by owner uid), each
/// with its revision number. ReplicaSets without a revision are not history.
pub fn history(deployment: &Deployment, replica_sets: &[ReplicaSet]) -> Vec<Revision> {
    let uid = deployment.metadata.uid.as_deref();
    let mut revisions: Vec<Revision> =
        replica_sets
            .iter()
            .filter(|rs| {
                rs.metadata.owner_references.iter().flatten().any(|o| {
                    o.controller == Some(true) && Some(o.uid.as_str()) == uid && uid.is_some()
                })
            })
            .filter_map(|rs| {
                let number = annotation(&rs.metadata.annotations, REVISION)?
                    .parse()
                    .ok()?;
                let template = rs.spec.as_ref()?.template.clone().unwrap_or_default();
                let template_annotations = template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.annotations.clone());
                Some(Revision {
                    number,
                    replica_set: rs.metadata.name.clone().unwrap_or_default(),
                    deployment_id: annotation(&template_annotations, DEPLOYMENT_ID)
                        .and_then(|id| id.parse().ok()),
                    version: annotation(&template_annotations, VERSION).map(str::to_owned),
                    template,
                })
            })
            .collect();
    revisions.sort_by_key(|r| r.number);
    revisions
}

fn annotation<'a>(annotations: &'a Option<BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    annotations.as_ref()?.get(key).map(String::as_str)
}

/// The revision `kubectl rollout undo --to-revision=to` goes back to: `to` itself, or for 0
/// the one before the newest.
pub fn undo_target(history: &[Revision], to: u64) -> Result<&Revision, String> {
    if to != 0 {
        return history.iter().find(|r| r.number == to).ok_or_else(|| {
            let known: Vec<String> = history.iter().map(|r| r.number.to_string()).collect();
            format!(
                "unable to find specified revision {to} in history (revisions: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )
        });
    }
    match history {
        [.., previous, _newest] => Ok(previous),
        _ => Err("no rollout history found: there is no earlier revision".into()),
    }
}

/// Whether two pod templates run the same thing: equal but for the controller's
/// `pod-template-hash` label (how the controller recognises a template it already has a
/// ReplicaSet for, and how `rollout undo` sees that there is nothing to undo).
pub fn same_template(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

/// `template` without the `pod-template-hash` label (an empty label map counts as none).
pub fn without_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut template = template.clone();
    if let Some(meta) = template.metadata.as_mut() {
        if let Some(labels) = meta.labels.as_mut() {
            labels.remove(POD_TEMPLATE_HASH);
            if labels.is_empty() {
                meta.labels = None;
            }
        }
    }
    template
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "api", "uid": "d-1"},
            "spec": {"selector": {}, "template": {}},
        }))
        .unwrap()
    }

    fn replica_set(
        name: &str,
        revision: &str,
        owner: &str,
        image: &str,
        id: Option<u64>,
    ) -> ReplicaSet {
        let mut annotations = json!({});
        if let Some(id) = id {
            annotations = json!({DEPLOYMENT_ID: id.to_string(), VERSION: image});
        }
        serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "annotations": {REVISION: revision},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api",
                                     "uid": owner, "controller": true}],
            },
            "spec": {"selector": {}, "template": {
                "metadata": {"labels": {"app": "api", POD_TEMPLATE_HASH: name},
                             "annotations": annotations},
                "spec": {"containers": [{"name": "api", "image": image}]},
            }},
        }))
        .unwrap()
    }

    #[test]
    fn history_is_the_owned_replica_sets_by_revision() {
        let sets = [
            replica_set("api-c", "3", "d-1", "api:v3", Some(9)),
            replica_set("api-a", "1", "d-1", "api:v1", Some(2)),
            replica_set("other", "2", "d-2", "other:v1", None),
            replica_set("api-b", "2", "d-1", "api:v2", None),
        ];
        let history = history(&deployment(), &sets);
        let numbers: Vec<_> = history
            .iter()
            .map(|r| (r.number, r.replica_set.as_str()))
            .collect();
        assert_eq!(numbers, [(1, "api-a"), (2, "api-b"), (3, "api-c")]);
        assert_eq!(history[0].deployment_id, Some(2));
        assert_eq!(
            history[1].deployment_id, None,
            "written by kubectl set image"
        );
        assert_eq!(history[2].version.as_deref(), Some("api:v3"));
    }

    #[test]
    fn undo_goes_to_the_previous_revision_or_the_one_named() {
        let sets = [
            replica_set("api-a", "1", "d-1", "api:v1", Some(2)),
            replica_set("api-b", "5", "d-1", "api:v2", Some(3)),
            replica_set("api-c", "7", "d-1", "api:v3", Some(4)),
        ];
        let history = history(&deployment(), &sets);
        assert_eq!(undo_target(&history, 0).unwrap().number, 5);
        assert_eq!(undo_target(&history, 1).unwrap().replica_set, "api-a");
        assert_eq!(
            undo_target(&history, 6).unwrap_err(),
            "unable to find specified revision 6 in history (revisions: 1, 5, 7)"
        );
        assert!(undo_target(&history[..1], 0)
            .unwrap_err()
            .contains("no rollout history found"));
    }

    #[test]
    fn templates_compare_without_the_pod_template_hash() {
        let a = replica_set("api-a", "1", "d-1", "api:v1", Some(2));
        let b = replica_set("api-b", "2", "d-1", "api:v1", Some(2));
        let c = replica_set("api-c", "3", "d-1", "api:v2", Some(2));
        let template = |rs: &ReplicaSet| rs.spec.clone().unwrap().template.unwrap();
        assert_ne!(template(&a), template(&b), "their hashes differ");
        assert!(same_template(&template(&a), &template(&b)));
        assert!(!same_template(&template(&a), &template(&c)));
        // A template with only the hash label equals one without labels.
        let mut bare = template(&a);
        bare.metadata.as_mut().unwrap().labels =
            Some([(POD_TEMPLATE_HASH.to_string(), "x".to_string())].into());
        let mut none = template(&a);
        none.metadata.as_mut().unwrap().labels = None;
        assert!(same_template(&bare, &none));
    }
}
