//! Process-level behaviour: binding, signals and the simulated faults that end
//! the process.
//!
//! runway supervises releases as processes and judges them by exit status and
//! health, so `--fail-start` and `--crash-after-ms` really exit the process
//! (with statuses 2 and 3, distinct from the status 1 of an ordinary error),
//! rather than returning an error a caller could swallow. That is why these
//! faults live here and not in [`run_on`], which tests run in-process.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::args::Args;
use crate::server::run_on;

/// Exit status of `--fail-start`.
pub const EXIT_FAIL_START: i32 = 2;
/// Exit status of `--crash-after-ms`.
pub const EXIT_CRASH: i32 = 3;

/// Runs the demo app as a process: binds `--host:--port`, serves until SIGTERM
/// or SIGINT, drains in-flight requests (up to `--shutdown-timeout-ms`) and
/// returns `Ok`.
///
/// With `--fail-start` it exits the process with status 2 at once; with
/// `--crash-after-ms N` it exits with status 3 after N ms. Both print a line
/// to stderr first.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.fail_start {
        eprintln!(
            "demo-app {}: simulated start failure (--fail-start), exiting with status {EXIT_FAIL_START}",
            args.version
        );
        std::process::exit(EXIT_FAIL_START);
    }
    // Installed before the app announces itself, so that a supervisor's
    // SIGTERM right after start is a graceful shutdown, not a kill.
    let shutdown = shutdown_signal(args.version.clone())?;
    let listener = TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    if let Some(ms) = args.crash_after_ms {
        let version = args.version.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            eprintln!(
                "demo-app {version}: simulated crash after {ms} ms (--crash-after-ms), exiting with status {EXIT_CRASH}"
            );
            std::process::exit(EXIT_CRASH);
        });
    }
    run_on(listener, args, shutdown).await
}

/// Installs SIGTERM and SIGINT handlers now and returns a future that
/// completes on the first of them.
fn shutdown_signal(version: String) -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        Ok(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            println!("demo-app {version} received {name}");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            // If Ctrl-C cannot be handled, serve until the process is killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            println!("demo-app {version} received Ctrl-C");
        })
    }
}
