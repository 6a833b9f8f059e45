//! Graceful shutdown of the client connections, without a race with keep-alive clients and
//! at no cost per request.
//!
//! **The race.** A server that closes an idle keep-alive connection can meet a request the
//! client sent on it at the same moment: the client gets a reset or an end of stream instead
//! of an answer, and most clients do not retry a request that was already sent. hyper's
//! (and hyper-util's `GracefulShutdown`'s) drain closes every idle HTTP/1 connection at once,
//! so under steady load an upgrade of runway cost a request now and then (2 of 620 in one CI
//! run). nginx has the same race; HAProxy avoids it as here.
//!
//! **What happens here.** When [`Drain::shutdown`] is called:
//!
//! * An HTTP/1 connection answers its next response with `Connection: close` (the service
//!   asks [`ConnClock::closing`]) and hyper ends it after that response. The client, told in
//!   the answer, opens a new connection for its next request: to the successor, which holds
//!   the listening socket now. A request in flight as the drain starts is answered the same
//!   way.
//! * An HTTP/1 connection that sends nothing for [`IDLE_GRACE`] after the drain began is
//!   closed then (hyper's graceful shutdown: it is idle, so at once). One still busy then (a
//!   long response begun before the drain) gets another grace. The race remains only for a
//!   connection idle that long, whose client is unlikely to pick that very moment.
//! * An upgrade request (a WebSocket) on a draining connection is answered `503` with
//!   `Retry-After: 1`: a tunnel opened now would be cut as this server exits.
//! * An HTTP/2 connection is told `GOAWAY` at once (hyper's graceful shutdown). That has no
//!   race: the frame names the last stream the server took, and the client retries the rest.
//!
//! **No cost per request.** hyper-util's `GracefulShutdown` gives every connection a
//! receiver of one shared `watch` channel and polls its `changed()` future each time the
//! connection is polled: a lock shared by every connection on every worker thread, taken
//! several times per request (its cache line bouncing between cores showed in profiles of
//! the proxy at full load). Here a connection registers its task's waker in a slot of its
//! own (`AtomicWaker::register`, a compare-and-swap or two, and an atomic load per poll; no
//! shared lock); the shutdown raises the flag, wakes every
//! registered connection, and waits until the last one has ended. The registry's lock is
//! taken once as a connection is accepted and once as it ends.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::Notify;
use tokio::time::Sleep;

use crate::timeouts::ConnClock;

/// How long an HTTP/1 connection may stay silent after the drain began before it is closed
/// without a last answer. A client that sends within it is answered, with
/// `Connection: close`.
pub(crate) const IDLE_GRACE: Duration = Duration::from_secs(2);

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

    /// Asks every connection to end gracefully (see the module's docs) and returns once
    /// all have ended.
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
    /// `connection`, ended gracefully once [`Drain::shutdown`] is called. `clock` is the
    /// connection's: it tells HTTP/2 from HTTP/1 and carries the request to close.
    pub(crate) fn watch<C: GracefulConnection>(
        self,
        connection: C,
        clock: Arc<ConnClock>,
    ) -> Drained<C> {
        Drained {
            connection: Box::pin(connection),
            registration: self,
            clock,
            state: State::Serving,
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

enum State {
    /// No drain yet.
    Serving,
    /// Draining an HTTP/1 connection: its next answer says `Connection: close`; closed
    /// when the grace passes first.
    Closing(Pin<Box<Sleep>>),
    /// hyper's graceful shutdown was asked for.
    ShuttingDown,
}

/// A connection served until it ends, gracefully once its [`Drain`] shuts down.
pub(crate) struct Drained<C> {
    connection: Pin<Box<C>>,
    registration: Registration,
    clock: Arc<ConnClock>,
    state: State,
}

impl<C: GracefulConnection> Future for Drained<C> {
    type Output = C::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = &mut *self;
        match &mut this.state {
            State::Serving => {
                // The waker first, then the flag: a shutdown raised in between wakes this task.
                this.registration.waker.register(cx.waker());
                if this.registration.shared.draining.load(Ordering::SeqCst) {
                    if this.clock.is_h2() {
                        this.state = State::ShuttingDown;
                        this.connection.as_mut().graceful_shutdown();
                    } else {
                        this.clock.close_after_response();
                        let mut grace = Box::pin(tokio::time::sleep(IDLE_GRACE));
                        // Polled once so that it wakes this task when it passes.
                        if grace.as_mut().poll(cx).is_ready() {
                            this.state = State::ShuttingDown;
                            this.connection.as_mut().graceful_shutdown();
                        } else {
                            this.state = State::Closing(grace);
                        }
                    }
                }
            }
            State::Closing(grace) => {
                if this.clock.is_h2() {
                    // Its first bytes arrived after the drain began: HTTP/2 after all.
                    this.state = State::ShuttingDown;
                    this.connection.as_mut().graceful_shutdown();
                } else if grace.as_mut().poll(cx).is_ready() {
                    if this.clock.is_busy() {
                        // A response under way (begun before the drain, so without the
                        // `close`): closing after it could meet the client's next request.
                        // The grace starts again; SHUTDOWN_GRACE bounds the whole drain.
                        grace
                            .as_mut()
                            .reset(tokio::time::Instant::now() + IDLE_GRACE);
                        let _ = grace.as_mut().poll(cx);
                    } else {
                        this.state = State::ShuttingDown;
                        this.connection.as_mut().graceful_shutdown();
                    }
                }
            }
            State::ShuttingDown => {}
        }
        this.connection.as_mut().poll(cx)
    }
}
