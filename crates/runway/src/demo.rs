//! `runway demo`: the whole story on one machine in under a minute, with nothing to install.
//!
//! It starts a real `runway server` in a temporary state dir, deploys the demo app (this same
//! binary, `runway demo-app`) as v1, drives steady HTTP load through the proxy, rolls to v2,
//! shows a bad v3 refused by its health check, rolls back, and prints what the load saw. Every
//! step runs the real CLI, so what you see is what you would type.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use runway_demo_app::load::Load;
use runway_wire::api::DeploymentView;

/// Requests per second the demo's load aims at (spread over a few keep-alive connections).
const LOAD_RPS: u64 = 400;
const LOAD_WORKERS: u64 = 8;

pub async fn run() -> Result<ExitCode> {
    let exe = std::env::current_exe().context("locating the runway binary")?;
    let tmp = tempfile::Builder::new().prefix("runway-demo-").tempdir()?;
    let state_dir = tmp.path().join("state");
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    write_configs(tmp.path(), &exe, listen)?;
    println!(
        "== runway demo: state in {}, service on http://{listen}",
        tmp.path().display()
    );

    let mut server = tokio::process::Command::new(&exe)
        .args(["server", "--state-dir"])
        .arg(&state_dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("server.log"))?)
        .kill_on_drop(true)
        .spawn()
        .context("starting runway server")?;
    // Ctrl-C or SIGTERM end the story, not the cleanup: the server still stops its replicas
    // and the temporary directory still goes.
    let outcome = tokio::select! {
        outcome = story(&exe, tmp.path(), &state_dir, listen) => outcome,
        signal = interrupted() => {
            eprintln!("\n== {signal}: stopping the demo's server and its replicas, removing {}", tmp.path().display());
            Ok(ExitCode::from(130))
        }
    };

    // Stop the server gracefully: it drains and stops its replicas, leaving nothing behind.
    if let Some(pid) = server.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .is_err()
    {
        let _ = server.kill().await;
    }
    if outcome.is_err() {
        let log = std::fs::read_to_string(tmp.path().join("server.log")).unwrap_or_default();
        eprintln!("-- server log --\n{log}");
    }
    outcome
}

/// Waits for SIGINT or SIGTERM; names the one that came.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "interrupted",
            _ = term.recv() => "terminated",
        },
        // Without handlers nothing can interrupt the story from here.
        _ => std::future::pending().await,
    }
}

fn write_configs(dir: &Path, exe: &Path, listen: std::net::SocketAddr) -> Result<()> {
    let config = |extra: &str, deadline: &str| {
        format!(
            r#"[service]
name = "demo"
listen = "{listen}"

[run]
command = [{exe:?}, "demo-app", "--port", "{{port}}", "--version", "{{version}}", "--slow-start-ms", "300"{extra}]
replicas = 3
env = {{ APP_ENV = "demo" }}

[health]
path = "/health/ready"
interval = "1s"
timeout = "2s"
deadline = "{deadline}"

[strategy]
kind = "rolling"
max_surge = 1
max_unavailable = 0
"#,
            exe = exe.display().to_string()
        )
    };
    std::fs::write(dir.join("runway.toml"), config("", "30s"))?;
    // v3 is broken: its health check never passes.
    std::fs::write(
        dir.join("runway-bad.toml"),
        config(r#", "--fail-health""#, "3s"),
    )?;
    Ok(())
}

async fn story(
    exe: &Path,
    dir: &Path,
    state_dir: &Path,
    listen: std::net::SocketAddr,
) -> Result<ExitCode> {
    wait_for_server(state_dir).await?;
    let mut timings = Vec::new();

    step("deploy v1 (first release: 3 replicas)");
    timings.push((
        "deploy v1",
        cli(exe, dir, state_dir, &["deploy", "v1"], true).await?,
    ));

    let load = Load::start(listen, "/", LOAD_WORKERS, LOAD_RPS);
    tokio::time::sleep(Duration::from_secs(2)).await;

    step("roll to v2 under load (max_surge 1, max_unavailable 0)");
    timings.push((
        "deploy v2",
        cli(exe, dir, state_dir, &["deploy", "v2"], true).await?,
    ));

    step("deploy a bad v3: its health check fails, so it never gets traffic");
    timings.push((
        "deploy v3 (refused)",
        cli(
            exe,
            dir,
            state_dir,
            &["-f", "runway-bad.toml", "deploy", "v3"],
            false,
        )
        .await?,
    ));

    step("roll back to the release before v2");
    timings.push((
        "rollback",
        cli(exe, dir, state_dir, &["rollback"], true).await?,
    ));

    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = load.stop().await;
    step("history");
    cli(exe, dir, state_dir, &["history"], true).await?;

    let query = runway_wire::api::HistoryQuery {
        service: None,
        limit: Some(10),
    };
    let history: Vec<DeploymentView> = runway_cli::connect(state_dir).history(&query).await?;
    println!("\n== summary");
    println!("requests served:  {}", seen.ok);
    println!("requests failed:  {}", seen.failed);
    println!("responses by version: {}", seen.by_version());
    for (what, took) in &timings {
        println!("{what:<22} {:.1}s", took.as_secs_f64());
    }
    let serving = history
        .iter()
        .find(|d| d.status == runway_wire::record::Status::Succeeded)
        .map(|d| d.version.clone());
    println!("serving now: {}", serving.as_deref().unwrap_or("?"));
    if seen.failed > 0 || seen.ok == 0 {
        eprintln!("the demo saw failed requests: that is a bug in runway");
        return Ok(ExitCode::FAILURE);
    }
    println!("zero failed requests across every deployment, the refused one and the rollback.");
    Ok(ExitCode::SUCCESS)
}

fn step(text: &str) {
    println!("\n== {text}");
}

async fn wait_for_server(state_dir: &Path) -> Result<()> {
    let client = runway_cli::connect(state_dir);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if client.info().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the runway server did not come up within 20s")
}

/// Runs the real CLI, its output shown as is; checks it succeeded (or failed, when expected).
async fn cli(
    exe: &Path,
    dir: &Path,
    state_dir: &Path,
    args: &[&str],
    expect_success: bool,
) -> Result<Duration> {
    println!("$ runway {}", args.join(" "));
    let started = Instant::now();
    // Killed if the demo is interrupted (the story's future is dropped then), so that no CLI
    // keeps following a deployment of a server that is going away.
    let status = tokio::process::Command::new(exe)
        .args(args)
        .current_dir(dir)
        .env("RUNWAY_STATE_DIR", state_dir)
        .kill_on_drop(true)
        .status()
        .await?;
    if status.success() != expect_success {
        bail!(
            "`runway {}` {}",
            args.join(" "),
            if expect_success {
                "failed"
            } else {
                "unexpectedly succeeded"
            }
        );
    }
    Ok(started.elapsed())
}

/// `runway demo-app ARGS`: the demo app with its own arguments.
pub async fn app(args: &[String]) -> Result<ExitCode> {
    #[derive(clap::Parser)]
    #[command(name = "runway demo-app", disable_version_flag = true)]
    struct DemoApp {
        #[command(flatten)]
        args: runway_demo_app::Args,
    }
    let parsed = <DemoApp as clap::Parser>::try_parse_from(
        std::iter::once("runway demo-app".to_string()).chain(args.iter().cloned()),
    )
    .unwrap_or_else(|e| e.exit());
    runway_demo_app::run(parsed.args).await?;
    Ok(ExitCode::SUCCESS)
}

/// The arguments of `runway loadgen`.
pub struct LoadgenArgs {
    pub addr: std::net::SocketAddr,
    pub rps: u64,
    pub workers: u64,
    pub duration: Duration,
    pub timeline: Option<PathBuf>,
}

/// `runway loadgen`: steady load with a per-response timeline (the benchmarks use it).
pub async fn loadgen(args: LoadgenArgs) -> Result<ExitCode> {
    let load = runway_demo_app::load::Load::start_recording(
        args.addr,
        "/",
        args.workers,
        args.rps,
        args.timeline.is_some(),
    );
    tokio::time::sleep(args.duration).await;
    let mut seen = load.stop().await;
    if let Some(path) = &args.timeline {
        seen.timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
        let lines: String = seen
            .timeline
            .iter()
            .map(|(t, v, s)| format!("{t:.6},{v},{s}\n"))
            .collect();
        std::fs::write(path, lines)?;
    }
    let requests = (seen.ok + seen.failed) as f64;
    println!(
        "{}",
        serde_json::json!({
            "ok": seen.ok,
            "failed": seen.failed,
            "rps": requests / args.duration.as_secs_f64(),
            "versions": seen.versions,
        })
    );
    Ok(ExitCode::SUCCESS)
}
