//! When the state store refuses a write (a full disk, a filesystem gone read-only): what the
//! engine does instead of losing the write, wedging, or carrying on as if it had been kept.
//!
//! A refused write is *held*: kept in memory, in order, with the time it happened, and from
//! then on every later write joins it behind (a journal whose later entries were kept and
//! earlier ones lost would tell a false story). A task retries the held writes, oldest first,
//! every [`RETRY_EVERY`]; once the store takes all of them the fault is over, by itself.
//!
//! While a fault lasts:
//! - the running operation stops at its next step and takes the way back (operation.rs): the
//!   release the store names as serving is the one that serves again, so what runs matches
//!   what a restart would read;
//! - an outcome held here is what `status`, `history`, a deployment's record and its event
//!   stream show ([`StoreFaults::overlay`]): the CLI following a deployment sees it end;
//! - no new operation starts (it could not be recorded);
//! - `status` says since when, why, and how many writes wait.
//!
//! Held writes live in this process only: a server restarted before space returns resumes
//! from what the store has (its journal up to the fault), as after a crash.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use runway_wire::api::StoreFaultView;
use runway_wire::id::DeploymentId;
use runway_wire::record::{Deployment, Status};

use super::canary::Control;
use super::records::Records;
use super::{Engine, EngineError};

/// How often held writes are tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// A write the store refused, to try again as it was.
#[derive(Debug, Clone)]
pub(crate) enum HeldWrite {
    Journal {
        id: DeploymentId,
        event: String,
        detail: serde_json::Value,
        at: String,
    },
    Outcome {
        id: DeploymentId,
        status: Status,
        reason: Option<String>,
        at: String,
    },
    Serving {
        service: String,
        release: Option<DeploymentId>,
    },
    RolledBack {
        service: String,
        version: String,
        after: DeploymentId,
        by: DeploymentId,
    },
}

impl HeldWrite {
    fn apply(&self, store: &dyn Records) -> anyhow::Result<()> {
        match self {
            HeldWrite::Journal {
                id,
                event,
                detail,
                at,
            } => store.journal_at(*id, event, detail.clone(), at).map(drop),
            HeldWrite::Outcome {
                id,
                status,
                reason,
                at,
            } => store.finish_deployment_at(*id, *status, reason.as_deref(), at),
            HeldWrite::Serving { service, release } => store.set_serving_release(service, *release),
            HeldWrite::RolledBack {
                service,
                version,
                after,
                by,
            } => store.record_rolled_back(service, version, *after, *by),
        }
    }
}

/// A fault in progress.
#[derive(Debug)]
struct Fault {
    since: String,
    /// The store's newest refusal, as it said it.
    error: String,
    held: VecDeque<HeldWrite>,
}

/// The engine's record of refused writes; see the module docs.
#[derive(Debug, Default)]
pub struct StoreFaults {
    fault: Mutex<Option<Fault>>,
    /// Woken when a fault begins: the retrying task sleeps on it otherwise.
    began: tokio::sync::Notify,
}

/// What [`StoreFaults::write`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Written {
    Kept,
    /// Refused for a reason of its own (not the host's): logged and dropped, as no retry
    /// would take it.
    Dropped,
    /// Held behind earlier held writes, or refused now.
    Held {
        /// This write began the fault.
        began: bool,
    },
}

impl StoreFaults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Fault>> {
        self.fault.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `write`, or holds it: behind the writes already held, or because the store
    /// refuses it now.
    pub(crate) fn write(&self, store: &dyn Records, write: HeldWrite) -> Written {
        let mut fault = self.lock();
        if let Some(fault) = fault.as_mut() {
            fault.held.push_back(write);
            return Written::Held { began: false };
        }
        match write.apply(store) {
            Ok(()) => Written::Kept,
            Err(e) if !store.is_unavailable(&e) => {
                tracing::error!("the state store refused {write:?}: {e:#}");
                Written::Dropped
            }
            Err(e) => {
                *fault = Some(Fault {
                    since: runway_wire::record::now(),
                    error: format!("{e:#}"),
                    held: VecDeque::from([write]),
                });
                self.began.notify_one();
                Written::Held { began: true }
            }
        }
    }

    /// Tries the held writes, oldest first, until one is refused. True once none is left
    /// (the fault is over).
    pub(crate) fn retry(&self, store: &dyn Records) -> bool {
        let mut guard = self.lock();
        let Some(fault) = guard.as_mut() else {
            return true;
        };
        while let Some(write) = fault.held.front() {
            match write.apply(store) {
                Ok(()) => {
                    fault.held.pop_front();
                }
                Err(e) if !store.is_unavailable(&e) => {
                    tracing::error!("the state store refused {write:?}: {e:#}");
                    fault.held.pop_front();
                }
                Err(e) => {
                    fault.error = format!("{e:#}");
                    return false;
                }
            }
        }
        *guard = None;
        true
    }

    /// The fault in progress, for `status`.
    pub fn view(&self) -> Option<StoreFaultView> {
        self.lock().as_ref().map(|f| StoreFaultView {
            since: f.since.clone(),
            error: f.error.clone(),
            held_writes: f.held.len() as u64,
        })
    }

    /// Why an operation stops now, when the store refuses writes.
    pub(crate) fn refusal(&self) -> Option<String> {
        self.lock().as_ref().map(|f| {
            format!(
                "the state store refused a write at {} ({}): runway stopped the operation and \
                 took the safe way back; free space for the state dir and it writes what it \
                 holds by itself",
                f.since, f.error
            )
        })
    }

    /// `d` as its held outcome says, if one is held: what the store will say once it takes
    /// writes again.
    pub fn overlay(&self, mut d: Deployment) -> Deployment {
        let guard = self.lock();
        let Some(fault) = guard.as_ref() else {
            return d;
        };
        for write in &fault.held {
            if let HeldWrite::Outcome {
                id,
                status,
                reason,
                at,
            } = write
            {
                if *id == d.id {
                    d.status = *status;
                    if reason.is_some() {
                        d.reason = reason.clone();
                    }
                    d.finished_at = Some(at.clone());
                }
            }
        }
        d
    }
}

impl Engine {
    /// Writes `write` through the store, or holds it (see the module docs). A fault that
    /// begins here stops the running rollouts at once.
    pub(crate) fn write_or_hold(&self, write: HeldWrite) -> Written {
        let written = self.store_faults.write(&*self.store, write);
        if written == (Written::Held { began: true }) {
            let why = self
                .store_faults
                .view()
                .map(|f| f.error)
                .unwrap_or_default();
            tracing::error!(
                "the state store refused a write ({why}): runway holds what it cannot write, \
                 stops running operations, starts no new ones, and retries every {}s",
                RETRY_EVERY.as_secs()
            );
            self.stop_rollouts();
        }
        written
    }

    /// Refuses what would start an operation while the store refuses writes: it could not
    /// be recorded, and would run on without a journal.
    pub(crate) fn store_writable(&self) -> Result<(), EngineError> {
        match self.store_faults.view() {
            None => Ok(()),
            Some(f) => Err(EngineError::Unavailable(format!(
                "the state store refuses writes since {} ({}), with {} held writes: runway \
                 starts nothing it cannot record; free space for its state dir ({}) and it \
                 recovers by itself",
                f.since,
                f.error,
                f.held_writes,
                self.state_dir.display()
            ))),
        }
    }

    /// Sends every running rollout (canary, blue-green, monitoring period) the stop that
    /// takes it back, as `runway abort` would: the reason it records is the store's
    /// ([`StoreFaults::refusal`]). Other steps stop at the next stage of the runbook.
    fn stop_rollouts(&self) {
        let controls: Vec<_> = self
            .controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(service, tx)| (service.clone(), tx.clone()))
            .collect();
        for (service, tx) in controls {
            self.stop_rollout(&service, &tx);
        }
    }

    /// Stops `service`'s rollout, noting that the store's refusal did.
    pub(crate) fn stop_rollout(
        &self,
        service: &str,
        tx: &tokio::sync::mpsc::UnboundedSender<Control>,
    ) {
        let Some(why) = self.store_faults.refusal() else {
            return;
        };
        self.store_stops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(service.to_string(), why);
        let _ = tx.send(Control::Abort);
    }

    /// Why `service`'s rollout was stopped by a store fault, if it was (once).
    pub(crate) fn take_store_stop(&self, service: &str) -> Option<String> {
        self.store_stops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(service)
    }

    /// Why an operation stops here, if the store refuses writes.
    pub(crate) fn store_refusal(&self) -> Option<String> {
        self.store_faults.refusal()
    }

    /// The fault in progress, if the store refuses writes.
    pub fn store_fault(&self) -> Option<StoreFaultView> {
        self.store_faults.view()
    }

    /// `d` with its held outcome, if one waits to be written.
    pub fn overlay(&self, d: Deployment) -> Deployment {
        self.store_faults.overlay(d)
    }

    /// Deployment `id` as it stands: its record, with an outcome the store has not taken yet.
    pub fn deployment(&self, id: DeploymentId) -> anyhow::Result<Option<Deployment>> {
        Ok(self.store.deployment(id)?.map(|d| self.overlay(d)))
    }

    /// The task that writes held writes once the store takes them again.
    pub(crate) fn keep_retrying_held_writes(engine: &Arc<Engine>) {
        let weak: Weak<Engine> = Arc::downgrade(engine);
        tokio::spawn(async move {
            loop {
                let Some(engine) = weak.upgrade() else { return };
                let faults = Arc::clone(&engine.store_faults);
                drop(engine);
                faults.began.notified().await;
                loop {
                    tokio::time::sleep(RETRY_EVERY).await;
                    let Some(engine) = weak.upgrade() else { return };
                    let held = faults.view().map_or(0, |f| f.held_writes);
                    // SQLite calls block (up to its busy timeout): not on a runtime worker.
                    let (store, retrying) = (Arc::clone(&engine.store), Arc::clone(&faults));
                    let over = tokio::task::spawn_blocking(move || retrying.retry(&*store))
                        .await
                        .unwrap_or(false);
                    if over {
                        tracing::info!("the state store takes writes again: wrote the {held} held");
                        engine.journal_tick.send_modify(|t| *t += 1);
                        break;
                    }
                }
            }
        });
    }
}
