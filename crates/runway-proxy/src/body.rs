//! Body types on both sides of the proxy.
//!
//! [`UpstreamBody`] is what goes to a backend: either bytes buffered up front
//! (so the request can be replayed on another backend) or the client's body
//! streamed through once, as a [`ClientBody`] that notes in a shared
//! [`ClientBodyWatch`] when it ended and whether it failed, so a failure of
//! the client's upload is not taken for the backend's.
//!
//! [`ProxyBody`] is what goes back to the client. Wrapping the backend's body
//! is how the proxy learns when a request is really complete: it records the
//! request's metrics and releases its backend (drain accounting) when the last
//! frame has been handed to the client connection, or when hyper drops the
//! body early (client gone, HEAD, upgrade). Both are enums rather than boxed
//! trait objects to avoid an allocation per request.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::StatusCode;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::metrics::{ClientError, Outcome, RequestRecord};
use crate::routes::BackendGuard;
use crate::timeouts::ClockedBody;
use crate::upstream::{self, Conn, FastBody};

/// Error type of [`ProxyBody`]: hyper's or the fast path's.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Request body sent to a backend.
pub(crate) enum UpstreamBody {
    /// Fully buffered; `None` once sent.
    Buffered(Option<Bytes>),
    /// The client's body, streamed through (cannot be replayed).
    Streaming(ClientBody),
}

/// What became of a client's streamed request body; shared between the
/// [`ClientBody`] (which the upstream client owns while sending) and the
/// request's handler and [`Completion`].
#[derive(Default)]
pub(crate) struct ClientBodyWatch {
    /// When its last byte was handed on.
    ended: OnceLock<Instant>,
    /// Why reading it failed (malformed, or the client stopped sending).
    failed: OnceLock<ClientError>,
}

impl ClientBodyWatch {
    pub(crate) fn ended(&self) -> Option<Instant> {
        self.ended.get().copied()
    }

    pub(crate) fn failed(&self) -> Option<ClientError> {
        self.failed.get().copied()
    }

    fn end(&self) {
        self.ended.get_or_init(Instant::now);
    }
}

/// The client's request body on its way to a backend, watched.
pub(crate) struct ClientBody {
    inner: ClockedBody,
    watch: Arc<ClientBodyWatch>,
}

impl ClientBody {
    pub(crate) fn new(inner: ClockedBody) -> ClientBody {
        ClientBody {
            inner,
            watch: Arc::default(),
        }
    }

    pub(crate) fn watch(&self) -> &Arc<ClientBodyWatch> {
        &self.watch
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            None => this.watch.end(),
            Some(Ok(_)) if this.inner.is_end_stream() => this.watch.end(),
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                this.watch
                    .failed
                    .get_or_init(|| ClientError::of_body_error(error));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            self.watch.end();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Buffered(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            UpstreamBody::Streaming(incoming) => Pin::new(incoming).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Buffered(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            UpstreamBody::Streaming(incoming) => incoming.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Buffered(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            UpstreamBody::Streaming(incoming) => incoming.size_hint(),
        }
    }
}

/// What to do once a proxied response is complete.
pub(crate) struct Completion {
    record: RequestRecord,
    status: StatusCode,
    /// `None` when the backend claim moved to an upgrade tunnel.
    backend: Option<BackendGuard>,
    /// The client's streamed request body, if any: its end starts the
    /// latency clock, its failure is not the release's.
    client_body: Option<Arc<ClientBodyWatch>>,
}

impl Completion {
    pub(crate) fn new(
        record: RequestRecord,
        status: StatusCode,
        backend: Option<BackendGuard>,
    ) -> Completion {
        Completion {
            record,
            status,
            backend,
            client_body: None,
        }
    }

    /// For a request whose body was streamed to the backend.
    pub(crate) fn with_client_body(mut self, watch: Option<Arc<ClientBodyWatch>>) -> Completion {
        self.client_body = watch;
        self
    }

    /// Puts a connection whose response is complete back into the pool of
    /// the backend that sent it.
    fn recycle(&self, conn: Conn, now: Instant) {
        if let Some(backend) = &self.backend {
            upstream::release(&backend.pool, conn, now);
        }
    }

    fn complete(self, body_intact: bool) {
        self.complete_at(body_intact, Instant::now());
    }

    fn complete_at(mut self, body_intact: bool, now: Instant) {
        let mut client_failed = false;
        if let Some(watch) = &self.client_body {
            if let Some(ended) = watch.ended() {
                self.record.start_not_before(ended);
            }
            client_failed = watch.failed().is_some();
        }
        // A response that broke off because the client's upload failed is
        // counted like one whose client went away: by status.
        let outcome = if body_intact || client_failed {
            Outcome::Status(self.status)
        } else {
            Outcome::Failed
        };
        self.record.finish_at(outcome, now);
        drop(self.backend);
    }
}

/// Response body sent to the client.
pub(crate) enum ProxyBody {
    /// A backend's response body, tracked until complete.
    Upstream {
        inner: Incoming,
        completion: Option<Completion>,
    },
    /// A backend's response body read by the fast path, tracked until
    /// complete.
    Fast {
        body: FastBody,
        completion: Option<Completion>,
    },
    /// A response generated by the proxy itself.
    Local(Option<Bytes>),
}

impl ProxyBody {
    pub(crate) fn upstream(inner: Incoming, completion: Completion) -> ProxyBody {
        ProxyBody::Upstream {
            inner,
            completion: Some(completion),
        }
    }

    pub(crate) fn fast(body: FastBody, completion: Completion) -> ProxyBody {
        ProxyBody::Fast {
            body,
            completion: Some(completion),
        }
    }

    /// For the fast path: completes the request once its body has ended.
    fn finish_fast_if_ended(&mut self, intact: bool) {
        if let ProxyBody::Fast { body, completion } = self {
            if !intact || body.is_end_stream() {
                if let Some(completion) = completion.take() {
                    // One clock read for the pool's idle time and the
                    // request's latency.
                    let now = Instant::now();
                    if let Some(conn) = body.take_reusable() {
                        completion.recycle(conn, now);
                    }
                    completion.complete_at(intact, now);
                }
            }
        }
    }

    pub(crate) fn local(body: Bytes) -> ProxyBody {
        ProxyBody::Local(Some(body))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match this {
            ProxyBody::Fast { body, completion } => {
                if completion.is_none() {
                    // Ended already (and the connection given back).
                    return Poll::Ready(None);
                }
                let frame = ready!(body.poll_data(cx));
                let intact = !matches!(frame, Some(Err(_)));
                if frame.is_none() || !intact || body.is_end_stream() {
                    this.finish_fast_if_ended(intact);
                }
                Poll::Ready(frame.map(|result| result.map(Frame::data).map_err(BoxError::from)))
            }
            ProxyBody::Local(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            ProxyBody::Upstream { inner, completion } => {
                let frame = ready!(Pin::new(&mut *inner).poll_frame(cx));
                let intact = match &frame {
                    Some(Ok(_)) if !inner.is_end_stream() => {
                        return Poll::Ready(frame.map(|result| result.map_err(BoxError::from)))
                    }
                    Some(Ok(_)) | None => true,
                    Some(Err(_)) => false,
                };
                if let Some(completion) = completion.take() {
                    completion.complete(intact);
                }
                Poll::Ready(frame.map(|result| result.map_err(BoxError::from)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Local(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            ProxyBody::Upstream { inner, .. } => inner.is_end_stream(),
            ProxyBody::Fast { body, completion } => completion.is_none() || body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Local(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ProxyBody::Upstream { inner, .. } => inner.size_hint(),
            ProxyBody::Fast { body, .. } => body.size_hint(),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        match self {
            ProxyBody::Upstream { completion, .. } => {
                if let Some(completion) = completion.take() {
                    completion.complete(true);
                }
            }
            ProxyBody::Fast { .. } => {
                // Not polled to its end: either known to be empty (hyper
                // does not poll those) or dropped early (client gone),
                // counted like the upstream case. In the latter case the
                // connection is closed, as the rest of the response may
                // still be on its way.
                self.finish_fast_if_ended(true);
                if let ProxyBody::Fast { completion, .. } = self {
                    if let Some(completion) = completion.take() {
                        completion.complete(true);
                    }
                }
            }
            ProxyBody::Local(_) => {}
        }
    }
}
