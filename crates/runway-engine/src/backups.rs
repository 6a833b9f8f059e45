//! Where backups are kept, behind a boundary. The engine decides when a backup is taken,
//! verified, restored and pruned (runbook.rs); a [`BackupStorage`] says where its files live
//! and how to clear, measure and delete them there.
//!
//! A backup is written by a task (the `[hooks.backup]` command), so its place must be one the
//! task reaches and that outlives it: a directory on runway's host for local processes and
//! Docker containers ([`HostBackups`]: the directory is bind-mounted into a hook's container),
//! a PersistentVolumeClaim for Kubernetes Jobs (crates/runway-platform-kubernetes,
//! `backups.rs`), whose own disk is gone with their pod.
//!
//! A backup's place is a *location*: a string recorded with the backup (`runway backups` shows
//! it) and handed to its tasks as `RUNWAY_BACKUP_DIR`; the task runner of the platform turns
//! it into a directory the task sees (Docker mounts a host path at the same path, Kubernetes
//! mounts `pvc://claim/path` from the claim).

use std::path::{Path, PathBuf};

use runway_wire::id::DeploymentId;

use crate::router::BoxFuture;
use crate::Release;

/// Where the backups of a release's service are kept.
pub trait BackupStorage: Send + Sync {
    /// Where deployment `id`'s backup of `release`'s service goes.
    fn location(&self, release: &Release, id: DeploymentId) -> Result<String, String>;

    /// Whether the tasks of `release` can reach the backup at `location` (a backup taken on
    /// runway's host cannot be restored by a Job on a cluster); the reason when not.
    fn reachable(&self, release: &Release, location: &str) -> Result<(), String>;

    /// Makes `location` an empty place for a new backup: a crash may have left half of one.
    fn prepare<'a>(
        &'a self,
        release: &'a Release,
        location: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// How many bytes the backup at `location` holds.
    fn size<'a>(
        &'a self,
        release: &'a Release,
        location: &'a str,
    ) -> BoxFuture<'a, Result<u64, String>>;

    /// Deletes the backup at `location`; one that is gone already is no error.
    fn remove<'a>(
        &'a self,
        release: &'a Release,
        location: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// Backups in directories under runway's state directory:
/// `{state_dir}/backups/{service}/deployment-{id}`.
#[derive(Debug, Clone)]
pub struct HostBackups {
    root: PathBuf,
}

impl HostBackups {
    /// Backups under `{state_dir}/backups`.
    pub fn new(state_dir: &Path) -> HostBackups {
        HostBackups {
            root: state_dir.join("backups"),
        }
    }

    /// The directory of deployment `id`'s backup of `service`.
    pub fn dir(&self, service: &str, id: DeploymentId) -> PathBuf {
        self.root.join(service).join(format!("deployment-{id}"))
    }
}

impl BackupStorage for HostBackups {
    fn location(&self, release: &Release, id: DeploymentId) -> Result<String, String> {
        Ok(self
            .dir(&release.spec.service.name, id)
            .to_string_lossy()
            .into_owned())
    }

    fn reachable(&self, _release: &Release, location: &str) -> Result<(), String> {
        if Path::new(location).is_absolute() {
            Ok(())
        } else {
            Err(format!(
                "the backup is at {location}, not on this host: restore it where it was taken"
            ))
        }
    }

    fn prepare<'a>(
        &'a self,
        _release: &'a Release,
        location: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let _ = std::fs::remove_dir_all(location);
            std::fs::create_dir_all(location)
                .map_err(|e| format!("cannot create the backup directory {location}: {e}"))
        })
    }

    fn size<'a>(
        &'a self,
        _release: &'a Release,
        location: &'a str,
    ) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move { Ok(dir_size(Path::new(location))) })
    }

    fn remove<'a>(
        &'a self,
        _release: &'a Release,
        location: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            match std::fs::remove_dir_all(location) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("cannot delete the backup files in {location}: {e}"))
                }
                _ => Ok(()),
            }
        })
    }
}

/// The bytes of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Release {
        Release {
            id: DeploymentId(4),
            version: "v1".into(),
            spec: runway_spec::parse_str(
                "[service]\nname = \"api\"\nlisten = \"127.0.0.1:8080\"\n[run]\ncommand = \
                 [\"./app\"]\n",
                "runway.toml",
            )
            .unwrap(),
            base_dir: "/srv".into(),
            secret_versions: Default::default(),
            secrets: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_host_backup_is_prepared_clean_measured_and_removed() {
        let state = tempfile::tempdir().unwrap();
        let backups = HostBackups::new(state.path());
        let release = release();
        let at = backups.location(&release, DeploymentId(7)).unwrap();
        assert!(at.ends_with("backups/api/deployment-7"), "{at}");
        backups.reachable(&release, &at).unwrap();
        std::fs::create_dir_all(Path::new(&at).join("half")).unwrap();
        std::fs::write(Path::new(&at).join("half/dump"), b"left by a crash").unwrap();
        backups.prepare(&release, &at).await.unwrap();
        assert_eq!(std::fs::read_dir(&at).unwrap().count(), 0, "starts clean");
        std::fs::write(Path::new(&at).join("dump.sql"), vec![b'x'; 1000]).unwrap();
        std::fs::create_dir(Path::new(&at).join("wal")).unwrap();
        std::fs::write(Path::new(&at).join("wal/0001"), vec![b'y'; 24]).unwrap();
        assert_eq!(backups.size(&release, &at).await.unwrap(), 1024);
        backups.remove(&release, &at).await.unwrap();
        assert!(!Path::new(&at).exists());
        backups.remove(&release, &at).await.unwrap();
        let err = backups
            .reachable(&release, "pvc://backups/api/deployment-7")
            .unwrap_err();
        assert!(err.contains("not on this host"), "{err}");
    }
}
