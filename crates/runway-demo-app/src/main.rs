//! The standalone `runway-demo-app` binary; see the library docs.

use clap::Parser;

/// A small configurable HTTP app used by runway's demo, tests and benchmarks.
#[derive(Parser, Debug)]
// `--version` is the release version the app reports, not clap's flag.
#[command(name = "runway-demo-app", disable_version_flag = true)]
struct Cli {
    #[command(flatten)]
    args: runway_demo_app::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runway_demo_app::run(Cli::parse().args).await
}
