//! Who may deploy what, when: `[deploy]` (the default type, the time zone, the windows and
//! the freezes) and `[types.NAME]` (runbook 001's deployment types: the approvals each needs,
//! its windows, its strategy and analysis, its monitoring period, the checks it may skip).
//!
//! The calendar strings are checked when the file is read (runway-calendar parses them) and
//! kept as written, so a release stores its policy as the user wrote it;
//! [`Spec::calendar`] builds the calendar a deployment is judged by.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::Dur;
use crate::model::{AnalysisSpec, Spec, StrategySpec};

/// `[deploy]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployPolicy {
    /// The type of a deploy without `--type`.
    pub default_type: String,
    /// The IANA zone the windows and freezes are in.
    pub timezone: String,
    /// When a deployment may start (`Mon-Thu 14:00-18:00`); empty: any time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<String>,
    /// `[[deploy.freeze]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freezes: Vec<FreezeSpec>,
}

impl DeployPolicy {
    pub const DEFAULT_TYPE: &'static str = "standard";
    pub const DEFAULT_TIMEZONE: &'static str = "UTC";
}

impl Default for DeployPolicy {
    fn default() -> Self {
        DeployPolicy {
            default_type: Self::DEFAULT_TYPE.into(),
            timezone: Self::DEFAULT_TIMEZONE.into(),
            windows: Vec::new(),
            freezes: Vec::new(),
        }
    }
}

/// One `[[deploy.freeze]]`: by dates, by recurrence rule, or the last days of each quarter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeSpec {
    pub name: String,
    pub when: FreezeWhen,
    /// The deployment types it lets through.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

/// When a freeze holds, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezeWhen {
    /// `from = "2026-12-15"`, `to = "2027-01-02"`: both days included.
    Dates { from: String, to: String },
    /// `last_days_of_quarter = 3`.
    QuarterEnd { days: u32 },
    /// `rrule = "FREQ=WEEKLY;BYDAY=FR;BYHOUR=12"`, `duration = "12h"`, counted from `starts`
    /// (a local `2026-01-01T00:00`).
    Rule {
        rrule: String,
        duration: Dur,
        starts: String,
    },
}

/// `[types.NAME]`: a deployment type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployType {
    /// How many distinct approvers must approve a deployment of this type before it starts.
    #[serde(default)]
    pub approvals: u32,
    /// The roles that may approve (`approver`, `admin`).
    pub approvers: Vec<String>,
    /// Whether the requester may be one of the approvers.
    #[serde(default)]
    pub self_approval: bool,
    /// How long an approval counts.
    pub approval_ttl: Dur,
    /// Its own windows instead of `[deploy] windows` (`[]`: any time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Vec<String>>,
    /// The preflight checks it may skip (by name; `"*"`: all), recorded when skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_checks: Vec<String>,
    /// How long the judge keeps watching after the release has all traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Dur>,
    /// Its own `[strategy]` (an emergency: rolling, no canary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<StrategySpec>,
    /// Its own `[analysis]`: its rollback criteria.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,
}

impl DeployType {
    pub const ROLES: [&'static str; 2] = ["approver", "admin"];
    pub const DEFAULT_APPROVAL_TTL: Dur = Dur(std::time::Duration::from_secs(24 * 3600));
}

impl Default for DeployType {
    fn default() -> Self {
        DeployType {
            approvals: 0,
            approvers: Self::ROLES.iter().map(|r| r.to_string()).collect(),
            self_approval: false,
            approval_ttl: Self::DEFAULT_APPROVAL_TTL,
            windows: None,
            skip_checks: Vec::new(),
            monitor: None,
            strategy: None,
            analysis: None,
        }
    }
}

/// `[types]`, by name.
pub type DeployTypes = BTreeMap<String, DeployType>;

impl Spec {
    /// The type `name` (or the default type), with its settings; an unknown one is an error
    /// that lists the known ones. Without `[types]`, the default type exists, with nothing
    /// asked of it.
    pub fn deploy_type(&self, name: Option<&str>) -> Result<(String, DeployType), String> {
        let name = name.unwrap_or(&self.deploy.default_type);
        if self.types.is_empty() && name == self.deploy.default_type {
            return Ok((name.to_string(), DeployType::default()));
        }
        match self.types.get(name) {
            Some(t) => Ok((name.to_string(), t.clone())),
            None => {
                let known: Vec<&str> = self.types.keys().map(String::as_str).collect();
                Err(if known.is_empty() {
                    format!(
                        "unknown deployment type `{name}`: runway.toml has no [types]; the \
                         only type is `{}`",
                        self.deploy.default_type
                    )
                } else {
                    format!(
                        "unknown deployment type `{name}`: runway.toml's [types] are {}",
                        known.join(", ")
                    )
                })
            }
        }
    }

    /// The spec a deployment of `deploy_type` runs with: the type's strategy and analysis in
    /// place of the file's.
    pub fn with_type(&self, deploy_type: &DeployType) -> Spec {
        let mut spec = self.clone();
        if let Some(strategy) = &deploy_type.strategy {
            spec.strategy = strategy.clone();
        }
        if let Some(analysis) = &deploy_type.analysis {
            spec.analysis = Some(analysis.clone());
        }
        spec
    }

    /// The calendar a deployment of type `type_name` is judged by: its windows (the type's
    /// own, else `[deploy]`'s) and every freeze.
    pub fn calendar(
        &self,
        type_name: &str,
        deploy_type: &DeployType,
    ) -> Result<runway_calendar::Calendar, String> {
        let problem = |what: &str, p: runway_calendar::Problem| format!("{what}: {}", p.message);
        let zone = runway_calendar::parse_zone(&self.deploy.timezone)
            .map_err(|p| problem("deploy.timezone", p))?;
        let windows = deploy_type.windows.as_ref().unwrap_or(&self.deploy.windows);
        let windows = windows
            .iter()
            .map(|w| {
                runway_calendar::Window::parse(w)
                    .map_err(|p| problem(&format!("types.{type_name}.windows"), p))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut freezes = Vec::new();
        for f in &self.deploy.freezes {
            let at = format!("deploy.freeze `{}`", f.name);
            let when = match &f.when {
                FreezeWhen::Dates { from, to } => runway_calendar::Freeze::dates(from, to),
                FreezeWhen::QuarterEnd { days } => runway_calendar::Freeze::quarter_end(*days),
                FreezeWhen::Rule {
                    rrule,
                    duration,
                    starts,
                } => parse_starts(starts).and_then(|starts| {
                    runway_calendar::Freeze::rule(rrule, starts, zone, duration.0)
                }),
            }
            .map_err(|p| problem(&at, p))?;
            freezes.push(runway_calendar::Freeze {
                name: f.name.clone(),
                when,
                except: f.except.clone(),
            });
        }
        Ok(runway_calendar::Calendar {
            zone,
            windows,
            freezes,
        })
    }
}

/// A freeze rule's `starts`: `2026-01-01` or `2026-01-01T09:00`, local.
pub(crate) fn parse_starts(text: &str) -> Result<chrono::NaiveDateTime, runway_calendar::Problem> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
        })
        .map_err(|_| runway_calendar::Problem {
            message: format!("`{text}` is not a local date or date and time"),
            hint: Some("starts = \"2026-01-01\" or \"2026-01-01T09:00\"".into()),
        })
}
