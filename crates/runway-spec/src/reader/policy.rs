//! `[deploy]` and `[types.NAME]` (see `policy.rs` for what they mean): every window, zone,
//! date and recurrence rule parsed by runway-calendar where it is written, so that a bad one
//! is a located error in `runway validate`.

use std::net::SocketAddr;

use toml_edit::{Item, Value};

use super::checks::strings;
use super::{read_analysis, read_strategy, Section};
use crate::error::SpecError;
use crate::model::StrategySpec;
use crate::policy::{DeployPolicy, DeployType, DeployTypes, FreezeSpec, FreezeWhen};
use crate::rules::Problem;

const DEPLOY_KEYS: &[&str] = &["default_type", "timezone", "windows", "freeze"];
const FREEZE_KEYS: &[&str] = &[
    "name",
    "from",
    "to",
    "last_days_of_quarter",
    "rrule",
    "starts",
    "duration",
    "except",
];
const TYPE_KEYS: &[&str] = &[
    "approvals",
    "approvers",
    "self_approval",
    "approval_ttl",
    "windows",
    "skip_checks",
    "monitor",
    "strategy",
    "analysis",
];
const WINDOWS_EXAMPLE: &str = "windows = [\"Mon-Thu 14:00-18:00\"]";
const FREEZE_EXAMPLE: &str =
    "[[deploy.freeze]]\nname = \"holiday\"\nfrom = \"2026-12-15\"\nto = \"2027-01-02\"";

fn problem(p: runway_calendar::Problem) -> Problem {
    Problem {
        message: p.message,
        hint: p.hint,
    }
}

/// `[deploy]`, defaults when absent.
pub(super) fn read_deploy(root: &Section<'_>) -> Result<DeployPolicy, SpecError> {
    let Some(sec) = root.section("deploy", "[deploy]\ntimezone = \"UTC\"")? else {
        return Ok(DeployPolicy::default());
    };
    sec.check_keys(DEPLOY_KEYS)?;
    let default_type = match sec.string("default_type", "default_type = \"standard\"")? {
        Some(name) => name.value.to_owned(),
        None => DeployPolicy::DEFAULT_TYPE.to_owned(),
    };
    let timezone = match sec.string("timezone", "timezone = \"Europe/Berlin\"")? {
        Some(zone) => {
            sec.src.require(
                &zone.span,
                runway_calendar::parse_zone(zone.value)
                    .map(drop)
                    .map_err(problem),
            )?;
            zone.value.to_owned()
        }
        None => DeployPolicy::DEFAULT_TIMEZONE.to_owned(),
    };
    let zone = runway_calendar::parse_zone(&timezone)
        .map_err(|p| sec.src.error(&sec.span, p.message, p.hint))?;
    let windows = read_windows(&sec)?.unwrap_or_default();
    let mut freezes: Vec<FreezeSpec> = Vec::new();
    if let Some(tables) = sec.tables("freeze", "freeze", FREEZE_EXAMPLE)? {
        for table in tables.value {
            let freeze = read_freeze(&table, zone)?;
            if let Some(twin) = freezes.iter().find(|f| f.name == freeze.name) {
                return Err(table.src.error(
                    &table.span,
                    format!("two freezes are named `{}`", twin.name),
                    Some("give each [[deploy.freeze]] its own name".into()),
                ));
            }
            freezes.push(freeze);
        }
    }
    Ok(DeployPolicy {
        default_type,
        timezone,
        windows,
        freezes,
    })
}

/// `windows = [...]` of `sec`: each parsed, none overlapping another.
fn read_windows(sec: &Section<'_>) -> Result<Option<Vec<String>>, SpecError> {
    let Some(list) = strings(sec, "windows", WINDOWS_EXAMPLE)? else {
        return Ok(None);
    };
    let mut windows: Vec<(runway_calendar::Window, String)> = Vec::new();
    for text in list.value {
        let window = runway_calendar::Window::parse(text.value)
            .map_err(|p| sec.src.error(&text.span, p.message, p.hint))?;
        if let Some((_, other)) = windows.iter().find(|(w, _)| w.overlaps(&window)) {
            return Err(sec.src.error(
                &text.span,
                format!("the window `{}` overlaps `{other}`", text.value),
                Some("merge them into one window, or make them meet end to start".into()),
            ));
        }
        windows.push((window, text.value.to_owned()));
    }
    Ok(Some(windows.into_iter().map(|(_, text)| text).collect()))
}

fn read_freeze(sec: &Section<'_>, zone: runway_calendar::Tz) -> Result<FreezeSpec, SpecError> {
    sec.check_keys(FREEZE_KEYS)?;
    let name = sec.required(
        "name",
        "name = \"holiday\"",
        sec.string("name", "name = \"holiday\"")?,
    )?;
    let from = sec.string("from", "from = \"2026-12-15\"")?;
    let to = sec.string("to", "to = \"2027-01-02\"")?;
    let quarter = sec.count("last_days_of_quarter", "last_days_of_quarter = 3")?;
    let rrule = sec.string("rrule", "rrule = \"FREQ=WEEKLY;BYDAY=FR;BYHOUR=12\"")?;
    let kinds = [
        from.is_some() || to.is_some(),
        quarter.is_some(),
        rrule.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(sec.src.error(
            &sec.span,
            format!(
                "freeze `{}` needs exactly one of: from and to, last_days_of_quarter, rrule",
                name.value
            ),
            Some(
                "from = \"2026-12-15\" and to = \"2027-01-02\"; or last_days_of_quarter = 3; or \
                 rrule = \"FREQ=WEEKLY;BYDAY=FR;BYHOUR=12\" with duration = \"12h\""
                    .into(),
            ),
        ));
    }
    let when = if let Some(days) = quarter {
        sec.src.require(
            &days.span,
            runway_calendar::Freeze::quarter_end(days.value)
                .map(drop)
                .map_err(problem),
        )?;
        FreezeWhen::QuarterEnd { days: days.value }
    } else if let Some(rule) = rrule {
        let duration = sec.required(
            "duration",
            "duration = \"12h\"",
            sec.duration("duration", "12h")?,
        )?;
        let starts = match sec.string("starts", "starts = \"2026-01-01\"")? {
            Some(starts) => {
                sec.src.require(
                    &starts.span,
                    crate::policy::parse_starts(starts.value)
                        .map(drop)
                        .map_err(problem),
                )?;
                starts.value.to_owned()
            }
            None => "2000-01-01".to_owned(),
        };
        let local = crate::policy::parse_starts(&starts)
            .map_err(|p| sec.src.error(&sec.span, p.message, p.hint))?;
        sec.src.require(
            &rule.span,
            runway_calendar::Freeze::rule(rule.value, local, zone, duration.value.0)
                .map(drop)
                .map_err(problem),
        )?;
        FreezeWhen::Rule {
            rrule: rule.value.to_owned(),
            duration: duration.value,
            starts,
        }
    } else {
        let example = "from = \"2026-12-15\"\nto = \"2027-01-02\"";
        let from = sec.required("from", example, from)?;
        let to = sec.required("to", example, to)?;
        sec.src.require(
            &to.span,
            runway_calendar::Freeze::dates(from.value, to.value)
                .map(drop)
                .map_err(problem),
        )?;
        FreezeWhen::Dates {
            from: from.value.to_owned(),
            to: to.value.to_owned(),
        }
    };
    let except = match strings(sec, "except", "except = [\"emergency\"]")? {
        Some(list) => list.value.iter().map(|t| t.value.to_owned()).collect(),
        None => Vec::new(),
    };
    Ok(FreezeSpec {
        name: name.value.to_owned(),
        when,
        except,
    })
}

/// `[types.NAME]` tables.
pub(super) fn read_types(
    root: &Section<'_>,
    listen: SocketAddr,
    cluster_prometheus: Option<&str>,
) -> Result<DeployTypes, SpecError> {
    let Some(sec) = root.section("types", "[types.standard]\napprovals = 1")? else {
        return Ok(DeployTypes::new());
    };
    let mut types = DeployTypes::new();
    for (name, item) in sec.table.iter() {
        if item.is_none() {
            continue;
        }
        let Some(table) = sec.section(name, "[types.hotfix]\napprovals = 1")? else {
            continue;
        };
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            return Err(sec.src.error(
                &sec.key_span(name),
                format!("`{name}` is not a deployment type name"),
                Some("lowercase letters, digits, `-` and `_`: [types.hotfix]".into()),
            ));
        }
        types.insert(
            name.to_owned(),
            read_type(&table, listen, cluster_prometheus)?,
        );
    }
    Ok(types)
}

fn read_type(
    sec: &Section<'_>,
    listen: SocketAddr,
    cluster_prometheus: Option<&str>,
) -> Result<DeployType, SpecError> {
    sec.check_keys(TYPE_KEYS)?;
    let defaults = DeployType::default();
    let approvals = sec
        .count("approvals", "approvals = 1")?
        .map_or(0, |n| n.value);
    let approvers = match strings(sec, "approvers", "approvers = [\"approver\", \"admin\"]")? {
        Some(list) => {
            let mut roles = Vec::new();
            for role in list.value {
                if !DeployType::ROLES.contains(&role.value) {
                    return Err(sec.src.error(
                        &role.span,
                        format!("`{}` is not a role that approves", role.value),
                        Some("approvers are roles: \"approver\" or \"admin\"".into()),
                    ));
                }
                roles.push(role.value.to_owned());
            }
            if roles.is_empty() && approvals > 0 {
                return Err(sec.src.error(
                    &list.span,
                    "no role may approve, and the type needs approvals",
                    Some("approvers = [\"approver\", \"admin\"]".into()),
                ));
            }
            roles
        }
        None => defaults.approvers,
    };
    let self_approval = match sec.entry("self_approval") {
        Some((Item::Value(Value::Boolean(b)), _)) => *b.value(),
        Some((_, span)) => {
            return Err(sec.src.error(
                &span,
                "`self_approval` must be true or false",
                Some("self_approval = false".into()),
            ))
        }
        None => false,
    };
    let approval_ttl = match sec.duration("approval_ttl", "24h")? {
        Some(ttl) => {
            sec.src.require(
                &ttl.span,
                crate::rules::positive("approval_ttl", ttl.value, "24h"),
            )?;
            ttl.value
        }
        None => defaults.approval_ttl,
    };
    let windows = read_windows(sec)?;
    let skip_checks = match strings(sec, "skip_checks", "skip_checks = [\"load-test\"]")? {
        Some(list) => list.value.iter().map(|c| c.value.to_owned()).collect(),
        None => Vec::new(),
    };
    let monitor = match sec.duration("monitor", "30m")? {
        Some(d) => {
            sec.src
                .require(&d.span, crate::rules::positive("monitor", d.value, "30m"))?;
            Some(d.value)
        }
        None => None,
    };
    let strategy: Option<StrategySpec> =
        match sec.section("strategy", "strategy = { kind = \"rolling\" }")? {
            Some(s) => Some(read_strategy(&s, listen)?),
            None => None,
        };
    let analysis = match sec.section("analysis", "[types.standard.analysis]")? {
        Some(s) => Some(read_analysis(&s, cluster_prometheus)?),
        None => None,
    };
    Ok(DeployType {
        approvals,
        approvers,
        self_approval,
        approval_ttl,
        windows,
        skip_checks,
        monitor,
        strategy,
        analysis,
    })
}

/// Names that must name a type: `[deploy] default_type` and each freeze's `except`, once
/// `[types]` is read.
pub(super) fn check_type_names(
    root: &Section<'_>,
    deploy: &DeployPolicy,
    types: &DeployTypes,
) -> Result<(), SpecError> {
    let known =
        |name: &str| types.contains_key(name) || (types.is_empty() && name == deploy.default_type);
    let listed = || {
        if types.is_empty() {
            format!(
                "the only type is `{}` (there is no [types])",
                deploy.default_type
            )
        } else {
            let names: Vec<&str> = types.keys().map(String::as_str).collect();
            format!("the types are {}", names.join(", "))
        }
    };
    let Some(sec) = root.section("deploy", "[deploy]")? else {
        if !known(&deploy.default_type) {
            return Err(root.src.error(
                &root.key_span("types"),
                format!(
                    "the default deployment type `{}` is not in [types]",
                    deploy.default_type
                ),
                Some(format!(
                    "add [types.{}], or set [deploy] default_type to one of: {}",
                    deploy.default_type,
                    listed()
                )),
            ));
        }
        return Ok(());
    };
    if !known(&deploy.default_type) {
        let at = sec
            .entry("default_type")
            .map_or_else(|| sec.span.clone(), |(_, span)| span);
        return Err(sec.src.error(
            &at,
            format!("unknown deployment type `{}`", deploy.default_type),
            Some(listed()),
        ));
    }
    if let Some(tables) = sec.tables("freeze", "freeze", FREEZE_EXAMPLE)? {
        for table in tables.value {
            if let Some(list) = strings(&table, "except", "except = [\"emergency\"]")? {
                for name in list.value {
                    if !known(name.value) && !types.is_empty() {
                        return Err(table.src.error(
                            &name.span,
                            format!("unknown deployment type `{}`", name.value),
                            Some(listed()),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}
