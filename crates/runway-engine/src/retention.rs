//! Retention: what runway keeps of deployments long ended, so that the state dir stays within
//! bounds however many deployments a server has run.
//!
//! Nothing of a record goes: every deployment keeps its row (status, reason, versions, who,
//! when, its config for a rollback) and its journal's story. What goes, once a deployment
//! ended longer ago than the retention period, is the detail repeated while a stage lasted:
//! between two entries of other kinds, of the entries of one [`REPEATED`] kind (and one
//! replica) only the last stays: the analysis that decided a step, with its numbers; a
//! replica's last word before it became healthy or was given up. A canary of a thousand intervals keeps a few entries per step. And the log files
//! of replicas that no longer run and wrote nothing for the retention period are removed (a
//! running replica's log rotates by size: logfile.rs).
//!
//! Deployments with an incident still open keep their full journal: their post-mortem is
//! still to be written from it.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use super::{Engine, Result};

/// Journal entry kinds written again and again while one stage lasts.
pub const REPEATED: [&str; 4] = [
    "analysis",
    "replica_unhealthy",
    "rollout_progress",
    "prepared",
];

/// What one retention pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Deployments whose journal was looked at.
    pub deployments: u64,
    /// Journal entries removed.
    pub entries: u64,
    /// Log files removed.
    pub log_files: u64,
}

impl Engine {
    /// One retention pass for a period of `keep_for`: thins the journals of the deployments
    /// that ended before `keep_for` ago (and at or after `from`, where the last pass stopped),
    /// and removes the log files of replicas not running that wrote nothing for `keep_for`.
    /// Returns what went and where the next pass starts.
    pub fn prune(&self, keep_for: Duration, from: Option<&str>) -> Result<(Pruned, String)> {
        let keep = chrono::Duration::from_std(keep_for).unwrap_or(chrono::Duration::MAX);
        let cutoff = self
            .clock
            .now()
            .checked_sub_signed(keep)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let until = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut pruned = Pruned::default();
        for id in self.store.ended_between(from, &until)? {
            pruned.deployments += 1;
            pruned.entries += self.store.thin_journal(id, &REPEATED)?;
        }
        let running: BTreeSet<(String, String)> = self
            .services()
            .iter()
            .flat_map(|svc| {
                svc.replicas()
                    .iter()
                    .map(|r| (svc.name.clone(), r.name.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let older_than = SystemTime::now()
            .checked_sub(keep_for)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        pruned.log_files = self
            .platform
            .prune_logs(older_than, &running)
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok((pruned, until))
    }
}

#[cfg(test)]
mod tests {
    use runway_wire::Event;

    /// The kinds are the journal's own names for these events.
    #[test]
    fn the_repeated_kinds_are_events_names() {
        let names = [
            Event::Analysis(serde_json::json!({})),
            Event::ReplicaUnhealthy {
                replica: "web-1".into(),
                version: "v1".into(),
                error: "503".into(),
                waited_s: 2,
                deadline_s: 30,
            },
            Event::RolloutProgress {
                message: "1 of 3".into(),
            },
            Event::Prepared {
                what: "pulled".into(),
            },
        ]
        .map(|e| e.to_row().0);
        assert_eq!(names, super::REPEATED);
    }
}
