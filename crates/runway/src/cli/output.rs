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

pub fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Seconds between two RFC 3339 timestamps.
pub fn seconds_between(from: &str, to: &str) -> Option<f64> {
    Some((parse_time(to)? - parse_time(from)?).as_seconds_f64())
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
        "started" => match d.get("previous_version").and_then(|v| v.as_str()) {
            Some(prev) => format!(
                "started: {} -> {} ({} replicas)",
                prev,
                s("version"),
                n("replicas")
            ),
            None => format!(
                "started: {} ({} replicas, first release)",
                s("version"),
                n("replicas")
            ),
        },
        "replica_starting" => format!(
            "{} ({}) starting on 127.0.0.1:{}",
            s("replica"),
            s("version"),
            n("port")
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
        "reverting" => format!("reverting to {}", s("to")),
        "reverted" => format!("{} serves again", s("to")),
        "revert_failed" => format!("revert failed: {}", s("reason")),
        "resumed" => "server restarted; resuming this deployment".to_string(),
        "succeeded" => "succeeded".to_string(),
        other => format!("{other} {d}"),
    }
}
