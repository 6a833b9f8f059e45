//! The rules of `[[checks]]`, shared by the TOML reader and [`Spec::validate`]
//! (crate::Spec::validate) like the rest of `rules.rs`.
//!
//! The check model itself lives in `runway-checks`, whose own `CheckSpec::validate` is
//! the last word on what the runner accepts; these rules come first and say the same
//! things with a location and a hint, plus what only a config file can get wrong
//! (typos in phase names, a bare number where a size needs a unit).

use std::time::Duration;

use runway_analysis::condition::Condition;
use runway_checks::model::{self as checks, MinFree, Schedule, KNOWN_PHASES};

use super::{env_name, Problem, Rule};
use crate::duration::Dur;
use crate::suggest;

/// The check kinds, in documentation order.
pub(crate) const KINDS: &[&str] = &[
    "http",
    "tcp",
    "postgres",
    "redis",
    "disk",
    "tls",
    "env",
    "command",
    "prometheus",
    "file",
];

/// The placeholders an HTTP check's `url` may contain.
pub(crate) const URL_PLACEHOLDERS: &[&str] = &["replica"];

/// The hint listing the check kinds.
pub(crate) fn kinds_hint() -> String {
    let all: Vec<String> = KINDS.iter().map(|k| format!("\"{k}\"")).collect();
    format!("kinds: {}", all.join(", "))
}

/// The hint explaining `phases`.
pub(crate) fn phases_hint() -> String {
    format!(
        "runway runs checks in the phases {}; any other name is a named checklist, run \
         with `runway check --phase <name>` or on its schedule",
        KNOWN_PHASES.join(", ")
    )
}

/// A check's name: not blank (it names the check in every result).
pub(crate) fn check_name(name: &str) -> Rule {
    if name.trim().is_empty() {
        return Err(Problem::new(
            "the check name must not be empty",
            "say what the check makes sure of, e.g. name = \"postgres accepts queries\"",
        ));
    }
    Ok(())
}

/// Check names are unique; `first` describes the earlier use.
pub(crate) fn check_name_unique(name: &str, first: &str) -> Rule {
    Err(Problem::new(
        format!("there is already a check named {name:?} ({first})"),
        "give each check its own name: results, logs and `runway check` refer to checks \
         by name",
    ))
}

/// A check belongs to at least one phase.
pub(crate) fn phases_not_empty(len: usize) -> Rule {
    if len == 0 {
        return Err(Problem::new(
            "`phases` must list at least one phase",
            format!(
                "for example: phases = [\"preflight\", \"daily\"]; {}",
                phases_hint()
            ),
        ));
    }
    Ok(())
}

/// One phase name, after the `earlier` ones of the same check: not blank, not listed
/// twice, and not a misspelling of a phase runway runs (a misspelt `"preflight"` would
/// silently turn a deploy gate into a checklist nobody runs). A name that starts with a
/// known phase (`"smoke-eu"`) is a deliberate checklist name.
pub(crate) fn phase(name: &str, earlier: &[&str]) -> Rule {
    if name.trim().is_empty() {
        return Err(Problem::new(
            "a phase name must not be empty",
            phases_hint(),
        ));
    }
    if earlier.contains(&name) {
        return Err(Problem::new(
            format!("phase {name:?} is listed twice"),
            "list each phase once",
        ));
    }
    if KNOWN_PHASES.contains(&name) {
        return Ok(());
    }
    let deliberate = KNOWN_PHASES.iter().any(|p| name.starts_with(p));
    match suggest::closest(name, KNOWN_PHASES).filter(|_| !deliberate) {
        Some(close) => Err(Problem::new(
            format!("unknown phase {name:?}"),
            format!("did you mean {close:?}? {}", phases_hint()),
        )),
        None => Ok(()),
    }
}

/// `schedule`: the syntax of `runway-checks`' [`Schedule::parse`].
pub(crate) fn schedule(text: &str) -> Rule {
    Schedule::parse(text).map(|_| ()).map_err(|why| {
        Problem::new(
            format!(
                "invalid schedule: {}",
                strip_quoted(&why, text, "schedule ")
            ),
            "write the days, a time and UTC, e.g. schedule = \"Mon-Fri 09:00 UTC\" or \
             \"daily 07:00 UTC\"",
        )
    })
}

/// Removes the `<prefix>"<text>": ` with which `runway-checks` starts its messages
/// (the snippet already shows the value).
fn strip_quoted<'a>(message: &'a str, text: &str, prefix: &str) -> &'a str {
    let quoted = format!("{prefix}{text:?}: ");
    message.strip_prefix(&quoted).unwrap_or(message)
}

/// The longest `timeout`, `backoff` or `max_latency` of a check.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 3_600);

/// A check's `timeout`, `backoff` or `max_latency` (`key`): a day at most, which is
/// already far beyond any sensible check (and keeps the stored form exact).
pub(crate) fn at_most_a_day(key: &str, value: Duration, example: &str) -> Rule {
    if value > MAX_DURATION {
        return Err(Problem::new(
            format!("`{key}` must be at most 24h, found {}", Dur(value)),
            format!("for example: {key} = \"{example}\""),
        ));
    }
    Ok(())
}

/// An HTTP method: an uppercase word.
pub(crate) fn http_method(method: &str) -> Rule {
    if !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Ok(());
    }
    let hint = if !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic()) {
        format!(
            "HTTP methods are case-sensitive: method = \"{}\"",
            method.to_ascii_uppercase()
        )
    } else {
        "for example: method = \"GET\" or \"POST\"".to_owned()
    };
    Err(Problem::new(
        format!("invalid HTTP method {method:?}"),
        hint,
    ))
}

/// The `url` of an HTTP check: `http://` or `https://`, a host (or `{replica}`), and
/// no placeholder other than `{replica}`.
pub(crate) fn http_url(url: &str) -> Rule {
    const EXAMPLE: &str = "url = \"http://{replica}/health/ready\" ({replica}: every replica \
                           of the new release) or \"https://example.com/health\"";
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    if host.is_none_or(|h| h.rsplit('@').next().unwrap_or("").is_empty())
        || url.contains(char::is_whitespace)
    {
        return Err(Problem::new(
            format!("invalid URL {url:?}"),
            format!("give a whole http:// or https:// URL, e.g. {EXAMPLE}"),
        ));
    }
    placeholders(url, "URL", URL_PLACEHOLDERS)
}

/// Every bare `{word}` of `text` is one of `known` (`what` names the text).
fn placeholders(text: &str, what: &str, known: &[&str]) -> Rule {
    for (open, _) in text.match_indices('{') {
        let after = &text[open + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let word = &after[..len];
        if word.is_empty() || !after[len..].starts_with('}') || known.contains(&word) {
            continue;
        }
        let list: Vec<String> = known.iter().map(|p| format!("{{{p}}}")).collect();
        let hint = match suggest::closest(word, known) {
            Some(close) => format!(
                "did you mean {{{close}}}? placeholders: {}",
                list.join(", ")
            ),
            None => format!("placeholders: {}", list.join(", ")),
        };
        return Err(Problem::new(
            format!("unknown placeholder {{{word}}} in the {what}"),
            hint,
        ));
    }
    Ok(())
}

/// The name of an HTTP header.
pub(crate) fn header_name(name: &str) -> Rule {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(Problem::new(
            format!("{name:?} is not a valid HTTP header name"),
            "use letters, digits and '-', e.g. headers = { Authorization = \"secret:API_TOKEN\" }",
        ));
    }
    Ok(())
}

/// A value that may be a reference resolved at run time: `env:NAME` names an
/// environment variable, `secret:NAME` a secret. Plain values pass.
pub(crate) fn reference(value: &str) -> Rule {
    if let Some(name) = value.strip_prefix("env:") {
        return env_name(name).map_err(|p| Problem {
            message: format!("`env:` must be followed by a variable name: {}", p.message),
            hint: Some("for example: \"env:DATABASE_URL\"".to_owned()),
        });
    }
    if let Some(name) = value.strip_prefix("secret:") {
        if name.trim().is_empty() || name.contains(char::is_whitespace) {
            return Err(Problem::new(
                "`secret:` must be followed by the secret's name",
                "for example: \"secret:DATABASE_URL\"",
            ));
        }
    }
    Ok(())
}

/// `expect_status`: an HTTP status code.
pub(crate) fn expect_status(status: i64) -> Rule {
    if !(100..=599).contains(&status) {
        return Err(Problem::new(
            format!("`expect_status` must be an HTTP status between 100 and 599, found {status}"),
            "for example: expect_status = 200 (without it, any 2xx passes)",
        ));
    }
    Ok(())
}

/// A key of `expect_json`: a path into the JSON body, starting with `.`.
pub(crate) fn json_path(path: &str) -> Rule {
    if !path.starts_with('.') {
        let fixed = format!(".{}", path.trim_start_matches(['$', '/']).replace('/', "."));
        return Err(Problem::new(
            format!("the JSON path {path:?} must start with '.'"),
            format!(
                "write paths like \".status\" or \".checks.database\" (quoted, as the key): \
                 did you mean \"{fixed}\"?"
            ),
        ));
    }
    Ok(())
}

/// `address`: `host:port`, where the host may be a name; `key` names the setting and
/// `example` is a good value.
pub(crate) fn address(key: &str, address: &str, example: &str) -> Rule {
    let hint = || format!("write host:port, e.g. {key} = \"{example}\"");
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(Problem::new(
            format!("`{key}` {address:?} has no port"),
            hint(),
        ));
    };
    if host.is_empty() || host.contains(['/', ' ']) || address.contains("://") {
        return Err(Problem::new(format!("invalid `{key}` {address:?}"), hint()));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(Problem::new(
            format!("invalid port {port:?} in `{key}`"),
            hint(),
        )),
    }
}

/// A connection URL that may hold a password: `env:NAME`, `secret:NAME`, or a URL with
/// one of `schemes`. Messages never repeat the value.
pub(crate) fn secret_url(url: &str, schemes: &[&str], example: &str) -> Rule {
    if checks::is_reference(url) {
        return reference(url);
    }
    let hint = || {
        format!(
            "write a {}:// URL, or keep it out of the file with \"env:NAME\" or \
             \"secret:NAME\", e.g. {example}",
            schemes[0]
        )
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(Problem::new("`url` is not a URL", hint()));
    };
    if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Err(Problem::new(
            format!(
                "`url` has the scheme {scheme:?}; expected {}",
                schemes.join(" or ")
            ),
            hint(),
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.rsplit('@').next().unwrap_or("").is_empty() {
        return Err(Problem::new("`url` has no host", hint()));
    }
    Ok(())
}

/// The `url` of a postgres check.
pub(crate) fn postgres_url(url: &str) -> Rule {
    secret_url(
        url,
        &["postgres", "postgresql"],
        "url = \"env:DATABASE_URL\"",
    )
}

/// The `url` of a redis check.
pub(crate) fn redis_url(url: &str) -> Rule {
    secret_url(url, &["redis"], "url = \"redis://127.0.0.1:6379\"")
}

/// `key` (`query`, `path`, `expect_stdout`, …) must not be blank.
pub(crate) fn not_blank(key: &str, value: &str, example: &str) -> Rule {
    if value.trim().is_empty() {
        return Err(Problem::new(
            format!("`{key}` must not be empty"),
            format!("for example: {example}"),
        ));
    }
    Ok(())
}

/// `max_connections_share` / `max_memory_share`: a share in (0, 1].
pub(crate) fn share(key: &str, value: f64) -> Rule {
    if !(value > 0.0 && value <= 1.0) {
        return Err(Problem::new(
            format!("`{key}` must be a share between 0 (excluded) and 1, found {value}"),
            format!("for example: {key} = 0.9 (fail above 90%)"),
        ));
    }
    Ok(())
}

/// The hint for a bad `min_free`.
pub(crate) fn min_free_hint() -> String {
    "write a size with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB) or a percentage of the \
     filesystem, e.g. min_free = \"10GB\", \"500MiB\" or \"10%\""
        .to_owned()
}

/// `min_free` as written: a size with a unit or a percentage (a bare number would be
/// bytes, which is never what was meant).
pub(crate) fn parse_min_free(text: &str) -> Result<MinFree, Problem> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(Problem::new(
            format!("`min_free` {text:?} needs a unit"),
            min_free_hint(),
        ));
    }
    let value = MinFree::parse(text).map_err(|why| {
        // `runway-checks` starts its messages with the quoted value.
        let message = match why.strip_prefix(&format!("{t:?}")) {
            Some(rest) if rest.starts_with(':') => format!("invalid `min_free` {text:?}{rest}"),
            _ => format!("invalid `min_free`: {why}"),
        };
        Problem {
            message,
            hint: Some(min_free_hint()),
        }
    })?;
    min_free(value)?;
    Ok(value)
}

/// `min_free`: more than nothing, and a share at most the whole filesystem.
pub(crate) fn min_free(value: MinFree) -> Rule {
    let fine = match value {
        MinFree::Bytes(b) => b > 0,
        MinFree::Share(s) => s > 0.0 && s <= 1.0,
    };
    if !fine {
        return Err(Problem::new(
            format!("`min_free` must be more than 0 and at most 100%, found {value}"),
            min_free_hint(),
        ));
    }
    Ok(())
}

/// A tls check reads a certificate from exactly one place; `server_name` is for
/// `address`.
pub(crate) fn tls_target(file: bool, address: bool) -> Rule {
    match (file, address) {
        (true, true) => Err(Problem::new(
            "a tls check takes either `file` or `address`, not both",
            "keep file = \"/etc/ssl/certs/web.pem\" to check a certificate on disk, or \
             address = \"example.com:443\" to check the one a server presents; make two \
             checks for both",
        )),
        (false, false) => Err(Problem::new(
            "a tls check needs `file` or `address`",
            "add file = \"/etc/ssl/certs/web.pem\" (a PEM certificate) or \
             address = \"example.com:443\" (a server to connect to)",
        )),
        _ => Ok(()),
    }
}

/// `server_name` only applies when connecting to an `address`.
pub(crate) fn server_name_allowed(address: bool) -> Rule {
    if !address {
        return Err(Problem::new(
            "`server_name` only applies with `address`",
            "server_name is the name sent when connecting to a server (default: the host of \
             `address`); remove it when checking a `file`",
        ));
    }
    Ok(())
}

/// An env check names at least one variable.
pub(crate) fn vars_not_empty(len: usize) -> Rule {
    if len == 0 {
        return Err(Problem::new(
            "`vars` must name at least one environment variable",
            "for example: vars = [\"DATABASE_URL\", \"SECRET_KEY\"]",
        ));
    }
    Ok(())
}

/// A command check runs a program: a non-empty argv whose first element is not blank.
pub(crate) fn check_command(argv: &[String]) -> Rule {
    if argv.first().is_none_or(|p| p.trim().is_empty()) {
        return Err(Problem::new(
            "the command must name a program",
            "give the program and its arguments, e.g. command = [\"pg_isready\", \"-h\", \
             \"127.0.0.1\"] (no shell is involved)",
        ));
    }
    Ok(())
}

/// `expect_exit`: an exit status, 0 to 255.
pub(crate) fn expect_exit(code: i64) -> Rule {
    if !(0..=255).contains(&code) {
        return Err(Problem::new(
            format!("`expect_exit` must be an exit status between 0 and 255, found {code}"),
            "for example: expect_exit = 0 (success, the default)",
        ));
    }
    Ok(())
}

/// The hint for a bad check `condition`.
fn condition_hint() -> String {
    "a check compares one number with a threshold, e.g. condition = \"> 0.99\"; accepted \
     forms: \"> 0.99\", \">= 0.99\", \"< 0.05\", \"<= 0.05\", \"> 5%\""
        .to_owned()
}

/// The `condition` of a prometheus check: an absolute condition of `runway-analysis`'s
/// grammar (there is no stable release to compare with outside a rollout). Returns
/// the text to store: as written when the check runner reads it as is, else the
/// canonical form (`"> 5%"` is stored as `"> 0.05"`).
pub(crate) fn check_condition(text: &str) -> Result<String, Problem> {
    let parsed = Condition::parse(text).map_err(|err| {
        let prefix = format!("invalid condition {:?}: ", text.trim());
        let what = err
            .split_once("; accepted forms")
            .map_or(err.as_str(), |(w, _)| w);
        let what = what.strip_prefix(&prefix).unwrap_or(what);
        Problem::new(
            format!("invalid condition {text:?}: {what}"),
            condition_hint(),
        )
    })?;
    if !matches!(parsed, Condition::Absolute { .. }) {
        return Err(Problem::new(
            format!("the condition {text:?} compares with the stable release"),
            format!(
                "a check runs outside any rollout, so there is no stable release: {}",
                condition_hint()
            ),
        ));
    }
    if checks::Condition::parse(text).is_ok() {
        Ok(text.to_owned())
    } else {
        Ok(parsed.to_string())
    }
}

/// The `url` of a prometheus check: the base URL of the server.
pub(crate) fn prometheus_check_url(url: &str) -> Rule {
    super::prometheus_url(url).map_err(|p| Problem {
        message: p.message,
        hint: Some(
            "give the base URL of the Prometheus server, e.g. url = \"http://127.0.0.1:9090\" \
             (or leave `url` out to use prometheus = … of [analysis])"
                .to_owned(),
        ),
    })
}

/// A prometheus check needs a server: its own `url` or `[analysis] prometheus`.
pub(crate) fn prometheus_url_hint() -> String {
    "add url = \"http://127.0.0.1:9090\" (the Prometheus server's base URL) to the check, \
     or prometheus = \"http://127.0.0.1:9090\" to [analysis] for every check and metric"
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases() {
        for ok in [
            "preflight",
            "verify",
            "smoke",
            "daily",
            "nightly",
            "smoke-eu",
            "db",
        ] {
            assert_eq!(phase(ok, &[]), Ok(()), "{ok}");
        }
        for (typo, meant) in [
            ("prefligth", "preflight"),
            ("Preflight", "preflight"),
            ("verfy", "verify"),
            ("dayly", "daily"),
            ("smok", "smoke"),
        ] {
            let hint = phase(typo, &[]).unwrap_err().hint.unwrap();
            assert!(
                hint.contains(&format!("did you mean {meant:?}")),
                "{typo}: {hint}"
            );
        }
        assert!(phase("daily", &["daily"]).is_err());
        assert!(phase(" ", &[]).is_err());
    }

    #[test]
    fn conditions() {
        assert_eq!(check_condition("> 0.99"), Ok("> 0.99".to_owned()));
        assert_eq!(check_condition(">0.99"), Ok(">0.99".to_owned()));
        assert_eq!(check_condition("> 5%"), Ok("> 0.05".to_owned()));
        assert!(check_condition("> 2x stable").is_err());
        assert!(check_condition("> stable (mann-whitney)").is_err());
        assert!(check_condition("high").is_err());
    }

    #[test]
    fn urls_and_addresses() {
        assert_eq!(http_url("http://{replica}/health"), Ok(()));
        assert!(http_url("http://{replcia}/health").is_err());
        assert!(http_url("ftp://x").is_err());
        assert!(http_url("http:///x").is_err());
        assert_eq!(postgres_url("env:DATABASE_URL"), Ok(()));
        assert_eq!(postgres_url("secret:db"), Ok(()));
        assert_eq!(postgres_url("postgresql://u:p@h/db"), Ok(()));
        assert!(postgres_url("env:1X").is_err());
        assert!(postgres_url("mysql://u:hunter2@h")
            .unwrap_err()
            .message
            .find("hunter2")
            .is_none());
        assert_eq!(address("address", "db.internal:5432", "h:1"), Ok(()));
        assert_eq!(address("address", "[::1]:5432", "h:1"), Ok(()));
        for bad in ["db", ":5432", "db:0", "db:x", "http://db:80"] {
            assert!(address("address", bad, "h:1").is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_min_free("10GB"), Ok(MinFree::Bytes(10_000_000_000)));
        assert_eq!(parse_min_free("10%"), Ok(MinFree::Share(0.1)));
        assert!(parse_min_free("10")
            .unwrap_err()
            .message
            .contains("needs a unit"));
        assert!(parse_min_free("0GB").is_err());
        assert!(parse_min_free("0%").is_err());
        assert!(parse_min_free("10XB").is_err());
    }
}
