//! The open-file limit the server's children start with.
//!
//! `runway server` raises its own soft open-file limit to the hard one, because each client
//! connection of its proxies holds a descriptor (see runway-server's `connection_limit`).
//! A child inherits its parent's limits, so without this every replica, hook and migration
//! would start with the raised limit too: a program that sizes a table by it, or relies on
//! the default to catch a descriptor leak early, would behave differently under runway than
//! under a shell. So the server records the limit it started with here, and every process
//! this crate spawns gets it back between `fork` and `exec`.

use std::sync::OnceLock;

use nix::sys::resource::{setrlimit, Resource};

/// The soft and hard open-file limits the server started with.
static STARTED_WITH: OnceLock<(u64, u64)> = OnceLock::new();

/// Records the limits the server's children are to start with (the server's own, before it
/// raised them). Only the first call counts.
pub fn children_start_with(soft: u64, hard: u64) {
    let _ = STARTED_WITH.set((soft, hard));
}

/// The limits recorded by [`children_start_with`], if any: for runners of other children
/// (runway-server's command checks).
pub fn started_with() -> Option<(u64, u64)> {
    STARTED_WITH.get().copied()
}

/// Makes `command`'s process start with the recorded limits, when some were recorded.
pub(crate) fn apply(command: &mut tokio::process::Command) {
    if let Some(&(soft, hard)) = STARTED_WITH.get() {
        // SAFETY: the closure runs in the forked child before `exec`; it makes one system
        // call (setrlimit is async-signal-safe), allocates nothing and takes no lock. Lowering
        // the soft limit is always allowed; should it fail, the child keeps the raised one.
        unsafe {
            command.pre_exec(move || {
                let _ = setrlimit(Resource::RLIMIT_NOFILE, soft, hard);
                Ok(())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child started through [`apply`] has the recorded soft limit, not its parent's.
    #[tokio::test]
    async fn a_child_starts_with_the_recorded_limit_not_the_raised_one() {
        use nix::sys::resource::getrlimit;
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let wanted = (soft / 2).max(32);
        assert_ne!(wanted, soft);
        children_start_with(wanted, hard);
        let mut command = tokio::process::Command::new("sh");
        command.args(["-c", "ulimit -n"]);
        apply(&mut command);
        let out = command.output().await.unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            wanted.to_string()
        );
    }
}
