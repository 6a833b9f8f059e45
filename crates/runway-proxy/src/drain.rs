//! Graceful shutdown of the client connections, at no cost per request.
//!
//! hyper-util's `GracefulShutdown` gives every connection a receiver of one shared `watch`
//! channel and polls its `changed()` future each time the connection is polled: a lock of
//! the channel's waiter list, shared by every connection on every worker thread, taken
//! several times per request (the lock cache line bounced between cores showed in profiles
//! of the proxy at full load). Here a connection registers its task's waker in a slot of its
//! own, once per poll and without a shared lock; [`Drain::shutdown`] raises the flag, wakes
//! every registered connection (each then asks hyper for a graceful shutdown: idle
//! keep-alive connections close at once, busy ones after their current request), and waits
//! until the last one has ended.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::Notify;

#[derive(Default)]
struct Shared {
    draining: AtomicBool,
    next_id: AtomicU64,
    /// The connections open now, by id: their wakers.
    open: Mutex<HashMap<u64, Arc<AtomicWaker>>>,
    /// Told when the last connection ends during a drain.
    all_closed: Notify,
}

/// The connections of one proxy listener.
#[derive(Clone, Default)]
pub(crate) struct Drain {
    shared: Arc<Shared>,
}

impl Drain {
    /// A connection's place, taken as it is accepted (before it is handed to a worker
    /// thread, so that a shutdown right after the accept waits for it too).
    pub(crate) fn register(&self) -> Registration {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let waker = Arc::new(AtomicWaker::new());
        self.shared
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::clone(&waker));
        Registration {
            shared: Arc::clone(&self.shared),
            id,
            waker,
        }
    }

    /// Asks every connection to end gracefully and returns once all have ended.
    pub(crate) async fn shutdown(&self) {
        self.shared.draining.store(true, Ordering::SeqCst);
        loop {
            let closed = self.shared.all_closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            {
                let open = self.shared.open.lock().unwrap_or_else(|e| e.into_inner());
                if open.is_empty() {
                    return;
                }
                for waker in open.values() {
                    waker.wake();
                }
            }
            closed.await;
        }
    }
}

/// A connection's place in its [`Drain`]; removed when the connection ends (or was never
/// served).
pub(crate) struct Registration {
    shared: Arc<Shared>,
    id: u64,
    waker: Arc<AtomicWaker>,
}

impl Registration {
    /// `connection`, ended gracefully when [`Drain::shutdown`] is called.
    pub(crate) fn watch<C: GracefulConnection>(self, connection: C) -> Drained<C> {
        Drained {
            connection: Box::pin(connection),
            registration: self,
            shutting_down: false,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut open = self.shared.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&self.id);
        if open.is_empty() && self.shared.draining.load(Ordering::SeqCst) {
            self.shared.all_closed.notify_waiters();
        }
    }
}

/// A connection served until it ends, gracefully once its [`Drain`] shuts down.
pub(crate) struct Drained<C> {
    connection: Pin<Box<C>>,
    registration: Registration,
    shutting_down: bool,
}

impl<C: GracefulConnection> Future for Drained<C> {
    type Output = C::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = &mut *self;
        if !this.shutting_down {
            // The waker first, then the flag: a shutdown raised in between wakes this task.
            this.registration.waker.register(cx.waker());
            if this.registration.shared.draining.load(Ordering::SeqCst) {
                this.shutting_down = true;
                this.connection.as_mut().graceful_shutdown();
            }
        }
        this.connection.as_mut().poll(cx)
    }
}
