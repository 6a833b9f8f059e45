//! Reading `runway.toml`: text → span-keeping TOML tree → [`Spec`].
//!
//! Why not `#[derive(Deserialize)]` straight into the model? Because every error must
//! point at the offending text, and serde's derive only manages that for type errors:
//! rules checked after deserializing (`replicas = 0`) would have lost their positions,
//! internally tagged enums buffer their content and drop spans, and unknown-key errors
//! cannot be phrased for runway's users ("did you mean `replicas`?").
//!
//! Instead the text is parsed with `toml_edit`'s [`ImDocument`], which keeps the byte
//! span of every key and value, and this module walks that tree section by section:
//! unknown keys first, then each known key with its expected type, then the semantic
//! rules from `rules.rs`, each failure becoming a [`SpecError`] at the right span.
//! Defaults are applied here, so the resulting [`Spec`] is complete.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use toml_edit::{ImDocument, Item, Key, TableLike, TomlError, Value};

use crate::duration::{parse_duration, Dur};
use crate::error::SpecError;
use crate::model::{HealthSpec, RollingSpec, RunSpec, ServiceSpec, Spec, StrategySpec};
use crate::rules::{self, Problem};
use crate::suggest;

type Span = Range<usize>;

/// The sections of `runway.toml` and their keys, in documentation order. The keys of
/// `[strategy]` are those of its default kind, `rolling`.
const SECTIONS: &[(&str, &[&str])] = &[
    ("service", &["name", "listen"]),
    (
        "run",
        &[
            "command",
            "replicas",
            "env",
            "dir",
            "stop_timeout",
            "drain_timeout",
        ],
    ),
    ("health", &["path", "interval", "timeout", "deadline"]),
    ("strategy", ROLLING_KEYS),
];

const ROLLING_KEYS: &[&str] = &["kind", "max_surge", "max_unavailable"];

/// Parses and validates `runway.toml` text; `origin` names the file in errors.
pub(crate) fn read(text: &str, origin: &str) -> Result<Spec, SpecError> {
    let src = Source { text, origin };
    let doc = ImDocument::parse(text).map_err(|err| src.syntax_error(&err))?;
    let root = Section {
        src: &src,
        path: String::new(),
        table: doc.as_table(),
        span: 0..0,
    };
    let names: Vec<&str> = SECTIONS.iter().map(|&(name, _)| name).collect();
    root.check_keys(&names)?;

    // Sections are read in document order (as usually written), each fully before
    // the next, so the first error reported is the first one a reader would meet.
    let service = root.section("service", "[service]")?.ok_or_else(|| {
        root.missing_section("service", "name = \"web\"\nlisten = \"127.0.0.1:8080\"")
    })?;
    let service = read_service(&service)?;
    let run = root.section("run", "[run]")?.ok_or_else(|| {
        root.missing_section("run", "command = [\"./server\", \"--port\", \"{port}\"]")
    })?;
    let run = read_run(&run)?;
    let health = match root.section("health", "[health]")? {
        Some(section) => read_health(&section)?,
        None => HealthSpec::default(),
    };
    let strategy = match root.section("strategy", "[strategy]")? {
        Some(section) => read_strategy(&section)?,
        None => StrategySpec::default(),
    };
    Ok(Spec {
        service,
        run,
        health,
        strategy,
    })
}

fn read_service(sec: &Section<'_>) -> Result<ServiceSpec, SpecError> {
    const NAME: &str = "name = \"web\"";
    const LISTEN: &str = "listen = \"127.0.0.1:8080\"";
    sec.check_keys(keys_of("service"))?;

    let name = sec.required("name", NAME, sec.string("name", NAME)?)?;
    sec.src.check(&name.span, rules::service_name(name.value))?;

    let listen = sec.required("listen", LISTEN, sec.string("listen", LISTEN)?)?;
    let addr = listen.value.parse::<SocketAddr>().map_err(|_| {
        sec.src.error(
            &listen.span,
            format!("invalid listen address {:?}", listen.value),
            Some(listen_hint(listen.value)),
        )
    })?;

    Ok(ServiceSpec {
        name: name.value.to_owned(),
        listen: addr,
    })
}

fn listen_hint(value: &str) -> String {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return format!(
            "add a port, e.g. listen = \"{}\"",
            SocketAddr::new(ip, 8080)
        );
    }
    if let Some(port) = value.strip_prefix("localhost:") {
        return format!("host names are not resolved; write listen = \"127.0.0.1:{port}\"");
    }
    "use an IP address and a port, e.g. listen = \"127.0.0.1:8080\" or \"[::1]:8080\"".into()
}

fn read_run(sec: &Section<'_>) -> Result<RunSpec, SpecError> {
    sec.check_keys(keys_of("run"))?;
    let command = read_command(sec)?;

    let replicas = match sec.count("replicas", "replicas = 3")? {
        Some(n) => {
            sec.src.check(&n.span, rules::replicas(n.value))?;
            n.value
        }
        None => RunSpec::DEFAULT_REPLICAS,
    };

    let env = match sec.section("env", "env = { APP_ENV = \"production\" }")? {
        Some(table) => read_env(&table)?,
        None => BTreeMap::new(),
    };

    let dir = match sec.string("dir", "dir = \"./app\"")? {
        Some(dir) => {
            sec.src.check(&dir.span, rules::dir(dir.value))?;
            Some(dir.value.to_owned())
        }
        None => None,
    };

    Ok(RunSpec {
        command,
        replicas,
        env,
        dir,
        stop_timeout: sec
            .duration("stop_timeout", "10s")?
            .map_or(RunSpec::DEFAULT_STOP_TIMEOUT, |d| d.value),
        drain_timeout: sec
            .duration("drain_timeout", "30s")?
            .map_or(RunSpec::DEFAULT_DRAIN_TIMEOUT, |d| d.value),
    })
}

fn read_command(sec: &Section<'_>) -> Result<Vec<String>, SpecError> {
    const EXAMPLE: &str = "command = [\"./server\", \"--port\", \"{port}\"]";

    // A shell-style string is the likeliest mistake; show it split into an argv.
    if let Some((Item::Value(Value::String(line)), span)) = sec.entry("command") {
        let words: Vec<String> = line
            .value()
            .split_whitespace()
            .map(|w| format!("{w:?}"))
            .collect();
        let hint = if words.is_empty() {
            format!("for example: {EXAMPLE}")
        } else {
            format!(
                "write the program and each argument as separate strings: command = [{}]",
                words.join(", ")
            )
        };
        return Err(sec.src.error(
            &span,
            "`command` must be an array of strings, not a single string",
            Some(hint),
        ));
    }

    let array = sec.get("command", "an array of strings", EXAMPLE, Value::as_array)?;
    let array = sec.required("command", EXAMPLE, array)?;
    let mut argv = Vec::with_capacity(array.value.len());
    let mut program_span = array.span.clone();
    for (i, value) in array.value.iter().enumerate() {
        let span = value.span().unwrap_or_else(|| array.span.clone());
        let Some(arg) = value.as_str() else {
            return Err(sec.src.error(
                &span,
                format!(
                    "every element of `command` must be a string, found {}",
                    describe_value(value)
                ),
                Some(quote_hint(sec.src.slice(&span), value, EXAMPLE)),
            ));
        };
        if i == 0 {
            program_span = span;
        }
        argv.push(arg.to_owned());
    }
    sec.src
        .check(&array.span, rules::command_not_empty(argv.len()))?;
    sec.src.check(&program_span, rules::program(&argv[0]))?;
    Ok(argv)
}

fn read_env(table: &Section<'_>) -> Result<BTreeMap<String, String>, SpecError> {
    let mut env = BTreeMap::new();
    for (name, item) in table.table.iter() {
        if item.is_none() {
            continue;
        }
        table
            .src
            .check(&table.key_span(name), rules::env_name(name))?;
        let Some(value) = item.as_str() else {
            let span = table.value_span(name, item);
            let hint = match item.as_value() {
                Some(v) if is_scalar(v) => {
                    format!("quote it: {name} = \"{}\"", table.src.slice(&span).trim())
                }
                _ => format!("for example: {name} = \"production\""),
            };
            return Err(table.src.error(
                &span,
                format!(
                    "environment variable {name} must be a string, found {}",
                    describe(item)
                ),
                Some(hint),
            ));
        };
        env.insert(name.to_owned(), value.to_owned());
    }
    Ok(env)
}

fn read_health(sec: &Section<'_>) -> Result<HealthSpec, SpecError> {
    sec.check_keys(keys_of("health"))?;
    let path = match sec.string("path", "path = \"/health/ready\"")? {
        Some(path) => {
            sec.src.check(&path.span, rules::health_path(path.value))?;
            path.value.to_owned()
        }
        None => HealthSpec::DEFAULT_PATH.to_owned(),
    };
    let timing = |key: &str, default: Dur, example: &str| -> Result<Dur, SpecError> {
        match sec.duration(key, example)? {
            Some(d) => {
                sec.src
                    .check(&d.span, rules::positive(key, d.value, example))?;
                Ok(d.value)
            }
            None => Ok(default),
        }
    };
    Ok(HealthSpec {
        path,
        interval: timing("interval", HealthSpec::DEFAULT_INTERVAL, "1s")?,
        timeout: timing("timeout", HealthSpec::DEFAULT_TIMEOUT, "2s")?,
        deadline: timing("deadline", HealthSpec::DEFAULT_DEADLINE, "30s")?,
    })
}

/// `kind` is read first, by hand, so that each kind can have its own keys and every
/// error keeps its position (serde's internally tagged enums would buffer the section
/// and lose them).
fn read_strategy(sec: &Section<'_>) -> Result<StrategySpec, SpecError> {
    const KIND: &str = "kind = \"rolling\"";
    let kind = sec.required("kind", KIND, sec.string("kind", KIND)?)?;
    match kind.value {
        "rolling" => read_rolling(sec).map(StrategySpec::Rolling),
        planned if rules::PLANNED_KINDS.contains(&planned) => Err(sec.src.error(
            &kind.span,
            format!("strategy kind {planned:?} is not supported yet"),
            Some(rules::kinds_hint()),
        )),
        unknown => {
            let hint = match suggest::closest(unknown, rules::SUPPORTED_KINDS) {
                Some(close) => format!("did you mean {close:?}? {}", rules::kinds_hint()),
                None => rules::kinds_hint(),
            };
            Err(sec.src.error(
                &kind.span,
                format!("unknown strategy kind {unknown:?}"),
                Some(hint),
            ))
        }
    }
}

fn read_rolling(sec: &Section<'_>) -> Result<RollingSpec, SpecError> {
    sec.check_keys(ROLLING_KEYS)?;
    let defaults = RollingSpec::default();
    let surge = sec.count("max_surge", "max_surge = 1")?;
    let unavailable = sec.count("max_unavailable", "max_unavailable = 0")?;
    let spec = RollingSpec {
        max_surge: surge.as_ref().map_or(defaults.max_surge, |n| n.value),
        max_unavailable: unavailable
            .as_ref()
            .map_or(defaults.max_unavailable, |n| n.value),
    };
    // Point at the value the hint asks to change, if it was written down.
    let span = surge
        .or(unavailable)
        .map_or_else(|| sec.span.clone(), |n| n.span);
    sec.src
        .check(&span, rules::rolling(spec.max_surge, spec.max_unavailable))?;
    Ok(spec)
}

fn keys_of(section: &str) -> &'static [&'static str] {
    SECTIONS
        .iter()
        .find(|&&(name, _)| name == section)
        .map_or(&[], |&(_, keys)| keys)
}

/// The section (other than `current`) that has a key called `key`, if any.
fn home_of(key: &str, current: &str) -> Option<&'static str> {
    SECTIONS
        .iter()
        .find(|&&(name, keys)| name != current && keys.contains(&key))
        .map(|&(name, _)| name)
}

/// The text being read, for making located errors.
struct Source<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Source<'_> {
    fn error(&self, span: &Span, message: impl Into<String>, hint: Option<String>) -> SpecError {
        SpecError::at(self.origin, self.text, span.clone(), message, hint)
    }

    /// Turns a failed rule into an error at `span`.
    fn check(&self, span: &Span, rule: Result<(), Problem>) -> Result<(), SpecError> {
        rule.map_err(|p| self.error(span, p.message, p.hint))
    }

    /// The source text of `span` (empty if the span is somehow out of range).
    fn slice(&self, span: &Span) -> &str {
        self.text.get(span.clone()).unwrap_or("")
    }

    /// A TOML syntax error. toml_edit's message reads "what\nexpected …"; the first
    /// line becomes the message, the rest a parenthesis, and the hint is ours.
    fn syntax_error(&self, err: &TomlError) -> SpecError {
        let mut lines = err
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty());
        let what = lines.next().unwrap_or("invalid TOML");
        let details: Vec<&str> = lines.collect();
        let message = if details.is_empty() {
            format!("invalid TOML: {what}")
        } else {
            format!("invalid TOML: {what} ({})", details.join("; "))
        };
        let hint = syntax_hint(what, &details);
        self.error(&err.span().unwrap_or(0..0), message, hint)
    }
}

/// Advice for the TOML mistakes people make in a file like runway.toml.
fn syntax_hint(what: &str, details: &[&str]) -> Option<String> {
    let hint = match what {
        "invalid string" | "invalid basic string" | "invalid literal string" => {
            "quote text values and close the quote on the same line, e.g. name = \"web\""
        }
        "invalid table header" if details.iter().any(|d| d.starts_with("duplicate key")) => {
            "each [section] may appear only once; merge the two"
        }
        "invalid table header" => "a [section] header must stand alone on its line",
        "invalid inline table" => {
            "an inline table is { key = \"value\", … } on one line without a trailing comma; \
             use a [run.env] section for longer lists"
        }
        "invalid array" => "separate the elements with commas and close the array with `]`",
        "invalid key" => "keys are made of letters, digits, '-' and '_' (quote anything else)",
        "expected newline, `#`" => {
            "put one key = value on each line, and quote text values, e.g. listen = \"127.0.0.1:8080\""
        }
        "expected `.`, `=`" => "write key = value",
        _ if what.starts_with("duplicate key") => "each key may appear only once in a table",
        _ => return None,
    };
    Some(hint.to_owned())
}

/// A value together with the span of its text.
struct At<T> {
    value: T,
    span: Span,
}

/// A table being read: a `[section]`, an inline table, or the document root.
struct Section<'a> {
    src: &'a Source<'a>,
    /// Dotted path of the table (`run`, `run.env`); empty for the root.
    path: String,
    table: &'a dyn TableLike,
    /// Where to point for errors about the table as a whole (e.g. a missing key).
    span: Span,
}

impl<'a> Section<'a> {
    /// How the table is named in messages.
    fn title(&self) -> String {
        if self.path.is_empty() {
            "the top level".to_owned()
        } else {
            format!("[{}]", self.path)
        }
    }

    fn key_span(&self, key: &str) -> Span {
        self.table
            .key(key)
            .and_then(Key::span)
            .unwrap_or_else(|| self.span.clone())
    }

    fn value_span(&self, key: &str, item: &Item) -> Span {
        item.span().unwrap_or_else(|| self.key_span(key))
    }

    /// The item stored under `key`, with the span of its value.
    fn entry(&self, key: &str) -> Option<(&'a Item, Span)> {
        let item = self.table.get(key).filter(|item| !item.is_none())?;
        Some((item, self.value_span(key, item)))
    }

    /// Rejects any key not in `allowed`, suggesting what was probably meant.
    fn check_keys(&self, allowed: &[&str]) -> Result<(), SpecError> {
        match self
            .table
            .iter()
            .find(|(key, item)| !item.is_none() && !allowed.contains(key))
        {
            Some((key, item)) => Err(self.unknown_key(key, item, allowed)),
            None => Ok(()),
        }
    }

    fn unknown_key(&self, key: &str, item: &Item, allowed: &[&str]) -> SpecError {
        let span = self.key_span(key);
        if self.path.is_empty() {
            let sections: Vec<String> = allowed.iter().map(|s| format!("[{s}]")).collect();
            let valid = format!("valid sections: {}", sections.join(", "));
            if let Some(home) = home_of(key, "").filter(|_| !item.is_table_like()) {
                return self.src.error(
                    &span,
                    format!("unknown key `{key}` at the top level"),
                    Some(format!(
                        "`{key}` belongs in [{home}]: move it below the [{home}] line"
                    )),
                );
            }
            let hint = match suggest::closest(key, allowed) {
                Some(close) => format!("did you mean [{close}]? {valid}"),
                None => valid,
            };
            return self
                .src
                .error(&span, format!("unknown section [{key}]"), Some(hint));
        }

        let valid = format!("valid keys: {}", allowed.join(", "));
        let hint = if let Some(close) = suggest::closest(key, allowed) {
            format!("did you mean `{close}`? {valid}")
        } else if let Some(home) = home_of(key, &self.path) {
            format!("`{key}` belongs in [{home}]; {valid}")
        } else {
            valid
        };
        self.src.error(
            &span,
            format!("unknown key `{key}` in {}", self.title()),
            Some(hint),
        )
    }

    fn missing(&self, key: &str, example: &str) -> SpecError {
        self.src.error(
            &self.span,
            format!("missing `{key}` in {}", self.title()),
            Some(format!("add {example}")),
        )
    }

    fn missing_section(&self, name: &str, body: &str) -> SpecError {
        self.src.error(
            &self.span,
            format!("missing [{name}] section"),
            Some(format!("add it, for example:\n[{name}]\n{body}")),
        )
    }

    fn required<T>(
        &self,
        key: &str,
        example: &str,
        found: Option<At<T>>,
    ) -> Result<At<T>, SpecError> {
        found.ok_or_else(|| self.missing(key, example))
    }

    /// The value under `key`, if present, converted by `pick`; when `pick` refuses it,
    /// an error saying the value must be `expected` (e.g. "a string").
    fn get<T>(
        &self,
        key: &str,
        expected: &str,
        example: &str,
        pick: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<At<T>>, SpecError> {
        let Some((item, span)) = self.entry(key) else {
            return Ok(None);
        };
        match item.as_value().and_then(pick) {
            Some(value) => Ok(Some(At { value, span })),
            None => Err(self.src.error(
                &span,
                format!("`{key}` must be {expected}, found {}", describe(item)),
                Some(format!("for example: {example}")),
            )),
        }
    }

    fn string(&self, key: &str, example: &str) -> Result<Option<At<&'a str>>, SpecError> {
        self.get(key, "a string", example, Value::as_str)
    }

    /// A non-negative integer that fits a `u32`.
    fn count(&self, key: &str, example: &str) -> Result<Option<At<u32>>, SpecError> {
        let Some(n) = self.get(key, "a whole number", example, Value::as_integer)? else {
            return Ok(None);
        };
        match u32::try_from(n.value) {
            Ok(value) => Ok(Some(At {
                value,
                span: n.span,
            })),
            Err(_) => {
                let message = if n.value < 0 {
                    format!("`{key}` cannot be negative")
                } else {
                    format!("`{key}` is too large (the maximum is {})", u32::MAX)
                };
                Err(self
                    .src
                    .error(&n.span, message, Some(format!("for example: {example}"))))
            }
        }
    }

    /// A duration string such as `"30s"`; `example` is a good value for `key`.
    fn duration(&self, key: &str, example: &str) -> Result<Option<At<Dur>>, SpecError> {
        let assignment = format!("{key} = \"{example}\"");
        if let Some((Item::Value(Value::Integer(n)), span)) = self.entry(key) {
            return Err(self.src.error(
                &span,
                format!("`{key}` needs a unit"),
                Some(format!(
                    "write a quoted duration, e.g. {key} = \"{}s\" (units: ms, s, m, h)",
                    n.value()
                )),
            ));
        }
        let Some(text) = self.get(key, "a duration string", &assignment, Value::as_str)? else {
            return Ok(None);
        };
        match parse_duration(text.value) {
            Ok(d) => Ok(Some(At {
                value: Dur(d),
                span: text.span,
            })),
            Err(why) => Err(self.src.error(
                &text.span,
                format!("invalid duration {:?} for `{key}`: {why}", text.value),
                Some(format!(
                    "write a number and a unit (ms, s, m, h) with no spaces, e.g. {assignment}"
                )),
            )),
        }
    }

    /// The table under `key`, if present; `example` shows how to write one.
    fn section(&self, key: &str, example: &str) -> Result<Option<Section<'a>>, SpecError> {
        let Some((item, span)) = self.entry(key) else {
            return Ok(None);
        };
        let Some(table) = item.as_table_like() else {
            let (what, hint) = if self.path.is_empty() {
                (
                    format!("[{key}]"),
                    format!("write it as a section: {example}"),
                )
            } else {
                (format!("`{key}`"), format!("for example: {example}"))
            };
            return Err(self.src.error(
                &span,
                format!("{what} must be a table, found {}", describe(item)),
                Some(hint),
            ));
        };
        let path = if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        };
        Ok(Some(Section {
            src: self.src,
            path,
            table,
            span: header_span(self.src.text, span),
        }))
    }
}

/// A table's span runs from its `[header]` to its last value; errors about the table
/// as a whole underline just the header (or the first character of an inline table).
fn header_span(text: &str, span: Span) -> Span {
    let rest = text.get(span.start..).unwrap_or("");
    let len = if rest.starts_with('[') {
        rest.find(']').map_or(1, |end| end + 1)
    } else {
        1
    };
    span.start..span.start + len
}

fn is_scalar(value: &Value) -> bool {
    matches!(
        value,
        Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::Datetime(_)
    )
}

/// "Quote it" when a scalar was written where a string belongs.
fn quote_hint(raw: &str, value: &Value, example: &str) -> String {
    if is_scalar(value) {
        format!("quote it: \"{}\"", raw.trim())
    } else {
        format!("for example: {example}")
    }
}

fn describe(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(value) => describe_value(value),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

fn describe_value(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}
