//! File checks: a file exists, or is absent.
//!
//! Runbooks gate deploys on flags in the filesystem: "no maintenance flag present",
//! "the release marker exists". `exists = false` checks absence.

use std::io;
use std::path::PathBuf;

use super::net;

pub(super) async fn run(path: PathBuf, exists: bool) -> Result<String, String> {
    let shown = path.display().to_string();
    // symlink_metadata: a dangling symlink is still "something there".
    let found = match tokio::fs::symlink_metadata(&path).await {
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(format!("cannot inspect {shown}: {}", net::io_reason(&e))),
    };
    match (exists, found) {
        (true, true) => Ok(format!("{shown} exists")),
        (true, false) => Err(format!("{shown} does not exist")),
        (false, false) => Ok(format!("{shown} is absent")),
        (false, true) => Err(format!("{shown} exists but must be absent")),
    }
}
