//! `runway approvals`, `approve`, `reject`, `lock`, `unlock` and `windows`: who may deploy
//! what, when.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use runway_wire::api::ApprovalView;
use runway_wire::api::DeploymentView;
use runway_wire::id::DeploymentId;
use runway_wire::record::Status;

use crate::output::table;
use crate::Cli;

/// What `runway deploy` says of a deployment that waits for approval.
pub async fn said_waiting(cli: &Cli, d: &DeploymentView) -> Result<ExitCode> {
    let client = cli.client();
    let view = client
        .approvals(Some(&d.service))
        .await?
        .into_iter()
        .find(|v| v.deployment.id == d.id);
    let needs = view.as_ref().map_or(String::new(), |v| {
        format!(
            " {} approval{} by {}",
            v.needed,
            if v.needed == 1 { "" } else { "s" },
            v.approvers.join(" or ")
        )
    });
    println!(
        "deployment #{} of {} {} ({}) waits for{needs}; nothing has started.\n\
         approve it: `runway approve {}` (digest {})\n\
         see it: `runway approvals`",
        d.id,
        d.service,
        d.version,
        d.deploy_type.as_deref().unwrap_or("standard"),
        d.id,
        d.digest.as_deref().unwrap_or("")
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn approvals(cli: &Cli, json: bool) -> Result<ExitCode> {
    let client = cli.client();
    // --service, else the project's; elsewhere every service's.
    let service = match cli.service_flag() {
        Some(s) => Some(s.to_string()),
        None => runway_spec::parse_file(&cli.file())
            .ok()
            .map(|spec| spec.service.name),
    };
    let views = client.approvals(service.as_deref()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(ExitCode::SUCCESS);
    }
    if views.is_empty() {
        println!("no deployment waits for approval");
        return Ok(ExitCode::SUCCESS);
    }
    for v in &views {
        print_view(v);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_view(v: &ApprovalView) {
    let d = &v.deployment;
    println!(
        "#{} {} {} ({}), asked by {} at {}{}",
        d.id,
        d.service,
        d.version,
        d.deploy_type.as_deref().unwrap_or("standard"),
        d.requested_by,
        d.started_at,
        d.request_reason
            .as_deref()
            .map_or(String::new(), |r| format!(": {r}"))
    );
    println!(
        "  needs {} of {} (by {}{}; approvals count for {}), digest {}",
        v.counted,
        v.needed,
        v.approvers.join(" or "),
        if v.self_approval {
            ", the requester too"
        } else {
            ", not the requester"
        },
        v.approval_ttl,
        d.digest.as_deref().unwrap_or("")
    );
    if !v.changed.is_empty() {
        println!(
            "  config differs from the serving release in: {}",
            v.changed.join(", ")
        );
    }
    for a in &v.approvals {
        println!(
            "  {} {} ({}) at {}{}",
            a.verdict,
            a.identity,
            a.role,
            a.at,
            a.reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {r}"))
        );
    }
}

pub async fn approve(cli: &Cli, id: i64, digest: Option<&str>, detach: bool) -> Result<ExitCode> {
    let client = cli.client();
    let id = DeploymentId(id);
    // What this approval is of: the digest the approver is shown, or the one they pass.
    let view = client
        .approvals(None)
        .await?
        .into_iter()
        .find(|v| v.deployment.id == id);
    let digest = match (digest, &view) {
        (Some(given), _) => given.to_string(),
        (None, Some(v)) => {
            print_view(v);
            v.deployment.digest.clone().unwrap_or_default()
        }
        (None, None) => bail!(
            "deployment #{id} is not waiting for approval; `runway approvals` lists those that are"
        ),
    };
    let answer = client.approve(id, &digest).await?;
    println!("{}", answer.message);
    if answer.deployment.status == Status::Running {
        return crate::deploy::follow(cli, answer.deployment, detach).await;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn reject(cli: &Cli, id: i64, reason: &str) -> Result<ExitCode> {
    let d = cli.client().reject(DeploymentId(id), reason).await?;
    println!(
        "deployment #{} of {} {} rejected: {}",
        d.id,
        d.service,
        d.version,
        d.reason.unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// `runway lock --reason` (`Some`) or `runway unlock` (`None`).
pub async fn lock(cli: &Cli, reason: Option<&str>) -> Result<ExitCode> {
    let client = cli.client();
    let service = cli.service(&client).await?;
    let answer = match reason {
        Some(reason) => client.lock(&service, reason).await?,
        None => client.unlock(&service).await?,
    };
    println!("{}", answer.message);
    Ok(ExitCode::SUCCESS)
}

/// `runway windows`: the calendar of runway.toml for a type, computed here with the same
/// code the server judges deploys by.
pub fn windows(
    cli: &Cli,
    deploy_type: Option<&str>,
    days: u32,
    at: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let spec = match runway_spec::parse_file(&cli.file()) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let from: DateTime<Utc> = match at {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .with_context(|| {
                format!("--at `{text}` is not an RFC 3339 time (2026-12-20T10:00:00Z)")
            })?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let (type_name, t) = spec.deploy_type(deploy_type).map_err(anyhow::Error::msg)?;
    let calendar = spec.calendar(&type_name, &t).map_err(anyhow::Error::msg)?;
    let to = from + chrono::Duration::days(days.clamp(1, 366) as i64);
    let spans = calendar.spans(from, to, &type_name);
    let now = calendar.check(from, &type_name);
    let next_open = match &now {
        runway_calendar::Verdict::Open => Some(from),
        runway_calendar::Verdict::Closed { next_open, .. } => *next_open,
    };
    if json {
        let spans: Vec<serde_json::Value> = spans
            .iter()
            .map(|s| {
                serde_json::json!({
                    "start": s.start.to_rfc3339(),
                    "end": s.end.to_rfc3339(),
                    "open": s.closed_by.is_none(),
                    "closed_by": s.closed_by,
                })
            })
            .collect();
        let view = serde_json::json!({
            "type": type_name,
            "timezone": calendar.zone.name(),
            "at": from.to_rfc3339(),
            "open": matches!(now, runway_calendar::Verdict::Open),
            "next_open": next_open.map(|t| t.to_rfc3339()),
            "spans": spans,
        });
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(ExitCode::SUCCESS);
    }
    let zone = calendar.zone;
    let local = |t: DateTime<Utc>| {
        t.with_timezone(&zone)
            .format("%a %Y-%m-%d %H:%M")
            .to_string()
    };
    match &now {
        runway_calendar::Verdict::Open => {
            println!("a `{type_name}` deployment may start now ({})", zone.name())
        }
        runway_calendar::Verdict::Closed { rule, .. } => println!(
            "a `{type_name}` deployment may not start now: {rule}\nnext window: {}",
            next_open.map_or("none in the next 400 days".to_string(), local)
        ),
    }
    if calendar.windows.is_empty() && calendar.freezes.is_empty() {
        println!("no windows or freezes: any time");
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&["from", "to", zone.name()]);
    for s in &spans {
        t.add_row(vec![
            local(s.start),
            local(s.end),
            s.closed_by
                .clone()
                .map_or("open".to_string(), |rule| format!("closed: {rule}")),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}
