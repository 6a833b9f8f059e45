//! Commands that read state: `status`, `history`, `nodes`, `logs`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::output::{describe, seconds_between, table};
use super::{Cli, NodesCommand};
use crate::api_types::{LogsResponse, ReplicaView, StatusView};
use crate::store::Deployment;

pub async fn status(cli: &Cli, watch: bool, json: bool) -> Result<ExitCode> {
    let client = cli.client();
    loop {
        let status: StatusView = client.get("/v1/status").await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&status)?);
        } else {
            if watch {
                print!("\x1b[2J\x1b[H"); // clear the screen for the next frame
            }
            print_status(&status);
        }
        if !watch {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn print_status(status: &StatusView) {
    if status.services.is_empty() {
        println!("no services yet: deploy one with `runway deploy VERSION`");
    }
    for s in &status.services {
        let serving = s
            .serving
            .iter()
            .map(|r| {
                format!(
                    "{} (deployment #{}, {} replicas)",
                    r.version, r.deployment_id, r.replicas
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "service {} on {}: serving {}",
            s.name,
            s.listen,
            if serving.is_empty() {
                "nothing yet"
            } else {
                &serving
            }
        );
        if let Some(d) = &s.deployment {
            let last = d.last_event.as_ref().map(describe).unwrap_or_default();
            println!("  in progress: {} — {last}", d.description);
        }
        print_replicas(&s.replicas);
        if !s.metrics.is_empty() {
            let mut t = table(&[
                "release",
                "requests",
                "2xx",
                "4xx",
                "5xx",
                "failed",
                "error rate",
                "p50",
                "p95",
                "p99",
                "in flight",
            ]);
            for m in &s.metrics {
                t.add_row(vec![
                    m.release.clone(),
                    m.requests.to_string(),
                    m.status_2xx.to_string(),
                    m.status_4xx.to_string(),
                    m.status_5xx.to_string(),
                    m.failed.to_string(),
                    format!("{:.2}%", m.error_rate * 100.0),
                    ms(m.latency_p50),
                    ms(m.latency_p95),
                    ms(m.latency_p99),
                    m.in_flight.to_string(),
                ]);
            }
            println!("{t}");
        }
    }
}

fn ms(seconds: f64) -> String {
    format!("{:.1}ms", seconds * 1000.0)
}

fn print_replicas(replicas: &[ReplicaView]) {
    let mut t = table(&[
        "node",
        "version",
        "port",
        "pid",
        "state",
        "health",
        "in rotation",
        "restarts",
        "last error",
    ]);
    for r in replicas {
        t.add_row(vec![
            r.name.clone(),
            r.version.clone(),
            r.port.to_string(),
            r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            r.state.clone(),
            r.health.clone(),
            if r.in_rotation { "yes" } else { "no" }.to_string(),
            r.restarts.to_string(),
            r.last_error.clone().unwrap_or_default(),
        ]);
    }
    println!("{t}");
}

pub async fn history(cli: &Cli, json: bool, limit: u32) -> Result<ExitCode> {
    let client = cli.client();
    let service = match &cli.service {
        Some(s) => format!("&service={s}"),
        None => String::new(),
    };
    let rows: Vec<Deployment> = client
        .get(&format!("/v1/deployments?limit={limit}{service}"))
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&[
        "id", "service", "kind", "version", "from", "status", "started", "took", "reason",
    ]);
    for d in &rows {
        let took = d
            .finished_at
            .as_deref()
            .and_then(|f| seconds_between(&d.started_at, f))
            .map(|s| format!("{s:.1}s"))
            .unwrap_or_else(|| "-".into());
        t.add_row(vec![
            d.id.to_string(),
            d.service.clone(),
            format!("{:?}", d.kind).to_lowercase(),
            d.version.clone(),
            d.previous_version.clone().unwrap_or_else(|| "-".into()),
            d.status.as_str().to_string(),
            d.started_at.clone(),
            took,
            d.reason.clone().unwrap_or_default(),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

pub async fn nodes(cli: &Cli, cmd: &NodesCommand) -> Result<ExitCode> {
    let client = cli.client();
    let service = cli.service(&client).await?;
    let (node, action) = match cmd {
        NodesCommand::List { json } => {
            let replicas: Vec<ReplicaView> =
                client.get(&format!("/v1/services/{service}/nodes")).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&replicas)?);
            } else {
                print_replicas(&replicas);
            }
            return Ok(ExitCode::SUCCESS);
        }
        NodesCommand::Restart { node } => (node, "restart"),
        NodesCommand::Stop { node } => (node, "stop"),
        NodesCommand::Start { node } => (node, "start"),
    };
    let answer: serde_json::Value = client
        .post(
            &format!("/v1/services/{service}/nodes/{node}/{action}"),
            &serde_json::json!({}),
        )
        .await?;
    println!("{}", answer["message"].as_str().unwrap_or("done"));
    Ok(ExitCode::SUCCESS)
}

/// Which replicas' logs to show.
pub struct LogFilter<'a> {
    pub version: Option<&'a str>,
    pub node: Option<&'a str>,
}

pub async fn logs(
    cli: &Cli,
    follow: bool,
    lines: usize,
    filter: LogFilter<'_>,
    json: bool,
) -> Result<ExitCode> {
    let client = cli.client();
    let service = cli.service(&client).await?;
    let mut query = format!("n={lines}");
    if let Some(v) = filter.version {
        query.push_str(&format!("&version={}", encode(v)));
    }
    if let Some(n) = filter.node {
        query.push_str(&format!("&node={}", encode(n)));
    }
    let mut cursor: Option<BTreeMap<String, u64>> = None;
    loop {
        let mut q = query.clone();
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={}", encode(&serde_json::to_string(c)?)));
        }
        let answer: LogsResponse = client
            .get(&format!("/v1/services/{service}/logs?{q}"))
            .await?;
        for l in &answer.lines {
            if json {
                println!("{}", serde_json::to_string(l)?);
            } else {
                println!("{} | {}", l.replica, l.line);
            }
        }
        if !follow {
            return Ok(ExitCode::SUCCESS);
        }
        // Keep offsets of replicas seen before; new replicas start from their current end.
        let mut next = cursor.unwrap_or_default();
        next.extend(answer.cursor);
        cursor = Some(next);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
