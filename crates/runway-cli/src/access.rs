//! `runway tokens`, `runway whoami` and `runway audit`: who may use the API, with which role,
//! and what they did with it.

use std::process::ExitCode;

use anyhow::Result;
use runway_wire::api::NewToken;

use crate::args::TokensCommand;
use crate::output::table;
use crate::Cli;

pub async fn tokens(cli: &Cli, action: &TokensCommand) -> Result<ExitCode> {
    let client = cli.client();
    match action {
        TokensCommand::Create {
            name, role, json, ..
        } => {
            let created = client
                .create_token(&NewToken {
                    name: name.clone(),
                    role: *role,
                })
                .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                println!("{}", created.token);
                eprintln!(
                    "token `{}` ({}) created. It is shown this once and kept only hashed: give \
                     it to its owner, who sets RUNWAY_TOKEN to it.",
                    created.name, created.role
                );
            }
        }
        TokensCommand::List { json, .. } => {
            let tokens = client.tokens().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
                return Ok(ExitCode::SUCCESS);
            }
            if tokens.is_empty() {
                println!(
                    "no named tokens: `runway tokens create NAME --role ROLE` makes one (until \
                     then only the server's own admin token, in its state dir, works)"
                );
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = table(&["name", "role", "created", "by", "revoked"]);
            for token in &tokens {
                t.add_row(vec![
                    token.name.clone(),
                    token.role.to_string(),
                    token.created_at.clone(),
                    token.created_by.clone(),
                    token.revoked_at.clone().unwrap_or_default(),
                ]);
            }
            println!("{t}");
        }
        TokensCommand::Revoke { name, .. } => {
            let token = client.revoke_token(name).await?;
            println!(
                "token `{}` ({}) revoked at {}: it is refused from now on",
                token.name,
                token.role,
                token.revoked_at.unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn whoami(cli: &Cli, json: bool) -> Result<ExitCode> {
    let me = cli.client().whoami().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&me)?);
    } else {
        println!("{} ({})", me.name, me.role);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--since 7d` (days, hours or minutes back from now) or an RFC 3339 time, as RFC 3339.
fn since_of(text: &str) -> Result<String> {
    if chrono::DateTime::parse_from_rfc3339(text).is_ok() {
        return Ok(text.to_string());
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let amount: i64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("--since `{text}` is not 7d, 12h, 30m or an RFC 3339 time"))?;
    let back = match unit {
        "d" => chrono::Duration::days(amount),
        "h" => chrono::Duration::hours(amount),
        "m" => chrono::Duration::minutes(amount),
        _ => anyhow::bail!("--since `{text}` is not 7d, 12h, 30m or an RFC 3339 time"),
    };
    Ok((chrono::Utc::now() - back).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

pub async fn audit(cli: &Cli, since: Option<&str>, json: bool) -> Result<ExitCode> {
    let since = since.map(since_of).transpose()?;
    let entries = cli.client().audit(since.as_deref()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&["#", "at", "who", "from", "what", "result"]);
    for e in &entries {
        t.add_row(vec![
            e.seq.to_string(),
            e.at.chars().take(19).collect(),
            format!("{} ({})", e.identity, e.role),
            e.remote.clone(),
            format!("{} {}", e.action, e.detail),
            e.result.chars().take(80).collect(),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

pub async fn audit_verify(cli: &Cli, head: Option<&str>, json: bool) -> Result<ExitCode> {
    let check = cli.client().audit_verify(head).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&check)?);
    }
    match &check.problem {
        Some(problem) => {
            if !json {
                println!("the audit trail was tampered with: {problem}");
            }
            Ok(ExitCode::from(1))
        }
        None => {
            if !json {
                println!(
                    "the audit trail is whole: {} entries, head {}",
                    check.entries, check.head
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `runway report dora`: the figures of the period, each with runbook 001's target.
pub async fn dora(cli: &Cli, since: Option<&str>, json: bool) -> Result<ExitCode> {
    let since = since.map(since_of).transpose()?;
    let report = cli
        .client()
        .dora(&runway_wire::dora::DoraQuery {
            since,
            service: cli.service_flag().map(str::to_string),
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "DORA metrics of {} from {} to {} (UTC)",
        report.service.as_deref().unwrap_or("every service"),
        crate::output::short_time(&report.since),
        crate::output::short_time(&report.until)
    );
    let mut t = table(&["metric", "value", "target", "threshold", "rating", "from"]);
    for m in &report.metrics {
        t.add_row(vec![
            m.name.replace('_', " "),
            m.shown.clone(),
            m.target.clone(),
            m.threshold.clone(),
            m.rating.clone(),
            m.basis.clone(),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}
