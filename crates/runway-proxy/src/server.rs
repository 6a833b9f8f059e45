//! The client-facing accept loop and graceful shutdown.
//!
//! hyper-util's `auto` builder serves HTTP/1.1 with keep-alive and detects
//! HTTP/2 prior knowledge (h2c) per connection, so benchmarks and gRPC-style
//! clients both work on one port. Each connection is registered with the
//! listener's [`Drain`] as it is accepted: on shutdown, an HTTP/1 connection
//! ends after its next answer (which says `Connection: close`) or after a
//! short grace when it stays silent, an HTTP/2 one is told `GOAWAY`, all
//! bounded by [`SHUTDOWN_GRACE`] (see `drain`). Accepted connections are
//! served on the proxy's worker threads (see `worker`), not on the runtime
//! running the accept loop. Each
//! socket is wrapped in [`Lingering`], so a connection the proxy ends while
//! the client is still sending closes with FIN, not RST (see `linger`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderValue;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::admission;
use crate::drain::Drain;
use crate::forward;
use crate::headers;
use crate::linger::Lingering;
use crate::local;
use crate::metrics::ClientError;
use crate::timeouts::{self, ClockedBody, ConnClock, Expired, TimedBody};
use crate::worker;
use crate::Inner;

/// How long in-flight requests may take to finish after shutdown started.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Pause after an accept error that is not about a single connection (e.g.
/// out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

pub(crate) async fn serve(
    inner: Arc<Inner>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Deliberately no hyper timer: with one, hyper arms a boxed header-read
    // timeout per request, a measurable cost on the hot path. The header and
    // idle timeouts are the proxy's own (see `timeouts`).
    let builder = auto::Builder::new(TokioExecutor::new());

    let drain = Drain::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    warn!(service = %inner.service, %error, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
        };
        let Some(admitted) = admission::admit() else {
            debug!(service = %inner.service, %peer, "over the connection limit, answered 503");
            admission::refuse(stream);
            continue;
        };
        if let Err(error) = stream.set_nodelay(true) {
            debug!(%error, "set_nodelay failed");
        }

        // Formatted once per connection, cloned (refcount) per request.
        let client_ip = HeaderValue::from_str(&peer.ip().to_string())
            .expect("an IP address is a valid header value");
        // The connection is served by a proxy worker thread (see `worker`);
        // its socket moves to that thread's reactor.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                debug!(%peer, %error, "cannot hand over the connection");
                continue;
            }
        };
        let inner = Arc::clone(&inner);
        let builder = builder.clone();
        let registration = drain.register();
        worker::spawn(move || async move {
            let stream = match TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(error) => {
                    debug!(%peer, %error, "cannot register the connection");
                    return;
                }
            };
            let clock = ConnClock::for_socket(std::os::fd::AsRawFd::as_raw_fd(&stream));
            let limits = inner.client_limits.timeouts();
            let service = {
                let clock = Arc::clone(&clock);
                let inner = Arc::clone(&inner);
                service_fn(move |req: Request<Incoming>| {
                    let in_flight = clock.begin();
                    let (inner, client_ip) = (Arc::clone(&inner), client_ip.clone());
                    let version = req.version();
                    // Draining: a tunnel opened now would be cut as this server exits, so
                    // the client is sent to the successor (see `drain`).
                    let refused = (in_flight.closing() && headers::is_upgrade_request(&req))
                        .then(|| forward::refuse_upgrade_while_draining(&req));
                    // hyper moves the future it gets into its dispatcher once per request:
                    // this one holds the request, not `handle`'s state (about 2 KiB), which
                    // goes to the heap as it starts.
                    async move {
                        let mut response = match refused {
                            Some(refused) => refused,
                            None => {
                                let clock = Arc::clone(in_flight.clock());
                                let req = req.map(|body| ClockedBody::new(body, clock));
                                Box::pin(forward::handle(inner, client_ip, req)).await?
                            }
                        };
                        in_flight.clock().answered();
                        // Draining: this answer is the connection's last (see `drain`).
                        if in_flight.closing()
                            && response.status() != StatusCode::SWITCHING_PROTOCOLS
                        {
                            local::mark_last(&mut response, version);
                        }
                        Ok::<_, std::convert::Infallible>(
                            response.map(|body| TimedBody::new(body, in_flight)),
                        )
                    }
                })
            };
            let io = TokioIo::new(Lingering::new(stream, Arc::clone(&clock), admitted));
            let connection = builder
                .serve_connection_with_upgrades(io, service)
                .into_owned();
            let served = registration.watch(connection, Arc::clone(&clock));
            match timeouts::watch(served, &clock, limits).await {
                None => {}
                Some(Expired::Head) => debug!(%peer, "request head too slow, answered 408"),
                Some(Expired::Idle) => debug!(%peer, "idle keep-alive connection closed"),
                Some(Expired::Body) => {
                    // The client stopped sending its body: its failure, in no release's counts.
                    inner.client_errors.count(ClientError::ClientAborted);
                    debug!(%peer, "request body too slow, connection closed")
                }
                Some(Expired::Send) => {
                    inner.client_errors.count(ClientError::ClientAborted);
                    debug!(%peer, "client took no answer byte in time, closed")
                }
            }
        });
    }

    drop(listener);
    info!(service = %inner.service, "proxy shutting down, draining connections");
    tokio::select! {
        () = drain.shutdown() => debug!(service = %inner.service, "all connections closed"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            warn!(service = %inner.service, "connections still open after {SHUTDOWN_GRACE:?}, giving up");
        }
    }
    Ok(())
}

/// Errors that concern only the connection being accepted.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionRefused
    )
}
