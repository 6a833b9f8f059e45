//! Command-line flags of the demo app.
//!
//! The same [`Args`] struct serves two front ends: the standalone
//! `runway-demo-app` binary and the hidden `runway demo-app` subcommand of the
//! runway CLI. It therefore derives [`clap::Args`] (flattenable into any
//! command) rather than [`clap::Parser`].
//!
//! **`--version` caveat:** this app uses `--version` for the *release* version
//! it reports, which clashes with clap's automatic `--version` flag. Any
//! command that takes [`Args`] must not have that flag: set
//! `#[command(disable_version_flag = true)]` on it, as `src/main.rs` does for
//! its `#[command(flatten)]`. The runway CLI must do the same on its hidden
//! `demo-app` subcommand (needed there when the top-level command uses
//! `propagate_version`, and harmless otherwise). Without it clap panics when
//! building the command, in debug builds, or misparses `--version`.
//!
//! Defaults that come from the environment (`PORT`, `RUNWAY_VERSION`) match
//! what runway sets for the processes it supervises, so the app also works
//! when started by hand or by another supervisor with the same conventions.

use std::net::IpAddr;

/// Flags of the demo app: where to listen, which version to report and which
/// faults to simulate.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,

    /// Release version reported in responses (`x-version`, `/version`, health).
    #[arg(long, env = "RUNWAY_VERSION", default_value = "dev")]
    pub version: String,

    /// Share of requests to `/` answered with 500, chosen at random per request
    /// (0.0 ..= 1.0).
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub error_rate: f64,

    /// Delay added to every request to `/`, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,

    /// Extra random delay for `/`, uniform in 0..=N milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_jitter_ms: u64,

    /// `/health/ready` answers 503 until this many milliseconds after start
    /// (the app accepts connections at once).
    #[arg(long, default_value_t = 0)]
    pub slow_start_ms: u64,

    /// Exit with status 3 this many milliseconds after start (simulated crash).
    #[arg(long)]
    pub crash_after_ms: Option<u64>,

    /// `/health/ready` always answers 503 (simulated unhealthy release).
    #[arg(long)]
    pub fail_health: bool,

    /// Exit with status 2 at once (simulated release that cannot start).
    #[arg(long)]
    pub fail_start: bool,

    /// Print one line per request to stdout (off by default: benchmarks).
    #[arg(long)]
    pub log_requests: bool,

    /// Longest wait for in-flight requests after SIGTERM/SIGINT, in
    /// milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,
}

/// Parses a share in `0.0 ..= 1.0`, so that sampling can never panic later.
fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .trim()
        .parse()
        .map_err(|e| format!("`{s}` is not a number: {e}"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("`{s}` is not between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_version_flag = true)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("demo").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn parses_all_flags() {
        let args = parse(&[
            "--host",
            "127.0.0.2",
            "--port",
            "41234",
            "--version",
            "v2",
            "--error-rate",
            "0.2",
            "--latency-ms",
            "5",
            "--latency-jitter-ms",
            "3",
            "--slow-start-ms",
            "100",
            "--crash-after-ms",
            "200",
            "--fail-health",
            "--fail-start",
            "--log-requests",
            "--shutdown-timeout-ms",
            "50",
        ])
        .unwrap();
        assert_eq!(args.host.to_string(), "127.0.0.2");
        assert_eq!(args.port, 41234);
        assert_eq!(args.version, "v2");
        assert_eq!(args.error_rate, 0.2);
        assert_eq!((args.latency_ms, args.latency_jitter_ms), (5, 3));
        assert_eq!(args.slow_start_ms, 100);
        assert_eq!(args.crash_after_ms, Some(200));
        assert!(args.fail_health && args.fail_start && args.log_requests);
        assert_eq!(args.shutdown_timeout_ms, 50);
    }

    #[test]
    fn rejects_error_rate_out_of_range() {
        assert!(parse(&["--error-rate", "1.5"]).is_err());
        assert!(parse(&["--error-rate", "-0.1"]).is_err());
        assert!(parse(&["--error-rate", "NaN"]).is_err());
        assert!(parse(&["--error-rate", "x"]).is_err());
        assert_eq!(parse(&["--error-rate", "1"]).unwrap().error_rate, 1.0);
    }

    #[test]
    fn works_as_a_subcommand() {
        #[derive(Parser)]
        #[command(version, propagate_version = true)]
        struct Runway {
            #[command(subcommand)]
            cmd: Cmd,
        }
        #[derive(clap::Subcommand)]
        enum Cmd {
            /// Hidden, as in the runway CLI.
            #[command(hide = true, disable_version_flag = true)]
            DemoApp(Args),
        }
        let cli = Runway::try_parse_from(["runway", "demo-app", "--port", "1", "--version", "v9"])
            .unwrap();
        let Cmd::DemoApp(args) = cli.cmd;
        assert_eq!((args.port, args.version.as_str()), (1, "v9"));
        // The top-level command keeps clap's own `--version`.
        let err = Runway::try_parse_from(["runway", "--version"])
            .err()
            .unwrap();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
    }
}
