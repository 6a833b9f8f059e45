//! `runway incident list|show|ack|resolve|report`: the incidents runway opened, and runbook
//! 000's post-mortem written from one.

use std::process::ExitCode;

use anyhow::Result;
use runway_wire::incident::{Incident, IncidentDetail, IncidentQuery};

use crate::output::{clip, describe, short_time, table};
use crate::Cli;

pub async fn list(cli: &Cli, limit: u32, json: bool) -> Result<ExitCode> {
    let incidents = cli
        .client()
        .incidents(&IncidentQuery {
            service: cli.service_flag().map(str::to_string),
            limit: Some(limit),
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&incidents)?);
        return Ok(ExitCode::SUCCESS);
    }
    if incidents.is_empty() {
        println!("no incident");
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&[
        "id",
        "severity",
        "state",
        "service",
        "deployment",
        "opened (UTC)",
        "failed",
        "title",
    ]);
    for i in &incidents {
        t.add_row(vec![
            format!("#{}", i.id),
            i.severity.clone(),
            i.state().to_string(),
            i.service.clone(),
            i.deployment.map_or_else(|| "-".into(), |d| format!("#{d}")),
            short_time(&i.opened_at),
            format!("{} of {}", i.impact.failed, i.impact.requests),
            clip(&i.title, 60),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

pub async fn show(cli: &Cli, id: i64, json: bool) -> Result<ExitCode> {
    let detail = cli.client().incident(id).await?;
    print_detail(&detail, json)
}

pub async fn ack(cli: &Cli, id: i64, json: bool) -> Result<ExitCode> {
    let detail = cli.client().ack_incident(id).await?;
    print_detail(&detail, json)
}

pub async fn resolve(cli: &Cli, id: i64, note: Option<&str>, json: bool) -> Result<ExitCode> {
    let detail = cli.client().resolve_incident(id, note).await?;
    print_detail(&detail, json)
}

/// Writes the post-mortem as Markdown to `out` (stdout when `None`).
pub async fn report(cli: &Cli, id: i64, out: Option<&std::path::Path>) -> Result<ExitCode> {
    let detail = cli.client().incident(id).await?;
    let text = post_mortem(&detail);
    match out {
        Some(path) => {
            std::fs::write(path, &text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!(
                "wrote the post-mortem of incident #{id} to {}",
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_detail(detail: &IncidentDetail, json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(detail)?);
        return Ok(ExitCode::SUCCESS);
    }
    let i = &detail.incident;
    println!(
        "incident #{} ({}, {}): {}",
        i.id,
        i.severity,
        i.state(),
        i.title
    );
    println!("  opened: {} UTC", short_time(&i.opened_at));
    if let (Some(at), Some(by)) = (&i.acked_at, &i.acked_by) {
        println!("  acknowledged: {} UTC by {by}", short_time(at));
    }
    if let (Some(at), Some(by)) = (&i.resolved_at, &i.resolved_by) {
        println!(
            "  resolved: {} UTC by {by}{}",
            short_time(at),
            i.resolution
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        );
    }
    println!("  impact: {}", impact_line(i));
    if !detail.journal.is_empty() {
        println!("  timeline:");
        for line in timeline(detail) {
            println!("    {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn impact_line(i: &Incident) -> String {
    let m = &i.impact;
    format!(
        "{} of {} requests to {} failed ({:.1}%), over {}",
        m.failed,
        m.requests,
        m.release.as_deref().unwrap_or("the release"),
        m.error_rate * 100.0,
        minutes(m.seconds)
    )
}

fn minutes(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{:.0} min", seconds / 60.0)
    }
}

/// The journal as `T+M:SS (HH:MM:SS UTC): what`, then the incident's own steps.
fn timeline(detail: &IncidentDetail) -> Vec<String> {
    let start = detail
        .journal
        .first()
        .map(|e| e.at.clone())
        .unwrap_or_else(|| detail.incident.opened_at.clone());
    let offset = |at: &str| -> String {
        let secs = seconds_between(&start, at).unwrap_or(0.0).max(0.0) as u64;
        format!("T+{}:{:02}", secs / 60, secs % 60)
    };
    let clock = |at: &str| at.get(11..19).unwrap_or(at).to_string();
    let mut lines: Vec<String> = detail
        .journal
        .iter()
        .filter(|e| e.event != "analysis" || e.detail["decision"].get("Rollback").is_some())
        .map(|e| format!("{} ({} UTC): {}", offset(&e.at), clock(&e.at), describe(e)))
        .collect();
    let i = &detail.incident;
    lines.push(format!(
        "{} ({} UTC): incident #{} opened, {}",
        offset(&i.opened_at),
        clock(&i.opened_at),
        i.id,
        i.severity
    ));
    if let (Some(at), Some(by)) = (&i.acked_at, &i.acked_by) {
        lines.push(format!(
            "{} ({} UTC): acknowledged by {by}",
            offset(at),
            clock(at)
        ));
    }
    if let (Some(at), Some(by)) = (&i.resolved_at, &i.resolved_by) {
        lines.push(format!(
            "{} ({} UTC): resolved by {by}",
            offset(at),
            clock(at)
        ));
    }
    lines
}

fn seconds_between(from: &str, to: &str) -> Option<f64> {
    use time::format_description::well_known::Rfc3339;
    let a = time::OffsetDateTime::parse(from, &Rfc3339).ok()?;
    let b = time::OffsetDateTime::parse(to, &Rfc3339).ok()?;
    Some((b - a).as_seconds_f64())
}

/// Runbook 000's incident report, its blanks filled from the record: the timeline from the
/// journal, the impact the proxy measured, the actions runway took; what only a human knows
/// (the root cause, prevention) stays a prompt.
pub fn post_mortem(detail: &IncidentDetail) -> String {
    let i = &detail.incident;
    let version = i
        .impact
        .release
        .clone()
        .or_else(|| detail.deployment_record.as_ref().map(|d| d.version.clone()))
        .unwrap_or_else(|| "-".into());
    let mut md = String::new();
    md += &format!("# Incident Report: Deployment Failure {version}\n\n");
    md += &format!(
        "- Incident: #{} ({}), {}\n- Service: {}\n- Opened: {} UTC\n- State: {}\n",
        i.id,
        i.severity,
        i.title,
        i.service,
        short_time(&i.opened_at),
        i.state()
    );
    if let Some(d) = &detail.deployment_record {
        md += &format!(
            "- Deployment: #{} ({} {}{}), requested by {}\n",
            d.id,
            d.kind.as_str(),
            d.version,
            d.previous_version
                .as_deref()
                .map(|p| format!(" from {p}"))
                .unwrap_or_default(),
            if d.requested_by.is_empty() {
                "-"
            } else {
                &d.requested_by
            }
        );
    }
    md += "\n## Timeline\n";
    for line in timeline(detail) {
        md += &format!("- {line}\n");
    }
    md += "\n## Root Cause\n";
    md += &format!(
        "[Describe what went wrong]\n\nWhat runway recorded: {}\n",
        detail
            .deployment_record
            .as_ref()
            .and_then(|d| d.reason.clone())
            .unwrap_or_else(|| i.title.clone())
    );
    md += "\n## Impact\n";
    md += &format!("- Duration: {}\n", minutes(i.impact.seconds));
    md += "- Users affected: [estimate]\n";
    md += &format!(
        "- Requests failed: {} of {} to {} (error rate {:.2}%), as runway's proxy measured them\n",
        i.impact.failed,
        i.impact.requests,
        version,
        i.impact.error_rate * 100.0
    );
    md += "\n## Actions Taken\n";
    let actions = actions(detail);
    if actions.is_empty() {
        md += "1. [What was done]\n";
    }
    for (n, action) in actions.iter().enumerate() {
        md += &format!("{}. {action}\n", n + 1);
    }
    md += "\n## Prevention\n- [ ] Add pre-deployment smoke tests\n- [ ] Improve monitoring alerts\n- [ ] Fix bug in next release\n";
    md
}

/// What runway did about it, from the journal: the verdict, the way back, what serves now.
fn actions(detail: &IncidentDetail) -> Vec<String> {
    use runway_wire::Event;
    let mut actions = Vec::new();
    for e in &detail.journal {
        match e.typed() {
            Some(Event::Analysis(a)) if a["decision"].get("Rollback").is_some() => {
                actions.push(format!(
                    "Identified the failure from the release's metrics: {}",
                    a["decision"]["Rollback"].as_str().unwrap_or_default()
                ));
            }
            Some(Event::RollingBack { reason }) => {
                actions.push(format!("Rolled back automatically ({reason})"))
            }
            Some(Event::Reverted { to }) => {
                actions.push(format!("Restored {to}: it serves all traffic"))
            }
            Some(Event::UndoStarted { migration_of }) => actions.push(format!(
                "Ran the undo of deployment #{migration_of}'s migration"
            )),
            Some(Event::Commanded { command, by }) => {
                actions.push(format!("{by} ran `runway {command}`"))
            }
            _ => {}
        }
    }
    if let Some(note) = &detail.incident.resolution {
        actions.push(format!("Resolved: {note}"));
    }
    actions
}
