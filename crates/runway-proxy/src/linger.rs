//! Lingering close of client connections (like nginx's `lingering_close`).
//!
//! When the proxy ends a connection while the client is still sending (a
//! request body the proxy did not read, a pipelined request, a malformed head
//! hyper answered `400` to), closing the socket at once with unread bytes in
//! the kernel's receive buffer, or with more arriving, makes the kernel send
//! a RST. A RST destroys whatever the client has not read yet, often the very
//! answer that explains why the connection ends (a `503` maintenance page, a
//! `400`), and the client sees `ECONNRESET`/`EPIPE` instead.
//!
//! [`Lingering`] wraps each accepted socket. When hyper is done with the
//! connection and drops it, and the client has not closed its side yet (no
//! EOF was read), the socket is handed to a small task that shuts down the
//! write side (FIN after the response, if hyper did not already) and reads
//! and discards what still comes in until the client closes (EOF), an error,
//! [`LINGER_IDLE`] without data or [`LINGER_TOTAL`] in all; only then is it
//! closed. A client that closed first (the usual end of a keep-alive
//! connection) costs nothing: its EOF was seen and the socket is closed at
//! once.
//!
//! The wrapper is one `Option` and one flag around the `TcpStream`, no
//! allocation; every read and write goes straight through (vectored writes
//! included). Upgraded connections (WebSocket tunnels) keep the same wrapper,
//! so a tunnel that ends without the client's EOF lingers too.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::admission::Admitted;
use crate::timeouts::ConnClock;

/// Longest a closed connection lingers in all.
pub(crate) const LINGER_TOTAL: Duration = Duration::from_secs(10);
/// Longest a lingering connection waits for the client's next bytes.
pub(crate) const LINGER_IDLE: Duration = Duration::from_secs(2);

/// An accepted client socket that closes by lingering (see the module docs).
pub(crate) struct Lingering {
    /// `None` only while being dropped.
    stream: Option<TcpStream>,
    /// The client closed its side (a read returned EOF) or the socket failed:
    /// nothing can be left unread, close at once.
    done: bool,
    /// The connection's timeouts: told of every read and of writes the client is slow to
    /// take, and whether to say `408` at the end.
    clock: Arc<ConnClock>,
    /// The connection's place under the connection limit: held as long as the socket is,
    /// through a WebSocket tunnel and the lingering close.
    admitted: Option<Admitted>,
}

impl Lingering {
    pub(crate) fn new(stream: TcpStream, clock: Arc<ConnClock>, admitted: Admitted) -> Lingering {
        Lingering {
            stream: Some(stream),
            done: false,
            clock,
            admitted: Some(admitted),
        }
    }

    fn stream(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        match self.stream.as_mut() {
            Some(stream) => Ok(Pin::new(stream)),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = match this.stream() {
            Ok(stream) => stream.poll_read(cx, buf),
            Err(error) => return Poll::Ready(Err(error)),
        };
        match &result {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.clock.on_read(&buf.filled()[before..]);
            }
            Poll::Ready(Ok(())) if buf.remaining() > 0 => {
                this.done = true;
            }
            Poll::Ready(Err(_)) => this.done = true,
            _ => {}
        }
        result
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = match this.stream() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(error) => return Poll::Ready(Err(error)),
        };
        this.clock.on_write(result.is_pending());
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = match this.stream() {
            Ok(stream) => stream.poll_write_vectored(cx, bufs),
            Err(error) => return Poll::Ready(Err(error)),
        };
        this.clock.on_write(result.is_pending());
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream
            .as_ref()
            .is_some_and(AsyncWrite::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_flush(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_shutdown(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        if self.done {
            return;
        }
        let farewell = self.clock.farewell();
        let admitted = self.admitted.take();
        // Outside a runtime (cannot happen for served connections) the
        // socket just closes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                linger(stream, farewell).await;
                drop(admitted);
            });
        }
    }
}

/// Writes `farewell` (an answer of the proxy's own, when the connection ends for a
/// reason the client should hear), sends FIN, then reads and discards until the client
/// closes or the bounds are reached; the socket closes when this returns.
pub(crate) async fn linger(mut stream: TcpStream, farewell: Option<&'static [u8]>) {
    if let Some(answer) = farewell {
        let write = tokio::time::timeout(LINGER_IDLE, stream.write_all(answer));
        if !matches!(write.await, Ok(Ok(()))) {
            return;
        }
    }
    // Harmless when hyper already shut the write side down.
    if stream.shutdown().await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER_TOTAL;
    let mut discard = [0u8; 4096];
    loop {
        let wait = (Instant::now() + LINGER_IDLE).min(deadline);
        match tokio::time::timeout_at(wait, stream.read(&mut discard)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => return,
            Ok(Ok(_)) => {}
        }
    }
}
