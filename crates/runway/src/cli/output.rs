//! How the CLI shows things: a live spinner with the current step in a terminal, plain lines
//! otherwise (CI logs, pipes), and tables.

use std::io::IsTerminal;
use std::time::Duration;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use indicatif::{ProgressBar, ProgressStyle};

use crate::store::JournalEntry;

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

/// A table that fits `width` columns: only the column `flexible` (a free text, such as a
/// reason) wraps when the content is wider; the others (ids, times) keep their width.
pub fn table_within(headers: &[&str], width: u16, flexible: usize) -> Table {
    let mut t = table(headers);
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t.set_width(width);
    for (i, column) in t.column_iter_mut().enumerate() {
        if i != flexible {
            column.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
        }
    }
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
pub fn client_errors_line(c: &runway_proxy::ClientErrorCounts) -> Option<String> {
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

/// One journal entry as a human reads it.
pub fn describe(e: &JournalEntry) -> String {
    let d = &e.detail;
    let s = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    let n = |k: &str| {
        d.get(k)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into())
    };
    match e.event.as_str() {
        "started" => {
            let replicas = match d.get("replicas").and_then(|v| v.as_u64()) {
                Some(1) => "1 replica".to_string(),
                _ => format!("{} replicas", n("replicas")),
            };
            match d.get("previous_version").and_then(|v| v.as_str()) {
                Some(prev) => format!("started: {} -> {} ({replicas})", prev, s("version")),
                None => format!("started: {} ({replicas}, first release)", s("version")),
            }
        }
        "replica_starting" => format!(
            "{} ({}) starting on 127.0.0.1:{}",
            s("replica"),
            s("version"),
            n("port")
        ),
        "replica_unhealthy" => format!(
            "{} ({}) not healthy yet after {}s of {}s: {}",
            s("replica"),
            s("version"),
            n("waited_s"),
            n("deadline_s"),
            s("error")
        ),
        "replica_routed" => format!(
            "{} ({}) healthy, now receiving traffic",
            s("replica"),
            s("version")
        ),
        "replica_retiring" => {
            format!(
                "{} ({}) out of rotation, draining {} in-flight",
                s("replica"),
                s("version"),
                n("in_flight")
            )
        }
        "replica_stopped" => {
            let drained = d.get("drained").and_then(|v| v.as_bool()).unwrap_or(true);
            format!(
                "{} ({}) stopped{}",
                s("replica"),
                s("version"),
                if drained { "" } else { " (drain timed out)" }
            )
        }
        "failed" => format!("FAILED: {}", s("reason")),
        "hook_started" => format!(
            "{} hook: {}",
            s("phase"),
            d["argv"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        ),
        "hook_finished" => format!("{} hook {}: {}", s("phase"), s("outcome"), s("detail")),
        "backup" => format!(
            "backup #{} {} ({} bytes in {})",
            n("backup_id"),
            s("state"),
            n("size_bytes"),
            s("dir")
        ),
        "maintenance_on" => "maintenance on: the proxy answers 503 with the page".to_string(),
        "maintenance_off" => "maintenance off: traffic flows to the release".to_string(),
        "maintenance_kept" => format!("maintenance stays on: {}", s("why")),
        "recreate_stopping_old" => format!(
            "recreate: draining and stopping {}",
            crate::text::plural(
                d.get("replicas").and_then(|v| v.as_u64()).unwrap_or(0),
                "old replica"
            )
        ),
        "recreate_starting_new" => format!("recreate: starting {}", s("version")),
        "schema_kept" => format!("schema kept: {}", s("why")),
        "frozen" => format!("FROZEN: {}", s("reason")),
        "stage_done" => format!("{} done", s("stage")),
        "reverting" => format!("reverting to {}", s("to")),
        "reverted" => format!("{} serves again", s("to")),
        "revert_failed" => format!("revert failed: {}", s("reason")),
        "resumed" => "server restarted; resuming this deployment".to_string(),
        "canary_step" => format!(
            "canary step {}/{}: {}% of requests to the canary",
            n("step"),
            n("of"),
            n("weight")
        ),
        "analysis" => describe_analysis(d),
        "paused" => format!(
            "PAUSED ({}): {} — `runway resume`, `runway promote` or `runway abort`",
            s("by"),
            s("reason")
        ),
        "promoted" => match d.get("by").and_then(|v| v.as_str()) {
            Some("operator") if d.get("full").and_then(|v| v.as_bool()) == Some(true) => {
                "promoted to 100% by an operator".into()
            }
            Some("operator") => "promoted to the next step by an operator".into(),
            _ => format!("analysis passed at {}%: promoting", n("weight")),
        },
        "resumed_by_operator" => "resumed by an operator".to_string(),
        "rolling_back" => format!("ROLLING BACK: {}", s("reason")),
        "checks" => describe_checks(d),
        "preflight_skipped" => "preflight checks SKIPPED (--skip-checks)".to_string(),
        "preview_ready" => match d.get("preview").and_then(|v| v.as_str()) {
            Some(addr) => format!(
                "{} ready without traffic: preview on http://{addr} or with `{}`",
                s("version"),
                s("header")
            ),
            None => format!(
                "{} ready without traffic: preview with `{}`",
                s("version"),
                s("header")
            ),
        },
        "switched" => format!("switched all traffic from {} to {}", s("from"), s("to")),
        "scale_down_pending" => format!(
            "{} stays up for {}s for an instant rollback",
            s("version"),
            n("seconds")
        ),
        "succeeded" => "succeeded".to_string(),
        other => format!("{other} {d}"),
    }
}

/// A phase's check results in a line: how many passed, and every failure with its detail.
fn describe_checks(d: &serde_json::Value) -> String {
    let results = d["results"].as_array().cloned().unwrap_or_default();
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
    let phase = d["phase"].as_str().unwrap_or("?");
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
    use runway_proxy::ClientErrorCounts;

    use super::client_errors_line;

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
