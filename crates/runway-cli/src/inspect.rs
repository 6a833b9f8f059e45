//! Commands that read state: `status`, `history`, `nodes`, `logs`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::output::{self, client_errors_line, describe, seconds_between, table};
use super::{BaselineCommand, Cli, NodesCommand};
use runway_wire::api::DeploymentView;
use runway_wire::api::{
    HistoryQuery, LogsQuery, LogsResponse, NodeAction, ReplicaView, StatusView,
};
use runway_wire::id::{BaselineId, DeploymentId};

pub async fn status(cli: &Cli, watch: bool, json: bool, all: bool) -> Result<ExitCode> {
    let client = cli.client();
    // Inside a project (a readable runway.toml), its service is the one a user means.
    let project = match (cli.service_flag(), all) {
        (None, false) => project_service(cli),
        _ => None,
    };
    loop {
        let mut status: StatusView = client.status().await?;
        let others = status.services.len();
        // --service shows that service only (and a name the server does not run is an error).
        if let Some(name) = cli.service_flag() {
            super::known_service(&status, name)?;
            status.services.retain(|s| s.name == name);
        } else if let Some(name) = &project {
            status.services.retain(|s| &s.name == name);
        }
        if json && watch {
            // A stream: one snapshot per line (NDJSON), each with its time.
            println!("{}", serde_json::to_string(&status)?);
        } else if json {
            println!("{}", serde_json::to_string_pretty(&status)?);
        } else {
            if watch {
                print!("\x1b[2J\x1b[H"); // clear the screen for the next frame
            }
            match &project {
                Some(name) if status.services.is_empty() => println!(
                    "service `{name}` (of {}) is not deployed on this server yet: `runway deploy \
                     VERSION` deploys it{}",
                    cli.file().display(),
                    if others > 0 {
                        format!("; `runway status --all` shows the {others} it runs")
                    } else {
                        String::new()
                    }
                ),
                _ => print_status(&status),
            }
        }
        if !watch {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The service of the project the CLI runs in: runway.toml's (`-f` or ./runway.toml), when it
/// can be read.
fn project_service(cli: &Cli) -> Option<String> {
    runway_spec::parse_file(&cli.file())
        .ok()
        .map(|spec| spec.service.name)
}

fn print_status(status: &StatusView) {
    if let Some(f) = &status.store_fault {
        println!(
            "state store: refusing writes since {} ({}); {} held, written by runway once it \
             takes writes again; running operations were stopped and taken back, new ones are \
             refused: free space for the state dir",
            f.since,
            f.error,
            super::deploy::plural(f.held_writes, "write")
        );
    }
    if status.services.is_empty() {
        println!("no services yet: deploy one with `runway deploy VERSION`");
    }
    for s in &status.services {
        let serving = s
            .serving
            .iter()
            .map(|r| {
                format!(
                    "{} (deployment #{}, {})",
                    r.version,
                    r.deployment_id,
                    super::deploy::plural(r.replicas, "replica")
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
        if let Some(m) = &s.maintenance {
            println!(
                "  MAINTENANCE since {} UTC (by {}): requests get the 503 page ({} so far){}",
                output::short_time(&m.since),
                m.by,
                s.refused.maintenance,
                m.message
                    .as_deref()
                    .map(|t| format!(": {t}"))
                    .unwrap_or_default()
            );
        }
        if let Some(m) = &s.read_only {
            println!(
                "  READ-ONLY since {} UTC (by {}): writes get 503 ({} so far)",
                output::short_time(&m.since),
                m.by,
                s.refused.read_only
            );
        }
        if let Some(f) = &s.frozen {
            println!(
                "  FROZEN since {} UTC by deployment #{}: {}",
                output::short_time(&f.since),
                f.deployment_id,
                f.reason
            );
        }
        if let Some(f) = &s.last_failure {
            println!(
                "  last {} #{} of {} {} at {} UTC: {}\n  (its logs: `runway logs --deployment {}`)",
                f.kind.as_str(),
                f.id,
                f.version,
                f.status.as_str().replace('_', " "),
                output::short_time(f.finished_at.as_deref().unwrap_or(&f.started_at)),
                f.reason.as_deref().unwrap_or("no reason recorded"),
                f.id
            );
        }
        if let Some(d) = &s.deployment {
            let last = d.last_event.as_ref().map(describe).unwrap_or_default();
            let started = d
                .started_at
                .as_deref()
                .map(|t| format!(", started {} UTC", output::short_time(t)))
                .unwrap_or_default();
            println!("  in progress: {}{started} — {last}", d.description);
            if let Some(c) = &d.canary {
                print_canary(c);
            }
        }
        if s.pods.is_empty() && s.pods_error.is_none() {
            print_replicas(&s.replicas);
        } else {
            print_pods(&s.pods, s.pods_error.as_deref());
        }
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
        if let Some(line) = client_errors_line(&s.client_errors) {
            println!("{line}");
        }
    }
}

fn print_canary(c: &runway_wire::api::CanaryView) {
    let pause = match (&c.paused, c.pause_left_seconds) {
        (Some(why), _) => format!("PAUSED: {why}"),
        (None, Some(left)) => format!("{left:.0}s left in this step's pause"),
        (None, None) => "waits for the analysis (or `runway promote`)".to_string(),
    };
    let share = match &c.effective {
        Some(effective) => format!("{}% step, {effective} of requests", c.weight),
        None => format!("{}% of requests", c.weight),
    };
    println!(
        "  canary: step {}/{}, {share}; {pause}; {} intervals judged",
        c.step, c.steps, c.intervals_judged
    );
    if c.metrics.is_empty() {
        return;
    }
    let mut t = table(&[
        "metric",
        "canary",
        "stable",
        "condition",
        "last verdicts",
        "why",
    ]);
    let num = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
    for m in &c.metrics {
        t.add_row(vec![
            m.name.clone(),
            num(m.canary),
            num(m.stable),
            m.condition.clone(),
            m.last_verdicts.join(" "),
            m.reason.clone(),
        ]);
    }
    println!("{t}");
}

fn ms(seconds: f64) -> String {
    format!("{:.1}ms", seconds * 1000.0)
}

fn print_replicas(replicas: &[ReplicaView]) {
    // A container has an id and an image where a process has a pid.
    let containers = replicas.iter().any(|r| r.container.is_some());
    let mut headers = vec!["node", "version", "port"];
    headers.extend(if containers {
        ["container", "image"].as_slice()
    } else {
        ["pid"].as_slice()
    });
    headers.extend(["state", "health", "in rotation", "restarts", "last error"]);
    let mut t = table(&headers);
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for r in replicas {
        let mut row = vec![r.name.clone(), r.version.clone(), r.port.to_string()];
        if containers {
            row.push(or_dash(r.container.clone()));
            row.push(or_dash(r.image.clone()));
        } else {
            row.push(or_dash(r.pid.map(|p| p.to_string())));
        }
        row.extend([
            r.state.clone(),
            r.health.clone(),
            if r.in_rotation { "yes" } else { "no" }.to_string(),
            r.restarts.to_string(),
            r.last_error.clone().unwrap_or_default(),
        ]);
        t.add_row(row);
    }
    println!("{t}");
}

/// A `[kubernetes]` service's pods, as `kubectl get pods -o wide` would show them.
fn print_pods(pods: &[runway_wire::api::PodView], error: Option<&str>) {
    if let Some(error) = error {
        println!("  pods: cannot read them: {error}");
        return;
    }
    let mut t = table(&[
        "pod", "version", "node", "phase", "ready", "restarts", "waiting",
    ]);
    for p in pods {
        t.add_row(vec![
            p.name.clone(),
            p.version.clone().unwrap_or_else(|| "-".into()),
            p.node.clone().unwrap_or_else(|| "-".into()),
            p.phase.clone(),
            if p.ready { "yes" } else { "no" }.to_string(),
            p.restarts.to_string(),
            p.waiting.clone().unwrap_or_default(),
        ]);
    }
    println!("{t}");
}

/// The width `runway history` fits in.
const HISTORY_WIDTH: u16 = 100;
/// How much of a cut reason `runway history` shows under its table.
const HISTORY_REASON_CHARS: usize = 400;

pub async fn history(cli: &Cli, json: bool, limit: u32, all: bool) -> Result<ExitCode> {
    let client = cli.client();
    let service = match (cli.service_flag(), all) {
        (Some(name), _) => Some(name.to_string()),
        // Inside a project, its service's deployments.
        (None, false) => project_service(cli),
        (None, true) => None,
    };
    let query = HistoryQuery {
        service,
        limit: Some(limit),
    };
    let rows: Vec<DeploymentView> = client.history(&query).await?;
    // A name with no deployment that the server does not run either is a typo (a removed
    // service keeps its history).
    if let (Some(name), true) = (cli.service_flag(), rows.is_empty()) {
        super::known_service(&client.status().await?, name)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    // 100 columns at most, one line a deployment: the reason column gets what the others
    // leave and is cut there; a cut reason follows the table in full (wrapped), and `--json`
    // and `runway logs --deployment ID` have everything.
    let one_service = rows
        .iter()
        .all(|d| rows.first().is_some_and(|f| f.service == d.service));
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|d| {
            let took = d
                .finished_at
                .as_deref()
                .and_then(|f| seconds_between(&d.started_at, f))
                .map(|s| format!("{s:.1}s"))
                .unwrap_or_else(|| "-".into());
            let mut row = vec![d.id.to_string()];
            if !one_service {
                row.push(d.service.clone());
            }
            row.extend([
                d.kind.as_str().to_string(),
                d.version.clone(),
                d.previous_version.clone().unwrap_or_else(|| "-".into()),
                match d.rolled_back_by {
                    Some(by) => format!("{}, rolled back by #{by}", d.status.as_str()),
                    None => d.status.as_str().to_string(),
                },
                output::short_time(&d.started_at),
                took,
            ]);
            row
        })
        .collect();
    let mut headers = vec!["id"];
    if !one_service {
        headers.push("service");
    }
    headers.extend(["kind", "version", "from", "status", "started (UTC)", "took"]);
    // Each column is as wide as its widest cell, plus 3 for its border and padding.
    let fixed: usize = (0..headers.len())
        .map(|i| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
                + 3
        })
        .sum();
    let reason_width = (usize::from(HISTORY_WIDTH))
        .saturating_sub(fixed + 4)
        .max(10);
    headers.push("reason");
    let mut t = output::table(&headers);
    let mut cut = Vec::new();
    for (d, mut row) in rows.iter().zip(cells) {
        let reason = d.reason.as_deref().unwrap_or_default();
        let shown = output::clip(reason, reason_width);
        if shown != reason {
            cut.push((d.id, reason));
        }
        row.push(shown);
        t.add_row(row);
    }
    println!("{t}");
    for (id, reason) in cut {
        let full = output::clip(reason, HISTORY_REASON_CHARS);
        for line in output::wrap(
            &format!("#{id}: {full}"),
            usize::from(HISTORY_WIDTH),
            "    ",
        ) {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn backups(cli: &Cli, json: bool) -> Result<ExitCode> {
    let client = cli.client();
    let service = cli.service(&client).await?;
    let rows = client.backups(&service).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!(
            "`{service}` has no backups: a deploy takes one when runway.toml has [hooks.backup]"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&[
        "id",
        "deployment",
        "version",
        "state",
        "size",
        "taken",
        "dir",
    ]);
    for b in &rows {
        t.add_row(vec![
            b.id.to_string(),
            format!("#{}", b.deployment_id),
            b.version.clone(),
            b.state.clone(),
            format!("{} B", b.size_bytes),
            b.created_at.clone(),
            b.dir.clone(),
        ]);
    }
    println!("{t}");
    println!("restore one with `runway restore ID` (maintenance page on while it runs)");
    Ok(ExitCode::SUCCESS)
}

/// `runway logs --deployment ID`: what each hook of the deployment printed.
/// `logs --deployment ID`: the output of the deployment's hooks, then the logs of the replicas
/// it started (running or not).
pub async fn deployment_logs(cli: &Cli, id: i64, lines: usize, json: bool) -> Result<ExitCode> {
    let client = cli.client();
    let deployment = client.deployment(DeploymentId(id)).await?.deployment;
    let runs = client.hook_runs(DeploymentId(id)).await?;
    let query = LogsQuery {
        deployment: Some(DeploymentId(id)),
        n: Some(lines),
        ..LogsQuery::default()
    };
    let replicas = client.logs(&deployment.service, &query).await?;
    if json {
        // The same line shape as `logs --json`: each hook's output, then each replica's.
        for run in &runs {
            for line in run.output.lines() {
                let line = runway_wire::api::LogLine {
                    at: None,
                    replica: None,
                    version: None,
                    hook: Some(run.phase.clone()),
                    line: line.to_string(),
                };
                println!("{}", serde_json::to_string(&line)?);
            }
        }
        for line in &replicas.lines {
            println!("{}", serde_json::to_string(line)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("deployment #{id} ran no hooks");
    }
    for run in &runs {
        println!(
            "== {} hook: {} ({}{})",
            run.phase,
            run.argv.join(" "),
            run.outcome,
            run.detail
                .as_deref()
                .map(|d| format!(", {d}"))
                .unwrap_or_default()
        );
        print!("{}", run.output);
        if !run.output.is_empty() && !run.output.ends_with('\n') {
            println!();
        }
    }
    if replicas.cursor.is_empty() {
        println!("deployment #{id} started no replicas");
    } else {
        println!(
            "== replicas deployment #{id} started: {}",
            replicas
                .cursor
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for l in &replicas.lines {
        println!("{} | {}", l.replica.as_deref().unwrap_or("-"), l.line);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn nodes(cli: &Cli, cmd: &NodesCommand) -> Result<ExitCode> {
    let client = cli.client();
    let service = cli.service(&client).await?;
    let (node, action) = match cmd {
        NodesCommand::List { json, .. } => {
            let replicas: Vec<ReplicaView> = client.nodes(&service).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&replicas)?);
                return Ok(ExitCode::SUCCESS);
            }
            // A cluster's nodes are its pods, which the status reads from it.
            let status = client.status().await?;
            match status.services.iter().find(|s| s.name == service) {
                Some(s)
                    if replicas.is_empty() && (!s.pods.is_empty() || s.pods_error.is_some()) =>
                {
                    print_pods(&s.pods, s.pods_error.as_deref())
                }
                _ => print_replicas(&replicas),
            }
            return Ok(ExitCode::SUCCESS);
        }
        NodesCommand::Restart { node, .. } => (node, NodeAction::Restart),
        NodesCommand::Stop { node, .. } => (node, NodeAction::Stop),
        NodesCommand::Start { node, .. } => (node, NodeAction::Start),
    };
    let answer = client.node_action(&service, node, action).await?;
    println!("{}", answer.message);
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
    let mut cursor: Option<BTreeMap<String, u64>> = None;
    loop {
        let query = LogsQuery {
            n: Some(lines),
            version: filter.version.map(str::to_string),
            node: filter.node.map(str::to_string),
            deployment: None,
            cursor: cursor.as_ref().map(serde_json::to_string).transpose()?,
        };
        let answer: LogsResponse = client.logs(&service, &query).await?;
        for l in &answer.lines {
            if json {
                println!("{}", serde_json::to_string(l)?);
            } else {
                println!("{} | {}", l.replica.as_deref().unwrap_or("-"), l.line);
            }
        }
        if !follow {
            return Ok(ExitCode::SUCCESS);
        }
        // Keep the offsets of the replicas seen before; a replica new to the cursor shows its
        // last lines first, like every replica did on the first read.
        let mut next = cursor.unwrap_or_default();
        next.extend(answer.cursor);
        cursor = Some(next);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn baseline(cli: &Cli, cmd: &BaselineCommand) -> Result<ExitCode> {
    use runway_wire::api::{Baseline, BaselineQuery, Comparison};
    let client = cli.client();
    let service = cli.service(&client).await?;
    match cmd {
        BaselineCommand::Capture { window, json, .. } => {
            eprintln!("measuring {service} for {}...", runway_spec::Dur(*window));
            let query = BaselineQuery {
                window: Some(window.as_secs_f64()),
                id: None,
            };
            let b: Baseline = client.capture_baseline(&service, &query).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&b)?);
            } else {
                let m = &b.metrics;
                println!(
                    "baseline #{} of {} {}: {} requests ({:.1}/s), error rate {}, p50 {}, p95 {}, p99 {}",
                    b.id, b.service, m.version, m.requests, m.request_rate,
                    m.error_rate.map(|e| format!("{:.2}%", e * 100.0)).unwrap_or_else(|| "-".into()),
                    m.latency_p50.map(ms).unwrap_or_else(|| "-".into()),
                    m.latency_p95.map(ms).unwrap_or_else(|| "-".into()),
                    m.latency_p99.map(ms).unwrap_or_else(|| "-".into()),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BaselineCommand::Compare {
            window, id, json, ..
        } => {
            eprintln!("measuring {service} for {}...", runway_spec::Dur(*window));
            let query = BaselineQuery {
                window: Some(window.as_secs_f64()),
                id: id.map(BaselineId),
            };
            let c: Comparison = client.compare_baseline(&service, &query).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                println!(
                    "baseline #{} ({} at {}) against {} now",
                    c.baseline.id,
                    c.baseline.metrics.version,
                    c.baseline.captured_at,
                    c.current.version
                );
                let mut t = table(&["Metric", "Baseline", "Current", "Delta", "Status"]);
                for r in &c.rows {
                    let fmt = |v: Option<f64>| match (r.metric.as_str(), v) {
                        (_, None) => "-".to_string(),
                        ("error_rate", Some(v)) => format!("{:.2}%", v * 100.0),
                        ("request_rate", Some(v)) => format!("{v:.1}/s"),
                        (_, Some(v)) => ms(v),
                    };
                    let delta = match (r.metric.as_str(), r.delta) {
                        (_, None) => "-".to_string(),
                        ("error_rate", Some(d)) => format!("{:+.2} pts", d * 100.0),
                        ("request_rate", Some(d)) => format!("{d:+.1}/s"),
                        (_, Some(d)) => format!("{:+.1}ms", d * 1000.0),
                    };
                    t.add_row(vec![
                        r.metric.clone(),
                        fmt(r.baseline),
                        fmt(r.current),
                        delta,
                        r.status.clone(),
                    ]);
                }
                println!("{t}");
            }
            let failed = c.rows.iter().any(|r| r.status == "FAIL");
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

pub async fn check_history(cli: &Cli, json: bool, limit: u32) -> Result<ExitCode> {
    let client = cli.client();
    let service = cli.service(&client).await?;
    let runs = client.check_history(&service, limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no scheduled check has run for {service} yet (checks with a `schedule` run inside the server)");
    }
    let mut t = table(&["run", "at (UTC)", "result", "checks", "failed"]);
    for run in &runs {
        let results = run.results.as_array().cloned().unwrap_or_default();
        let failed: Vec<String> = results
            .iter()
            .filter(|r| r["status"] != "pass")
            .map(|r| {
                format!(
                    "{}: {}",
                    r["name"].as_str().unwrap_or("?"),
                    r["detail"].as_str().unwrap_or("")
                )
            })
            .collect();
        t.add_row(vec![
            run.id.to_string(),
            output::short_time(&run.started_at),
            if run.passed { "passed" } else { "FAILED" }.to_string(),
            results.len().to_string(),
            failed.join("; "),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}
