//! Reading `[incidents]`: severity rules, each located where it is written.

use super::Section;
use crate::error::SpecError;
use crate::incidents::{IncidentPolicy, SeverityRule};

const KEYS: &[&str] = &["rules", "default"];
const RULE_KEYS: &[&str] = &["severity", "error_rate", "failed_requests"];
const EXAMPLE: &str = "rules = [{ severity = \"SEV-1\", error_rate = 0.25 }]";

/// `[incidents]` of the document `root`; runbook 002's rules when absent.
pub(super) fn read_incidents(root: &Section<'_>) -> Result<IncidentPolicy, SpecError> {
    let Some(sec) = root.section("incidents", "[incidents]\ndefault = \"SEV-3\"")? else {
        return Ok(IncidentPolicy::default());
    };
    sec.check_keys(KEYS)?;
    let defaults = IncidentPolicy::default();
    let default = match sec.string("default", "default = \"SEV-3\"")? {
        Some(s) if s.value.trim().is_empty() => {
            return Err(sec.src.error(
                &s.span,
                "`default` cannot be empty",
                Some("for example: default = \"SEV-3\"".into()),
            ))
        }
        Some(s) => s.value.to_owned(),
        None => defaults.default.clone(),
    };
    let rules = match sec.tables("rules", "rule", EXAMPLE)? {
        None => defaults.rules,
        Some(tables) => {
            let mut rules = Vec::new();
            for table in tables.value {
                table.check_keys(RULE_KEYS)?;
                let severity = table.required(
                    "severity",
                    "severity = \"SEV-1\"",
                    table.string("severity", "severity = \"SEV-1\"")?,
                )?;
                let error_rate = match table.fraction("error_rate", "error_rate = 0.25")? {
                    Some(r) if !(0.0..=1.0).contains(&r.value) => {
                        return Err(table.src.error(
                            &r.span,
                            "`error_rate` is a share of requests, from 0 to 1",
                            Some(
                                "for example: error_rate = 0.25 (a quarter of them failed)".into(),
                            ),
                        ))
                    }
                    Some(r) => Some(r.value),
                    None => None,
                };
                let failed_requests = table
                    .count_u64("failed_requests", "failed_requests = 100")?
                    .map(|n| n.value);
                if error_rate.is_none() && failed_requests.is_none() {
                    return Err(table.src.error(
                        &table.span,
                        "a severity rule needs `error_rate`, `failed_requests` or both",
                        Some(format!("for example: {EXAMPLE}")),
                    ));
                }
                rules.push(SeverityRule {
                    severity: severity.value.to_owned(),
                    error_rate,
                    failed_requests,
                });
            }
            rules
        }
    };
    Ok(IncidentPolicy { rules, default })
}
