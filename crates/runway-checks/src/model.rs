//! The model of a check: what to look at, what counts as healthy, and how hard to try.
//!
//! A [`CheckSpec`] is plain data. `runway-spec` builds it from `runway.toml`, runway
//! stores it as JSON next to a deployment, and [`crate::run`] executes it. Keeping the
//! model free of I/O lets the same value be validated at parse time, shown in a plan,
//! and run later (as a preflight gate, a verification or a scheduled checklist).
//!
//! Textual forms are the ones people write in runbooks: durations `"500ms"`, `"5s"`,
//! `"2m"`, `"1h"`; sizes `"10GB"`, `"500MiB"`, `"10%"`; schedules `"Mon-Fri 09:00 UTC"`;
//! conditions `"> 0.99"`. Every parser returns a one-sentence error meant for the user.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Phases runway itself runs checks in. Any other phase name is a named checklist,
/// run on demand (`runway check <name>`) or on its schedule.
pub const KNOWN_PHASES: &[&str] = &["preflight", "verify", "smoke", "daily"];

/// One check: a name, what to check ([`CheckKind`]) and how to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    pub name: String,
    #[serde(flatten)]
    pub kind: CheckKind,
    /// Bound on each attempt; an attempt still running then fails with "timed out after …".
    #[serde(with = "duration_str", default = "default_timeout")]
    pub timeout: Duration,
    /// Extra attempts after a failure (0: one attempt only).
    #[serde(default)]
    pub retries: u32,
    /// Pause before the first retry; doubles before each further retry.
    #[serde(with = "duration_str", default = "default_backoff")]
    pub backoff: Duration,
    #[serde(default)]
    pub severity: Severity,
    /// Phases and named checklists this check belongs to, e.g. `["preflight", "daily"]`.
    #[serde(default)]
    pub phases: Vec<String>,
    /// When a scheduled checklist runs, in the form [`Schedule::parse`] accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

fn default_timeout() -> Duration {
    CheckSpec::DEFAULT_TIMEOUT
}

fn default_backoff() -> Duration {
    CheckSpec::DEFAULT_BACKOFF
}

impl CheckSpec {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

    /// A check with the defaults: 5 s timeout, no retries, 1 s backoff, blocker, no phases.
    pub fn new(name: impl Into<String>, kind: CheckKind) -> Self {
        CheckSpec {
            name: name.into(),
            kind,
            timeout: Self::DEFAULT_TIMEOUT,
            retries: 0,
            backoff: Self::DEFAULT_BACKOFF,
            severity: Severity::Blocker,
            phases: Vec::new(),
            schedule: None,
        }
    }

    /// Whether the check belongs to `phase` (a known phase or a named checklist).
    pub fn in_phase(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }

    /// Checks everything that can be checked without I/O: shapes of URLs, addresses,
    /// sizes, shares, regexes' presence, the schedule and the condition. The error is one
    /// sentence naming the field, e.g. `check "db": max_connections_share must be in (0, 1]`.
    pub fn validate(&self) -> Result<(), String> {
        let err = |m: String| format!("check {:?}: {m}", self.name);
        if self.name.trim().is_empty() {
            return Err("a check needs a non-empty name".into());
        }
        if self.timeout.is_zero() {
            return Err(err("timeout must be greater than 0".into()));
        }
        for p in &self.phases {
            if p.trim().is_empty() {
                return Err(err("phase names cannot be empty".into()));
            }
        }
        if let Some(s) = &self.schedule {
            Schedule::parse(s).map_err(|e| err(format!("schedule: {e}")))?;
        }
        self.kind.validate().map_err(err)
    }
}

/// Whether a failing check stops a deploy (`blocker`) or is only reported (`warning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    #[default]
    Blocker,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Blocker => "blocker",
            Severity::Warning => "warning",
        })
    }
}

/// What a check looks at. Serialized with an internal `"kind"` tag:
/// `{"kind": "tcp", "address": "db:5432"}`.
///
/// Values that may hold secrets (`Postgres::url`, `Redis::url`, HTTP header values,
/// `Command::env` values) may be written `env:NAME` or `secret:NAME` and are resolved at
/// run time; resolved values never appear in results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckKind {
    /// An HTTP request whose status, latency and JSON body are checked. A `{replica}` in
    /// the URL runs the check once per replica address.
    Http {
        #[serde(default = "default_method")]
        method: String,
        url: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        /// Exact status expected; `None`: any 2xx.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_status: Option<u16>,
        /// JSON paths and the values expected there: `".status" = "healthy"`,
        /// `".checks.database" = "healthy"`, `".count" = 3`, `".items.0.id" = 1`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        expect_json: BTreeMap<String, serde_json::Value>,
        #[serde(
            default,
            with = "opt_duration_str",
            skip_serializing_if = "Option::is_none"
        )]
        max_latency: Option<Duration>,
    },
    /// A TCP connection to `host:port` is accepted.
    Tcp { address: String },
    /// PostgreSQL accepts queries (and, optionally, is not running out of connections).
    Postgres {
        /// `postgres://user:pass@host:port/db`, or `env:NAME` / `secret:NAME` holding one.
        url: String,
        /// Default `SELECT 1`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<String>,
        /// The first column of the first row, as text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<String>,
        /// Connections in use / `max_connections` must stay below this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_connections_share: Option<f64>,
    },
    /// Redis answers PING (and, optionally, has memory headroom).
    Redis {
        /// `redis://[:pass@]host:port[/db]`, or `env:NAME` / `secret:NAME` holding one.
        url: String,
        /// `used_memory / maxmemory` must stay below this; `maxmemory 0` (unlimited) passes
        /// with a note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_memory_share: Option<f64>,
    },
    /// The filesystem holding `path` has at least `min_free` available.
    Disk { path: String, min_free: MinFree },
    /// A certificate (PEM file, or the leaf a server presents) is valid for `min_days` more.
    Tls {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<String>,
        /// `host:port`: handshake and read the leaf certificate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        /// SNI name; default: the host of `address`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server_name: Option<String>,
        #[serde(default = "default_min_days")]
        min_days: u32,
    },
    /// Environment variables are present and non-empty; values are never printed.
    Env { vars: Vec<String> },
    /// A program (argv, never a shell) exits as expected and its stdout matches a regex.
    Command {
        command: Vec<String>,
        #[serde(default)]
        expect_exit: i32,
        /// A regex searched for in stdout; `^` and `$` match at line boundaries (like grep).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_stdout: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
    },
    /// An instant Prometheus query's value meets an absolute condition such as `"> 0.99"`.
    Prometheus {
        /// Base URL, e.g. `http://prometheus:9090`.
        url: String,
        query: String,
        condition: String,
    },
    /// A file exists (`exists = true`) or is absent (`exists = false`, e.g. a maintenance flag).
    File {
        path: String,
        #[serde(default = "default_true")]
        exists: bool,
    },
}

fn default_method() -> String {
    "GET".into()
}

fn default_min_days() -> u32 {
    30
}

fn default_true() -> bool {
    true
}

impl CheckKind {
    /// The `kind` tag: `"http"`, `"tcp"`, `"postgres"`, …
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Http { .. } => "http",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Postgres { .. } => "postgres",
            CheckKind::Redis { .. } => "redis",
            CheckKind::Disk { .. } => "disk",
            CheckKind::Tls { .. } => "tls",
            CheckKind::Env { .. } => "env",
            CheckKind::Command { .. } => "command",
            CheckKind::Prometheus { .. } => "prometheus",
            CheckKind::File { .. } => "file",
        }
    }

    /// An HTTP check with the defaults: GET, any 2xx.
    pub fn http(url: impl Into<String>) -> Self {
        CheckKind::Http {
            method: default_method(),
            url: url.into(),
            headers: BTreeMap::new(),
            body: None,
            expect_status: None,
            expect_json: BTreeMap::new(),
            max_latency: None,
        }
    }

    /// The kind-specific part of [`CheckSpec::validate`].
    pub fn validate(&self) -> Result<(), String> {
        match self {
            CheckKind::Http {
                method,
                url,
                headers,
                expect_status,
                expect_json,
                ..
            } => {
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(format!("method {method:?} is not an HTTP method"));
                }
                check_url(url, &["http", "https"], "url")?;
                for name in headers.keys() {
                    if name.is_empty() || name.contains([':', ' ', '\r', '\n']) {
                        return Err(format!("header name {name:?} is not valid"));
                    }
                }
                if let Some(s) = expect_status {
                    if !(100..=599).contains(s) {
                        return Err(format!("expect_status {s} is not an HTTP status"));
                    }
                }
                for path in expect_json.keys() {
                    if !path.starts_with('.') {
                        return Err(format!(
                            "expect_json path {path:?} must start with '.', e.g. \".status\""
                        ));
                    }
                }
                Ok(())
            }
            CheckKind::Tcp { address } => check_address(address, "address"),
            CheckKind::Postgres {
                url,
                query,
                max_connections_share,
                ..
            } => {
                if !is_reference(url) {
                    check_url(url, &["postgres", "postgresql"], "url")?;
                }
                if query.as_deref().is_some_and(|q| q.trim().is_empty()) {
                    return Err("query cannot be empty".into());
                }
                check_share(*max_connections_share, "max_connections_share")
            }
            CheckKind::Redis {
                url,
                max_memory_share,
            } => {
                if !is_reference(url) {
                    check_url(url, &["redis"], "url")?;
                }
                check_share(*max_memory_share, "max_memory_share")
            }
            CheckKind::Disk { path, min_free } => {
                if path.is_empty() {
                    return Err("path cannot be empty".into());
                }
                if let MinFree::Share(s) = min_free {
                    check_share(Some(*s), "min_free")?;
                }
                Ok(())
            }
            CheckKind::Tls {
                file,
                address,
                server_name,
                ..
            } => match (file, address) {
                (Some(_), Some(_)) => Err("give either file or address, not both".into()),
                (None, None) => Err("give file (a PEM certificate) or address (host:port)".into()),
                (Some(f), None) if f.is_empty() => Err("file cannot be empty".into()),
                (Some(_), None) if server_name.is_some() => {
                    Err("server_name only applies with address".into())
                }
                (None, Some(a)) => check_address(a, "address"),
                _ => Ok(()),
            },
            CheckKind::Env { vars } => {
                if vars.is_empty() {
                    return Err("vars cannot be empty".into());
                }
                for v in vars {
                    if v.is_empty() || v.contains(['=', '\0']) {
                        return Err(format!("{v:?} is not an environment variable name"));
                    }
                }
                Ok(())
            }
            CheckKind::Command {
                command,
                expect_stdout,
                ..
            } => {
                if command.first().is_none_or(|p| p.is_empty()) {
                    return Err("command needs a program: [\"program\", \"arg\", …]".into());
                }
                match expect_stdout {
                    Some(p) if p.is_empty() => Err("expect_stdout cannot be empty".into()),
                    Some(p) => stdout_regex(p).map(|_| ()),
                    None => Ok(()),
                }
            }
            CheckKind::Prometheus {
                url,
                query,
                condition,
            } => {
                check_url(url, &["http", "https"], "url")?;
                if query.trim().is_empty() {
                    return Err("query cannot be empty".into());
                }
                Condition::parse(condition).map(|_| ())
            }
            CheckKind::File { path, .. } => {
                if path.is_empty() {
                    return Err("path cannot be empty".into());
                }
                Ok(())
            }
        }
    }
}

/// The regex of `expect_stdout`: multi-line, so `^`/`$` match at line boundaries.
pub fn stdout_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .multi_line(true)
        .build()
        .map_err(|e| {
            // regex's syntax errors span lines (pattern, caret, message): keep the message.
            let text = e.to_string();
            let reason = text
                .lines()
                .last()
                .unwrap_or("")
                .trim_start_matches("error: ");
            format!("expect_stdout {pattern:?} is not a valid regex: {reason}")
        })
}

/// `env:NAME` or `secret:NAME`: a value resolved at run time.
pub fn is_reference(value: &str) -> bool {
    value.starts_with("env:") || value.starts_with("secret:")
}

fn check_url(url: &str, schemes: &[&str], field: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        // The value is not echoed: without a scheme we cannot tell where a password is.
        return Err(format!("{field} needs a scheme: {}://…", schemes[0]));
    };
    if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Err(format!(
            "{field} scheme {scheme:?} is not one of {}",
            schemes.join(", ")
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() {
        return Err(format!("{field} {:?} has no host", redact_url(url)));
    }
    Ok(())
}

fn check_address(address: &str, field: &str) -> Result<(), String> {
    if address.contains("{replica}") {
        // Expanded per replica at run time (to host:port).
        return Ok(());
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("{field} {address:?} needs a port: host:port"));
    };
    if host.is_empty() {
        return Err(format!("{field} {address:?} has no host"));
    }
    if port.parse::<u16>().is_err() {
        return Err(format!("{field} {address:?}: {port:?} is not a port"));
    }
    Ok(())
}

fn check_share(share: Option<f64>, field: &str) -> Result<(), String> {
    match share {
        Some(s) if !(s > 0.0 && s <= 1.0) => Err(format!(
            "{field} must be a share in (0, 1], e.g. 0.9 (got {s})"
        )),
        _ => Ok(()),
    }
}

/// Replaces the password of a URL (`scheme://user:pass@host`) with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Sizes

/// Minimum free space of a [`CheckKind::Disk`] check: bytes, or a share of the filesystem.
///
/// Serialized as a string: `"10000000000B"` or `"10%"`; deserialized from any form
/// [`MinFree::parse`] accepts, or from a bare number of bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinFree {
    Bytes(u64),
    /// 0.1 for 10%.
    Share(f64),
}

impl MinFree {
    /// Parses `"10GB"`, `"500MiB"`, `"1024"` (bytes) or `"10%"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Some(pct) = t.strip_suffix('%') {
            let v: f64 = pct
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a percentage such as \"10%\""))?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(format!("{s:?}: a percentage must be in (0, 100]"));
            }
            return Ok(MinFree::Share(v / 100.0));
        }
        parse_bytes(t).map(MinFree::Bytes)
    }
}

impl fmt::Display for MinFree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MinFree::Bytes(b) => write!(f, "{b}B"),
            MinFree::Share(s) => write!(f, "{}%", s * 100.0),
        }
    }
}

impl Serialize for MinFree {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MinFree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(b) => Ok(MinFree::Bytes(b)),
            Raw::Text(t) => MinFree::parse(&t).map_err(de::Error::custom),
        }
    }
}

const SIZE_UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
];

/// Parses a size: `"10GB"` = 10·10⁹, `"10GiB"` = 10·2³⁰, `"500MB"`, `"1.5GB"`, `"1024"`
/// (bare numbers are bytes). Units are case-insensitive; a space before the unit is allowed.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier = if unit.is_empty() {
        1
    } else {
        SIZE_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                format!("{s:?}: unknown size unit {unit:?} (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)")
            })?
    };
    if num.is_empty() {
        return Err(format!("{s:?} is not a size such as \"10GB\""));
    }
    if let Ok(n) = num.parse::<u64>() {
        return n
            .checked_mul(multiplier)
            .ok_or_else(|| format!("{s:?} is too large"));
    }
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as \"10GB\""))?;
    let bytes = v * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{s:?} is too large"));
    }
    Ok(bytes.round() as u64)
}

// ---------------------------------------------------------------------------------------
// Conditions

/// Comparison operator of a [`Condition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }
}

/// An absolute condition on a number: `"> 0.99"`, `"<= 2"`, `"== 0"`, `"!= 1"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    pub op: CmpOp,
    pub value: f64,
}

impl Condition {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let ops = [
            (">=", CmpOp::Ge),
            ("<=", CmpOp::Le),
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            (">", CmpOp::Gt),
            ("<", CmpOp::Lt),
            ("=", CmpOp::Eq),
        ];
        let Some((sym, op)) = ops.iter().find(|(sym, _)| t.starts_with(sym)) else {
            return Err(format!(
                "condition {s:?} must start with >, >=, <, <=, == or !=, e.g. \"> 0.99\""
            ));
        };
        let value: f64 = t[sym.len()..].trim().parse().map_err(|_| {
            format!("condition {s:?}: expected a number after {sym:?}, e.g. \"> 0.99\"")
        })?;
        if !value.is_finite() {
            return Err(format!("condition {s:?}: the value must be finite"));
        }
        Ok(Condition { op: *op, value })
    }

    pub fn holds(&self, x: f64) -> bool {
        match self.op {
            CmpOp::Gt => x > self.value,
            CmpOp::Ge => x >= self.value,
            CmpOp::Lt => x < self.value,
            CmpOp::Le => x <= self.value,
            CmpOp::Eq => x == self.value,
            CmpOp::Ne => x != self.value,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.symbol(), self.value)
    }
}

// ---------------------------------------------------------------------------------------
// Schedules

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// When a scheduled checklist runs: days of the week and a time of day, in UTC.
///
/// Written `"Mon-Fri 09:00 UTC"`, `"Mon,Wed 18:30 UTC"`, `"daily 07:00 UTC"` or
/// `"* 07:00 UTC"`. The zone must be `UTC` for now (DST-aware zones need a tz database).
/// Or `"every 15m"`: at a fixed period from the server's start, for checklists that should
/// run continuously rather than at a time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// `days[0]` is Monday, `days[6]` Sunday.
    pub days: [bool; 7],
    pub hour: u8,
    pub minute: u8,
    /// `every <duration>`: the period in seconds (days, hour and minute are then unused).
    pub every_seconds: Option<u64>,
}

impl Schedule {
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(period) = s.trim().strip_prefix("every ") {
            let period = parse_duration(period.trim())
                .map_err(|e| format!("schedule {s:?}: {e}"))?
                .as_secs();
            if period == 0 {
                return Err(format!("schedule {s:?}: the period must be at least 1s"));
            }
            return Ok(Schedule {
                days: [true; 7],
                hour: 0,
                minute: 0,
                every_seconds: Some(period),
            });
        }
        let parts: Vec<&str> = s.split_whitespace().collect();
        let [days, time, zone] = parts[..] else {
            return Err(format!(
                "schedule {s:?} must be \"<days> <HH:MM> UTC\", e.g. \"Mon-Fri 09:00 UTC\""
            ));
        };
        if !zone.eq_ignore_ascii_case("UTC") {
            return Err(format!(
                "schedule {s:?}: only UTC is supported for now; convert the time to UTC and write e.g. \"{days} {time} UTC\""
            ));
        }
        let days = parse_days(days).map_err(|e| format!("schedule {s:?}: {e}"))?;
        let (h, m) = time
            .split_once(':')
            .ok_or_else(|| format!("schedule {s:?}: time {time:?} must be HH:MM"))?;
        let hour: u8 = h
            .parse()
            .ok()
            .filter(|h| *h < 24)
            .ok_or_else(|| format!("schedule {s:?}: hour {h:?} must be 00..23"))?;
        let minute: u8 = m
            .parse()
            .ok()
            .filter(|m| *m < 60)
            .ok_or_else(|| format!("schedule {s:?}: minute {m:?} must be 00..59"))?;
        Ok(Schedule {
            days,
            hour,
            minute,
            every_seconds: None,
        })
    }

    /// The first time strictly after `unix_seconds` at which the schedule fires.
    pub fn next_after(&self, unix_seconds: i64) -> i64 {
        if let Some(period) = self.every_seconds {
            return unix_seconds + period as i64;
        }
        let day = unix_seconds.div_euclid(86_400);
        let at = i64::from(self.hour) * 3_600 + i64::from(self.minute) * 60;
        // 1970-01-01 was a Thursday (index 3 with Monday = 0). Some allowed day is at
        // most 7 days away, so 8 candidates always contain the answer.
        (day..=day + 7)
            .map(|d| (d, d * 86_400 + at))
            .find(|&(d, t)| t > unix_seconds && self.days[(d + 3).rem_euclid(7) as usize])
            .map(|(_, t)| t)
            .expect("a schedule has at least one day")
    }
}

fn parse_days(s: &str) -> Result<[bool; 7], String> {
    if s == "*" || s.eq_ignore_ascii_case("daily") {
        return Ok([true; 7]);
    }
    let day = |name: &str| {
        DAY_NAMES
            .iter()
            .position(|d| d.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!("{name:?} is not a day; use Mon, Tue, Wed, Thu, Fri, Sat, Sun, \"daily\" or \"*\"")
            })
    };
    let mut days = [false; 7];
    for item in s.split(',') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                // "Fri-Mon" wraps around the weekend.
                let mut i = a;
                loop {
                    days[i] = true;
                    if i == b {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            }
            None => days[day(item)?] = true,
        }
    }
    Ok(days)
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(period) = self.every_seconds {
            return write!(
                f,
                "every {}",
                format_duration(std::time::Duration::from_secs(period))
            );
        }
        if self.days == [true; 7] {
            f.write_str("daily")?;
        } else {
            let names: Vec<&str> = (0..7)
                .filter(|&i| self.days[i])
                .map(|i| DAY_NAMES[i])
                .collect();
            f.write_str(&names.join(","))?;
        }
        write!(f, " {:02}:{:02} UTC", self.hour, self.minute)
    }
}

// ---------------------------------------------------------------------------------------
// Durations

/// Parses `"500ms"`, `"5s"`, `"2m"`, `"1h"`, `"1m30s"`, `"1.5s"` (units h, m, s, ms, us, ns).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const UNITS: &[(&str, f64)] = &[
        ("ns", 1e-9),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ms", 1e-3),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
    ];
    let bad = || format!("{s:?} is not a duration such as \"500ms\", \"5s\", \"2m\" or \"1h\"");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(n);
        let u = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u);
        let factor = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, f)| *f)
            .ok_or_else(bad)?;
        let v: f64 = num.parse().map_err(|_| bad())?;
        total += Duration::try_from_secs_f64(v * factor).map_err(|_| bad())?;
        rest = tail;
    }
    // Float parsing is exact for whole milliseconds and above; round off float noise.
    Ok(Duration::from_nanos(
        total.as_nanos().min(u64::MAX as u128) as u64
    ))
}

/// The canonical form of a duration, which [`parse_duration`] reads back exactly:
/// `"500ms"`, `"5s"`, `"2m"`, `"1h"`, `"1m30s"`.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let mut nanos = d.as_nanos();
    let mut out = String::new();
    for (unit, len) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        if nanos >= len {
            out.push_str(&format!("{}{unit}", nanos / len));
            nanos %= len;
        }
    }
    out
}

/// Serde helpers for `Duration` as a `"5s"`-style string (integers are read as seconds).
pub mod duration_str {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ok(Duration::from_secs(n)),
            Raw::Text(t) => parse_duration(&t).map_err(de::Error::custom),
        }
    }
}

/// [`duration_str`] for `Option<Duration>`.
pub mod opt_duration_str {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "duration_str")] Duration);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("10GB"), Ok(10_000_000_000));
        assert_eq!(parse_bytes("10GiB"), Ok(10 << 30));
        assert_eq!(parse_bytes("500MB"), Ok(500_000_000));
        assert_eq!(parse_bytes("500 MiB"), Ok(500 << 20));
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("1B"), Ok(1));
        assert_eq!(parse_bytes("1.5kb"), Ok(1500));
        assert!(parse_bytes("10XB")
            .unwrap_err()
            .contains("unknown size unit"));
        assert!(parse_bytes("GB").is_err());
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("99999999999TB").is_err());
    }

    #[test]
    fn min_free() {
        assert_eq!(MinFree::parse("10%"), Ok(MinFree::Share(0.1)));
        assert_eq!(MinFree::parse("10GB"), Ok(MinFree::Bytes(10_000_000_000)));
        assert!(MinFree::parse("0%").is_err());
        assert!(MinFree::parse("101%").is_err());
        let json = serde_json::to_string(&MinFree::Bytes(5)).unwrap();
        assert_eq!(json, "\"5B\"");
        assert_eq!(
            serde_json::from_str::<MinFree>(&json).unwrap(),
            MinFree::Bytes(5)
        );
        assert_eq!(
            serde_json::from_str::<MinFree>("\"25%\"").unwrap(),
            MinFree::Share(0.25)
        );
        assert_eq!(
            serde_json::from_str::<MinFree>("7").unwrap(),
            MinFree::Bytes(7)
        );
    }

    #[test]
    fn durations() {
        for (s, d) in [
            ("500ms", Duration::from_millis(500)),
            ("5s", Duration::from_secs(5)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5s", Duration::from_millis(1500)),
        ] {
            assert_eq!(parse_duration(s), Ok(d), "{s}");
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        for bad in ["", "5", "5x", "s", "five seconds"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conditions() {
        let c = Condition::parse("> 0.99").unwrap();
        assert!(c.holds(1.0) && !c.holds(0.99));
        assert!(Condition::parse("<=2").unwrap().holds(2.0));
        assert!(Condition::parse("!= 0").unwrap().holds(1.0));
        assert!(Condition::parse("0.99").is_err());
        assert!(Condition::parse("> x").is_err());
    }

    #[test]
    fn schedules() {
        let s = Schedule::parse("Mon-Fri 09:00 UTC").unwrap();
        assert_eq!(s.days, [true, true, true, true, true, false, false]);
        assert_eq!(s.to_string(), "Mon,Tue,Wed,Thu,Fri 09:00 UTC");
        assert_eq!(Schedule::parse(&s.to_string()), Ok(s));
        // 1970-01-01 00:00 UTC was a Thursday: the next run is the same day at 09:00.
        assert_eq!(s.next_after(0), 9 * 3600);
        // Exactly at the time: strictly after, so Friday.
        assert_eq!(s.next_after(9 * 3600), 86_400 + 9 * 3600);
        // Friday 10:00 → Monday 09:00 (Jan 5).
        assert_eq!(s.next_after(86_400 + 10 * 3600), 4 * 86_400 + 9 * 3600);
        // 2024-06-01 was a Saturday (1717200000 = 2024-06-01T00:00:00Z).
        assert_eq!(
            s.next_after(1_717_200_000),
            1_717_200_000 + 2 * 86_400 + 9 * 3600
        );

        let d = Schedule::parse("daily 07:30 UTC").unwrap();
        assert_eq!(d.days, [true; 7]);
        assert_eq!(d.next_after(8 * 3600), 86_400 + 7 * 3600 + 1800);
        assert_eq!(Schedule::parse("* 07:30 UTC"), Ok(d));
        let l = Schedule::parse("Mon,Wed 18:00 UTC").unwrap();
        assert_eq!(l.days, [true, false, true, false, false, false, false]);
        let w = Schedule::parse("Sat-Mon 00:00 UTC").unwrap();
        assert_eq!(w.days, [true, false, false, false, false, true, true]);

        assert!(Schedule::parse("Mon-Fri 09:00 CET")
            .unwrap_err()
            .contains("only UTC"));
        assert!(Schedule::parse("Mon-Fri 9am UTC").is_err());
        assert!(Schedule::parse("Mon-Fri 24:00 UTC").is_err());
        assert!(Schedule::parse("Mo 09:00 UTC").is_err());
        assert!(Schedule::parse("09:00").is_err());
    }

    #[test]
    fn redacts_url_passwords() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(redact_url("redis://:pw@r:6379/0"), "redis://:***@r:6379/0");
        assert_eq!(redact_url("http://h/a@b"), "http://h/a@b");
        assert_eq!(redact_url("env:DB"), "env:DB");
    }

    #[test]
    fn json_round_trip_and_defaults() {
        let spec: CheckSpec = serde_json::from_str(
            r#"{"name":"health","kind":"http","url":"http://127.0.0.1:8080/health",
                "expect_json":{".status":"healthy",".count":3},"max_latency":"500ms"}"#,
        )
        .unwrap();
        assert_eq!(spec.timeout, Duration::from_secs(5));
        assert_eq!(spec.backoff, Duration::from_secs(1));
        assert_eq!(spec.severity, Severity::Blocker);
        let CheckKind::Http {
            method,
            max_latency,
            ..
        } = &spec.kind
        else {
            panic!("not http")
        };
        assert_eq!(method, "GET");
        assert_eq!(*max_latency, Some(Duration::from_millis(500)));
        spec.validate().unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<CheckSpec>(&json).unwrap(), spec);

        let all = vec![
            CheckSpec::new(
                "t",
                CheckKind::Tcp {
                    address: "127.0.0.1:1".into(),
                },
            ),
            CheckSpec::new(
                "d",
                CheckKind::Disk {
                    path: "/".into(),
                    min_free: MinFree::Share(0.1),
                },
            ),
            CheckSpec::new(
                "tls",
                CheckKind::Tls {
                    file: Some("c.pem".into()),
                    address: None,
                    server_name: None,
                    min_days: 30,
                },
            ),
            CheckSpec {
                severity: Severity::Warning,
                schedule: Some("Mon-Fri 09:00 UTC".into()),
                phases: vec!["daily".into()],
                ..CheckSpec::new(
                    "f",
                    CheckKind::File {
                        path: "/etc/maintenance".into(),
                        exists: false,
                    },
                )
            },
        ];
        for s in all {
            s.validate().unwrap();
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(
                serde_json::from_str::<CheckSpec>(&json).unwrap(),
                s,
                "{json}"
            );
        }
        let f: CheckSpec =
            serde_json::from_str(r#"{"name":"f","kind":"file","path":"/x"}"#).unwrap();
        assert_eq!(
            f.kind,
            CheckKind::File {
                path: "/x".into(),
                exists: true
            }
        );
    }

    #[test]
    fn validation_errors() {
        let bad = |kind: CheckKind, needle: &str| {
            let e = CheckSpec::new("c", kind).validate().unwrap_err();
            assert!(e.contains(needle), "{e} should contain {needle}");
            assert!(!e.contains("hunter2"), "{e}");
        };
        bad(CheckKind::http("ftp://x"), "scheme");
        bad(
            CheckKind::Tcp {
                address: "db".into(),
            },
            "port",
        );
        bad(
            CheckKind::Postgres {
                url: "mysql://u:hunter2@h/db".into(),
                query: None,
                expect: None,
                max_connections_share: None,
            },
            "scheme",
        );
        bad(
            CheckKind::Postgres {
                url: "u:hunter2@h/db".into(),
                query: None,
                expect: None,
                max_connections_share: None,
            },
            "needs a scheme",
        );
        bad(
            CheckKind::Redis {
                url: "redis://h:6379".into(),
                max_memory_share: Some(1.5),
            },
            "max_memory_share",
        );
        bad(
            CheckKind::Tls {
                file: None,
                address: None,
                server_name: None,
                min_days: 30,
            },
            "file",
        );
        bad(CheckKind::Env { vars: vec![] }, "vars");
        bad(
            CheckKind::Command {
                command: vec![],
                expect_exit: 0,
                expect_stdout: None,
                env: BTreeMap::new(),
            },
            "program",
        );
        bad(
            CheckKind::Command {
                command: vec!["true".into()],
                expect_exit: 0,
                expect_stdout: Some("ready (".into()),
                env: BTreeMap::new(),
            },
            "is not a valid regex: unclosed group",
        );
        bad(
            CheckKind::Prometheus {
                url: "http://p:9090".into(),
                query: "up".into(),
                condition: "high".into(),
            },
            "condition",
        );
        let mut s = CheckSpec::new("c", CheckKind::http("http://h/"));
        s.schedule = Some("Mon 09:00 PST".into());
        assert!(s.validate().unwrap_err().contains("UTC"));
        s.schedule = None;
        s.timeout = Duration::ZERO;
        assert!(s.validate().is_err());
    }
}
