//! The accept loop and graceful shutdown.
//!
//! Connections are served by hyper's HTTP/1.1 server with keep-alive and
//! `TCP_NODELAY`, which is what a reverse proxy in front of the app (runway's,
//! or nginx in the benchmarks) expects from an upstream.
//!
//! Draining works with one `watch` channel: every connection task holds a
//! receiver. On shutdown the server stops accepting, closes the listener,
//! flips the channel to `true` — each connection then finishes the request it
//! is serving and closes, idle keep-alive connections close at once, and
//! WebSocket echo sessions end — and waits until every receiver is gone, or
//! the drain timeout passes. hyper-util's `GracefulShutdown` does the same but
//! does not accept HTTP/1 connections with upgrades enabled, which `/ws` needs.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::app::App;
use crate::args::Args;

/// Pause after a failed `accept` (e.g. out of file descriptors), so that a
/// persistent error does not spin a core or flood stderr.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves the demo app on `listener` until `shutdown` completes, then drains
/// in-flight requests for up to `--shutdown-timeout-ms` and returns `Ok`.
///
/// Unlike [`run`](crate::run) this neither binds, nor installs signal
/// handlers, nor applies the process-level faults (`--fail-start`,
/// `--crash-after-ms`), so it can run inside a test or another program. The
/// `--host`/`--port` flags are ignored: the listener's address is used.
///
/// Connections still open when the drain timeout passes are left to the
/// runtime; they end when it shuts down.
pub async fn run_on<F>(listener: TcpListener, args: Args, shutdown: F) -> anyhow::Result<()>
where
    F: Future<Output = ()>,
{
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let app = Arc::new(App::new(&args, addr.port(), stop_rx.clone())?);
    let version = args.version;
    println!(
        "demo-app {version} listening on {addr} pid {}",
        std::process::id()
    );

    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).keep_alive(true);

    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(err) => {
                    eprintln!("demo-app {version}: accept failed: {err}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        tokio::spawn(serve_connection(
            &http,
            stream,
            Arc::clone(&app),
            stop_rx.clone(),
        ));
    }

    drop(listener);
    println!("demo-app {version} shutting down: draining in-flight requests");
    // Only connection tasks (and echo sessions) may hold receivers now.
    drop(app);
    drop(stop_rx);
    stop_tx.send_replace(true);
    let drain = Duration::from_millis(args.shutdown_timeout_ms);
    match tokio::time::timeout(drain, stop_tx.closed()).await {
        Ok(()) => println!("demo-app {version} stopped"),
        Err(_) => println!(
            "demo-app {version} stopped: drain timeout of {} ms passed with requests in flight",
            drain.as_millis()
        ),
    }
    Ok(())
}

/// Returns the task serving one connection. `stop` is held until the
/// connection is closed, which is what the drain waits for.
fn serve_connection(
    http: &http1::Builder,
    stream: TcpStream,
    app: Arc<App>,
    mut stop: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    // Small responses must not wait for Nagle's algorithm. Failure only costs
    // latency, so it is ignored.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let app = Arc::clone(&app);
        async move { app.handle(req).await }
    });
    let conn = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    async move {
        let mut conn = pin!(conn);
        // Connection errors (client resets, malformed requests) are the
        // client's business; a demo app has nobody to report them to.
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stop.wait_for(|stop| *stop) => conn.as_mut().graceful_shutdown(),
        }
        let _ = conn.await;
    }
}
