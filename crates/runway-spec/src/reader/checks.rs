//! Reading `[[checks]]`: the runbook's checklist items as typed checks.
//!
//! Each `[[checks]]` table is one [`CheckSpec`] of `runway-checks`. It is read like
//! `[strategy]`: `kind` first, by hand, because it decides which keys the table may
//! have (a key of another kind says whose it is), then the keys every check has, then
//! the kind's own. The rules are `rules/checks.rs`'s, shared with
//! [`Spec::validate`](crate::Spec::validate); the check model's own
//! [`CheckSpec::validate`] runs last, so that nothing the runner would refuse gets
//! through.

use std::collections::BTreeMap;
use std::time::Duration;

use runway_checks::model::{CheckKind, CheckSpec, Severity};
use toml_edit::{Item, Value};

use super::{describe, describe_value, header_span, quote_hint, read_env, unknown_word, At};
use super::{Section, Span};
use crate::error::SpecError;
use crate::rules::checks as rules;
use crate::rules::Problem;

/// The keys every check has, whatever its kind.
const COMMON_KEYS: &[&str] = &[
    "name", "kind", "timeout", "retries", "backoff", "severity", "phases", "schedule",
];

/// The check kinds and their own keys, in documentation order.
const KIND_KEYS: &[(&str, &[&str])] = &[
    (
        "http",
        &[
            "url",
            "method",
            "headers",
            "body",
            "expect_status",
            "expect_json",
            "max_latency",
        ],
    ),
    ("tcp", &["address"]),
    (
        "postgres",
        &["url", "query", "expect", "max_connections_share"],
    ),
    ("redis", &["url", "max_memory_share"]),
    ("disk", &["path", "min_free"]),
    ("tls", &["file", "address", "server_name", "min_days"]),
    ("env", &["vars"]),
    (
        "command",
        &["command", "expect_exit", "expect_stdout", "env"],
    ),
    ("prometheus", &["url", "query", "condition"]),
    ("file", &["path", "exists"]),
];

/// A whole check, for hints.
const EXAMPLE: &str = "[[checks]]\nname = \"postgres accepts queries\"\nkind = \"postgres\"\n\
                       url = \"env:DATABASE_URL\"\nphases = [\"preflight\", \"daily\"]";

/// The hint of an error that only the check runner's own validation found.
const DRIFT_HINT: &str = "the check runner refuses this check, though runway.toml's reader \
                          found nothing wrong with it: please report this";

/// `method` of an http check when not given.
const DEFAULT_METHOD: &str = "GET";

/// `min_days` of a tls check when not given.
const DEFAULT_MIN_DAYS: u32 = 30;

/// The `[[checks]]` of the document `root`. `prometheus` is `[analysis] prometheus`,
/// the default `url` of prometheus checks.
pub(super) fn read_checks(
    root: &Section<'_>,
    prometheus: Option<&str>,
) -> Result<Vec<CheckSpec>, SpecError> {
    if let Some((item @ Item::Table(_), span)) = root.entry("checks") {
        let at = if item.span().is_some() {
            header_span(root.src.text, span)
        } else {
            root.key_span("checks")
        };
        return Err(root.src.error(
            &at,
            "checks are written [[checks]], with double brackets, once above each check",
            Some(format!(
                "each check is a table of its own, e.g.:\n{EXAMPLE}"
            )),
        ));
    }
    let Some(tables) = root.tables("checks", "check", EXAMPLE)? else {
        return Ok(Vec::new());
    };
    let mut checks: Vec<CheckSpec> = Vec::with_capacity(tables.value.len());
    let mut name_spans: Vec<Span> = Vec::with_capacity(tables.value.len());
    for (i, mut table) in tables.value.into_iter().enumerate() {
        // Name the table by its check's name when it has one.
        table.label = match table.table.get("name").and_then(Item::as_str) {
            Some(name) if !name.trim().is_empty() => format!("check {name:?}"),
            _ => format!("check {}", i + 1),
        };
        let read = read_check(&table, prometheus, &checks, &name_spans);
        if let Some((check, name_span)) = root.src.recover(read) {
            checks.push(check);
            name_spans.push(name_span);
        }
    }
    Ok(checks)
}

/// One check, and the span of its name (unique among the `earlier` checks, whose names
/// are at `earlier_names`).
fn read_check(
    sec: &Section<'_>,
    prometheus: Option<&str>,
    earlier: &[CheckSpec],
    earlier_names: &[Span],
) -> Result<(CheckSpec, Span), SpecError> {
    const KIND: &str = "kind = \"http\"";
    let problems_before = sec.src.problem_count();
    let Some(kind) = sec.string("kind", KIND)? else {
        // Without a kind, any key some check has may be there; a typo of `kind` itself
        // is reported as one.
        let mut all: Vec<&str> = COMMON_KEYS.to_vec();
        for &(_, keys) in KIND_KEYS {
            for key in keys {
                if !all.contains(key) {
                    all.push(key);
                }
            }
        }
        sec.check_keys(&all)?;
        return Err(sec.src.error(
            &sec.span,
            format!("missing `kind` in {}", sec.title()),
            Some(format!("add {KIND}; {}", rules::kinds_hint())),
        ));
    };
    let Some(&(_, own)) = KIND_KEYS.iter().find(|&&(k, _)| k == kind.value) else {
        let names: Vec<&str> = KIND_KEYS.iter().map(|&(k, _)| k).collect();
        return Err(unknown_word(
            sec,
            &kind,
            "check kind",
            &names,
            rules::kinds_hint(),
        ));
    };
    let allowed: Vec<&str> = COMMON_KEYS.iter().chain(own).copied().collect();
    check_kind_keys(sec, kind.value, &allowed)?;

    const NAME: &str = "name = \"postgres accepts queries\"";
    let name = sec.required("name", NAME, sec.string("name", NAME)?)?;
    sec.src.check(&name.span, rules::check_name(name.value))?;
    if let Some(i) = earlier.iter().position(|c| c.name == name.value) {
        let line = sec.src.line_of(&earlier_names[i]);
        sec.src.check(
            &name.span,
            rules::check_name_unique(name.value, &format!("on line {line}")),
        )?;
    }

    let timeout = read_duration(sec, "timeout", "5s", true)?;
    let retries = sec.count("retries", "retries = 2")?;
    let backoff = read_duration(sec, "backoff", "1s", false)?;
    let severity = read_severity(sec)?;
    let phases = read_phases(sec)?;
    let schedule = match sec.string("schedule", "schedule = \"Mon-Fri 09:00 UTC\"")? {
        Some(text) => {
            sec.src.check(&text.span, rules::schedule(text.value))?;
            Some(text.value.to_owned())
        }
        None => None,
    };

    let kind = match kind.value {
        "http" => read_http(sec)?,
        "tcp" => CheckKind::Tcp {
            address: required_text(sec, "address", "address = \"127.0.0.1:5672\"", |a| {
                rules::address("address", a, "127.0.0.1:5672")
            })?,
        },
        "postgres" => read_postgres(sec)?,
        "redis" => read_redis(sec)?,
        "disk" => read_disk(sec)?,
        "tls" => read_tls(sec)?,
        "env" => read_env_check(sec)?,
        "command" => read_command_check(sec)?,
        "prometheus" => read_prometheus(sec, prometheus)?,
        _ => read_file(sec)?,
    };

    let check = CheckSpec {
        name: name.value.to_owned(),
        kind,
        timeout: timeout.unwrap_or(CheckSpec::DEFAULT_TIMEOUT),
        retries: retries.map_or(0, |n| n.value),
        backoff: backoff.unwrap_or(CheckSpec::DEFAULT_BACKOFF),
        severity,
        phases,
        schedule,
    };
    // The runner's own rules. The ones above say the same with a location, so this
    // only catches a drift between the two crates (and is moot when they found a
    // problem with this check already).
    let refused = |message| Problem {
        message,
        hint: Some(DRIFT_HINT.to_owned()),
    };
    if sec.src.problem_count() == problems_before {
        sec.src
            .check(&sec.span, check.validate().map_err(refused))?;
    }
    Ok((check, name.span))
}

/// Rejects keys that `kind` does not accept (`allowed`); a key of another kind says
/// whose it is.
fn check_kind_keys(sec: &Section<'_>, kind: &str, allowed: &[&str]) -> Result<(), SpecError> {
    let misplaced = sec.table.iter().find_map(|(key, item)| {
        if item.is_none() || allowed.contains(&key) {
            return None;
        }
        let owners: Vec<String> = KIND_KEYS
            .iter()
            .filter(|&&(_, keys)| keys.contains(&key))
            .map(|&(owner, _)| format!("\"{owner}\""))
            .collect();
        (!owners.is_empty()).then(|| (key, owners.join(" or ")))
    });
    if let Some((key, owners)) = misplaced {
        return Err(sec.src.error(
            &sec.key_span(key),
            format!(
                "unknown key `{key}` in {} of kind = \"{kind}\"",
                sec.title()
            ),
            Some(format!(
                "`{key}` is a setting of kind = {owners}; valid keys for kind = \"{kind}\": {}",
                allowed.join(", ")
            )),
        ));
    }
    sec.check_keys(allowed)
}

fn read_severity(sec: &Section<'_>) -> Result<Severity, SpecError> {
    let Some(text) = sec.string("severity", "severity = \"warning\"")? else {
        return Ok(Severity::default());
    };
    match text.value {
        "blocker" => Ok(Severity::Blocker),
        "warning" => Ok(Severity::Warning),
        _ => Err(unknown_word(
            sec,
            &text,
            "severity",
            &["blocker", "warning"],
            "severities: \"blocker\" (a failure stops the deploy; the default) and \
             \"warning\" (a failure is reported)"
                .to_owned(),
        )),
    }
}

fn read_phases(sec: &Section<'_>) -> Result<Vec<String>, SpecError> {
    const PHASES: &str = "phases = [\"preflight\", \"daily\"]";
    let phases = sec
        .required("phases", PHASES, strings(sec, "phases", PHASES)?)
        .map_err(|mut err| {
            err.hint = Some(format!("add {PHASES}; {}", rules::phases_hint()));
            err
        })?;
    sec.src
        .check(&phases.span, rules::phases_not_empty(phases.value.len()))?;
    let mut names: Vec<&str> = Vec::with_capacity(phases.value.len());
    for phase in &phases.value {
        sec.src
            .check(&phase.span, rules::phase(phase.value, &names))?;
        names.push(phase.value);
    }
    Ok(names.into_iter().map(str::to_owned).collect())
}

/// An array of strings, with the span of each element. A single string gets a hint
/// that puts it in brackets (or, for a `command`, splits it into an argv).
pub(super) fn strings<'a>(
    sec: &Section<'a>,
    key: &str,
    example: &str,
) -> Result<Option<At<Vec<At<&'a str>>>>, SpecError> {
    if let Some((Item::Value(Value::String(text)), span)) = sec.entry(key) {
        let words: Vec<String> = text
            .value()
            .split_whitespace()
            .map(|w| format!("{w:?}"))
            .collect();
        let hint = if key == "command" && words.len() > 1 {
            format!(
                "write the program and each argument as separate strings: command = [{}]",
                words.join(", ")
            )
        } else {
            format!("put it in brackets: {key} = [{:?}]", text.value())
        };
        return Err(sec.src.error(
            &span,
            format!("`{key}` must be an array of strings, not a single string"),
            Some(hint),
        ));
    }
    let Some(array) = sec.get(key, "an array of strings", example, Value::as_array)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(array.value.len());
    for value in array.value.iter() {
        let span = value.span().unwrap_or_else(|| array.span.clone());
        let Some(text) = value.as_str() else {
            return Err(sec.src.error(
                &span,
                format!(
                    "every element of `{key}` must be a string, found {}",
                    describe_value(value)
                ),
                Some(quote_hint(sec.src.slice(&span), value, example)),
            ));
        };
        out.push(At { value: text, span });
    }
    Ok(Some(At {
        value: out,
        span: array.span,
    }))
}

/// A required string (`example` is a whole `key = value` line) that passes `rule`.
fn required_text(
    sec: &Section<'_>,
    key: &str,
    example: &str,
    rule: impl FnOnce(&str) -> Result<(), Problem>,
) -> Result<String, SpecError> {
    let text = sec.required(key, example, sec.string(key, example)?)?;
    sec.src.check(&text.span, rule(text.value))?;
    Ok(text.value.to_owned())
}

/// An optional string that passes `rule`.
fn optional_text(
    sec: &Section<'_>,
    key: &str,
    example: &str,
    rule: impl FnOnce(&str) -> Result<(), Problem>,
) -> Result<Option<String>, SpecError> {
    match sec.string(key, example)? {
        Some(text) => {
            sec.src.check(&text.span, rule(text.value))?;
            Ok(Some(text.value.to_owned()))
        }
        None => Ok(None),
    }
}

/// An optional duration of at most a day (and more than 0 if `positive`).
fn read_duration(
    sec: &Section<'_>,
    key: &str,
    example: &str,
    positive: bool,
) -> Result<Option<Duration>, SpecError> {
    let Some(d) = sec.duration(key, example)? else {
        return Ok(None);
    };
    if positive {
        sec.src
            .check(&d.span, crate::rules::positive(key, d.value, example))?;
    }
    sec.src
        .check(&d.span, rules::at_most_a_day(key, d.value.get(), example))?;
    Ok(Some(d.value.get()))
}

/// An optional share (`max_connections_share`, `max_memory_share`) in (0, 1].
fn read_share(sec: &Section<'_>, key: &str) -> Result<Option<f64>, SpecError> {
    match sec.fraction(key, &format!("{key} = 0.9"))? {
        Some(x) => {
            sec.src.check(&x.span, rules::share(key, x.value))?;
            Ok(Some(x.value))
        }
        None => Ok(None),
    }
}

/// An optional whole number, checked by `rule`.
fn integer(
    sec: &Section<'_>,
    key: &str,
    example: &str,
    rule: fn(i64) -> Result<(), Problem>,
) -> Result<Option<i64>, SpecError> {
    match sec.get(key, "a whole number", example, Value::as_integer)? {
        Some(n) => {
            sec.src.check(&n.span, rule(n.value))?;
            Ok(Some(n.value))
        }
        None => Ok(None),
    }
}

fn read_http(sec: &Section<'_>) -> Result<CheckKind, SpecError> {
    let url = required_text(
        sec,
        "url",
        "url = \"http://{replica}/health/ready\"",
        rules::http_url,
    )?;
    let method = optional_text(sec, "method", "method = \"GET\"", rules::http_method)?;
    let headers = match sec.section(
        "headers",
        "headers = { Authorization = \"secret:API_TOKEN\" }",
    )? {
        Some(table) => read_headers(&table)?,
        None => BTreeMap::new(),
    };
    let body = optional_text(sec, "body", "body = '{\"ping\": true}'", |_| Ok(()))?;
    // The rule keeps it within 100..=599.
    let expect_status = integer(
        sec,
        "expect_status",
        "expect_status = 200",
        rules::expect_status,
    )?
    .map(|n| n as u16);
    let expect_json =
        match sec.section("expect_json", "expect_json = { \".status\" = \"healthy\" }")? {
            Some(table) => read_expect_json(&table)?,
            None => BTreeMap::new(),
        };
    let max_latency = read_duration(sec, "max_latency", "500ms", true)?;
    Ok(CheckKind::Http {
        method: method.unwrap_or_else(|| DEFAULT_METHOD.to_owned()),
        url,
        headers,
        body,
        expect_status,
        expect_json,
        max_latency,
    })
}

/// `headers = { Name = "value" }`: header names, and string values that may be
/// `env:NAME` / `secret:NAME` references.
fn read_headers(table: &Section<'_>) -> Result<BTreeMap<String, String>, SpecError> {
    let mut headers = BTreeMap::new();
    for (name, item) in table.table.iter() {
        if item.is_none() {
            continue;
        }
        table
            .src
            .check(&table.key_span(name), rules::header_name(name))?;
        let span = table.value_span(name, item);
        let Some(value) = item.as_str() else {
            return Err(table.src.error(
                &span,
                format!("header {name} must be a string, found {}", describe(item)),
                Some(match item.as_value() {
                    Some(v) if super::is_scalar(v) => {
                        format!("quote it: {name} = \"{}\"", table.src.slice(&span).trim())
                    }
                    _ => format!("for example: {name} = \"application/json\""),
                }),
            ));
        };
        table.src.check(&span, rules::reference(value))?;
        headers.insert(name.to_owned(), value.to_owned());
    }
    Ok(headers)
}

/// `expect_json = { ".path" = value }`: paths starting with `.`, and the string,
/// number or boolean expected there.
fn read_expect_json(table: &Section<'_>) -> Result<BTreeMap<String, serde_json::Value>, SpecError> {
    let mut expected = BTreeMap::new();
    for (path, item) in table.table.iter() {
        if item.is_none() {
            continue;
        }
        table
            .src
            .check(&table.key_span(path), rules::json_path(path))?;
        let span = table.value_span(path, item);
        let value = match item.as_value() {
            Some(Value::String(s)) => Some(serde_json::Value::from(s.value().as_str())),
            Some(Value::Integer(n)) => Some(serde_json::Value::from(*n.value())),
            Some(Value::Float(x)) => serde_json::Number::from_f64(*x.value()).map(Into::into),
            Some(Value::Boolean(b)) => Some(serde_json::Value::from(*b.value())),
            _ => None,
        };
        let Some(value) = value else {
            let found = match item.as_value() {
                Some(Value::Float(_)) => "a number that is not finite",
                _ => describe(item),
            };
            return Err(table.src.error(
                &span,
                format!(
                    "the value expected at {path:?} must be a string, a number or a \
                     boolean, found {found}"
                ),
                Some(
                    "expect one value per path, e.g. { \".status\" = \"healthy\", \".count\" = 3 }; \
                     reach inside objects and arrays with longer paths: \".checks.database\", \
                     \".items.0.id\""
                        .to_owned(),
                ),
            ));
        };
        expected.insert(path.to_owned(), value);
    }
    Ok(expected)
}

fn read_postgres(sec: &Section<'_>) -> Result<CheckKind, SpecError> {
    let url = required_text(
        sec,
        "url",
        "url = \"env:DATABASE_URL\"",
        rules::postgres_url,
    )?;
    let query = optional_text(sec, "query", "query = \"SELECT 1\"", |q| {
        rules::not_blank("query", q, "query = \"SELECT 1\"")
    })?;
    let expect = optional_text(sec, "expect", "expect = \"1\"", |_| Ok(()))?;
    let max_connections_share = read_share(sec, "max_connections_share")?;
    Ok(CheckKind::Postgres {
        url,
        query,
        expect,
        max_connections_share,
    })
}

fn read_redis(sec: &Section<'_>) -> Result<CheckKind, SpecError> {
    let url = required_text(
        sec,
        "url",
        "url = \"redis://127.0.0.1:6379\"",
        rules::redis_url,
    )?;
    let max_memory_share = read_share(sec, "max_memory_share")?;
    Ok(CheckKind::Redis {
        url,
        max_memory_share,
    })
}

fn read_disk(sec: &Section<'_>) -> Result<CheckKind, SpecError> {
    const MIN_FREE: &str = "min_free = \"10GB\"";
    let path = required_text(sec, "path", "path = \"/\"", |p| {
        rules::not_blank("path", p, "path = \"/var/lib/postgresql\"")
    })?;
    if let Some((Item::Value(Value::Integer(n)), span)) = sec.entry("min_free") {
        return Err(sec.src.error(
            &span,
            "`min_free` needs a unit",
            Some(format!(
                "write a quoted size with a unit, e.g. min_free = \"{n}GB\", or a \
                 percentage of the filesystem, e.g. \"{n}%\" (units: B, KB, MB, GB, TB, \
                 KiB, MiB, GiB, TiB)",
                n = n.value()
            )),
        ));
    }
    let text = sec.required("min_free", MIN_FREE, sec.string("min_free", MIN_FREE)?)?;
    let min_free = rules::parse_min_free(text.value)
        .map_err(|p| sec.src.error(&text.span, p.message, p.hint))?;
    Ok(CheckKind::Disk { path, min_free })
}

fn read_tls(sec: &Section<'_>) -> Result<CheckKind, SpecError> {
    let file = match sec.string("file", "file = \"/etc/ssl/certs/web.pem\"")? {
        Some(text) => {
            sec.src.check(
                &text.span,
                rules::not_blank("file", text.value, "file = \"/etc/ssl/certs/web.pem\""),
            )?;
            Some(text)
        }
        None => None,
    };
    let address = match sec.string("address", "address = \"example.com:443\"")? {
        Some(text) => {
            sec.src.check(
                &text.span,
                rules::address("address", text.value, "example.com:443"),
            )?;
            Some(text)
        }
        None => None,
    };
    // Both: point at the second one written; neither: at the check.
    let span = match (&file, &address) {
        (Some(f), Some(a)) if f.span.start > a.span.start => f.span.clone(),
        (Some(_), Some(a)) => a.span.clone(),
        _ => sec.span.clone(),
    };
    sec.src
        .check(&span, rules::tls_target(file.is_some(), address.is_some()))?;
    let server_name = match sec.string("server_name", "server_name = \"example.com\"")? {
        Some(text) => {
            sec.src
                .check(&text.span, rules::server_name_allowed(address.is_some()))?;
            sec.src.check(
                &text.span,
                rules::not_blank("server_name", text.value, "server_name = \"example.com\""),
            )?;
            Some(text.value.to_owned())
        }
        None => None,
    };
    let min_days = sec
        .count("min_days", "min_days = 30")?
        .map_or(DEFAULT_MIN_DAYS, |n| n.value);
    Ok(CheckKind::Tls {
        file: file.map(|f| f.value.to_owned()),
        address: address.map(|a| a.value.to_owned()),
        server_name,
        min_days,
    })
}

fn read_env_check(sec: &Section<'_>) -> Result<CheckKind, SpecError> {
    const VARS: &str = "vars = [\"DATABASE_URL\", \"SECRET_KEY\"]";
    let vars = sec.required("vars", VARS, strings(sec, "vars", VARS)?)?;
    sec.src
        .check(&vars.span, rules::vars_not_empty(vars.value.len()))?;
    for var in &vars.value {
        sec.src
            .check(&var.span, crate::rules::env_name(var.value))?;
    }
    Ok(CheckKind::Env {
        vars: vars.value.iter().map(|v| v.value.to_owned()).collect(),
    })
}

fn read_command_check(sec: &Section<'_>) -> Result<CheckKind, SpecError> {
    const COMMAND: &str = "command = [\"pg_isready\", \"-h\", \"127.0.0.1\"]";
    let argv = sec.required("command", COMMAND, strings(sec, "command", COMMAND)?)?;
    let command: Vec<String> = argv.value.iter().map(|a| a.value.to_owned()).collect();
    let span = argv
        .value
        .first()
        .map_or(argv.span.clone(), |a| a.span.clone());
    sec.src.check(&span, rules::check_command(&command))?;
    // The rule keeps it within 0..=255.
    let expect_exit = integer(sec, "expect_exit", "expect_exit = 0", rules::expect_exit)?;
    let expect_exit = expect_exit.map_or(0, |n| n as i32);
    let expect_stdout =
        optional_text(sec, "expect_stdout", "expect_stdout = \"accepting\"", |s| {
            rules::not_blank(
                "expect_stdout",
                s,
                "expect_stdout = \"accepting connections\"",
            )
        })?;
    let env = match sec.section("env", "env = { PGCONNECT_TIMEOUT = \"3\" }")? {
        Some(table) => {
            let env = read_env(&table)?;
            for (name, value) in &env {
                let span = table.entry(name).map_or(table.span.clone(), |(_, s)| s);
                table.src.check(&span, rules::reference(value))?;
            }
            env
        }
        None => BTreeMap::new(),
    };
    Ok(CheckKind::Command {
        command,
        expect_exit,
        expect_stdout,
        env,
    })
}

fn read_prometheus(sec: &Section<'_>, default_url: Option<&str>) -> Result<CheckKind, SpecError> {
    const QUERY: &str = "query = \"avg_over_time(up{job=\\\"web\\\"}[5m])\"";
    const CONDITION: &str = "condition = \"> 0.99\"";
    let query = required_text(sec, "query", QUERY, |q| rules::not_blank("query", q, QUERY))?;
    let text = sec.required("condition", CONDITION, sec.string("condition", CONDITION)?)?;
    let condition = rules::check_condition(text.value)
        .map_err(|p| sec.src.error(&text.span, p.message, p.hint))?;
    let url = match sec.string("url", "url = \"http://127.0.0.1:9090\"")? {
        Some(url) => {
            sec.src
                .check(&url.span, rules::prometheus_check_url(url.value))?;
            url.value.to_owned()
        }
        None => match default_url {
            Some(url) => url.to_owned(),
            None => {
                return Err(sec.src.error(
                    &sec.span,
                    format!("{} needs the Prometheus server's address", sec.title()),
                    Some(rules::prometheus_url_hint()),
                ))
            }
        },
    };
    Ok(CheckKind::Prometheus {
        url,
        query,
        condition,
    })
}

fn read_file(sec: &Section<'_>) -> Result<CheckKind, SpecError> {
    let path = required_text(sec, "path", "path = \"/etc/maintenance\"", |p| {
        rules::not_blank("path", p, "path = \"/etc/maintenance\"")
    })?;
    let exists = sec.get("exists", "a boolean", "exists = false", Value::as_bool)?;
    Ok(CheckKind::File {
        path,
        exists: exists.is_none_or(|b| b.value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_tables_agree() {
        let kinds: Vec<&str> = KIND_KEYS.iter().map(|&(k, _)| k).collect();
        assert_eq!(kinds, rules::KINDS);
        for &(_, keys) in KIND_KEYS {
            for key in keys {
                assert!(!COMMON_KEYS.contains(key), "{key}");
            }
        }
    }
}
