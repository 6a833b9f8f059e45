//! Disk checks: the filesystem holding a path has enough free space.
//!
//! "> 10 GB free" is on every pre-deployment checklist: a release that cannot write
//! its logs or unpack its artifacts fails in ways far from the cause. Free space is
//! what an unprivileged process can use (`f_bavail`), not the root reserve.

use std::path::PathBuf;

use super::{human_bytes, net};
use crate::model::MinFree;

pub(super) async fn run(path: PathBuf, min_free: MinFree) -> Result<String, String> {
    let shown = path.display().to_string();
    // statvfs can block for long on a hung network filesystem: keep it off the runtime
    // so the attempt's timeout still fires.
    let stat = tokio::task::spawn_blocking(move || nix::sys::statvfs::statvfs(&path))
        .await
        .map_err(|e| format!("internal error: {e}"))?
        .map_err(|e| {
            format!(
                "cannot stat the filesystem of {shown}: {}",
                net::io_reason(&std::io::Error::from(e))
            )
        })?;
    let frsize = stat.fragment_size() as u64;
    let free = (stat.blocks_available() as u64).saturating_mul(frsize);
    let total = (stat.blocks() as u64).saturating_mul(frsize);
    let share = if total == 0 {
        0.0
    } else {
        free as f64 / total as f64
    };
    let seen = format!(
        "{} free of {} ({:.0}%) on {shown}",
        human_bytes(free),
        human_bytes(total),
        share * 100.0
    );
    let (ok, need) = match min_free {
        MinFree::Bytes(b) => (free >= b, human_bytes(b)),
        MinFree::Share(s) => (share >= s, format!("{:.0}%", s * 100.0)),
    };
    if ok {
        Ok(seen)
    } else {
        Err(format!("{seen}; need at least {need}"))
    }
}
