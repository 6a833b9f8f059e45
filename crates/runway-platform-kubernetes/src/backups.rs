//! Backups on a cluster, on a PersistentVolumeClaim (`[kubernetes] backup_claim`).
//!
//! A backup hook runs as a Job, and a Job's own disk is gone with its pod, so the backup is
//! written to a claim that outlives it: deployment 7's backup of `api` is the directory
//! `api/deployment-7` of the claim, recorded as `pvc://{claim}/api/deployment-7`. Each Job
//! that reads or writes it (backup, verify, restore) mounts that directory with `subPath` at
//! [`ClaimPath::MOUNT`], which is what `$RUNWAY_BACKUP_DIR` says inside; the kubelet creates
//! a missing `subPath` directory, as the host's `mkdir -p` does for local backups.
//!
//! Clearing, measuring and deleting a backup happen on the claim too, by small Jobs that
//! mount the service's directory and run `rm -rf` or `du -sk` there (argv, never a shell
//! line). They run the backup hook's `image` (a `pg_dump` image has both), else the release's.
//! runway never reads the claim itself: it may run outside the cluster, and a claim is only
//! reachable from pods.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, PodSpec, Volume, VolumeMount,
};
use kube::{Api, Client};
use runway_engine::backups::BackupStorage;
use runway_engine::router::BoxFuture;
use runway_engine::tasks::{Outcome, Task};
use runway_engine::Release;
use runway_wire::id::DeploymentId;

use crate::{job, template, Error, KubernetesCluster};

/// A directory on a PersistentVolumeClaim: `pvc://{claim}/{path}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    pub claim: String,
    /// Relative to the claim's root, `/`-separated, without `.` or `..` segments.
    pub path: String,
}

impl ClaimPath {
    const SCHEME: &'static str = "pvc://";
    /// Where a Job mounts a backup's directory: `$RUNWAY_BACKUP_DIR` inside it.
    pub const MOUNT: &'static str = "/runway-backup";
    /// The name of that volume in the Job's pod.
    const VOLUME: &'static str = "runway-backup";

    /// A location runway wrote, or `None` for anything else (a host path).
    pub fn parse(location: &str) -> Option<ClaimPath> {
        let rest = location.strip_prefix(Self::SCHEME)?;
        let (claim, path) = rest.split_once('/')?;
        let name_ok = !claim.is_empty()
            && claim.len() <= 253
            && claim
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        let path_ok = path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
        (name_ok && path_ok).then(|| ClaimPath {
            claim: claim.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The location as recorded: `pvc://{claim}/{path}`.
    pub fn location(&self) -> String {
        format!("{}{}/{}", Self::SCHEME, self.claim, self.path)
    }

    /// The directory that holds this one, and this one's name in it (`None` at the root).
    fn parent(&self) -> Option<(ClaimPath, &str)> {
        let (parent, name) = self.path.rsplit_once('/')?;
        Some((
            ClaimPath {
                claim: self.claim.clone(),
                path: parent.to_owned(),
            },
            name,
        ))
    }

    /// Mounts this directory at [`Self::MOUNT`] in `pod`'s first container.
    pub fn mount_into(&self, pod: &mut PodSpec) {
        let volumes = pod.volumes.get_or_insert_with(Vec::new);
        volumes.retain(|v| v.name != Self::VOLUME);
        volumes.push(Volume {
            name: Self::VOLUME.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: self.claim.clone(),
                read_only: None,
            }),
            ..Default::default()
        });
        if let Some(container) = pod.containers.first_mut() {
            let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
            mounts.retain(|m| m.name != Self::VOLUME && m.mount_path != Self::MOUNT);
            mounts.push(VolumeMount {
                name: Self::VOLUME.into(),
                mount_path: Self::MOUNT.into(),
                sub_path: Some(self.path.clone()),
                ..Default::default()
            });
        }
    }
}

/// The engine's [`BackupStorage`] for `[kubernetes]` releases.
pub struct ClaimBackups {
    pub cluster: Arc<KubernetesCluster>,
}

impl BackupStorage for ClaimBackups {
    fn location(&self, release: &Release, id: DeploymentId) -> Result<String, String> {
        let k8s = template::section(release)?;
        let claim = k8s.backup_claim.as_ref().ok_or_else(|| {
            "[hooks.backup] on Kubernetes needs backup_claim in [kubernetes]".to_string()
        })?;
        Ok(ClaimPath {
            claim: claim.clone(),
            path: format!("{}/deployment-{id}", release.spec.service.name),
        }
        .location())
    }

    fn reachable(&self, release: &Release, location: &str) -> Result<(), String> {
        template::section(release)?;
        match ClaimPath::parse(location) {
            Some(_) => Ok(()),
            None => Err(format!(
                "the backup is at {location} on runway's host, where a Job on the cluster \
                 cannot read it: restore it from a machine that has it"
            )),
        }
    }

    fn prepare<'a>(
        &'a self,
        release: &'a Release,
        location: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let at = claim_path(location)?;
            let client = self.client(release).await?;
            prepare(client, release, &at).await
        })
    }

    fn size<'a>(
        &'a self,
        release: &'a Release,
        location: &'a str,
    ) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            let at = claim_path(location)?;
            size(self.client(release).await?, release, &at).await
        })
    }

    fn remove<'a>(
        &'a self,
        release: &'a Release,
        location: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let at = claim_path(location)?;
            remove(self.client(release).await?, release, &at).await
        })
    }
}

impl ClaimBackups {
    async fn client(&self, release: &Release) -> Result<Client, String> {
        let k8s = template::section(release)?;
        self.cluster
            .client(k8s.context.as_deref())
            .await
            .map_err(|e| e.to_string())
    }
}

/// Makes `at` ready for a new backup of `release`: its claim exists (so that the backup Job
/// does not wait for it until its timeout), and what a crash left there is gone (the kubelet
/// makes the directory again for the backup Job's subPath).
pub async fn prepare(client: Client, release: &Release, at: &ClaimPath) -> Result<(), String> {
    let k8s = template::section(release)?;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &k8s.namespace);
    match claims.get_opt(&at.claim).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(format!(
                "the PersistentVolumeClaim {}/{} (backup_claim) does not exist: create it \
                 (deploy/kubernetes/backups.yaml is one) or name another in [kubernetes]",
                k8s.namespace, at.claim
            ))
        }
        Err(e) => {
            return Err(Error::api(
                format!(
                    "reading PersistentVolumeClaim {}/{}",
                    k8s.namespace, at.claim
                ),
                e,
            )
            .to_string())
        }
    }
    remove(client, release, at).await
}

/// The bytes of the backup at `at`, as `du -sk` counts them.
pub async fn size(client: Client, release: &Release, at: &ClaimPath) -> Result<u64, String> {
    let output = tool(client, release, at, "backup-size", &["du", "-sk"]).await?;
    kib_of_du(&output).map(|kib| kib * 1024).ok_or_else(|| {
        format!(
            "cannot read the size of {} from du: {output}",
            at.location()
        )
    })
}

/// Deletes the backup at `at` (`rm -rf`: one that is gone is no error).
pub async fn remove(client: Client, release: &Release, at: &ClaimPath) -> Result<(), String> {
    tool(client, release, at, "backup-remove", &["rm", "-rf"])
        .await
        .map(drop)
}

/// Runs `command {MOUNT}/{name}` in a Job that mounts the directory holding `at`; its output
/// when it succeeds.
async fn tool(
    client: Client,
    release: &Release,
    at: &ClaimPath,
    phase: &str,
    command: &[&str],
) -> Result<String, String> {
    let (parent, name) = at
        .parent()
        .ok_or_else(|| format!("{} is a claim's root, not a backup", at.location()))?;
    let argv: Vec<String> = command
        .iter()
        .copied()
        .map(str::to_owned)
        .chain([format!("{}/{name}", ClaimPath::MOUNT)])
        .collect();
    let deployment = name.strip_prefix("deployment-").unwrap_or_default();
    let env = BTreeMap::from([
        (
            "RUNWAY_SERVICE".to_string(),
            release.spec.service.name.clone(),
        ),
        ("RUNWAY_DEPLOYMENT_ID".to_string(), deployment.to_string()),
        ("RUNWAY_PHASE".to_string(), phase.to_string()),
        ("RUNWAY_BACKUP_DIR".to_string(), parent.location()),
    ]);
    let hook = release.spec.hooks.backup.as_ref();
    let task = Task {
        argv: &argv,
        env: &env,
        dir: std::path::Path::new("/"),
        timeout: hook.map_or(Duration::from_secs(600), |h| h.timeout.0),
        release,
        image: hook.and_then(|h| h.image.as_deref()),
    };
    let (outcome, detail, output) = job::run(client, task).await.map_err(|e| e.to_string())?;
    match outcome {
        Outcome::Ok => Ok(output),
        _ => Err(format!(
            "`{}` on {}: {detail}: {}",
            argv.join(" "),
            at.location(),
            output.trim()
        )),
    }
}

fn claim_path(location: &str) -> Result<ClaimPath, String> {
    ClaimPath::parse(location)
        .ok_or_else(|| format!("{location} is not a backup on a PersistentVolumeClaim"))
}

/// The KiB `du -sk` printed (`12\t/runway-backup/deployment-7`).
fn kib_of_du(output: &str) -> Option<u64> {
    output
        .lines()
        .rev()
        .find_map(|line| line.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_paths_round_trip_and_refuse_what_runway_never_wrote() {
        let at = ClaimPath::parse("pvc://api-backups/api/deployment-7").unwrap();
        assert_eq!(at.claim, "api-backups");
        assert_eq!(at.path, "api/deployment-7");
        assert_eq!(at.location(), "pvc://api-backups/api/deployment-7");
        let (parent, name) = at.parent().unwrap();
        assert_eq!(parent.location(), "pvc://api-backups/api");
        assert_eq!(name, "deployment-7");
        for bad in [
            "/var/lib/runway/backups/api/deployment-7",
            "pvc://api-backups",
            "pvc://api-backups/",
            "pvc://Api/x",
            "pvc://b/../etc",
            "pvc://b/a//c",
            "pvc://b/a b",
            "pvc://b/-rf;x",
        ] {
            assert_eq!(ClaimPath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_claim_path_is_mounted_with_its_sub_path_replacing_a_volume_of_that_name() {
        let mut pod: PodSpec = serde_json::from_value(serde_json::json!({
            "volumes": [{"name": "runway-backup", "emptyDir": {}}, {"name": "config", "emptyDir": {}}],
            "containers": [{"name": "api", "volumeMounts": [
                {"name": "runway-backup", "mountPath": "/runway-backup"},
                {"name": "config", "mountPath": "/etc/api"}]}]
        }))
        .unwrap();
        ClaimPath::parse("pvc://api-backups/api/deployment-7")
            .unwrap()
            .mount_into(&mut pod);
        let pod = serde_json::to_value(pod).unwrap();
        assert_eq!(
            pod["volumes"],
            serde_json::json!([{"name": "config", "emptyDir": {}},
                               {"name": "runway-backup",
                                "persistentVolumeClaim": {"claimName": "api-backups"}}])
        );
        assert_eq!(
            pod["containers"][0]["volumeMounts"],
            serde_json::json!([{"name": "config", "mountPath": "/etc/api"},
                               {"name": "runway-backup", "mountPath": "/runway-backup",
                                "subPath": "api/deployment-7"}])
        );
    }

    #[test]
    fn du_output_is_read_as_kib() {
        assert_eq!(kib_of_du("12\t/runway-backup/deployment-7\n"), Some(12));
        assert_eq!(kib_of_du("0 /runway-backup/deployment-7"), Some(0));
        assert_eq!(kib_of_du("du: /x: No such file or directory\n"), None);
    }
}
