//! runway: deployment runbooks that run themselves.

use std::process::ExitCode;

use clap::Parser;
use runway_cli as cli;

/// `runway demo`, the demo app and the load generator: clients of the libraries like any other,
/// so they live here, not in them.
mod demo;

/// mimalloc instead of the system allocator: the proxy allocates and frees a
/// few small buffers per request (header maps, body chunks, futures), and
/// mimalloc's thread-local free lists make that measurably cheaper than
/// glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if !matches!(
        cli.command,
        cli::Command::Server { .. } | cli::Command::Demo | cli::Command::DemoApp { .. }
    ) {
        // A reporting command piped into `head` should end quietly, like any Unix tool, not
        // panic on a broken pipe. The long-running commands keep SIGPIPE ignored: a client
        // hanging up must never kill the server.
        // SAFETY: no other thread exists yet; setting a signal disposition is then sound.
        unsafe {
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            );
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUNWAY_LOG").unwrap_or_else(|_| {
        // The server logs what it does; other commands only warnings, to keep output readable.
        let level = if matches!(cli.command, cli::Command::Server { .. }) {
            "info"
        } else {
            "warn"
        };
        tracing_subscriber::EnvFilter::new(level)
    });
    // Colours only for a terminal; RUNWAY_LOG_FORMAT=json gives one JSON object per line for
    // log collectors.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var("RUNWAY_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match &cli.command {
        cli::Command::Demo => runtime.block_on(demo::run()),
        cli::Command::DemoApp { args } => runtime.block_on(demo::app(args)),
        cli::Command::Loadgen {
            addr,
            rps,
            workers,
            duration,
            timeline,
        } => runtime.block_on(demo::loadgen(demo::LoadgenArgs {
            addr: *addr,
            rps: *rps,
            workers: *workers,
            duration: *duration,
            timeline: timeline.clone(),
        })),
        _ => runtime.block_on(cli::run(cli)),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(hint) = cli::hint_of(&e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(cli::exit_status_of(&e))
        }
    }
}
