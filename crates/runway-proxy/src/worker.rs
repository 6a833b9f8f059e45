//! The proxy's own threads: one single-threaded tokio runtime per core.
//!
//! Client connections are not served on the runtime that calls
//! [`crate::Proxy::serve`] (in the runway server, the general-purpose
//! multi-threaded runtime that also runs the deploy engine), but handed over
//! to a fixed set of worker threads, each running a current-thread runtime,
//! round-robin as they are accepted. A connection then lives on one thread
//! for its whole life, together with the upstream connections it uses (the
//! fast path's pools keep one stack of idle connections per worker, see
//! `upstream`), like the worker processes of nginx. Compared with serving on
//! a work-stealing runtime this removes, per request, the scheduler's
//! cross-thread machinery (run-queue atomics, waking idle workers so they can
//! steal, tasks migrating between threads with their cache lines) and the
//! cross-thread readiness hand-offs of a connection polled by one thread
//! while its socket's events arrive on another. On a small machine shared
//! with the replicas themselves this is a measurable share of the proxy's CPU
//! time per request. Connections are long-lived (keep-alive), so spreading
//! them at accept time balances the load well enough.
//!
//! Measured on 2 cores shared with the load generator and the replica (wrk,
//! 64 connections, same binary): about 38-41k requests/s per-core versus
//! 28-32k with the same code on a work-stealing runtime, at equal or better
//! p99. The price is the one nginx pays too: there is no stealing, so when
//! the OS deschedules a worker (another process hogging a core), its
//! connections wait for it, and under such contention the p99 grows more
//! than with a work-stealing runtime.
//!
//! There are as many workers as the machine has cores (`RUNWAY_PROXY_THREADS`
//! overrides it). They are started on first use, shared by every proxy of
//! the process, and live as long as the process.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use tokio::sync::mpsc;

/// Work sent to a worker thread: a future to spawn on its runtime.
type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

struct Workers {
    senders: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

static WORKERS: OnceLock<Workers> = OnceLock::new();

thread_local! {
    /// 1 + the index of the worker running on this thread; 0 elsewhere.
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

fn thread_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::env::var("RUNWAY_PROXY_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
    })
}

fn workers() -> &'static Workers {
    WORKERS.get_or_init(|| {
        let senders = (0..thread_count())
            .map(|index| {
                let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("cannot build a proxy worker runtime");
                std::thread::Builder::new()
                    .name(format!("runway-proxy-{index}"))
                    .spawn(move || {
                        SLOT.set(index + 1);
                        runtime.block_on(async move {
                            while let Some(job) = rx.recv().await {
                                tokio::spawn(job());
                            }
                        });
                    })
                    .expect("cannot start a proxy worker thread");
                tx
            })
            .collect();
        Workers {
            senders,
            next: AtomicUsize::new(0),
        }
    })
}

/// Number of pool slots: one per worker, plus one for other threads.
pub(crate) fn slots() -> usize {
    thread_count() + 1
}

/// The pool slot of the current thread.
pub(crate) fn current_slot() -> usize {
    SLOT.get()
}

/// Runs the future made by `make` on the next worker (round-robin). `make`
/// runs on the worker thread, so it can register sockets with that thread's
/// reactor.
pub(crate) fn spawn<F, Fut>(make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let workers = workers();
    let index = workers.next.fetch_add(1, Ordering::Relaxed) % workers.senders.len();
    let job: Job = Box::new(move || Box::pin(make()));
    if workers.senders[index].send(job).is_err() {
        tracing::error!("proxy worker {index} is gone; connection dropped");
    }
}
