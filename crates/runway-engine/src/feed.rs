//! The journal as a feed: every entry after a cursor, in order, waiting for new ones. The
//! API's stream of everything (`GET /v1/events/stream`) is this feed, and so is what the
//! notifier hears: one source of typed events, read from the records, so a reader resumes from
//! any point and misses nothing that was written while it was not looking.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;

use runway_wire::api::FeedEntry;

use crate::records::Records;
use crate::Engine;

/// Entries read from the records at a time.
const BATCH: usize = 500;
/// How often a feed looks at the records even without a tick (another writer, a missed one).
const LOOK_EVERY: Duration = Duration::from_secs(1);

pub struct Feed {
    records: Arc<dyn Records>,
    ticks: watch::Receiver<u64>,
    after: i64,
    service: Option<String>,
    pending: VecDeque<FeedEntry>,
}

impl Feed {
    /// The next entry; `None` once the engine is gone.
    pub async fn next(&mut self) -> Option<anyhow::Result<FeedEntry>> {
        loop {
            if let Some(entry) = self.pending.pop_front() {
                self.after = entry.cursor;
                return Some(Ok(entry));
            }
            self.ticks.borrow_and_update();
            match self
                .records
                .journal_feed(self.after, self.service.as_deref(), BATCH)
            {
                Ok(entries) if !entries.is_empty() => {
                    self.pending.extend(entries);
                    continue;
                }
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
            // The engine is gone when its tick is (a timeout only means: look again).
            if let Ok(Err(_)) = tokio::time::timeout(LOOK_EVERY, self.ticks.changed()).await {
                return None;
            }
        }
    }

    /// Where the feed stands: the cursor of the last entry it gave.
    pub fn cursor(&self) -> i64 {
        self.after
    }
}

impl Engine {
    /// The feed of journal entries after `after` (from the newest when `None`), of `service`
    /// only when given.
    pub fn feed(&self, after: Option<i64>, service: Option<String>) -> anyhow::Result<Feed> {
        let after = match after {
            Some(after) => after,
            None => self.store.journal_cursor()?,
        };
        Ok(Feed {
            records: self.store.clone(),
            ticks: self.journal_tick.subscribe(),
            after,
            service,
            pending: VecDeque::new(),
        })
    }

    /// Hands each new journal entry's notice to the notifier, from the feed, until the engine
    /// is gone. Started with the engine (inside a runtime).
    pub(crate) fn follow_notices(engine: &Arc<Engine>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(mut feed) = engine.feed(None, None) else {
            tracing::error!("notices: cannot read the journal's position; no notice will be sent");
            return;
        };
        let engine: Weak<Engine> = Arc::downgrade(engine);
        runtime.spawn(async move {
            while let Some(next) = feed.next().await {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                match next {
                    Ok(entry) => {
                        if let Some(event) = entry.entry.typed() {
                            engine.announce(entry.deployment, &event);
                        }
                    }
                    Err(e) => {
                        tracing::warn!("notices: reading the journal: {e:#}");
                        drop(engine);
                        tokio::time::sleep(LOOK_EVERY).await;
                    }
                }
            }
        });
    }
}
