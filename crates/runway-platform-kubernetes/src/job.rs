//! Hooks on Kubernetes (the backup, the migration and its undo, a restore, `[[hooks.run]]`):
//! each is a Job of the release's pod template, as fly.io's `release_command` is a machine of
//! the release's image. A backup's directory is on a claim, mounted into the Job (backups.rs).
//!
//! The Job's pod is the Deployment's template (so it has the same service account, volumes,
//! env from Secrets and resources as the release) with the release's container running the
//! hook's argv instead of the server, without the server's probes, never restarted. runway
//! waits for it to succeed or fail, keeps the end of its pod's log, and deletes it; a hook that
//! outlives its timeout has its Job deleted (the cluster kills the pod), and the Job's own
//! `activeDeadlineSeconds` makes sure of it even if runway is gone.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams, PropagationPolicy};
use kube::{Api, Client};
use runway_engine::tasks::{keep_the_end, Outcome, Task, OUTPUT_CAP};

use crate::backups::ClaimPath;
use crate::template::{self, SERVICE};
use crate::Error;

/// The label naming what a Job is for.
pub const TASK: &str = "runway.dev/task";

/// How often a running Job is looked at.
const POLL: Duration = Duration::from_millis(250);

/// The Job that runs `task`, named `name`, from `base` (the Deployment's pod template, when
/// there is one).
pub fn job(task: &Task<'_>, name: &str, base: Option<PodTemplateSpec>) -> Result<Job, String> {
    let release = task.release;
    let k8s = template::section(release)?;
    let image = match task.image {
        Some(own) => own.to_string(),
        None => template::image(release)?,
    };
    let mut pod = base.and_then(|t| t.spec).unwrap_or_else(|| PodSpec {
        containers: vec![Container {
            name: k8s.container.clone(),
            ..Default::default()
        }],
        ..Default::default()
    });
    // The release's container runs the hook, alone: a sidecar would keep the Job running.
    pod.containers.retain(|c| c.name == k8s.container);
    if pod.containers.is_empty() {
        pod.containers.push(Container {
            name: k8s.container.clone(),
            ..Default::default()
        });
    }
    pod.restart_policy = Some("Never".into());
    let container = &mut pod.containers[0];
    container.image = Some(image);
    container.command = Some(task.argv.to_vec());
    container.args = None;
    container.liveness_probe = None;
    container.readiness_probe = None;
    container.startup_probe = None;
    container.ports = None;
    let mut env: Vec<EnvVar> = container
        .env
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|v| !task.env.contains_key(&v.name))
        .collect();
    // A `secret:NAME` variable of the release comes from its Secret object, as in its pods:
    // the Job, which `kubectl get job -o yaml` shows, never holds the value.
    let secret = template::secret_name(release);
    env.extend(task.env.iter().map(|(name, value)| {
        let key = release
            .spec
            .run
            .env
            .get(name)
            .and_then(|declared| declared.strip_prefix("secret:"));
        match (key, &secret) {
            (Some(key), Some(secret)) => template::secret_env(name, secret, key),
            _ => EnvVar {
                name: name.clone(),
                value: Some(value.clone()),
                value_from: None,
            },
        }
    }));
    // The backup's directory on its claim, mounted where `$RUNWAY_BACKUP_DIR` says.
    let backup = match task.env.get("RUNWAY_BACKUP_DIR") {
        Some(location) => Some(ClaimPath::parse(location).ok_or_else(|| {
            format!(
                "the backup at {location} is on runway's host, where a Job cannot reach it \
                 (a backup on a cluster is on [kubernetes] backup_claim)"
            )
        })?),
        None => None,
    };
    for var in env.iter_mut().filter(|v| v.name == "RUNWAY_BACKUP_DIR") {
        var.value = Some(ClaimPath::MOUNT.to_string());
    }
    container.env = Some(env);
    if let Some(backup) = backup {
        backup.mount_into(&mut pod);
    }
    let labels = BTreeMap::from([
        (SERVICE.to_string(), release.spec.service.name.clone()),
        (TASK.to_string(), "hook".to_string()),
    ]);
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(k8s.namespace.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(task.timeout.as_secs().max(1) as i64),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        status: None,
    })
}

/// The Job name of a hook: DNS-safe, at most 63 characters, and the same for the same hook of
/// the same deployment (`task`'s service, deployment id, phase and argv), so that a server that
/// restarts mid-migration finds the Job that runs it instead of starting a second one.
pub fn job_name(task: &Task<'_>) -> String {
    let clean = |s: &str| -> String {
        s.to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .trim_matches('-')
            .to_string()
    };
    let env = |key: &str| task.env.get(key).map(String::as_str).unwrap_or("");
    // FNV-1a of what makes the hook this hook.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [env("RUNWAY_DEPLOYMENT_ID"), env("RUNWAY_PHASE")]
        .into_iter()
        .chain(task.argv.iter().map(String::as_str))
    {
        for b in part.bytes().chain([0]) {
            hash ^= b as u64;
            hash = hash.wrapping_mul(0x100_0000_01b3);
        }
    }
    let suffix = format!(
        "{}-{:08x}",
        clean(env("RUNWAY_DEPLOYMENT_ID")),
        hash & 0xffff_ffff
    );
    let program = task.argv.first().map(String::as_str).unwrap_or("hook");
    let mut name = format!(
        "{}-{}-{}",
        clean(&task.release.spec.service.name),
        clean(env("RUNWAY_PHASE")),
        clean(program)
    );
    name.truncate(63 - suffix.len() - 1);
    format!("{}-{suffix}", name.trim_end_matches('-').replace("--", "-"))
}

/// Runs `task` as a Job in its release's namespace, to its end.
pub async fn run(client: Client, task: Task<'_>) -> Result<(Outcome, String, String), Error> {
    let k8s = template::section(task.release).map_err(Error::Template)?;
    if task.argv.is_empty() {
        return Err(Error::Template("the hook has an empty command".into()));
    }
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), &k8s.namespace);
    let base = deployments
        .get_opt(&k8s.deployment)
        .await
        .map_err(|e| {
            Error::api(
                format!("reading Deployment {}/{}", k8s.namespace, k8s.deployment),
                e,
            )
        })?
        .and_then(|d| d.spec)
        .map(|s| s.template);
    let name = job_name(&task);
    let job = job(&task, &name, base).map_err(Error::Template)?;
    // The Secret object its `secret:` variables come from (there already when the release's
    // pods run; a hook may run before them).
    if let Some(secret) = template::secret(task.release).map_err(Error::Template)? {
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(client.clone(), &k8s.namespace);
        match secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => {
                return Err(Error::api(
                    format!("creating the release's Secret in {}", k8s.namespace),
                    e,
                ))
            }
        }
    }
    let jobs: Api<Job> = Api::namespaced(client.clone(), &k8s.namespace);
    let pods: Api<Pod> = Api::namespaced(client, &k8s.namespace);
    match jobs.create(&PostParams::default(), &job).await {
        Ok(_) => {}
        // This very hook's Job exists: a server restarted while it ran. Wait for it; never
        // run a migration twice at once.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            tracing::info!(job = %name, "the hook's Job runs already: waiting for it");
        }
        Err(e) => {
            return Err(Error::api(
                format!("creating Job {}/{name}", k8s.namespace),
                e,
            ))
        }
    }
    let ended = tokio::time::timeout(task.timeout, wait(&jobs, &name)).await;
    let (outcome, detail) = match ended {
        Ok(Ok(true)) => (
            Outcome::Ok,
            exit_detail(&pods, &name)
                .await
                .unwrap_or_else(|| "succeeded".into()),
        ),
        Ok(Ok(false)) => (
            Outcome::Failed,
            exit_detail(&pods, &name)
                .await
                .unwrap_or_else(|| "failed".into()),
        ),
        Ok(Err(e)) => (Outcome::Failed, e.to_string()),
        Err(_) => (
            Outcome::TimedOut,
            format!("timed out after {}s", task.timeout.as_secs()),
        ),
    };
    let output = log_of(&pods, &name).await;
    // Done with it: the Job and its pod go (Background: the pod is deleted after the Job).
    let delete = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    if let Err(e) = jobs.delete(&name, &delete).await {
        tracing::warn!(job = %name, "cannot delete the hook's Job: {e}");
    }
    Ok((outcome, format!("Job {name}: {detail}"), output))
}

/// Waits for Job `name` to end: whether it succeeded.
async fn wait(jobs: &Api<Job>, name: &str) -> Result<bool, Error> {
    loop {
        let job = match jobs.get(name).await {
            Ok(job) => job,
            // Deleted by someone else: it will not end by itself.
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(Error::Rollout(format!(
                    "Job {name} was deleted while it ran"
                )))
            }
            // A passing API error does not end the hook (the task's timeout bounds the wait).
            Err(e) => {
                tracing::warn!(job = %name, "cannot read the hook's Job: {e}");
                tokio::time::sleep(POLL * 4).await;
                continue;
            }
        };
        let status = job.status.unwrap_or_default();
        if status.succeeded.unwrap_or(0) > 0 {
            return Ok(true);
        }
        let failed_condition = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Failed" && c.status == "True");
        if status.failed.unwrap_or(0) > 0 || failed_condition {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The pod of Job `name`, if it has one yet.
async fn pod_of(pods: &Api<Pod>, name: &str) -> Option<Pod> {
    pods.list(&ListParams::default().labels(&format!("job-name={name}")))
        .await
        .ok()?
        .items
        .into_iter()
        .next()
}

/// How the Job's container ended (`exited with status 3`).
async fn exit_detail(pods: &Api<Pod>, name: &str) -> Option<String> {
    let pod = pod_of(pods, name).await?;
    let terminated = pod
        .status?
        .container_statuses?
        .into_iter()
        .find_map(|c| c.state?.terminated)?;
    Some(format!("exited with status {}", terminated.exit_code))
}

/// The end of the Job's pod's log.
async fn log_of(pods: &Api<Pod>, name: &str) -> String {
    let Some(pod) = pod_of(pods, name).await.and_then(|p| p.metadata.name) else {
        return String::new();
    };
    let params = LogParams {
        limit_bytes: Some(OUTPUT_CAP as i64 * 4),
        ..Default::default()
    };
    keep_the_end(pods.logs(&pod, &params).await.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use runway_engine::Release;
    use runway_wire::id::DeploymentId;
    use serde_json::json;

    #[test]
    fn a_hook_runs_in_the_release_container_of_the_template_without_its_probes() {
        let release = Release {
            id: DeploymentId(3),
            version: "v2".into(),
            spec: runway_spec::parse_str(
                "[service]\nname = \"api\"\n[kubernetes]\nnamespace = \"prod\"\nimage = \
                 \"reg/api:{version}\"\n",
                "runway.toml",
            )
            .unwrap(),
            base_dir: "/srv".into(),
            secret_versions: Default::default(),
            secrets: Default::default(),
        };
        let argv = vec!["alembic".to_string(), "upgrade".into(), "head".into()];
        let env = BTreeMap::from([("RUNWAY_VERSION".to_string(), "v2".to_string())]);
        let task = Task {
            argv: &argv,
            env: &env,
            dir: std::path::Path::new("/srv"),
            timeout: Duration::from_secs(120),
            release: &release,
            image: None,
        };
        let base: PodTemplateSpec = serde_json::from_value(json!({
            "spec": {"serviceAccountName": "api",
                     "containers": [
                        {"name": "envoy", "image": "envoy:1"},
                        {"name": "api", "image": "reg/api:v1", "args": ["serve"],
                         "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
                         "env": [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]}]}
        }))
        .unwrap();
        let job = serde_json::to_value(job(&task, "api-alembic-1", Some(base)).unwrap()).unwrap();
        assert_eq!(job["spec"]["backoffLimit"], 0);
        assert_eq!(job["spec"]["activeDeadlineSeconds"], 120);
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(
            pod["serviceAccountName"], "api",
            "the release's own account"
        );
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(
            pod["containers"],
            json!([{"name": "api", "image": "reg/api:v2",
                    "command": ["alembic", "upgrade", "head"],
                    "env": [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
                            {"name": "RUNWAY_VERSION", "value": "v2"}]}])
        );
    }

    /// A hook's `secret:` variable comes from the release's Secret object, never its value.
    #[test]
    fn a_hooks_secret_comes_from_the_releases_secret_object() {
        let release = Release {
            id: DeploymentId(4),
            version: "v2".into(),
            spec: runway_spec::parse_str(
                "[service]\nname = \"api\"\n[kubernetes]\nnamespace = \"prod\"\nimage = \
                 \"reg/api:{version}\"\nenv = { DATABASE_URL = \"secret:DATABASE_URL\" }\n",
                "runway.toml",
            )
            .unwrap(),
            base_dir: "/srv".into(),
            secret_versions: Default::default(),
            secrets: Default::default(),
        };
        let argv = vec!["alembic".to_string()];
        // What the engine hands a hook: its env with the reference resolved.
        let env = BTreeMap::from([(
            "DATABASE_URL".to_string(),
            "postgres://app:hunter2@db/app".to_string(),
        )]);
        let task = Task {
            argv: &argv,
            env: &env,
            dir: std::path::Path::new("/srv"),
            timeout: Duration::from_secs(60),
            release: &release,
            image: None,
        };
        let job = serde_json::to_value(job(&task, "api-alembic-2", None).unwrap()).unwrap();
        assert!(!job.to_string().contains("hunter2"), "{job}");
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef":
                {"name": "api-runway-secrets-4", "key": "DATABASE_URL"}}}])
        );
    }

    #[test]
    fn a_restore_job_mounts_its_backup_and_a_backup_on_the_host_is_refused() {
        let release = Release {
            id: DeploymentId(3),
            version: "v2".into(),
            spec: runway_spec::parse_str(
                "[service]\nname = \"api\"\n[kubernetes]\nimage = \"reg/api:{version}\"\n\
                 backup_claim = \"api-backups\"\n[hooks.backup]\ncommand = [\"pg_dump\"]\n",
                "runway.toml",
            )
            .unwrap(),
            base_dir: "/srv".into(),
            secret_versions: Default::default(),
            secrets: Default::default(),
        };
        let argv = vec!["pg_restore".to_string()];
        let task = |env: &BTreeMap<String, String>| -> Result<Job, String> {
            job(
                &Task {
                    argv: &argv,
                    env,
                    dir: std::path::Path::new("/srv"),
                    timeout: Duration::from_secs(60),
                    release: &release,
                    image: Some("postgres:16"),
                },
                "api-restore-1",
                None,
            )
        };
        let env = BTreeMap::from([(
            "RUNWAY_BACKUP_DIR".to_string(),
            "pvc://api-backups/api/deployment-7".to_string(),
        )]);
        let job = serde_json::to_value(task(&env).unwrap()).unwrap();
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["containers"][0]["image"], "postgres:16");
        assert_eq!(
            pod["containers"][0]["env"],
            json!([{"name": "RUNWAY_BACKUP_DIR", "value": "/runway-backup"}])
        );
        assert_eq!(
            pod["containers"][0]["volumeMounts"],
            json!([{"name": "runway-backup", "mountPath": "/runway-backup",
                    "subPath": "api/deployment-7"}])
        );
        assert_eq!(
            pod["volumes"],
            json!([{"name": "runway-backup",
                    "persistentVolumeClaim": {"claimName": "api-backups"}}])
        );
        let on_host = BTreeMap::from([(
            "RUNWAY_BACKUP_DIR".to_string(),
            "/var/lib/runway/backups/api/deployment-7".to_string(),
        )]);
        let err = task(&on_host).unwrap_err();
        assert!(err.contains("where a Job cannot reach it"), "{err}");
    }

    #[test]
    fn job_names_are_dns_labels_and_the_same_for_the_same_hook() {
        let release = |name: &str| {
            Release {
            id: DeploymentId(3),
            version: "v2".into(),
            spec: runway_spec::parse_str(
                &format!("[service]\nname = \"{name}\"\n[kubernetes]\ndeployment = \"api\"\ncontainer = \"api\"\nservice = \"api\"\nimage = \"api:{{version}}\"\n"),
                "runway.toml",
            )
            .unwrap(),
            base_dir: "/srv".into(),
            secret_versions: Default::default(),
            secrets: Default::default(),
        }
        };
        let env = |id: &str| {
            BTreeMap::from([
                ("RUNWAY_DEPLOYMENT_ID".to_string(), id.to_string()),
                ("RUNWAY_PHASE".to_string(), "migrate".to_string()),
            ])
        };
        let name_of = |service: &str, argv: &[&str], id: &str| {
            let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
            let env = env(id);
            let release = release(service);
            job_name(&Task {
                argv: &argv,
                env: &env,
                dir: std::path::Path::new("/srv"),
                timeout: Duration::from_secs(1),
                release: &release,
                image: None,
            })
        };
        let name = name_of("web_api", &["./scripts/migrate.sh"], "7");
        assert!(
            name.starts_with("web-api-migrate-scripts-migrate-sh-7-"),
            "{name}"
        );
        assert!(name.len() <= 63);
        assert_eq!(
            name,
            name_of("web_api", &["./scripts/migrate.sh"], "7"),
            "stable"
        );
        assert_ne!(name, name_of("web_api", &["./scripts/migrate.sh"], "8"));
        assert_ne!(
            name,
            name_of("web_api", &["./scripts/migrate.sh", "down"], "7")
        );
        let long = name_of(&"a".repeat(60), &["b"], "12");
        assert!(long.len() <= 63, "{long}");
        assert!(!long.contains("--"), "{long}");
    }
}
