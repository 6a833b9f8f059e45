//! The semantic rules of a spec, written once.
//!
//! A spec reaches runway two ways: as `runway.toml` text (checked by the reader, which
//! knows where each value came from) and as JSON from the state store or the API
//! (checked by [`Spec::validate`](crate::Spec::validate), which has no positions). Both
//! call these functions, so the two paths cannot drift apart; each returns a
//! [`Problem`] that the caller attaches a location or a field path to.

use std::net::{IpAddr, SocketAddr};

use runway_analysis::condition::Condition;

use crate::duration::Dur;
use crate::model::{MetricSource, ProxyMetric};

pub(crate) mod checks;
pub(crate) mod hooks;

/// A rule violation: what is wrong and, when useful, what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

type Rule = Result<(), Problem>;

/// Longest accepted service name (it ends up in process titles, paths and DNS-ish names).
pub(crate) const MAX_NAME_LEN: usize = 63;

/// Strategy kinds this version can run.
pub(crate) const SUPPORTED_KINDS: &[&str] = &["rolling", "canary", "blue-green", "recreate"];

/// Strategy kinds that are planned but not implemented yet; naming them gets a clearer
/// error than an unknown word does. None at the moment.
pub(crate) const PLANNED_KINDS: &[&str] = &[];

/// The placeholders a Prometheus `query` may contain.
pub(crate) const QUERY_PLACEHOLDERS: &[&str] = &["service", "version", "stable_version"];

/// An example canary `steps` array, for hints.
pub(crate) const STEPS_EXAMPLE: &str =
    "steps = [{ weight = 10, pause = \"1m\" }, { weight = 50, pause = \"1m\" }, { weight = 100 }]";

/// `service.name`: `[a-z0-9][a-z0-9-_.]*`, at most [`MAX_NAME_LEN`] characters.
pub(crate) fn service_name(name: &str) -> Rule {
    const ALLOWED: &str = "lowercase letters, digits, '-', '_' and '.'";
    if name.is_empty() {
        return Err(Problem::new(
            "the service name must not be empty",
            format!("use {ALLOWED}, e.g. name = \"web\""),
        ));
    }
    let len = name.chars().count();
    if len > MAX_NAME_LEN {
        return Err(Problem::new(
            format!("the service name is {len} characters long; the maximum is {MAX_NAME_LEN}"),
            "choose a shorter name",
        ));
    }
    let valid_start = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid_rest = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if valid_start && valid_rest {
        return Ok(());
    }
    let hint = match suggest_name(name) {
        Some(fixed) => {
            format!("use {ALLOWED}, starting with a letter or digit, e.g. name = \"{fixed}\"")
        }
        None => format!("use {ALLOWED}, starting with a letter or digit"),
    };
    Err(Problem::new(format!("invalid service name {name:?}"), hint))
}

/// A valid name close to `name` (lowercased, other characters turned into `-`).
fn suggest_name(name: &str) -> Option<String> {
    let mapped: String = name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let fixed = mapped.trim_start_matches(['-', '_', '.']);
    let fixed: String = fixed.chars().take(MAX_NAME_LEN).collect();
    (!fixed.is_empty()).then_some(fixed)
}

/// `run.command` must name a program.
pub(crate) fn command_not_empty(argv_len: usize) -> Rule {
    if argv_len == 0 {
        return Err(Problem::new(
            "the command must not be empty",
            "give the program and its arguments, e.g. command = [\"./server\", \"--port\", \"{port}\"]",
        ));
    }
    Ok(())
}

/// `run.command[0]`, the program, must not be an empty string.
pub(crate) fn program(program: &str) -> Rule {
    if program.trim().is_empty() {
        return Err(Problem::new(
            "the program (first element of the command) must not be empty",
            "put the executable first, e.g. command = [\"python3\", \"app.py\"]",
        ));
    }
    Ok(())
}

/// `run.replicas` must be at least 1.
pub(crate) fn replicas(replicas: u32) -> Rule {
    if replicas == 0 {
        return Err(Problem::new(
            "replicas must be at least 1",
            "set replicas = 1 or more",
        ));
    }
    Ok(())
}

/// `[docker] image`: a reference the Docker Engine can resolve, without spaces.
pub(crate) fn image(image: &str) -> Rule {
    if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Problem::new(
            "the image must be a name such as `registry.example.com/web:{version}`, without spaces",
            "image = \"registry.example.com/web:{version}\"",
        ));
    }
    Ok(())
}

/// A name of a Kubernetes object or container (`what` says which): an RFC 1123 label, as the
/// API server requires, so that a bad one is refused here and not halfway through a rollout.
pub(crate) fn k8s_name(what: &str, name: &str) -> Rule {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid {
        return Err(Problem::new(
            format!(
                "`{name}` is not a valid Kubernetes {what} name: lowercase letters, digits and \
                 `-`, at most 63, starting and ending with a letter or digit"
            ),
            format!("{what} = \"{}\"", suggest_k8s_name(name)),
        ));
    }
    Ok(())
}

/// `name` made into a valid Kubernetes name, for a hint.
fn suggest_k8s_name(name: &str) -> String {
    let mut out: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out.truncate(63);
    let out = out.trim_matches('-');
    if out.is_empty() {
        "web".into()
    } else {
        out.into()
    }
}

/// `[kubernetes] route` is what `traffic = "gateway-api"` shifts the weights of.
pub(crate) fn gateway_route(traffic: crate::ClusterTraffic, route: Option<&str>) -> Rule {
    if traffic == crate::ClusterTraffic::GatewayApi && route.is_none() {
        return Err(Problem::new(
            "traffic = \"gateway-api\" needs the HTTPRoute whose backend weights it sets",
            "route = \"web\"",
        ));
    }
    Ok(())
}

/// `[kubernetes] env`: the values go into the Deployment, which anyone who may read it reads.
/// A `secret:NAME` of the service goes into a Secret object of the release that the pods read
/// by `secretKeyRef`; an `env:NAME` of the server's environment would be written in the clear.
pub(crate) fn cluster_env_value(value: &str) -> Rule {
    if value.starts_with("env:") {
        return Err(Problem::new(
            format!(
                "`{value}`: on Kubernetes an env value is written into the Deployment in the \
                 clear, so it cannot be a reference to the server's environment"
            ),
            "set it as a secret of the service (`runway secrets set NAME`) and refer to it \
             as \"secret:NAME\": it reaches the pods through a Kubernetes Secret",
        ));
    }
    Ok(())
}

/// `[docker] port`: where the app listens inside the container.
pub(crate) fn container_port(port: u16) -> Rule {
    if port == 0 {
        return Err(Problem::new(
            "port must be the port the app listens on inside the container (1-65535)",
            "port = 8000",
        ));
    }
    Ok(())
}

/// `[docker] volumes`: `source:target` or `source:target:mode`, the target absolute.
pub(crate) fn volume(volume: &str) -> Rule {
    let parts: Vec<&str> = volume.split(':').collect();
    let valid = matches!(parts.len(), 2 | 3)
        && !parts[0].is_empty()
        && parts[1].starts_with('/')
        && parts.get(2).is_none_or(|mode| ["ro", "rw"].contains(mode));
    if !valid {
        return Err(Problem::new(
            format!("`{volume}` is not a volume: write SOURCE:/target or SOURCE:/target:ro"),
            "volumes = [\"/srv/data:/data:ro\", \"cache:/cache\"]",
        ));
    }
    Ok(())
}

/// `[docker] cpus`: a positive number of cores.
pub(crate) fn cpus(cpus: f64) -> Rule {
    if !(cpus > 0.0 && cpus.is_finite()) {
        return Err(Problem::new("cpus must be more than 0", "cpus = 1.5"));
    }
    Ok(())
}

/// `[docker] labels`: a label name, not one of runway's own (`runway.*`).
pub(crate) fn label(name: &str) -> Rule {
    if name.starts_with("runway.") {
        return Err(Problem::new(
            format!("`{name}`: labels starting with `runway.` are runway's own"),
            "choose another prefix, such as `team` or `com.example.`",
        ));
    }
    Ok(())
}

/// Keys of `run.env` must be portable environment variable names.
pub(crate) fn env_name(name: &str) -> Rule {
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(Problem::new(
            format!("{name:?} is not a valid environment variable name"),
            "use letters, digits and '_', not starting with a digit, e.g. APP_ENV",
        ));
    }
    Ok(())
}

/// `run.dir`, when given, must not be empty.
pub(crate) fn dir(dir: &str) -> Rule {
    if dir.is_empty() {
        return Err(Problem::new(
            "`dir` must not be empty",
            "remove `dir` to run in the directory that contains runway.toml",
        ));
    }
    Ok(())
}

/// `health.path` is a URL path.
pub(crate) fn health_path(path: &str) -> Rule {
    if !path.starts_with('/') {
        let hint = if path.is_empty() || path.contains("://") {
            "give only the path of the URL, e.g. path = \"/health/ready\"".to_owned()
        } else {
            format!("did you mean path = \"/{path}\"?")
        };
        return Err(Problem::new(
            "the health check path must start with '/'",
            hint,
        ));
    }
    Ok(())
}

/// Health check timings must be greater than zero (a zero interval would spin).
pub(crate) fn positive(key: &str, value: Dur, example: &str) -> Rule {
    if value.is_zero() {
        return Err(Problem::new(
            format!("`{key}` must be greater than 0"),
            format!("for example: {key} = \"{example}\""),
        ));
    }
    Ok(())
}

/// How often something is probed or judged: at least 10ms, so that a typo ("1ns") cannot make
/// runway probe a replica hundreds of times a second.
pub(crate) fn interval(key: &str, value: Dur, example: &str) -> Rule {
    positive(key, value, example)?;
    if value.0 < std::time::Duration::from_millis(10) {
        return Err(Problem::new(
            format!("`{key}` must be at least 10ms, found {value}"),
            format!("for example: {key} = \"{example}\""),
        ));
    }
    Ok(())
}

/// A rolling update must be able to either add or remove a replica at each step.
pub(crate) fn rolling(max_surge: u32, max_unavailable: u32) -> Rule {
    if max_surge == 0 && max_unavailable == 0 {
        return Err(Problem::new(
            "max_surge and max_unavailable cannot both be 0",
            "with both 0 the rollout could never replace a replica; set max_surge = 1 to \
             start each new replica before stopping an old one",
        ));
    }
    Ok(())
}

/// The hint for a strategy kind this version cannot run.
pub(crate) fn kinds_hint() -> String {
    let supported: Vec<String> = SUPPORTED_KINDS.iter().map(|k| format!("\"{k}\"")).collect();
    if PLANNED_KINDS.is_empty() {
        return format!("supported kinds: {}", supported.join(", "));
    }
    let verb = if PLANNED_KINDS.len() == 1 {
        "is"
    } else {
        "are"
    };
    format!(
        "supported kinds: {} ({} {verb} not supported yet)",
        supported.join(", "),
        PLANNED_KINDS.join(", ")
    )
}

/// A canary needs at least one step.
pub(crate) fn steps_not_empty(len: usize) -> Rule {
    if len == 0 {
        return Err(Problem::new(
            "a canary needs at least one step",
            format!("for example: {STEPS_EXAMPLE}"),
        ));
    }
    Ok(())
}

/// A step's weight is a percentage, and the weights grow from step to step.
pub(crate) fn step_weight(weight: u32, previous: Option<u32>) -> Rule {
    if !(1..=100).contains(&weight) {
        return Err(Problem::new(
            format!("a step weight must be between 1 and 100, found {weight}"),
            "weight is the percentage of the requests sent to the new release, e.g. weight = 10",
        ));
    }
    match previous {
        Some(before) if weight <= before => Err(Problem::new(
            format!("step weights must increase: {weight} comes after {before}"),
            "each step sends a larger share of the traffic to the new release than the one \
             before it; reorder the steps or remove this one",
        )),
        _ => Ok(()),
    }
}

/// The last step sends all the traffic to the new release.
pub(crate) fn last_step_weight(weight: u32) -> Rule {
    if weight != 100 {
        return Err(Problem::new(
            format!("the last step must have weight 100, found {weight}"),
            "the rollout ends with all the traffic on the new release: add { weight = 100 } \
             as the last step",
        ));
    }
    Ok(())
}

/// The hint for a bad `pause` value.
pub(crate) fn pause_hint() -> String {
    "write a number and a unit (ms, s, m, h) with no spaces, e.g. pause = \"30s\", \
     or \"manual\" to wait for `runway promote`"
        .to_owned()
}

/// A timed pause must last: a zero pause says nothing that leaving it out does not.
pub(crate) fn pause(value: Dur) -> Rule {
    if value.is_zero() {
        return Err(Problem::new(
            "`pause` must be greater than 0",
            "leave `pause` out to go on as soon as the step's analysis has passed, or \
             write e.g. pause = \"30s\"",
        ));
    }
    Ok(())
}

/// The hint for a bad `listen` or `preview_listen` address.
pub(crate) fn listen_hint(key: &str, value: &str) -> String {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return format!("add a port, e.g. {key} = \"{}\"", SocketAddr::new(ip, 8080));
    }
    if let Some(port) = value.strip_prefix("localhost:") {
        return format!("host names are not resolved; write {key} = \"127.0.0.1:{port}\"");
    }
    format!("use an IP address and a port, e.g. {key} = \"127.0.0.1:8080\" or \"[::1]:8080\"")
}

/// The preview address of a blue-green rollout cannot be the service's own address.
pub(crate) fn preview_listen(preview: SocketAddr, listen: SocketAddr) -> Rule {
    if preview == listen {
        return Err(Problem::new(
            format!("preview_listen {preview} is the service's own listen address"),
            format!(
                "the preview serves only the new release, so it needs an address of its own, \
                 e.g. preview_listen = \"{}\"",
                SocketAddr::new(listen.ip(), listen.port().wrapping_add(1).max(1))
            ),
        ));
    }
    Ok(())
}

/// A count that must be at least 1.
pub(crate) fn at_least_one(key: &str, value: u32, example: u32) -> Rule {
    if value == 0 {
        return Err(Problem::new(
            format!("`{key}` must be at least 1"),
            format!("for example: {key} = {example}"),
        ));
    }
    Ok(())
}

/// `[analysis] prometheus` is the base URL of a Prometheus server.
pub(crate) fn prometheus_url(url: &str) -> Rule {
    let host = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match host {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace) => Ok(()),
        _ => Err(Problem::new(
            format!("invalid Prometheus URL {url:?}"),
            "give the base URL of the Prometheus server, e.g. prometheus = \"http://127.0.0.1:9090\"",
        )),
    }
}

/// The name of an analysis metric.
pub(crate) fn metric_name(name: &str) -> Rule {
    if name.trim().is_empty() {
        return Err(Problem::new(
            "the metric name must not be empty",
            "name the metric after what it checks, e.g. name = \"error-rate\"",
        ));
    }
    Ok(())
}

/// Metric names are unique within `[analysis]`; `first` describes the earlier use.
pub(crate) fn metric_name_unique(name: &str, first: &str) -> Rule {
    Err(Problem::new(
        format!("there is already a metric named {name:?} ({first})"),
        "give each metric of [analysis] its own name",
    ))
}

/// The hint for an unknown `source`.
pub(crate) fn sources_hint() -> String {
    let all: Vec<String> = MetricSource::ALL
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect();
    format!("sources: {}", all.join(", "))
}

/// The hint for an unknown proxy `metric`.
pub(crate) fn proxy_metrics_hint() -> String {
    let all: Vec<String> = ProxyMetric::ALL
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect();
    format!("proxy metrics: {}", all.join(", "))
}

/// A proxy metric names its measurement with `metric` (and has no `query`); a
/// Prometheus metric has a `query` (and no `metric`). Checked on the `source` value,
/// for a missing key.
pub(crate) fn source_needs(source: MetricSource, has_metric: bool, has_query: bool) -> Rule {
    match source {
        MetricSource::Proxy if !has_metric => Err(Problem::new(
            "a metric with source = \"proxy\" needs `metric`",
            format!(
                "add e.g. metric = \"error_rate\"; {}",
                proxy_metrics_hint()
            ),
        )),
        MetricSource::Prometheus if !has_query => Err(Problem::new(
            "a metric with source = \"prometheus\" needs `query`",
            "add a PromQL query, e.g. query = \"sum(rate(http_requests_total{version=\\\"{version}\\\"}[1m]))\" \
             ({service}, {version} and {stable_version} are filled in)",
        )),
        _ => Ok(()),
    }
}

/// `metric` only applies to source = "proxy". Checked on the `metric` value.
pub(crate) fn metric_allowed(source: MetricSource) -> Rule {
    if source != MetricSource::Proxy {
        return Err(Problem::new(
            format!("`metric` is only for source = \"proxy\", not \"{source}\""),
            "a Prometheus metric is defined by its `query`: remove `metric`, or set \
             source = \"proxy\"",
        ));
    }
    Ok(())
}

/// `query` only applies to source = "prometheus". Checked on the `query` value.
pub(crate) fn query_allowed(source: MetricSource) -> Rule {
    if source != MetricSource::Prometheus {
        return Err(Problem::new(
            format!("`query` is only for source = \"prometheus\", not \"{source}\""),
            "a proxy metric is chosen with `metric`, e.g. metric = \"error_rate\": remove \
             `query`, or set source = \"prometheus\"",
        ));
    }
    Ok(())
}

/// A Prometheus metric needs to know where Prometheus is. Checked on the `source` value.
pub(crate) fn prometheus_configured(source: MetricSource, configured: bool) -> Rule {
    if source == MetricSource::Prometheus && !configured {
        return Err(Problem::new(
            "source = \"prometheus\" needs the Prometheus server's address",
            "add prometheus = \"http://127.0.0.1:9090\" (its base URL) to [analysis]",
        ));
    }
    Ok(())
}

/// A PromQL query: not empty, and every `{word}` is a known placeholder (a bare word in
/// braces is never valid PromQL, so it can only be a misspelled placeholder).
pub(crate) fn query(query: &str) -> Rule {
    if query.trim().is_empty() {
        return Err(Problem::new(
            "the query must not be empty",
            "write a PromQL query, e.g. query = \"sum(rate(http_requests_total[1m]))\"",
        ));
    }
    for (open, _) in query.match_indices('{') {
        let after = &query[open + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let word = &after[..len];
        let bare = !word.is_empty() && after[len..].starts_with('}');
        if bare && !QUERY_PLACEHOLDERS.contains(&word) {
            let known: Vec<String> = QUERY_PLACEHOLDERS
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect();
            let hint = match crate::suggest::closest(word, QUERY_PLACEHOLDERS) {
                Some(close) => format!(
                    "did you mean {{{close}}}? placeholders: {}",
                    known.join(", ")
                ),
                None => format!("placeholders: {}", known.join(", ")),
            };
            return Err(Problem::new(
                format!("unknown placeholder {{{word}}} in the query"),
                hint,
            ));
        }
    }
    Ok(())
}

/// A `fail_if` or `pause_if` condition (`key` says which) for a metric that measures
/// `metric` (`None` for a Prometheus query). The grammar is `runway-analysis`'s, which
/// evaluates the conditions; a statistical condition compares per-request samples, so
/// it goes with `metric = "latency"` and nothing else does.
pub(crate) fn condition(key: &str, text: &str, metric: Option<ProxyMetric>) -> Rule {
    let parsed = Condition::parse(text).map_err(|err| {
        // "invalid condition "x": what; accepted forms: …" becomes message and hint.
        let prefix = format!("invalid condition {:?}: ", text.trim());
        let (what, forms) = match err.split_once("; accepted forms") {
            Some((what, forms)) => (what, format!("accepted forms{forms}")),
            None => (err.as_str(), format!("for example: {key} = \"> 0.05\"")),
        };
        let what = what.strip_prefix(&prefix).unwrap_or(what);
        Problem::new(
            format!("invalid condition {text:?} for `{key}`: {what}"),
            forms,
        )
    })?;
    let latency = metric == Some(ProxyMetric::Latency);
    if parsed.needs_samples() && !latency {
        let hint = match metric {
            None => "a statistical test compares the per-request latencies of the two \
                     releases, which runway's proxy records: use source = \"proxy\" and \
                     metric = \"latency\""
                .to_owned(),
            Some(m) => format!(
                "a statistical test compares per-request samples, and {m} is one number per \
                 interval: set metric = \"latency\", or compare {m} with a threshold such as \
                 {key} = \"> 2x stable\""
            ),
        };
        return Err(Problem::new(
            format!("the statistical condition {text:?} needs metric = \"latency\""),
            hint,
        ));
    }
    if latency && !parsed.needs_samples() {
        return Err(Problem::new(
            format!("metric = \"latency\" needs a statistical condition, not {text:?}"),
            format!(
                "\"latency\" is the per-request samples, compared with a test: write e.g. \
                 {key} = \"> stable (mann-whitney)\", or use metric = \"latency_p99\" for \
                 a threshold"
            ),
        ));
    }
    Ok(())
}

/// `confidence` and `min_effect` tune a statistical test, which only a metric of
/// per-request samples has. Checked on the option's value.
pub(crate) fn statistical_option(key: &str, metric: Option<ProxyMetric>) -> Rule {
    if metric != Some(ProxyMetric::Latency) {
        return Err(Problem::new(
            format!("`{key}` only applies to a statistical condition"),
            format!(
                "remove `{key}`, or use metric = \"latency\" with a statistical condition \
                 such as fail_if = \"> stable (mann-whitney)\""
            ),
        ));
    }
    Ok(())
}

/// `confidence` of a statistical test: strictly between 0.5 and 1.
pub(crate) fn confidence(value: f64) -> Rule {
    if !(value > 0.5 && value < 1.0) {
        return Err(Problem::new(
            format!("`confidence` must be between 0.5 and 1 (both excluded), found {value}"),
            "for example: confidence = 0.95",
        ));
    }
    Ok(())
}

/// `min_effect`: an effect size (|Cliff's delta|), 0 to 1.
pub(crate) fn min_effect(value: f64) -> Rule {
    if !(0.0..=1.0).contains(&value) {
        return Err(Problem::new(
            format!("`min_effect` must be between 0 and 1, found {value}"),
            "it is an effect size (|Cliff's delta|), e.g. min_effect = 0.2: a canary request is slower than a stable one 20 points more often than it is faster",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names() {
        for ok in ["web", "a", "0", "api-v2", "my_app.prod", &"a".repeat(63)] {
            assert_eq!(service_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Web",
            "-web",
            "_web",
            ".web",
            "my app",
            "wéb",
            &"a".repeat(64),
        ] {
            assert!(service_name(bad).is_err(), "{bad}");
        }
        let hint = service_name("My App").unwrap_err().hint.unwrap();
        assert!(hint.contains("name = \"my-app\""), "{hint}");
    }

    #[test]
    fn env_names() {
        for ok in ["APP_ENV", "_x", "a1", "PATH"] {
            assert_eq!(env_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "É"] {
            assert!(env_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn health_paths() {
        assert_eq!(health_path("/"), Ok(()));
        let hint = health_path("health").unwrap_err().hint.unwrap();
        assert_eq!(hint, "did you mean path = \"/health\"?");
        assert!(health_path("http://x/health").is_err());
    }

    #[test]
    fn rolling_needs_some_slack() {
        assert_eq!(rolling(1, 0), Ok(()));
        assert_eq!(rolling(0, 1), Ok(()));
        assert!(rolling(0, 0).is_err());
    }
}
