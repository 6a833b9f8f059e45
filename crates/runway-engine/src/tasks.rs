//! One-off tasks (hooks: the backup, the migration and its undo, a restore, `[[hooks.run]]`)
//! behind a boundary: the engine hands a [`TaskRunner`] an argv, an environment, a directory
//! and a timeout, and gets back how it ended and its output. A task is a local process
//! (crates/runway-platform-process); on Docker, a one-off container of the release's image;
//! on Kubernetes, a Job; in the engine's tests, a scripted answer (crates/runway-fakes).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::router::BoxFuture;
use crate::Release;

/// How much of a task's output is kept: the end, where the error usually is.
pub const OUTPUT_CAP: usize = 256 * 1024;

/// A one-off task: never a shell line, unless the argv itself says `sh -c`.
#[derive(Debug, Clone, Copy)]
pub struct Task<'a> {
    pub argv: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    /// Where it runs; a relative program (`./scripts/x.sh`) is relative to it.
    pub dir: &'a Path,
    pub timeout: Duration,
    /// The release it runs with: a platform that runs tasks in the release's image (Docker) or
    /// pod template (Kubernetes) takes them from here; a local process needs only the above.
    pub release: &'a Release,
    /// The image it runs in, when not the release's own (a `[docker]` hook's `image`).
    pub image: Option<&'a str>,
}

/// Runs one-off tasks to their end.
pub trait TaskRunner: Send + Sync {
    /// How the task ended, a one-line detail (`exited with status 3`), and its output (the
    /// last [`OUTPUT_CAP`] bytes).
    fn run<'a>(&'a self, task: Task<'a>) -> BoxFuture<'a, (Outcome, String, String)>;
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    TimedOut,
}

/// The last [`OUTPUT_CAP`] bytes of a task's output (where the error usually is), on a
/// character boundary.
pub fn keep_the_end(mut output: String) -> String {
    if output.len() > OUTPUT_CAP {
        let mut cut = output.len() - OUTPUT_CAP;
        while !output.is_char_boundary(cut) {
            cut += 1;
        }
        output.drain(..cut);
    }
    output
}
