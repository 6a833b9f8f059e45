//! What a release makes of its Deployment: the Deployment as it is, with the release's image,
//! env, replica count and marks written in; or, when there is none yet, a new one.
//!
//! An adopted Deployment stays the team's: its other containers, volumes, probes, resources
//! and env from Secrets (`valueFrom`) are kept as they are. runway writes only what its
//! `[kubernetes]` section says, and remembers which env variables it wrote
//! ([`MANAGED_ENV`]) so that one removed from runway.toml is removed from the Deployment, and
//! one it never wrote is never touched.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, PodSpec, PodTemplateSpec, Secret,
    SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::ByteString;
use runway_engine::Release;
use runway_spec::KubernetesSpec;

use crate::revision::{DEPLOYMENT_ID, VERSION};

/// The label naming the service, on everything runway creates.
pub const SERVICE: &str = "runway.dev/service";
/// The pod template annotation listing the env variables runway wrote (comma-separated).
pub const MANAGED_ENV: &str = "runway.dev/env";
/// The annotation `kubectl rollout history` shows as a revision's CHANGE-CAUSE (the controller
/// copies it from the Deployment to the revision's ReplicaSet).
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
/// The label of a blue-green slot's Deployment, its pods, and the Services' selectors.
pub const SLOT: &str = "runway.dev/slot";
/// The slot label of the service's own Deployment's pods.
pub const MAIN_SLOT: &str = "main";
/// The selector label of a Deployment runway creates.
pub const APP: &str = "app.kubernetes.io/name";

/// The release's `[kubernetes]` section; the error for a release of another platform.
pub fn section(release: &Release) -> Result<&KubernetesSpec, String> {
    release.spec.kubernetes.as_ref().ok_or_else(|| {
        format!(
            "release {} of `{}` has no [kubernetes] section",
            release.version, release.spec.service.name
        )
    })
}

/// The image of `release`: `{version}` filled in.
pub fn image(release: &Release) -> Result<String, String> {
    Ok(section(release)?
        .image
        .replace("{version}", &release.version))
}

/// The Deployment that runs `release`: `current` with the release written in, or a new one.
pub fn desired(current: Option<&Deployment>, release: &Release) -> Result<Deployment, String> {
    let k8s = section(release)?;
    let mut deployment = match current {
        Some(current) => current.clone(),
        None => new_deployment(release, k8s),
    };
    deployment
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(
            CHANGE_CAUSE.into(),
            format!("runway: {} (deployment #{})", release.version, release.id),
        );
    let spec = deployment.spec.get_or_insert_with(Default::default);
    spec.replicas = Some(release.spec.run.replicas as i32);
    spec.progress_deadline_seconds = Some(k8s.progress_deadline.0.as_secs() as i32);
    let template = &mut spec.template;
    let meta = template.metadata.get_or_insert_with(Default::default);
    // Every pod runway writes says which Deployment it is of: a slot's keeps its slot, the
    // service's own says `main`, so that a Service can select either (blue-green, a canary's
    // stable and canary Services) though their selectors overlap.
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .entry(SLOT.to_string())
        .or_insert_with(|| MAIN_SLOT.to_string());
    let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(DEPLOYMENT_ID.into(), release.id.to_string());
    annotations.insert(VERSION.into(), release.version.clone());
    let previously_managed: Vec<String> = annotations
        .get(MANAGED_ENV)
        .map(|names| {
            names
                .split(',')
                .filter(|n| !n.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let env = &release.spec.run.env;
    if env.is_empty() {
        annotations.remove(MANAGED_ENV);
    } else {
        let names: Vec<&str> = env.keys().map(String::as_str).collect();
        annotations.insert(MANAGED_ENV.into(), names.join(","));
    }
    let pod = template.spec.get_or_insert_with(Default::default);
    pod.termination_grace_period_seconds = Some(release.spec.run.stop_timeout.0.as_secs() as i64);
    let names: Vec<String> = pod.containers.iter().map(|c| c.name.clone()).collect();
    let container = pod
        .containers
        .iter_mut()
        .find(|c| c.name == k8s.container)
        .ok_or_else(|| {
            format!(
                "the Deployment `{}` has no container named `{}` (it has {}): set [kubernetes] \
                 container to the one that runs the image",
                k8s.deployment,
                k8s.container,
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    container.image = Some(image(release)?);
    let mut vars: Vec<EnvVar> = container
        .env
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|v| !env.contains_key(&v.name) && !previously_managed.contains(&v.name))
        .collect();
    let secret = secret_name(release);
    vars.extend(env.iter().map(|(name, value)| {
        match (value.strip_prefix("secret:"), &secret) {
            // A secret reaches the pod from the release's Secret object, never in the
            // Deployment itself (which `kubectl get -o yaml` shows to anyone who may read it).
            (Some(key), Some(secret)) => secret_env(name, secret, key),
            _ => EnvVar {
                name: name.clone(),
                value: Some(value.clone()),
                value_from: None,
            },
        }
    }));
    container.env = (!vars.is_empty()).then_some(vars);
    Ok(deployment)
}

/// Env variable `name` read from key `key` of Secret object `secret`.
pub fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: key.to_string(),
                optional: None,
            }),
            ..Default::default()
        }),
    }
}

/// The name of the Secret object that holds the values of `release`'s `secret:NAME` env
/// references; `None` when it has none. One per pod template (the release id a template is
/// marked with): a release brought back by a rollback finds the Secret of its own versions.
pub fn secret_name(release: &Release) -> Option<String> {
    let k8s = release.spec.kubernetes.as_ref()?;
    let refers = release
        .spec
        .run
        .env
        .values()
        .any(|v| v.starts_with("secret:"));
    refers.then(|| format!("{}-runway-secrets-{}", k8s.deployment, release.id))
}

/// The Secret object of `release` (see [`secret_name`]), its values read from the release's
/// secret versions: immutable, labelled with the service. `None` when it refers to none.
pub fn secret(release: &Release) -> Result<Option<Secret>, String> {
    let Some(name) = secret_name(release) else {
        return Ok(None);
    };
    let k8s = section(release)?;
    let mut data = BTreeMap::new();
    for value in release.spec.run.env.values() {
        if let Some(key) = value.strip_prefix("secret:") {
            let secret = release.secrets.read(key)?;
            data.insert(key.to_string(), ByteString(secret.into_bytes()));
        }
    }
    Ok(Some(Secret {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(k8s.namespace.clone()),
            labels: Some(BTreeMap::from([(
                SERVICE.to_string(),
                release.spec.service.name.clone(),
            )])),
            ..Default::default()
        },
        immutable: Some(true),
        data: Some(data),
        ..Default::default()
    }))
}

/// The Deployment of blue-green slot `slot` (`{deployment}-{slot}`) before a release is
/// written into it: the service's own Deployment (`main`) under the slot's name, its pods and
/// selector labelled with the slot, so that it runs what the service's pods run (service
/// account, volumes, sidecars) and a Service can select one slot's pods; a new one when the
/// service has none.
pub fn slot_deployment(
    main: Option<&Deployment>,
    release: &Release,
    slot: &str,
) -> Result<Deployment, String> {
    let k8s = section(release)?;
    let mut deployment = match main {
        Some(main) => Deployment {
            metadata: ObjectMeta {
                labels: main.metadata.labels.clone(),
                ..Default::default()
            },
            spec: main.spec.clone(),
            status: None,
        },
        None => new_deployment(release, k8s),
    };
    deployment.metadata.name = Some(slot_name(k8s, slot));
    deployment.metadata.namespace = Some(k8s.namespace.clone());
    let with_slot = |labels: &mut Option<BTreeMap<String, String>>| {
        labels
            .get_or_insert_with(BTreeMap::new)
            .insert(SLOT.to_string(), slot.to_string());
    };
    with_slot(&mut deployment.metadata.labels);
    let spec = deployment.spec.get_or_insert_with(Default::default);
    with_slot(&mut spec.selector.match_labels);
    with_slot(
        &mut spec
            .template
            .metadata
            .get_or_insert_with(Default::default)
            .labels,
    );
    Ok(deployment)
}

/// The name of slot `slot`'s Deployment.
pub fn slot_name(k8s: &KubernetesSpec, slot: &str) -> String {
    format!("{}-{slot}", k8s.deployment)
}

/// A Deployment for a service that has none: one container of the release's image, selected by
/// the app label.
fn new_deployment(release: &Release, k8s: &KubernetesSpec) -> Deployment {
    let labels = BTreeMap::from([
        (APP.to_string(), k8s.deployment.clone()),
        (SERVICE.to_string(), release.spec.service.name.clone()),
    ]);
    Deployment {
        metadata: ObjectMeta {
            name: Some(k8s.deployment.clone()),
            namespace: Some(k8s.namespace.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([(APP.to_string(), k8s.deployment.clone())])),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: k8s.container.clone(),
                        ports: k8s.port.map(|port| {
                            vec![ContainerPort {
                                container_port: port as i32,
                                name: Some("http".into()),
                                ..Default::default()
                            }]
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runway_wire::id::DeploymentId;
    use serde_json::json;

    fn release(id: i64, version: &str, env: &[(&str, &str)]) -> Release {
        let toml = format!(
            "[service]\nname = \"api\"\n[kubernetes]\nnamespace = \"prod\"\nimage = \
             \"reg/api:{{version}}\"\nreplicas = 3\nport = 8000\nenv = {{ {} }}\n",
            env.iter()
                .map(|(k, v)| format!("{k} = \"{v}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Release {
            id: DeploymentId(id),
            version: version.into(),
            spec: runway_spec::parse_str(&toml, "runway.toml").unwrap(),
            base_dir: "/srv/api".into(),
            secret_versions: Default::default(),
            secrets: Default::default(),
        }
    }

    fn container(d: &Deployment) -> Container {
        d.spec.clone().unwrap().template.spec.unwrap().containers[0].clone()
    }

    fn env(d: &Deployment) -> Vec<(String, String)> {
        container(d)
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.name, v.value.unwrap_or_else(|| "<from>".into())))
            .collect()
    }

    #[test]
    fn a_new_deployment_runs_the_image_with_its_env_and_marks() {
        let d = desired(None, &release(7, "v2", &[("APP_ENV", "prod")])).unwrap();
        let value = serde_json::to_value(&d).unwrap();
        assert_eq!(value["metadata"]["name"], "api");
        assert_eq!(value["metadata"]["namespace"], "prod");
        assert_eq!(
            value["metadata"]["annotations"][CHANGE_CAUSE],
            "runway: v2 (deployment #7)"
        );
        assert_eq!(value["spec"]["replicas"], 3);
        assert_eq!(value["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(
            value["spec"]["selector"],
            json!({"matchLabels": {APP: "api"}})
        );
        let template = &value["spec"]["template"];
        assert_eq!(template["metadata"]["labels"][SERVICE], "api");
        assert_eq!(template["metadata"]["annotations"][DEPLOYMENT_ID], "7");
        assert_eq!(template["metadata"]["annotations"][VERSION], "v2");
        assert_eq!(template["spec"]["terminationGracePeriodSeconds"], 10);
        assert_eq!(
            template["spec"]["containers"][0],
            json!({"name": "api", "image": "reg/api:v2",
                   "env": [{"name": "APP_ENV", "value": "prod"}],
                   "ports": [{"containerPort": 8000, "name": "http"}]})
        );
    }

    #[test]
    fn an_adopted_deployment_keeps_what_runway_did_not_write() {
        let current: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "api", "namespace": "prod", "resourceVersion": "41"},
            "spec": {"replicas": 10, "selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api"}},
                                  "spec": {"containers": [
                                      {"name": "sidecar", "image": "envoy:1"},
                                      {"name": "api", "image": "reg/api:v1",
                                       "env": [{"name": "DB", "valueFrom": {"secretKeyRef":
                                                  {"name": "db", "key": "url"}}}]}]}}},
        }))
        .unwrap();
        let v2 = desired(Some(&current), &release(8, "v2", &[("A", "1"), ("B", "2")])).unwrap();
        let value = serde_json::to_value(&v2).unwrap();
        assert_eq!(
            value["metadata"]["resourceVersion"], "41",
            "a replace of what was read"
        );
        assert_eq!(
            value["spec"]["selector"],
            json!({"matchLabels": {"app": "api"}})
        );
        let containers = &value["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            containers[0],
            json!({"name": "sidecar", "image": "envoy:1"})
        );
        assert_eq!(containers[1]["image"], "reg/api:v2");
        assert_eq!(
            env(&Deployment {
                spec: v2.spec.clone().map(|mut s| {
                    s.template.spec.as_mut().unwrap().containers.remove(0);
                    s
                }),
                ..v2.clone()
            }),
            [
                ("DB".into(), "<from>".into()),
                ("A".into(), "1".into()),
                ("B".into(), "2".into())
            ]
        );
        // The next release drops B: runway wrote it, so it goes; DB it never wrote stays.
        let v3 = desired(Some(&v2), &release(9, "v3", &[("A", "3")])).unwrap();
        let api = |d: &Deployment| Deployment {
            spec: d.spec.clone().map(|mut s| {
                s.template.spec.as_mut().unwrap().containers.remove(0);
                s
            }),
            ..d.clone()
        };
        assert_eq!(
            env(&api(&v3)),
            [("DB".into(), "<from>".into()), ("A".into(), "3".into())]
        );
    }

    #[test]
    fn a_missing_container_is_named_with_the_ones_there_are() {
        let current: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "api"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [
                {"name": "web"}, {"name": "sidecar"}]}}},
        }))
        .unwrap();
        let err = desired(Some(&current), &release(1, "v1", &[])).unwrap_err();
        assert_eq!(
            err,
            "the Deployment `api` has no container named `api` (it has `web`, `sidecar`): set \
             [kubernetes] container to the one that runs the image"
        );
    }

    #[test]
    fn the_same_release_again_writes_the_same_deployment() {
        let first = desired(None, &release(7, "v2", &[("A", "1")])).unwrap();
        let again = desired(Some(&first), &release(7, "v2", &[("A", "1")])).unwrap();
        assert_eq!(first, again, "a resumed deployment changes nothing");
    }
}
