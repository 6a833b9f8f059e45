//! How the CLI shows things: a live spinner with the current step in a terminal, plain lines
//! otherwise (CI logs, pipes), and tables.

use std::io::IsTerminal;
use std::time::Duration;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use indicatif::{ProgressBar, ProgressStyle};

use runway_wire::Event;

use runway_wire::record::JournalEntry;

pub enum Progress {
    Terminal(ProgressBar),
    Plain,
}

impl Progress {
    pub fn new() -> Progress {
        if std::io::stderr().is_terminal() {
            let pb = ProgressBar::new_spinner();
            pb.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.enable_steady_tick(Duration::from_millis(120));
            Progress::Terminal(pb)
        } else {
            Progress::Plain
        }
    }

    /// A line of the record: printed above the spinner, or plainly.
    pub fn line(&self, text: &str) {
        match self {
            Progress::Terminal(pb) => pb.println(text),
            Progress::Plain => println!("{text}"),
        }
    }

    /// What is happening now (terminal only: plain output already has the line).
    pub fn step(&self, text: &str) {
        if let Progress::Terminal(pb) = self {
            pb.set_message(text.to_string());
        }
    }

    pub fn finish(&self) {
        if let Progress::Terminal(pb) = self {
            pb.finish_and_clear();
        }
    }
}

pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header(headers.iter().copied());
    t
}

/// An RFC 3339 timestamp to the second, as a table shows it: `2026-11-30 10:07:14` (UTC, as
/// stored). Text that is not a timestamp is shown as it is.
pub fn short_time(rfc3339: &str) -> String {
    match parse_time(rfc3339) {
        Some(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        None => rfc3339.to_string(),
    }
}

/// `text` in lines of at most `width` characters, broken between words (a word longer than a
/// line is cut); lines after the first start with `indent`.
pub fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: String = word.to_string();
        loop {
            let len = line.chars().count();
            let sep = usize::from(len > 0 && !line.trim().is_empty());
            if len + sep + word.chars().count() <= width {
                if sep == 1 {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if !line.trim().is_empty() {
                lines.push(std::mem::replace(&mut line, indent.to_string()));
                continue;
            }
            // A word longer than a whole line: cut it.
            let room = width.saturating_sub(line.chars().count()).max(1);
            let head: String = word.chars().take(room).collect();
            word = word.chars().skip(room).collect();
            line.push_str(&head);
            lines.push(std::mem::replace(&mut line, indent.to_string()));
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.trim().is_empty() {
        lines.push(line);
    }
    lines
}

/// `text` cut to `max` characters, ending in `…` when it was longer.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Seconds between two RFC 3339 timestamps.
pub fn seconds_between(from: &str, to: &str) -> Option<f64> {
    Some((parse_time(to)? - parse_time(from)?).as_seconds_f64())
}

/// The service's client errors in a line of `runway status`, or `None` while there are none:
/// requests the client failed (a malformed body, an aborted upload), which the proxy answered
/// itself and which are in no release's numbers.
pub fn client_errors_line(c: &runway_wire::metrics::ClientErrorCounts) -> Option<String> {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut parts = Vec::new();
    if c.bad_request_body > 0 {
        parts.push(plural(
            c.bad_request_body,
            "malformed request body",
            "malformed request bodies",
        ));
    }
    if c.client_aborted > 0 {
        parts.push(plural(
            c.client_aborted,
            "upload aborted by its client",
            "uploads aborted by their clients",
        ));
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "  client errors: {} (answered 400 by the proxy, in no release's metrics)",
        parts.join(", ")
    ))
}

/// One journal entry as a human reads it. An event this runway does not know (a newer server
/// wrote it) is shown raw.
pub fn describe(e: &JournalEntry) -> String {
    match e.typed() {
        Some(event) => describe_event(&event),
        None => format!("{} {}", e.event, e.detail),
    }
}

fn describe_event(event: &Event) -> String {
    use runway_engine::text::plural;
    match event {
        Event::Started {
            version,
            previous_version,
            replicas,
            by,
            reason,
            ..
        } => {
            let replicas = plural(*replicas, "replica");
            let mut line = match previous_version {
                Some(prev) => format!("started: {prev} -> {version} ({replicas})"),
                None => format!("started: {version} ({replicas}, first release)"),
            };
            if !by.is_empty() {
                line += &format!(" by {by}");
            }
            if let Some(reason) = reason {
                line += &format!(": {reason}");
            }
            line
        }
        Event::Commanded { command, by } => format!("{command} requested by {by}"),
        Event::AwaitingApproval {
            deploy_type,
            approvals,
            approvers,
            by,
            ..
        } => format!(
            "awaiting approval: a `{deploy_type}` deployment asked for by {by} needs {approvals} \
             by {}",
            approvers.join(" or ")
        ),
        Event::Approved { by, role } => format!("approved by {by} ({role})"),
        Event::TypeApplied {
            deploy_type,
            changes,
        } => format!("a `{deploy_type}` deployment: {}", changes.join("; ")),
        Event::Monitoring { seconds } => format!(
            "all traffic on the new release; monitoring it for {}s (it can still roll back)",
            seconds
        ),
        Event::Monitored {} => "monitoring period passed".into(),
        Event::Rejected { by, reason } => format!("rejected by {by}: {reason}"),
        Event::Overridden { rules, by, reason } => {
            format!("OVERRIDDEN by {by} ({reason}): {}", rules.join("; "))
        }
        Event::ReplicaStarting {
            replica,
            version,
            port,
        } => format!("{replica} ({version}) starting on 127.0.0.1:{port}"),
        Event::ReplicaUnhealthy {
            replica,
            version,
            error,
            waited_s,
            deadline_s,
        } => format!(
            "{replica} ({version}) not healthy yet after {waited_s}s of {deadline_s}s: {error}"
        ),
        Event::ReplicaRouted { replica, version } => {
            format!("{replica} ({version}) healthy, now receiving traffic")
        }
        Event::ReplicaRetiring {
            replica,
            version,
            in_flight,
        } => format!("{replica} ({version}) out of rotation, draining {in_flight} in-flight"),
        Event::ReplicaStopped {
            replica,
            version,
            drained,
        } => format!(
            "{replica} ({version}) stopped{}",
            if *drained { "" } else { " (drain timed out)" }
        ),
        Event::Failed { reason, .. } => format!("FAILED: {reason}"),
        Event::HookStarted { phase, argv } => format!("{phase} hook: {}", argv.join(" ")),
        Event::HookFinished {
            phase,
            outcome,
            detail,
        } => format!("{phase} hook {outcome}: {detail}"),
        Event::Backup {
            backup_id,
            state,
            dir,
            size_bytes,
        } => format!("backup #{backup_id} {state} ({size_bytes} bytes in {dir})"),
        Event::MaintenanceOn {} => "maintenance on: the proxy answers 503 with the page".into(),
        Event::MaintenanceOff {} => "maintenance off: traffic flows to the release".into(),
        Event::MaintenanceKept { why } => format!("maintenance stays on: {why}"),
        Event::RecreateStoppingOld { replicas } => format!(
            "recreate: draining and stopping {}",
            plural(*replicas as u64, "old replica")
        ),
        Event::RecreateStartingNew { version } => format!("recreate: starting {version}"),
        Event::SchemaKept { why, .. } => format!("schema kept: {why}"),
        Event::UndoStarted { migration_of } => {
            format!("undoing the migration of deployment #{migration_of}")
        }
        Event::Frozen { reason } => format!("FROZEN: {reason}"),
        Event::StageDone { stage } => format!("{stage} done"),
        Event::Reverting { to } => format!("reverting to {to}"),
        Event::Reverted { to } => format!("{to} serves again"),
        Event::RevertFailed { reason } => format!("revert failed: {reason}"),
        Event::Resumed { .. } => "server restarted; resuming this deployment".into(),
        Event::CanaryStep { step, of, weight } => {
            format!("canary step {step}/{of}: {weight}% of requests to the canary")
        }
        Event::Analysis(result) => describe_analysis(result),
        Event::Paused { reason, by } => format!(
            "PAUSED ({by}): {} — `runway resume`, `runway promote` or `runway abort`",
            reason.as_deref().unwrap_or("?")
        ),
        Event::Promoted { by, full, weight } => match (by.as_str(), full) {
            ("operator", Some(true)) => "promoted to 100% by an operator".into(),
            ("operator", _) => "promoted to the next step by an operator".into(),
            _ => format!("analysis passed at {weight}%: promoting"),
        },
        Event::ResumedByOperator {} => "resumed by an operator".into(),
        Event::RollingBack { reason } => format!("ROLLING BACK: {reason}"),
        Event::Checks {
            phase,
            passed: _,
            results,
        } => describe_checks(phase, results),
        Event::PreflightSkipped { .. } => "preflight checks SKIPPED (--skip-checks)".into(),
        Event::Prepared { what } => what.clone(),
        Event::RolloutProgress { message } => message.clone(),
        Event::RolledOut { revision, message } => format!("{message} (revision {revision})"),
        Event::PreviewReady {
            version,
            preview,
            header,
        } => match preview {
            Some(addr) => format!(
                "{version} ready without traffic: preview on http://{addr} or with `{header}`"
            ),
            None => format!("{version} ready without traffic: preview with `{header}`"),
        },
        Event::Switched { from, to } => format!("switched all traffic from {from} to {to}"),
        Event::ScaleDownPending { version, seconds } => {
            format!("{version} stays up for {seconds}s for an instant rollback")
        }
        Event::FlagChanged { flag, change, by } if by.is_empty() => {
            format!("flag {flag}: {change}")
        }
        Event::FlagChanged { flag, change, by } => format!("flag {flag}: {change} (by {by})"),
        Event::FlagStep { flag, percent } => {
            format!("flag {flag}: step to {percent}% of the targeting keys")
        }
        Event::FlagBaseline {
            requests,
            errors,
            p99_seconds,
        } => format!(
            "baseline before the rollout: {requests} requests, {errors} errors{}",
            p99_seconds
                .map(|p| format!(", p99 {:.0} ms", p * 1000.0))
                .unwrap_or_default()
        ),
        Event::Succeeded { .. } => "succeeded".into(),
        Event::ServingWithAProblem { reason, .. } => format!("serving, with a problem: {reason}"),
        Event::InternalError { panic } => format!("INTERNAL ERROR: {panic}"),
    }
}

/// A phase's check results in a line: how many passed, and every failure with its detail.
fn describe_checks(phase: &str, results: &serde_json::Value) -> String {
    let results = results.as_array().cloned().unwrap_or_default();
    let passed = results.iter().filter(|r| r["status"] == "pass").count();
    let failures: Vec<String> = results
        .iter()
        .filter(|r| r["status"] != "pass")
        .map(|r| {
            format!(
                "{} {} ({})",
                r["severity"].as_str().unwrap_or("?"),
                r["name"].as_str().unwrap_or("?"),
                r["detail"].as_str().unwrap_or("")
            )
        })
        .collect();
    if failures.is_empty() {
        format!("{phase} checks: {passed}/{} passed", results.len())
    } else {
        format!(
            "{phase} checks: {passed}/{} passed; FAILED: {}",
            results.len(),
            failures.join("; ")
        )
    }
}

/// One analysis interval in a line: the decision, then each metric's verdict with its numbers.
fn describe_analysis(d: &serde_json::Value) -> String {
    let decision = match &d["decision"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => o.keys().next().cloned().unwrap_or_default(),
        _ => "?".into(),
    };
    let metrics: Vec<String> = d["metrics"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    format!(
                        "{} {}",
                        m["verdict"].as_str().unwrap_or("?").to_lowercase(),
                        m["reason"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "analysis: {decision} ({} canary requests): {}",
        d["canary_requests"],
        metrics.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use runway_wire::metrics::ClientErrorCounts;

    use super::client_errors_line;

    #[test]
    fn wrap_keeps_every_line_within_the_width() {
        let text = "#3: web-7 (v3) was not healthy within 3s: health check GET \
                    http://127.0.0.1:34373/health/ready answered 503 Service Unavailable";
        let lines = super::wrap(text, 40, "    ");
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:#?}");
        assert_eq!(
            lines.join(" ").split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );
        let long = super::wrap(&"x".repeat(90), 40, "  ");
        assert!(long.iter().all(|l| l.chars().count() <= 40), "{long:#?}");
        assert_eq!(long.concat().replace(' ', "").len(), 90);
    }

    #[test]
    fn client_errors_get_a_line_only_when_there_are_some() {
        assert_eq!(client_errors_line(&ClientErrorCounts::default()), None);
        assert_eq!(
            client_errors_line(&ClientErrorCounts {
                bad_request_body: 12,
                client_aborted: 1,
            })
            .as_deref(),
            Some(
                "  client errors: 12 malformed request bodies, 1 upload aborted by its client \
                 (answered 400 by the proxy, in no release's metrics)"
            )
        );
        assert_eq!(
            client_errors_line(&ClientErrorCounts {
                bad_request_body: 0,
                client_aborted: 3,
            })
            .as_deref(),
            Some(
                "  client errors: 3 uploads aborted by their clients \
                 (answered 400 by the proxy, in no release's metrics)"
            )
        );
    }
}
