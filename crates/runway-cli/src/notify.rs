//! `runway notify test|log`: try the [[notify]] targets of runway.toml, and read what became
//! of each notice.

use std::process::ExitCode;

use anyhow::Result;
use runway_wire::notice::{Delivery, DeliveryQuery, NotifyTestRequest};

use crate::output::{clip, short_time, table};
use crate::Cli;

/// Sends a test notice to each target (or the one named) through the server; exit 1 when one
/// was not delivered.
pub async fn test(cli: &Cli, only: Option<&str>, json: bool) -> Result<ExitCode> {
    let spec = match runway_spec::parse_file(&cli.file()) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut targets = spec.notify.clone();
    if let Some(name) = only {
        targets.retain(|t| t.name == name);
        if targets.is_empty() {
            let names: Vec<&str> = spec.notify.iter().map(|t| t.name.as_str()).collect();
            eprintln!(
                "error: {} has no [[notify]] target named `{name}`; its targets: {}",
                cli.file().display(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
            return Ok(ExitCode::from(2));
        }
    }
    if targets.is_empty() {
        eprintln!(
            "error: {} has no [[notify]] target to test\nhint: add one:\n[[notify]]\nkind = \"slack\"\nurl = \"env:SLACK_WEBHOOK_URL\"",
            cli.file().display()
        );
        return Ok(ExitCode::from(2));
    }
    let deliveries = cli
        .client()
        .notify_test(&NotifyTestRequest {
            service: spec.service.name.clone(),
            targets,
        })
        .await?;
    let all_delivered = deliveries.iter().all(|d| d.outcome == "delivered");
    if json {
        println!("{}", serde_json::to_string_pretty(&deliveries)?);
    } else {
        print_deliveries(&deliveries);
    }
    Ok(if all_delivered {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub async fn log(cli: &Cli, limit: u32, json: bool) -> Result<ExitCode> {
    let deliveries = cli
        .client()
        .deliveries(&DeliveryQuery {
            service: cli.service_flag().map(str::to_string),
            limit: Some(limit),
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&deliveries)?);
    } else if deliveries.is_empty() {
        println!("no notice has been sent yet");
    } else {
        print_deliveries(&deliveries);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_deliveries(deliveries: &[Delivery]) {
    let mut t = table(&[
        "at (UTC)",
        "target",
        "notice",
        "service",
        "deployment",
        "outcome",
        "attempts",
        "status",
        "error",
    ]);
    for d in deliveries {
        t.add_row(vec![
            short_time(&d.at),
            d.target.clone(),
            d.notice.as_str().to_string(),
            d.service.clone(),
            d.deployment
                .map_or_else(|| "-".into(), |id| format!("#{id}")),
            d.outcome.clone(),
            d.attempts.to_string(),
            d.status.map_or_else(|| "-".into(), |s| s.to_string()),
            clip(d.error.as_deref().unwrap_or(""), 60),
        ]);
    }
    println!("{t}");
}
