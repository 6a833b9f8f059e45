//! The timeouts of client connections: header read, idle keep-alive, request body, send.
//!
//! Without them a slowloris client (a request head sent a byte at a time) or a silent one
//! (a connection opened and never used, or a keep-alive connection left idle) holds its
//! socket, its task and a file descriptor for ever, and enough of them stop the proxy and
//! the control API together. The first two are what nginx calls `client_header_timeout`
//! and `keepalive_timeout`:
//!
//! * **Header read timeout** ([`crate::ProxyConfig::header_timeout`]): from the moment a
//!   connection is accepted, or the first byte of a next request arrives on a keep-alive
//!   connection, the whole request head must be in within this time. Otherwise the client
//!   gets `408 Request Timeout` with `Connection: close`, and the connection ends (lingering,
//!   see `linger`).
//! * **Idle timeout** ([`crate::ProxyConfig::idle_timeout`]): a connection with no request
//!   in flight and no byte of a next one closes silently after this long. A client's next
//!   request then opens a new connection (HTTP clients retry a request that met a closed
//!   idle connection).
//! * **Body timeout** ([`crate::ProxyConfig::body_timeout`]): while the proxy waits for the
//!   next bytes of a request body (nginx's `client_body_timeout`), at most this long; then
//!   the client gets `408` (when no answer has begun) and the connection ends. A "slow POST"
//!   that trickles a body, or stops sending it, would otherwise hold its connection for ever.
//!   The time runs only while the proxy asks for body bytes and the client has none to give
//!   ([`ClockedBody`]), never while a replica is slow to take them, nor once the answer has
//!   begun (a replica may stream an answer while the upload pauses). HTTP/1 only: an HTTP/2
//!   connection carries other streams, which one slow stream must not cut.
//! * **Send timeout** ([`crate::ProxyConfig::send_timeout`]): while the client takes no
//!   byte of its answer (a write to its socket stays pending), at most this long, give or
//!   take the quarter of it between two looks; then the connection ends. nginx's
//!   `send_timeout` counts between two writes, which cuts a client that reads slowly through
//!   a large socket send buffer; here the kernel is asked how many bytes the client
//!   acknowledged ([`bytes_acked`]), so a client that reads slowly, but reads, is never cut.
//!   On HTTP/2 it applies to the connection's socket: a stream the client holds back by flow
//!   control (no `WINDOW_UPDATE`) blocks no write, and is not cut.
//!
//! hyper has one timer for the first two (its `header_read_timeout` also runs while a
//! keep-alive connection is idle) and arms a boxed timer per request. Here a [`ConnClock`]
//! per connection keeps the phase in a few atomics: the socket wrapper marks the first byte
//! of a request head and a write that waits, the request body's polls mark a wait for the
//! client, the request's response body marks its end when hyper drops it. One task per
//! connection ([`watch`]) sleeps until the phase's deadline, so the cost per request is two
//! clock reads, a few relaxed stores and one reference count (the body's clock), and a
//! connection wakes up only when one of its deadlines is reached. The flags and their times
//! are separate relaxed atomics: a connection, its requests and its watcher run on one
//! worker thread (see `worker`).
//!
//! HTTP/2 connections (prior knowledge) are noticed by their preface: their reads while idle
//! are control frames (PING, SETTINGS), not a request head, so only the idle timeout applies
//! to them and they close without an HTTP/1 `408`.

use std::future::Future;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::Instant;

use crate::body::{BoxError, ProxyBody};

/// The HTTP/2 connection preface's first bytes.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// What a proxy answers when a request head did not arrive in time.
pub(crate) const REQUEST_TIMEOUT_ANSWER: &[u8] = b"HTTP/1.1 408 Request Timeout\r\n\
content-type: text/plain; charset=utf-8\r\n\
connection: close\r\n\
content-length: 39\r\n\
\r\n\
the request head did not arrive in time";

/// What a proxy answers when a request body stopped arriving (before any answer began).
pub(crate) const BODY_TIMEOUT_ANSWER: &[u8] = b"HTTP/1.1 408 Request Timeout\r\n\
content-type: text/plain; charset=utf-8\r\n\
connection: close\r\n\
content-length: 39\r\n\
\r\n\
the request body did not arrive in time";

/// Waiting for (the rest of) a request head.
const HEAD: u8 = 0;
/// At least one request in flight.
const BUSY: u8 = 1;
/// No request in flight, no byte of a next one.
const IDLE: u8 = 2;

/// How a connection's deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// A request head took longer than the header timeout: answer 408.
    Head,
    /// Idle for the idle timeout: close silently.
    Idle,
    /// No byte of a request body the proxy waited for within the body timeout: answer 408
    /// (unless an answer began) and close.
    Body,
    /// The client took no byte of its answer within the send timeout: close.
    Send,
}

/// The phase of one client connection, shared by its socket, its requests and its watcher.
pub(crate) struct ConnClock {
    /// The time the clock counts from (`since` is in milliseconds after it).
    origin: Instant,
    phase: AtomicU8,
    /// When the phase began, in ms after `origin`.
    since: AtomicU64,
    /// Requests in flight (more than one on HTTP/2).
    in_flight: AtomicU32,
    /// The client spoke HTTP/2 (its preface was read).
    h2: AtomicBool,
    /// Set when the header timeout ended the connection: the socket says 408 as it closes.
    head_expired: AtomicBool,
    /// Whether the first read was seen (to look for the HTTP/2 preface once).
    first_read: AtomicBool,
    /// The last write could not be taken whole (the client reads slowly): hyper may still
    /// hold response bytes, so the connection is busy, and no `408` may be written into it.
    writing: AtomicBool,
    /// Since when (ms after `origin`) the client took no byte, while `writing`.
    writing_since: AtomicU64,
    /// The bytes the client had acknowledged at the watcher's last look (see
    /// [`bytes_acked`]).
    acked: AtomicU64,
    /// The connection's socket, to ask the kernel what the client acknowledged; `None` in
    /// tests of the clock alone (then a write pending counts as no byte taken).
    socket: Option<RawFd>,
    /// The proxy waits for bytes of a request body the client has not sent yet.
    body_waiting: AtomicBool,
    /// Since when (ms after `origin`) it waits, while `body_waiting`.
    body_waiting_since: AtomicU64,
    /// Set when the body timeout ended the connection.
    body_expired: AtomicBool,
    /// The request in flight has its answer handed to hyper: no `408` may follow it.
    answered: AtomicBool,
    /// The server is draining: the next response says `Connection: close` (see `drain`).
    closing: AtomicBool,
}

impl ConnClock {
    /// A clock for a connection accepted now on `socket`: waiting for its first request head.
    pub(crate) fn for_socket(socket: RawFd) -> Arc<ConnClock> {
        Self::with_socket(Some(socket))
    }

    /// A clock without a socket.
    #[cfg(test)]
    fn new() -> Arc<ConnClock> {
        Self::with_socket(None)
    }

    fn with_socket(socket: Option<RawFd>) -> Arc<ConnClock> {
        Arc::new(ConnClock {
            acked: AtomicU64::new(0),
            socket,
            origin: Instant::now(),
            phase: AtomicU8::new(HEAD),
            since: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            h2: AtomicBool::new(false),
            head_expired: AtomicBool::new(false),
            first_read: AtomicBool::new(false),
            writing: AtomicBool::new(false),
            writing_since: AtomicU64::new(0),
            body_waiting: AtomicBool::new(false),
            body_waiting_since: AtomicU64::new(0),
            body_expired: AtomicBool::new(false),
            answered: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        })
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// The socket read `bytes` (not empty).
    #[inline]
    pub(crate) fn on_read(&self, bytes: &[u8]) {
        if !self.first_read.load(Ordering::Relaxed) {
            self.first_read.store(true, Ordering::Relaxed);
            // "PRI" is no HTTP/1 method; fewer bytes than that are taken for HTTP/1 (whose
            // head then has its timeout anyway).
            if bytes.len() >= 3
                && H2_PREFACE.starts_with(&bytes[..bytes.len().min(H2_PREFACE.len())])
            {
                self.h2.store(true, Ordering::Relaxed);
            }
        }
        // The first byte of a next request head: its header timeout starts.
        if self.phase.load(Ordering::Relaxed) == IDLE && !self.h2.load(Ordering::Relaxed) {
            self.since.store(self.now_ms(), Ordering::Relaxed);
            self.phase.store(HEAD, Ordering::Relaxed);
        }
    }

    /// A write to the client returned `pending` (the client is slow to read) or completed.
    #[inline]
    pub(crate) fn on_write(&self, pending: bool) {
        if self.writing.load(Ordering::Relaxed) != pending {
            if pending {
                self.writing_since.store(self.now_ms(), Ordering::Relaxed);
            }
            self.writing.store(pending, Ordering::Relaxed);
        }
    }

    /// A poll of a request body found no bytes (`pending`: the proxy now waits on the
    /// client) or got some, or the body is no longer read.
    #[inline]
    pub(crate) fn on_body(&self, pending: bool) {
        if self.body_waiting.load(Ordering::Relaxed) != pending {
            if pending {
                self.body_waiting_since
                    .store(self.now_ms(), Ordering::Relaxed);
            }
            self.body_waiting.store(pending, Ordering::Relaxed);
        }
    }

    /// The request's answer was handed to hyper: from now on the connection's end may not
    /// write a `408` of its own.
    #[inline]
    pub(crate) fn answered(&self) {
        self.answered.store(true, Ordering::Relaxed);
    }

    /// A request's head arrived and it is being served; the guard ends it.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.answered.store(false, Ordering::Relaxed);
        self.phase.store(BUSY, Ordering::Relaxed);
        InFlight {
            clock: Arc::clone(self),
        }
    }

    fn end(&self) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.on_body(false);
            self.since.store(self.now_ms(), Ordering::Relaxed);
            self.phase.store(IDLE, Ordering::Relaxed);
        }
    }

    /// When the watcher looks next: the current phase's deadline, but never later than
    /// one header timeout from now, because a phase can change to one whose deadline is
    /// earlier (an idle connection whose next request head starts) without waking the
    /// watcher. So a head's timeout is exact, and an idle connection costs a wake-up per
    /// header timeout.
    fn deadline(&self, limits: &Limits) -> Instant {
        let since = Duration::from_millis(self.since.load(Ordering::Relaxed));
        let look_again = Instant::now() + limits.header.min(limits.idle);
        if self.writing.load(Ordering::Relaxed) {
            // Looks at least four times a send timeout, to see whether the client took bytes.
            return self
                .at(&self.writing_since, limits.send)
                .min(look_again)
                .min(Instant::now() + limits.send / 4);
        }
        match self.phase.load(Ordering::Relaxed) {
            HEAD => self.origin + since + limits.header,
            IDLE => (self.origin + since + limits.idle).min(look_again),
            _ if self.waits_for_body() => self
                .at(&self.body_waiting_since, limits.body)
                .min(look_again),
            _ => look_again,
        }
    }

    /// `after` past the time in `since` (ms after `origin`).
    fn at(&self, since: &AtomicU64, after: Duration) -> Instant {
        self.origin + Duration::from_millis(since.load(Ordering::Relaxed)) + after
    }

    /// Whether the body timeout runs: an HTTP/1 request waits for its body's next bytes, and
    /// its answer has not begun (a replica may stream an answer while the upload pauses).
    fn waits_for_body(&self) -> bool {
        self.body_waiting.load(Ordering::Relaxed)
            && !self.h2.load(Ordering::Relaxed)
            && !self.answered.load(Ordering::Relaxed)
    }

    /// Whether a deadline has passed at `now`.
    fn expired(&self, limits: &Limits, now: Instant) -> Option<Expired> {
        // Response bytes the client has not taken yet: still serving, unless it took none
        // for the send timeout.
        if self.writing.load(Ordering::Relaxed) {
            // A client that reads slowly frees room in a large send buffer slowly, so a write
            // can wait long while the client takes bytes: each look that finds more bytes
            // acknowledged than the last starts its time again.
            if let Some(acked) = self.socket.and_then(bytes_acked) {
                if acked > self.acked.swap(acked, Ordering::Relaxed) {
                    let since = now.saturating_duration_since(self.origin).as_millis() as u64;
                    self.writing_since.store(since, Ordering::Relaxed);
                    return None;
                }
            }
            return (now >= self.at(&self.writing_since, limits.send)).then_some(Expired::Send);
        }
        let since = self.origin + Duration::from_millis(self.since.load(Ordering::Relaxed));
        match self.phase.load(Ordering::Relaxed) {
            HEAD if now >= since + limits.header => Some(Expired::Head),
            IDLE if now >= since + limits.idle => Some(Expired::Idle),
            BUSY if self.waits_for_body()
                && now >= self.at(&self.body_waiting_since, limits.body) =>
            {
                Some(Expired::Body)
            }
            _ => None,
        }
    }

    /// Whether the client spoke HTTP/2 (prior knowledge).
    pub(crate) fn is_h2(&self) -> bool {
        self.h2.load(Ordering::Relaxed)
    }

    /// Whether a request is in flight or response bytes wait for the client.
    pub(crate) fn is_busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0 || self.writing.load(Ordering::Relaxed)
    }

    /// The server is draining: this HTTP/1 connection ends after its next response.
    pub(crate) fn close_after_response(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Whether a response must say `Connection: close` (see [`Self::close_after_response`]).
    #[inline]
    pub(crate) fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// What the socket must say as it closes: `408` when the header timeout ended an HTTP/1
    /// connection, or the body timeout one whose answer had not begun.
    pub(crate) fn farewell(&self) -> Option<&'static [u8]> {
        if self.h2.load(Ordering::Relaxed) {
            return None;
        }
        if self.head_expired.load(Ordering::Relaxed) {
            Some(REQUEST_TIMEOUT_ANSWER)
        } else if self.body_expired.load(Ordering::Relaxed)
            && !self.answered.load(Ordering::Relaxed)
        {
            Some(BODY_TIMEOUT_ANSWER)
        } else {
            None
        }
    }
}

/// One request in flight on a connection; dropped when its response is complete (hyper
/// drops the response body after its last frame, or early when the client went away).
pub(crate) struct InFlight {
    clock: Arc<ConnClock>,
}

impl InFlight {
    /// Whether this request's answer must close its connection (the server is draining).
    #[inline]
    pub(crate) fn closing(&self) -> bool {
        self.clock.closing()
    }

    /// The clock of this request's connection.
    #[inline]
    pub(crate) fn clock(&self) -> &Arc<ConnClock> {
        &self.clock
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.clock.end();
    }
}

/// A response body that ends its request's [`InFlight`] when hyper drops it.
pub(crate) struct TimedBody {
    body: ProxyBody,
    _in_flight: InFlight,
}

impl TimedBody {
    pub(crate) fn new(body: ProxyBody, in_flight: InFlight) -> TimedBody {
        TimedBody {
            body,
            _in_flight: in_flight,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The bytes the peer of TCP socket `socket` acknowledged (`TCP_INFO`'s `tcpi_bytes_acked`,
/// Linux 4.1 and later); `None` when the kernel does not say.
#[cfg(target_os = "linux")]
fn bytes_acked(socket: RawFd) -> Option<u64> {
    // SAFETY: `tcp_info` is plain data, valid zeroed; getsockopt writes at most `len` bytes
    // into it and says how many it wrote. The descriptor is open: this runs from the
    // watcher while the connection future, which owns the socket (`Lingering`), is alive.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let done = unsafe {
        libc::getsockopt(
            socket,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::addr_of_mut!(info).cast(),
            &mut len,
        )
    };
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_acked) + 8;
    (done == 0 && len as usize >= needed).then_some(info.tcpi_bytes_acked)
}

/// Other systems do not say: a write pending counts as no byte taken (nginx's rule).
#[cfg(not(target_os = "linux"))]
fn bytes_acked(_socket: RawFd) -> Option<u64> {
    None
}

/// A client's request body whose polls tell its connection's clock when the proxy waits on
/// the client (for the body timeout). Only a poll that finds no bytes starts the wait: a body
/// not polled (a replica slow to take it) is not the client's delay.
pub(crate) struct ClockedBody {
    inner: Incoming,
    clock: Arc<ConnClock>,
}

impl ClockedBody {
    pub(crate) fn new(inner: Incoming, clock: Arc<ConnClock>) -> ClockedBody {
        ClockedBody { inner, clock }
    }
}

impl Body for ClockedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        this.clock.on_body(frame.is_pending());
        frame
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ClockedBody {
    /// A body no longer read is no longer waited for.
    fn drop(&mut self) {
        self.clock.on_body(false);
    }
}

/// The timeouts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header: Duration,
    pub(crate) idle: Duration,
    pub(crate) body: Duration,
    pub(crate) send: Duration,
}

/// Serves `connection` until it ends or one of its deadlines passes; then it is dropped
/// (the socket closes, saying `408` first when a request head was late). Returns how the
/// deadline passed, if one did.
pub(crate) async fn watch<F: Future>(
    connection: F,
    clock: &ConnClock,
    limits: Limits,
) -> Option<Expired> {
    tokio::pin!(connection);
    loop {
        let deadline = clock.deadline(&limits);
        tokio::select! {
            biased;
            _ = &mut connection => return None,
            () = tokio::time::sleep_until(deadline) => {
                if let Some(expired) = clock.expired(&limits, Instant::now()) {
                    match expired {
                        Expired::Head => clock.head_expired.store(true, Ordering::Relaxed),
                        Expired::Body => clock.body_expired.store(true, Ordering::Relaxed),
                        Expired::Idle | Expired::Send => {}
                    }
                    return Some(expired);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(60),
        body: Duration::from_secs(30),
        send: Duration::from_secs(45),
    };

    /// The watcher of a connection that never ends by itself, on a task of its own.
    fn watched(clock: &Arc<ConnClock>) -> tokio::task::JoinHandle<Option<Expired>> {
        let clock = Arc::clone(clock);
        tokio::spawn(async move { watch(std::future::pending::<()>(), &clock, LIMITS).await })
    }

    #[test]
    fn the_408_says_its_own_length() {
        assert_eq!(
            crate::admission::status_of_a_whole_answer(REQUEST_TIMEOUT_ANSWER),
            408
        );
        assert_eq!(
            crate::admission::status_of_a_whole_answer(BODY_TIMEOUT_ANSWER),
            408
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_ends_at_the_header_timeout() {
        let clock = ConnClock::new();
        let started = Instant::now();
        let expired = watch(std::future::pending::<()>(), &clock, LIMITS).await;
        assert_eq!(expired, Some(Expired::Head));
        assert_eq!(started.elapsed(), LIMITS.header);
        assert_eq!(clock.farewell(), Some(REQUEST_TIMEOUT_ANSWER));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_keep_alive_connection_ends_at_the_idle_timeout_silently() {
        let clock = ConnClock::new();
        clock.on_read(b"GET / HTTP/1.1\r\n");
        drop(clock.begin());
        let started = Instant::now();
        let expired = watch(std::future::pending::<()>(), &clock, LIMITS).await;
        assert_eq!(expired, Some(Expired::Idle));
        assert_eq!(started.elapsed(), LIMITS.idle);
        assert_eq!(clock.farewell(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_is_never_cut_and_a_next_head_gets_its_own_timeout() {
        let clock = ConnClock::new();
        clock.on_read(b"GET /slow HTTP/1.1\r\n");
        let request = clock.begin();
        let watched = watched(&clock);
        // A request served for five minutes: no deadline applies.
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(!watched.is_finished());
        drop(request);
        // Idle for 30 s, then half a request head: the header timeout runs from that byte.
        tokio::time::sleep(Duration::from_secs(30)).await;
        clock.on_read(b"GE");
        let head_started = Instant::now();
        let expired = watched.await.unwrap();
        assert_eq!(expired, Some(Expired::Head));
        assert_eq!(head_started.elapsed(), LIMITS.header);
    }

    /// A request whose body stops arriving ends at the body timeout, counted from the poll
    /// that found no bytes; bytes that arrive start it again, and a body not polled (a
    /// replica slow to take it) never runs it.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_request_body_ends_at_the_body_timeout_and_progress_restarts_it() {
        let clock = ConnClock::new();
        clock.on_read(b"POST /upload HTTP/1.1\r\n");
        let request = clock.begin();
        let watched = watched(&clock);
        // Not polled for five minutes (the replica reads slowly): no deadline.
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(!watched.is_finished());
        // Waits on the client for less than the body timeout, then bytes come.
        clock.on_body(true);
        tokio::time::sleep(LIMITS.body - Duration::from_secs(1)).await;
        clock.on_body(false);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!watched.is_finished());
        // Then nothing more comes.
        clock.on_body(true);
        let stalled = Instant::now();
        assert_eq!(watched.await.unwrap(), Some(Expired::Body));
        assert_eq!(stalled.elapsed(), LIMITS.body);
        assert_eq!(clock.farewell(), Some(BODY_TIMEOUT_ANSWER));
        // Once an answer began, the connection just ends.
        clock.answered();
        assert_eq!(clock.farewell(), None);
        drop(request);
    }

    /// Once the answer has begun (a replica streams it while the upload pauses), a wait for
    /// the body does not end the connection.
    #[tokio::test(start_paused = true)]
    async fn a_body_wait_after_the_answer_began_does_not_end_the_connection() {
        let clock = ConnClock::new();
        clock.on_read(b"POST /stream HTTP/1.1\r\n");
        let request = clock.begin();
        clock.answered();
        clock.on_body(true);
        let watched = watched(&clock);
        tokio::time::sleep(LIMITS.body * 10).await;
        assert!(!watched.is_finished());
        watched.abort();
        drop(request);
    }

    /// A client that takes no byte of its answer is cut at the send timeout; one that takes
    /// some now and then is not.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_takes_no_answer_byte_ends_at_the_send_timeout() {
        let clock = ConnClock::new();
        clock.on_read(b"GET /big HTTP/1.1\r\n");
        let request = clock.begin();
        let watched = watched(&clock);
        for _ in 0..10 {
            clock.on_write(true);
            tokio::time::sleep(LIMITS.send - Duration::from_secs(1)).await;
            clock.on_write(false);
        }
        assert!(!watched.is_finished());
        clock.on_write(true);
        let blocked = Instant::now();
        assert_eq!(watched.await.unwrap(), Some(Expired::Send));
        assert_eq!(blocked.elapsed(), LIMITS.send);
        assert_eq!(clock.farewell(), None);
        drop(request);
    }

    /// HTTP/2 carries other streams: one stalled body does not end the connection.
    #[tokio::test(start_paused = true)]
    async fn an_http2_stream_waiting_for_its_body_does_not_end_the_connection() {
        let clock = ConnClock::new();
        clock.on_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        let request = clock.begin();
        clock.on_body(true);
        let watched = watched(&clock);
        tokio::time::sleep(LIMITS.body * 10).await;
        assert!(!watched.is_finished());
        watched.abort();
        drop(request);
    }

    #[tokio::test(start_paused = true)]
    async fn http2_connections_have_only_the_idle_timeout() {
        let clock = ConnClock::new();
        clock.on_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        drop(clock.begin());
        // A PING while idle is no request head.
        clock.on_read(b"\x00\x00\x08\x06");
        let started = Instant::now();
        let expired = watch(std::future::pending::<()>(), &clock, LIMITS).await;
        assert_eq!(expired, Some(Expired::Idle));
        assert_eq!(started.elapsed(), LIMITS.idle);
        assert_eq!(clock.farewell(), None);
    }
}
