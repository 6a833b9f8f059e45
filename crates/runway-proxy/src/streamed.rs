//! Request bodies streamed to a replica: never a truncated body that looks complete.
//!
//! A body too large to buffer (or of unknown length) goes to the replica as it arrives.
//! When the client gives up halfway (it disconnects, or its chunked encoding breaks), the
//! replica has received part of the body. Had the proxy then closed the connection normally
//! (FIN), a replica that reads "until the length or the end of the stream" (Python's
//! `rfile.read(n)`, many CGI-style readers) would see a short body end cleanly and might act
//! on it. So a streamed body goes on a connection of its own (not the pool's, where other
//! requests would share its fate), set to reset on close (`SO_LINGER` 0: RST) from the
//! start, and only once the body has ended cleanly is the ordinary close restored. A
//! client that gives up, a broken chunked encoding, a request dropped mid-way or the
//! proxy's process exiting all reset it: the replica's next read fails with `ECONNRESET`,
//! what it has is not a request. nginx avoids the case by buffering every body
//! to disk first; runway buffers up to 1 MiB (and retries those) and streams the rest.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::debug;

use crate::body::{ClientBodyWatch, UpstreamBody};
use crate::routes::BackendState;

/// A connection to a replica that resets when the client's body failed.
struct ResetOnFailure {
    stream: TcpStream,
    watch: Arc<ClientBodyWatch>,
}

impl Drop for ResetOnFailure {
    fn drop(&mut self) {
        // The connection was set to reset on close when it was made (so that a process
        // exit mid-upload resets it too); a body that ended cleanly closes normally.
        if self.watch.ended().is_some() && self.watch.failed().is_none() {
            #[allow(deprecated)] // SO_LINGER off: an ordinary close, which never blocks
            if let Err(error) = self.stream.set_linger(None) {
                debug!(%error, "cannot restore the replica connection's close");
            }
        }
    }
}

impl AsyncRead for ResetOnFailure {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResetOnFailure {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Why a streamed request failed.
#[derive(Debug)]
pub(crate) enum StreamedError {
    Connect(io::Error),
    ConnectTimeout,
    Http(hyper::Error),
}

impl StreamedError {
    pub(crate) fn is_connect(&self) -> bool {
        matches!(
            self,
            StreamedError::Connect(_) | StreamedError::ConnectTimeout
        )
    }

    pub(crate) fn is_timeout(&self) -> bool {
        matches!(self, StreamedError::ConnectTimeout)
    }
}

impl std::fmt::Display for StreamedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamedError::Connect(error) => write!(f, "connecting failed: {error}"),
            StreamedError::ConnectTimeout => f.write_str("connecting timed out"),
            StreamedError::Http(error) => write!(f, "{error}"),
        }
    }
}

/// Sends `request`, whose body streams from the client (`watch` tells how that goes), to
/// `backend` on a connection of its own.
pub(crate) async fn send(
    backend: &BackendState,
    mut request: Request<UpstreamBody>,
    watch: Arc<ClientBodyWatch>,
) -> Result<Response<Incoming>, StreamedError> {
    let stream =
        match tokio::time::timeout(backend.connect_timeout, TcpStream::connect(backend.addr)).await
        {
            Err(_) => return Err(StreamedError::ConnectTimeout),
            Ok(Err(error)) => return Err(StreamedError::Connect(error)),
            Ok(Ok(stream)) => stream,
        };
    let _ = stream.set_nodelay(true);
    // Reset on close until the body has ended cleanly (see `ResetOnFailure`).
    if let Err(error) = stream.set_zero_linger() {
        debug!(%error, "cannot set the replica connection to reset");
    }
    let io = TokioIo::new(ResetOnFailure { stream, watch });
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(StreamedError::Http)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            debug!(%error, "streamed request's connection ended with an error");
        }
    });
    // On its own connection a request is written as given: the origin form.
    let path = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *request.uri_mut() = Uri::from(path);
    // As the other paths do: a request without Host (HTTP/1.0) names the replica.
    if !request.headers().contains_key(http::header::HOST) {
        if let Ok(host) = http::HeaderValue::from_str(backend.authority.as_str()) {
            request.headers_mut().insert(http::header::HOST, host);
        }
    }
    sender
        .send_request(request)
        .await
        .map_err(StreamedError::Http)
}
