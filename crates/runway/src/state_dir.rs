//! The rendezvous between the CLI and the server: a file in the state dir that holds the API
//! address and a fresh random token, readable by its owner only (mode 0600). Whoever can read the
//! state dir may drive the server; nobody else can.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub const SERVER_FILE: &str = "server.json";
pub const LOCK_FILE: &str = "server.lock";
pub const DATABASE: &str = "state.db";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerFile {
    pub api: String,
    pub metrics: String,
    pub token: String,
    pub pid: u32,
}

/// The state dir from the flag, RUNWAY_STATE_DIR (clap fills the flag from it), or the default.
pub fn resolve(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/runway")
}

pub fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes server.json atomically (temp file + rename) with mode 0600 from the first byte.
pub fn write_server_file(dir: &Path, info: &ServerFile) -> Result<()> {
    let tmp = dir.join(format!(".{SERVER_FILE}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(serde_json::to_string_pretty(info)?.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(SERVER_FILE))?;
    Ok(())
}

pub fn read_server_file(dir: &Path) -> Option<ServerFile> {
    let text = fs::read_to_string(dir.join(SERVER_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn remove_server_file(dir: &Path) {
    let _ = fs::remove_file(dir.join(SERVER_FILE));
}

/// Holds an exclusive lock on the state dir for the server's lifetime: two servers on one state
/// dir would fight over the same replicas.
pub fn lock(dir: &Path) -> Result<fs::File> {
    let path = dir.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => {
            let pid = read_server_file(dir)
                .map(|s| format!(" (pid {})", s.pid))
                .unwrap_or_default();
            anyhow::bail!(
                "another runway server{pid} already uses the state dir {}; stop it first or use another --state-dir",
                dir.display()
            )
        }
        Err(fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn server_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let info = ServerFile {
            api: "127.0.0.1:1".into(),
            metrics: "127.0.0.1:2".into(),
            token: new_token(),
            pid: 7,
        };
        write_server_file(dir.path(), &info).unwrap();
        let mode = fs::metadata(dir.path().join(SERVER_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read_server_file(dir.path()).unwrap().token, info.token);
        assert_eq!(info.token.len(), 64);
        assert_ne!(new_token(), new_token());
    }

    #[test]
    fn only_one_server_per_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let _held = lock(dir.path()).unwrap();
        let err = lock(dir.path()).unwrap_err().to_string();
        assert!(err.contains("already uses the state dir"), "{err}");
    }
}
