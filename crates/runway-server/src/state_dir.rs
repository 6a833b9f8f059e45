//! The rendezvous between the CLI and the server: a file in the state dir that holds the API
//! address and a fresh random token, readable by its owner only (mode 0600). Whoever can read the
//! state dir may drive the server; nobody else can.
//!
//! The state dir holds the database (every release's environment, secrets included) and decides
//! what the server runs after a restart, so it is trusted only when it is the server user's own:
//! created 0700, refused when another user owns it or when others may write to it (as
//! PostgreSQL refuses its data dir). Otherwise another local user could create it first, e.g.
//! under /tmp, and plant a database whose interrupted deployment the server would resume with
//! their command, or a `server.json` to which the CLI would send its specs and token.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
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
    /// The API's TLS certificate file when it serves TLS (for curl's `--cacert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The SHA-256 (hex) of the certificate the server loaded and presents: the CLI trusts
    /// exactly that one (a certificate renewed on disk since is not it until a restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_sha256: Option<String>,
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

/// The uid this process acts as.
fn effective_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Creates the server's state dir (mode 0700) or checks an existing one: it must be a
/// directory of this user's that nobody else may write to. One that others may read but not
/// write is tightened to 0700. Returns the canonical path.
pub fn prepare(dir: &Path) -> Result<PathBuf> {
    if !dir.exists() {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            // Someone was faster: the checks below decide whether it can be trusted.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("creating state dir {}", dir.display()))
            }
        }
    }
    let meta = fs::metadata(dir).with_context(|| format!("reading state dir {}", dir.display()))?;
    let shown = dir.display();
    if !meta.is_dir() {
        anyhow::bail!("the state dir {shown} is not a directory; use another --state-dir");
    }
    trusted_owner(&meta, &format!("the state dir {shown}"))?;
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        anyhow::bail!(
            "the state dir {shown} is writable by others (mode {mode:04o}): anyone could have \
             planted a database or a server.json in it. Check what it holds, then `chmod 700 \
             {shown}`, or use another --state-dir"
        );
    }
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making the state dir {shown} private"))?;
        eprintln!(
            "runway: the state dir {shown} was readable by others (mode {mode:04o}); it holds \
             secrets, so it is now 0700"
        );
    }
    let dir = dir.canonicalize()?;
    // The database and its WAL hold every release's environment: readable by this user only
    // (SQLite gives the WAL the database file's mode).
    let database = dir.join(DATABASE);
    match fs::symlink_metadata(&database) {
        Ok(meta) => {
            trusted_owner(&meta, &format!("the state database {}", database.display()))?;
            fs::set_permissions(&database, fs::Permissions::from_mode(0o600))?;
        }
        Err(_) => {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&database)
                .with_context(|| format!("creating {}", database.display()))?;
        }
    }
    for suffix in ["-wal", "-shm"] {
        let path = dir.join(format!("{DATABASE}{suffix}"));
        if let Ok(meta) = fs::symlink_metadata(&path) {
            trusted_owner(&meta, &format!("{}", path.display()))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(dir)
}

/// Refuses what another user owns.
fn trusted_owner(meta: &fs::Metadata, what: &str) -> Result<()> {
    let me = effective_uid();
    if meta.uid() != me {
        anyhow::bail!(
            "{what} belongs to uid {}, not to this user (uid {me}): runway trusts only its own \
             state. Use a state dir of your own (the default is ~/.local/state/runway)",
            meta.uid()
        );
    }
    Ok(())
}

/// server.json as the CLI may trust it: in a state dir of this user's that others cannot
/// write to, owned by this user, mode 0600. `Ok(None)` when there is none (no server runs).
/// A planted one is an error: the CLI would otherwise send it the token and every spec.
pub fn read_trusted_server_file(dir: &Path) -> Result<Option<ServerFile>> {
    let path = dir.join(SERVER_FILE);
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let shown = path.display();
    let refuse = |why: String| -> Result<Option<ServerFile>> {
        anyhow::bail!(
            "refusing {shown}: {why}. A runway server writes it for its own user with mode 0600; \
             this one may have been planted to receive your token and specs"
        )
    };
    if !meta.file_type().is_file() {
        return refuse("it is not a regular file".into());
    }
    let me = effective_uid();
    if meta.uid() != me {
        return refuse(format!(
            "it belongs to uid {}, not to you (uid {me})",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return refuse(format!("its mode is {:04o}, not 0600", meta.mode() & 0o777));
    }
    if let Ok(dir_meta) = fs::metadata(dir) {
        if dir_meta.uid() != me {
            return refuse(format!(
                "its directory belongs to uid {}, not to you",
                dir_meta.uid()
            ));
        }
        if dir_meta.mode() & 0o022 != 0 {
            return refuse(format!(
                "its directory is writable by others (mode {:04o})",
                dir_meta.mode() & 0o777
            ));
        }
    }
    let text = fs::read_to_string(&path).with_context(|| format!("reading {shown}"))?;
    Ok(serde_json::from_str(&text).ok())
}

pub fn remove_server_file(dir: &Path) {
    let _ = fs::remove_file(dir.join(SERVER_FILE));
}

/// How often a running server checks that its server.json is still there and still its own.
pub const SERVER_FILE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps server.json as `info` says until `stopping`: a file deleted (a cleanup script, a
/// `rm -rf` of the wrong thing) or changed under the running server would lock the CLI out
/// of it, so within [`SERVER_FILE_CHECK`] it is written again. One small read a second.
pub async fn keep_server_file(
    dir: PathBuf,
    info: ServerFile,
    stopping: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(SERVER_FILE_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ours = read_server_file(&dir).is_some_and(|on_disk| {
            on_disk.pid == info.pid && on_disk.token == info.token && on_disk.api == info.api
        });
        if ours {
            continue;
        }
        match write_server_file(&dir, &info) {
            Ok(()) => tracing::warn!(
                file = %dir.join(SERVER_FILE).display(),
                "server.json was missing or not this server's; written again"
            ),
            // A full disk, say: tried again at the next check.
            Err(e) => tracing::warn!("cannot write server.json again: {e:#}"),
        }
    }
}

/// The state dir's lock, or `None` while another server holds it.
pub fn try_lock(dir: &Path) -> Result<Option<fs::File>> {
    let path = dir.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Waits until the server that holds the state dir's lock lets go of it (exits).
pub async fn wait_for_lock(dir: &Path, within: std::time::Duration) -> Result<fs::File> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(lock) = try_lock(dir)? {
            return Ok(lock);
        }
        if tokio::time::Instant::now() >= deadline {
            let pid = read_server_file(dir)
                .map(|s| format!(" (pid {})", s.pid))
                .unwrap_or_default();
            anyhow::bail!(
                "the runway server{pid} that handed over its listeners still holds the state dir \
                 {} after {within:?}; it exits once its in-flight requests are done",
                dir.display()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Holds an exclusive lock on the state dir for the server's lifetime: two servers on one state
/// dir would fight over the same replicas.
pub fn lock(dir: &Path) -> Result<fs::File> {
    match try_lock(dir)? {
        Some(file) => Ok(file),
        None => {
            let pid = read_server_file(dir)
                .map(|s| format!(" (pid {})", s.pid))
                .unwrap_or_default();
            anyhow::bail!(
                "another runway server{pid} already uses the state dir {}; stop it first, use another --state-dir, or upgrade it in place with `runway server --take-over`",
                dir.display()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> ServerFile {
        ServerFile {
            api: "127.0.0.1:1".into(),
            metrics: "127.0.0.1:2".into(),
            token: new_token(),
            pid: 7,
            tls_cert: None,
            tls_cert_sha256: None,
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_state_dir_and_its_database_are_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/state");
        let dir = prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(DATABASE)), 0o600);
    }

    #[test]
    fn a_state_dir_others_may_write_is_refused_and_one_they_may_read_is_tightened() {
        let root = tempfile::tempdir().unwrap();
        let open = root.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        fs::write(open.join(DATABASE), b"planted").unwrap();
        let err = prepare(&open).unwrap_err().to_string();
        assert!(err.contains("writable by others"), "{err}");
        assert_eq!(fs::read(open.join(DATABASE)).unwrap(), b"planted");

        let readable = root.path().join("readable");
        fs::create_dir(&readable).unwrap();
        fs::set_permissions(&readable, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(readable.join(DATABASE), b"").unwrap();
        fs::set_permissions(readable.join(DATABASE), fs::Permissions::from_mode(0o644)).unwrap();
        prepare(&readable).unwrap();
        assert_eq!(mode(&readable), 0o700);
        assert_eq!(mode(&readable.join(DATABASE)), 0o600);
    }

    /// Another user's state dir or server.json: only testable as root (which can give files
    /// away); as another user the test says so and checks nothing else.
    #[test]
    fn another_users_state_dir_and_server_file_are_refused() {
        if effective_uid() != 0 {
            eprintln!("not root: cannot create another user's files here; covered in CI (root)");
            return;
        }
        let nobody = nix::unistd::Uid::from_raw(65534);
        let root = tempfile::tempdir().unwrap();
        let planted = root.path().join("planted");
        fs::create_dir(&planted).unwrap();
        fs::set_permissions(&planted, fs::Permissions::from_mode(0o700)).unwrap();
        nix::unistd::chown(&planted, Some(nobody), None).unwrap();
        let err = prepare(&planted).unwrap_err().to_string();
        assert!(err.contains("belongs to uid 65534"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let info = sample();
        write_server_file(dir.path(), &info).unwrap();
        nix::unistd::chown(&dir.path().join(SERVER_FILE), Some(nobody), None).unwrap();
        let err = read_trusted_server_file(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("belongs to uid 65534"), "{err}");
    }

    #[test]
    fn a_server_file_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let info = sample();
        write_server_file(dir.path(), &info).unwrap();
        assert!(read_trusted_server_file(dir.path()).unwrap().is_some());
        let path = dir.path().join(SERVER_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_trusted_server_file(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("mode is 0644"), "{err}");
        fs::remove_file(&path).unwrap();
        assert!(read_trusted_server_file(dir.path()).unwrap().is_none());
    }

    #[test]
    fn server_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let info = sample();
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
