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

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;

use toml_edit::{ImDocument, Item, Key, TableLike, TomlError, Value};

use crate::duration::{parse_duration, Dur};
use crate::error::SpecError;
use crate::model::{
    AnalysisMetric, AnalysisSpec, BlueGreenSpec, CanarySpec, CanaryStep, ClusterTraffic,
    DockerSpec, HealthSpec, KubernetesSpec, MetricSource, Pause, ProxyMetric, ProxySpec,
    PullPolicy, RecreateSpec, RollingSpec, RunSpec, ServiceSpec, Spec, StrategySpec,
};
use crate::rules::{self, Problem};
use crate::suggest;

mod checks;
mod hooks;
mod incidents;
mod notify;
mod policy;

type Span = Range<usize>;

/// The sections of `runway.toml` and their keys, in documentation order. The keys of
/// `[strategy]` are those of all its kinds (each kind accepts only its own, see
/// [`STRATEGY_KINDS`]).
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
    (
        "strategy",
        &[
            "kind",
            "max_surge",
            "max_unavailable",
            "steps",
            "sticky",
            "preview_listen",
            "scale_down_delay",
            "analysis_for",
        ],
    ),
    (
        "analysis",
        &[
            "interval",
            "failure_limit",
            "min_requests",
            "inconclusive_limit",
            "max_intervals",
            "prometheus",
            "requests",
            "metrics",
        ],
    ),
    // `[[checks]]`: an array of tables, whose keys depend on each check's kind (see
    // `reader/checks.rs`); none is listed here, so that no other section's key is
    // said to belong in a check.
    ("checks", &[]),
    // `[hooks.backup]`, `[hooks.migrate]` and `[[hooks.run]]` (see `reader/hooks.rs`,
    // which knows their own keys).
    ("hooks", &["backup", "migrate", "run"]),
    ("maintenance", &["message", "retry_after", "allow"]),
    (
        "proxy",
        &[
            "header_timeout",
            "idle_timeout",
            "body_timeout",
            "send_timeout",
            "h2c_upgrade",
        ],
    ),
    // `[deploy]` and `[types.NAME]` (see `reader/policy.rs`, which knows their keys).
    ("deploy", &["default_type", "timezone", "windows", "freeze"]),
    ("types", &[]),
    // `[[notify]]`: an array of tables (see `reader/notify.rs`, which knows their keys).
    ("notify", &[]),
    ("incidents", &["rules", "default"]),
    // A service has exactly one of [run], [docker] and [kubernetes] (see `check_platform`).
    (
        "docker",
        &[
            "image",
            "port",
            "replicas",
            "env",
            "command",
            "network",
            "volumes",
            "user",
            "memory",
            "cpus",
            "labels",
            "pull",
            "stop_timeout",
            "drain_timeout",
        ],
    ),
    (
        "kubernetes",
        &[
            "namespace",
            "context",
            "image",
            "container",
            "port",
            "replicas",
            "env",
            "deployment",
            "traffic",
            "route",
            "service",
            "prometheus",
            "progress_deadline",
            "stop_timeout",
            "backup_claim",
        ],
    ),
];

/// The sections that say where a service's releases run, with what each means.
const PLATFORMS: &[(&str, &str)] = &[
    ("run", "local processes"),
    ("docker", "Docker containers"),
    ("kubernetes", "a Kubernetes Deployment"),
];

/// The strategy kinds and the keys each accepts in `[strategy]`.
const STRATEGY_KINDS: &[(&str, &[&str])] = &[
    ("rolling", &["kind", "max_surge", "max_unavailable"]),
    ("canary", &["kind", "steps", "sticky"]),
    (
        "blue-green",
        &["kind", "preview_listen", "scale_down_delay", "analysis_for"],
    ),
    // Its drain and stop timeouts are [run]'s, its page is [maintenance].
    ("recreate", &["kind"]),
];

/// The keys of one canary step.
const STEP_KEYS: &[&str] = &["weight", "pause"];

/// The keys of one `[[analysis.metrics]]` table.
const METRIC_KEYS: &[&str] = &[
    "name",
    "source",
    "metric",
    "query",
    "fail_if",
    "pause_if",
    "for",
    "confidence",
    "min_effect",
];

const METRIC_EXAMPLE: &str = "[[analysis.metrics]]\nname = \"error-rate\"\nsource = \"proxy\"\n\
                              metric = \"error_rate\"\nfail_if = \"> 0.05\"";

/// Parses and validates `runway.toml` text; `origin` names the file in errors. On failure,
/// every problem found (at least one): section by section in the order of the file,
/// a section's unknown keys first (a misspelt key explains a missing one).
///
/// Reading goes on after a problem wherever what follows does not depend on the bad value:
/// a broken rule is recorded and the value kept, an unknown key is recorded and skipped, a
/// section or array entry that cannot be read at all is recorded and left out. So one run
/// of `runway validate` shows what a user would otherwise fix one run at a time.
pub(crate) fn read(text: &str, origin: &str) -> Result<Spec, Vec<SpecError>> {
    let src = Source {
        text,
        origin,
        problems: RefCell::new(Vec::new()),
    };
    let doc = ImDocument::parse(text).map_err(|err| vec![src.syntax_error(&err)])?;
    let root = Section {
        src: &src,
        path: String::new(),
        label: "the top level".to_owned(),
        table: doc.as_table(),
        span: 0..0,
    };
    let spec = read_sections(&root);
    let problems = src.problems.into_inner();
    match spec {
        Some(spec) if problems.is_empty() => Ok(spec),
        // A part is missing only when its problem was recorded.
        _ => Err(problems),
    }
}

/// The sections of the document in order, each fully before the next, so the problems
/// come out in the order a reader meets them. `None` when a part could not be read (its
/// problem is recorded).
fn read_sections(root: &Section<'_>) -> Option<Spec> {
    let src = root.src;
    let names: Vec<&str> = SECTIONS.iter().map(|&(name, _)| name).collect();
    src.recover(root.check_keys(&names));

    // On Kubernetes, traffic arrives through the cluster's Service, not runway's proxy.
    let on_cluster = root
        .table
        .get("kubernetes")
        .is_some_and(|item| !item.is_none());
    let service = src.recover(
        root.section("service", "[service]")
            .and_then(|section| {
                section.ok_or_else(|| {
                    root.missing_section("service", "name = \"web\"\nlisten = \"127.0.0.1:8080\"")
                })
            })
            .and_then(|section| read_service(&section, on_cluster)),
    );
    let one_platform = src.recover(check_platform(root)).is_some();
    let docker_section = root.table.get("docker").is_some_and(|item| !item.is_none());
    let kubernetes_section = root
        .table
        .get("kubernetes")
        .is_some_and(|item| !item.is_none());
    let mut kubernetes = None;
    let (run, docker) = if kubernetes_section && one_platform {
        let name = service.as_ref().map_or("web", |s| s.name.as_str());
        match src.recover(
            root.section("kubernetes", "[kubernetes]")
                .and_then(|section| {
                    section.ok_or_else(|| root.missing_section("kubernetes", KUBERNETES_EXAMPLE))
                })
                .and_then(|section| read_kubernetes(&section, name)),
        ) {
            Some((run, k8s)) => {
                kubernetes = Some(k8s);
                (Some(run), None)
            }
            None => (None, None),
        }
    } else if docker_section && one_platform {
        match src.recover(root.section("docker", "[docker]").and_then(|section| {
            let section = section.ok_or_else(|| root.missing_section("docker", DOCKER_EXAMPLE))?;
            read_docker(&section)
        })) {
            Some((run, docker)) => (Some(run), Some(docker)),
            None => (None, None),
        }
    } else {
        (read_run_section(root, one_platform), None)
    };
    let health = src.recover(root.section("health", "[health]").and_then(|section| {
        section.map_or_else(|| Ok(HealthSpec::default()), |s| read_health(&s))
    }));
    let strategy = src.recover(root.section("strategy", "[strategy]").and_then(|section| {
        // Without a readable listen address the preview address cannot be compared with
        // it; any address does for reading the rest.
        let listen = service
            .as_ref()
            .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |s| s.listen);
        section.map_or_else(
            || Ok(StrategySpec::default()),
            |s| read_strategy(&s, listen),
        )
    }));
    let analysis = src.recover(root.section("analysis", "[analysis]").and_then(|section| {
        // On Kubernetes, `[kubernetes] prometheus` serves the analysis too.
        let cluster_prometheus = root
            .table
            .get("kubernetes")
            .and_then(|k| k.get("prometheus"))
            .and_then(|v| v.as_str());
        section
            .map(|s| read_analysis(&s, cluster_prometheus))
            .transpose()
    }));
    // When [analysis] could not be read (its problem is recorded), the checks still see the
    // address it gives, so that they are not told to add one.
    let raw_prometheus = root
        .table
        .get("analysis")
        .and_then(|a| a.get("prometheus"))
        .and_then(|v| v.as_str());
    let prometheus = match &analysis {
        Some(a) => a.as_ref().and_then(|a| a.prometheus.as_deref()),
        None => raw_prometheus,
    };
    let checks = src.recover(checks::read_checks(root, prometheus));
    let hooks = src.recover(hooks::read_hooks(root));
    let maintenance = src.recover(hooks::read_maintenance(root));
    let proxy = src.recover(read_proxy(root));
    let deploy = src.recover(policy::read_deploy(root));
    let types = src.recover(policy::read_types(
        root,
        service
            .as_ref()
            .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |s| s.listen),
        root.table
            .get("kubernetes")
            .and_then(|k| k.get("prometheus"))
            .and_then(|v| v.as_str()),
    ));
    if let (Some(deploy), Some(types)) = (&deploy, &types) {
        src.recover(policy::check_type_names(root, deploy, types));
    }
    let notify = src.recover(notify::read_notify(root));
    let incidents = src.recover(incidents::read_incidents(root));
    Some(Spec {
        service: service?,
        run: run?,
        docker,
        kubernetes,
        health: health?,
        strategy: strategy?,
        analysis: analysis?,
        checks: checks?,
        hooks: hooks?,
        maintenance: maintenance?,
        proxy: proxy?,
        deploy: deploy?,
        types: types?,
        notify: notify?,
        incidents: incidents?,
    })
}

/// `[proxy]`; the defaults when absent.
fn read_proxy(root: &Section<'_>) -> Result<ProxySpec, SpecError> {
    let Some(sec) = root.section("proxy", "[proxy]")? else {
        return Ok(ProxySpec::default());
    };
    sec.check_keys(keys_of("proxy"))?;
    let mut proxy = ProxySpec::default();
    for (key, example, value) in [
        ("header_timeout", "15s", &mut proxy.header_timeout),
        ("idle_timeout", "75s", &mut proxy.idle_timeout),
        ("body_timeout", "60s", &mut proxy.body_timeout),
        ("send_timeout", "60s", &mut proxy.send_timeout),
    ] {
        if let Some(d) = sec.duration(key, example)? {
            sec.src
                .check(&d.span, rules::positive(key, d.value, example))?;
            *value = d.value;
        }
    }
    let h2c = sec.get(
        "h2c_upgrade",
        "a boolean",
        "h2c_upgrade = true",
        Value::as_bool,
    )?;
    proxy.h2c_upgrade = h2c.is_some_and(|b| b.value);
    Ok(proxy)
}

/// A service runs on one platform: exactly one of [run], [docker] and [kubernetes].
fn check_platform(root: &Section<'_>) -> Result<(), SpecError> {
    let present: Vec<&str> = PLATFORMS
        .iter()
        .map(|&(name, _)| name)
        .filter(|name| root.table.get(name).is_some_and(|item| !item.is_none()))
        .collect();
    if let [first, second, ..] = present.as_slice() {
        let line = root.src.line_of(&root.key_span(first));
        return Err(root.src.error(
            &root.key_span(second),
            format!(
                "a service runs on one platform, and this file has both [{first}] (line {line}) \
                 and [{second}]"
            ),
            Some(format!("keep one of {}", platform_list())),
        ));
    }
    Ok(())
}

/// `[run] (local processes), [docker] (Docker containers) or [kubernetes] (...)`.
fn platform_list() -> String {
    let names: Vec<String> = PLATFORMS
        .iter()
        .map(|(name, what)| format!("[{name}] ({what})"))
        .collect();
    format!(
        "{} or {}",
        names[..names.len() - 1].join(", "),
        names[names.len() - 1]
    )
}

/// `[service]`; `on_cluster`: the service is a `[kubernetes]` one, whose traffic arrives
/// through the cluster, so it has no `listen`.
fn read_service(sec: &Section<'_>, on_cluster: bool) -> Result<ServiceSpec, SpecError> {
    const NAME: &str = "name = \"web\"";
    const LISTEN: &str = "listen = \"127.0.0.1:8080\"";
    sec.check_keys(keys_of("service"))?;

    let name = sec.required("name", NAME, sec.string("name", NAME)?)?;
    sec.src.check(&name.span, rules::service_name(name.value))?;

    let listen = sec.address("listen", LISTEN)?;
    let listen = match (on_cluster, listen) {
        (true, None) => ServiceSpec::NO_LISTEN,
        (true, Some(listen)) => {
            return Err(sec.src.error(
                &listen.span,
                "on Kubernetes the service's traffic arrives through the cluster's Service, \
                 not runway's proxy, so it has no listen address",
                Some("remove listen (the Service is [kubernetes] service)".into()),
            ))
        }
        (false, listen) => sec.required("listen", LISTEN, listen)?.value,
    };

    Ok(ServiceSpec {
        name: name.value.to_owned(),
        listen,
    })
}

/// `[run]`, required unless another platform's section is there instead (`one_platform`
/// false: that problem is recorded already).
fn read_run_section(root: &Section<'_>, one_platform: bool) -> Option<RunSpec> {
    let src = root.src;
    match root.section("run", "[run]") {
        // [docker] or [kubernetes] instead: that problem is recorded already.
        Ok(None) if !one_platform => None,
        section => src.recover(
            section
                .and_then(|section| {
                    section.ok_or_else(|| {
                        root.missing_section(
                            "run",
                            "command = [\"./server\", \"--port\", \"{port}\"]",
                        )
                    })
                })
                .and_then(|section| read_run(&section)),
        ),
    }
}

const DOCKER_EXAMPLE: &str = "image = \"registry.example.com/web:{version}\"\nport = 8000";

/// `[docker]`: the image and how its containers run; its replicas, env and timeouts are the
/// release's `run` (what every platform shares), its `command` empty.
fn read_docker(sec: &Section<'_>) -> Result<(RunSpec, DockerSpec), SpecError> {
    sec.check_keys(keys_of("docker"))?;
    let image = sec.required(
        "image",
        DOCKER_EXAMPLE,
        sec.string("image", "image = \"web:{version}\"")?,
    )?;
    sec.src.check(&image.span, rules::image(image.value))?;
    let port = sec.required(
        "port",
        "port = 8000",
        sec.whole("port", "port = 8000", u16::MAX)?,
    )?;
    sec.src
        .check(&port.span, rules::container_port(port.value))?;
    let replicas = read_replicas(sec)?;
    let env = read_section_env(sec)?;
    let command = match checks::strings(
        sec,
        "command",
        "command = [\"./server\", \"--port\", \"{port}\"]",
    )? {
        Some(words) => words.value.iter().map(|w| w.value.to_owned()).collect(),
        None => Vec::new(),
    };
    let volumes = match checks::strings(sec, "volumes", "volumes = [\"/srv/data:/data:ro\"]")? {
        Some(list) => {
            for volume in &list.value {
                sec.src.check(&volume.span, rules::volume(volume.value))?;
            }
            list.value.iter().map(|v| v.value.to_owned()).collect()
        }
        None => Vec::new(),
    };
    let memory = match sec.string("memory", "memory = \"512MiB\"")? {
        Some(text) => {
            let bytes = runway_checks::model::parse_bytes(text.value).map_err(|e| {
                sec.src.error(
                    &text.span,
                    e,
                    Some("for example: memory = \"512MiB\"".into()),
                )
            })?;
            Some(bytes)
        }
        None => None,
    };
    let cpus = match sec.fraction("cpus", "cpus = 1.5")? {
        Some(n) => {
            sec.src.check(&n.span, rules::cpus(n.value))?;
            Some(n.value)
        }
        None => None,
    };
    let labels = match sec.section("labels", "labels = { team = \"agents\" }")? {
        Some(table) => read_labels(&table)?,
        None => BTreeMap::new(),
    };
    let pull = match sec.string("pull", "pull = \"missing\"")? {
        Some(word) => PullPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == word.value)
            .ok_or_else(|| {
                sec.src.error(
                    &word.span,
                    format!("unknown pull policy `{}`", word.value),
                    Some("use \"missing\" (the default), \"always\" or \"never\"".into()),
                )
            })?,
        None => PullPolicy::default(),
    };
    let network = sec
        .string("network", "network = \"backend\"")?
        .map(|n| n.value.to_owned());
    let user = sec
        .string("user", "user = \"1000:1000\"")?
        .map(|u| u.value.to_owned());
    let run = RunSpec {
        command: Vec::new(),
        replicas,
        env,
        dir: None,
        stop_timeout: read_stop_timeout(sec)?,
        drain_timeout: read_drain_timeout(sec)?,
    };
    let docker = DockerSpec {
        image: image.value.to_owned(),
        port: port.value,
        command,
        network,
        volumes,
        user,
        memory,
        cpus,
        labels,
        pull,
        image_id: None,
        image_digest: None,
    };
    Ok((run, docker))
}

const KUBERNETES_EXAMPLE: &str =
    "namespace = \"production\"\nimage = \"registry.example.com/web:{version}\"";

/// `[kubernetes]`: where the Deployment is and what it runs; its replicas, env and stop
/// timeout are the release's `run` (what every platform shares), its `command` empty. The
/// names runway gives the cluster's objects default to the service's (`service_name`).
fn read_kubernetes(
    sec: &Section<'_>,
    service_name: &str,
) -> Result<(RunSpec, KubernetesSpec), SpecError> {
    sec.check_keys(keys_of("kubernetes"))?;
    let image = sec.required(
        "image",
        KUBERNETES_EXAMPLE,
        sec.string("image", "image = \"web:{version}\"")?,
    )?;
    sec.src.check(&image.span, rules::image(image.value))?;
    // A name of the cluster's: given, and checked where it is written; or the service's,
    // checked against the key that would replace it.
    let name = |key: &str, what: &str| -> Result<String, SpecError> {
        match sec.string(key, &format!("{key} = \"{service_name}\""))? {
            Some(given) => {
                sec.src
                    .check(&given.span, rules::k8s_name(what, given.value))?;
                Ok(given.value.to_owned())
            }
            None => {
                if let Err(problem) = rules::k8s_name(what, service_name) {
                    return Err(sec.src.error(
                        &sec.span.clone(),
                        format!(
                            "the {what} is named after the service by default, and {}",
                            problem.message
                        ),
                        problem.hint,
                    ));
                }
                Ok(service_name.to_owned())
            }
        }
    };
    let namespace = match sec.string("namespace", "namespace = \"production\"")? {
        Some(ns) => {
            sec.src
                .check(&ns.span, rules::k8s_name("namespace", ns.value))?;
            ns.value.to_owned()
        }
        None => KubernetesSpec::DEFAULT_NAMESPACE.to_owned(),
    };
    let container = name("container", "container")?;
    let deployment = name("deployment", "deployment")?;
    let service = name("service", "service")?;
    let port = match sec.whole("port", "port = 8000", u16::MAX)? {
        Some(port) => {
            sec.src
                .check(&port.span, rules::container_port(port.value))?;
            Some(port.value)
        }
        None => None,
    };
    let traffic = match sec.string("traffic", "traffic = \"replica-ratio\"")? {
        Some(word) => ClusterTraffic::ALL
            .into_iter()
            .find(|t| t.as_str() == word.value)
            .ok_or_else(|| {
                sec.src.error(
                    &word.span,
                    format!("unknown traffic mode `{}`", word.value),
                    Some(
                        "use \"replica-ratio\" (the default), \"gateway-api\" or \"service\""
                            .into(),
                    ),
                )
            })?,
        None => ClusterTraffic::default(),
    };
    let route = match sec.string("route", "route = \"web\"")? {
        Some(route) => {
            sec.src
                .check(&route.span, rules::k8s_name("route", route.value))?;
            Some(route.value.to_owned())
        }
        None => None,
    };
    if let Err(problem) = rules::gateway_route(traffic, route.as_deref()) {
        let at = sec
            .table
            .get("traffic")
            .map_or_else(|| sec.span.clone(), |item| sec.value_span("traffic", item));
        return Err(sec.src.error(&at, problem.message, problem.hint));
    }
    let prometheus = match sec.string("prometheus", "prometheus = \"http://prometheus:9090\"")? {
        Some(url) => {
            sec.src.check(&url.span, rules::prometheus_url(url.value))?;
            Some(url.value.to_owned())
        }
        None => None,
    };
    let progress_deadline = match sec.duration("progress_deadline", "600s")? {
        Some(d) => {
            sec.src.check(
                &d.span,
                rules::positive("progress_deadline", d.value, "600s"),
            )?;
            d.value
        }
        None => KubernetesSpec::DEFAULT_PROGRESS_DEADLINE,
    };
    let backup_claim = match sec.string("backup_claim", "backup_claim = \"web-backups\"")? {
        Some(claim) => {
            sec.src
                .check(&claim.span, rules::k8s_name("backup_claim", claim.value))?;
            Some(claim.value.to_owned())
        }
        None => None,
    };
    let env = read_section_env(sec)?;
    if let Some(table) = sec.section("env", "env = { APP_ENV = \"production\" }")? {
        for (key, item) in table.table.iter() {
            if let Some(value) = item.as_str() {
                table.src.check(
                    &table.value_span(key, item),
                    rules::cluster_env_value(value),
                )?;
            }
        }
    }
    let run = RunSpec {
        command: Vec::new(),
        replicas: read_replicas(sec)?,
        env,
        dir: None,
        stop_timeout: read_stop_timeout(sec)?,
        drain_timeout: RunSpec::DEFAULT_DRAIN_TIMEOUT,
    };
    let kubernetes = KubernetesSpec {
        namespace,
        context: sec
            .string("context", "context = \"prod\"")?
            .map(|c| c.value.to_owned()),
        image: image.value.to_owned(),
        container,
        port,
        deployment,
        traffic,
        route,
        service,
        prometheus,
        progress_deadline,
        backup_claim,
    };
    Ok((run, kubernetes))
}

/// `[docker] labels`: string values; the `runway.` prefix is runway's own.
fn read_labels(table: &Section<'_>) -> Result<BTreeMap<String, String>, SpecError> {
    let mut labels = BTreeMap::new();
    for (name, item) in table.table.iter() {
        if item.is_none() {
            continue;
        }
        table.src.check(&table.key_span(name), rules::label(name))?;
        let Some(value) = item.as_str() else {
            return Err(table.src.error(
                &table.value_span(name, item),
                format!("label {name} must be a string, found {}", describe(item)),
                Some(format!("for example: {name} = \"agents\"")),
            ));
        };
        labels.insert(name.to_owned(), value.to_owned());
    }
    Ok(labels)
}

/// `replicas` of [run] or [docker]: at least 1 (default 1).
fn read_replicas(sec: &Section<'_>) -> Result<u32, SpecError> {
    Ok(match sec.count("replicas", "replicas = 3")? {
        Some(n) => {
            sec.src.check(&n.span, rules::replicas(n.value))?;
            n.value
        }
        None => RunSpec::DEFAULT_REPLICAS,
    })
}

/// `env` of [run] or [docker].
fn read_section_env(sec: &Section<'_>) -> Result<BTreeMap<String, String>, SpecError> {
    match sec.section("env", "env = { APP_ENV = \"production\" }")? {
        Some(table) => read_env(&table),
        None => Ok(BTreeMap::new()),
    }
}

/// `stop_timeout` of [run] or [docker] (default 10s).
fn read_stop_timeout(sec: &Section<'_>) -> Result<Dur, SpecError> {
    Ok(sec
        .duration("stop_timeout", "10s")?
        .map_or(RunSpec::DEFAULT_STOP_TIMEOUT, |d| d.value))
}

/// `drain_timeout` of [run] or [docker] (default 30s).
fn read_drain_timeout(sec: &Section<'_>) -> Result<Dur, SpecError> {
    Ok(sec
        .duration("drain_timeout", "30s")?
        .map_or(RunSpec::DEFAULT_DRAIN_TIMEOUT, |d| d.value))
}

fn read_run(sec: &Section<'_>) -> Result<RunSpec, SpecError> {
    sec.check_keys(keys_of("run"))?;
    let command = read_command(sec)?;

    let replicas = read_replicas(sec)?;

    let env = read_section_env(sec)?;

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
        stop_timeout: read_stop_timeout(sec)?,
        drain_timeout: read_drain_timeout(sec)?,
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
        .require(&array.span, rules::command_not_empty(argv.len()))?;
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
                let rule = if key == "interval" {
                    rules::interval(key, d.value, example)
                } else {
                    rules::positive(key, d.value, example)
                };
                sec.src.check(&d.span, rule)?;
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
/// and lose them). `listen` is the service's address, which a blue-green preview
/// address must not repeat.
fn read_strategy(sec: &Section<'_>, listen: SocketAddr) -> Result<StrategySpec, SpecError> {
    const KIND: &str = "kind = \"rolling\"";
    let kind = sec.required("kind", KIND, sec.string("kind", KIND)?)?;
    if let Some(&(_, keys)) = STRATEGY_KINDS.iter().find(|&&(k, _)| k == kind.value) {
        check_strategy_keys(sec, kind.value, keys)?;
    }
    match kind.value {
        "rolling" => read_rolling(sec).map(StrategySpec::Rolling),
        "canary" => read_canary(sec).map(StrategySpec::Canary),
        "blue-green" => read_blue_green(sec, listen).map(StrategySpec::BlueGreen),
        "recreate" => Ok(StrategySpec::Recreate(RecreateSpec {})),
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

/// Rejects keys that `kind` does not accept; a key of another kind says so.
fn check_strategy_keys(sec: &Section<'_>, kind: &str, allowed: &[&str]) -> Result<(), SpecError> {
    let misplaced = sec.table.iter().find_map(|(key, item)| {
        if item.is_none() || allowed.contains(&key) {
            return None;
        }
        STRATEGY_KINDS
            .iter()
            .find(|&&(_, keys)| keys.contains(&key))
            .map(|&(owner, _)| (key, owner))
    });
    if let Some((key, owner)) = misplaced {
        return Err(sec.src.error(
            &sec.key_span(key),
            format!("unknown key `{key}` in [strategy] for kind = \"{kind}\""),
            Some(format!(
                "`{key}` is a setting of kind = \"{owner}\"; valid keys for kind = \"{kind}\": {}",
                allowed.join(", ")
            )),
        ));
    }
    sec.check_keys(allowed)
}

fn read_rolling(sec: &Section<'_>) -> Result<RollingSpec, SpecError> {
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

fn read_canary(sec: &Section<'_>) -> Result<CanarySpec, SpecError> {
    let steps = sec.tables("steps", "step", rules::STEPS_EXAMPLE)?;
    let (span, tables) = sec
        .required("steps", rules::STEPS_EXAMPLE, steps)
        .map(|at| (at.span, at.value))?;
    sec.src
        .require(&span, rules::steps_not_empty(tables.len()))?;

    let mut steps = Vec::with_capacity(tables.len());
    let mut last: Option<At<u32>> = None;
    for step in &tables {
        step.check_keys(STEP_KEYS)?;
        let weight = step.count("weight", "weight = 10")?;
        let weight = step.required("weight", "weight = 10", weight)?;
        let previous = last.as_ref().map(|w| w.value);
        step.src
            .check(&weight.span, rules::step_weight(weight.value, previous))?;
        steps.push(CanaryStep {
            weight: weight.value,
            pause: read_pause(step)?,
        });
        last = Some(weight);
    }
    if let Some(last) = last {
        sec.src
            .check(&last.span, rules::last_step_weight(last.value))?;
    }

    let sticky = sec.get("sticky", "a boolean", "sticky = true", Value::as_bool)?;
    Ok(CanarySpec {
        steps,
        sticky: sticky.is_some_and(|b| b.value),
    })
}

/// `pause`: a duration, `"manual"`, or nothing.
fn read_pause(step: &Section<'_>) -> Result<Pause, SpecError> {
    let Some((item, span)) = step.entry("pause") else {
        return Ok(Pause::None);
    };
    let Some(text) = item.as_str() else {
        let (message, hint) = match item {
            Item::Value(Value::Integer(n)) => (
                "`pause` needs a unit".to_owned(),
                format!(
                    "write a quoted duration, e.g. pause = \"{}s\" (units: ms, s, m, h), \
                     or \"manual\" to wait for `runway promote`",
                    n.value()
                ),
            ),
            _ => (
                format!(
                    "`pause` must be a duration string or \"manual\", found {}",
                    describe(item)
                ),
                rules::pause_hint(),
            ),
        };
        return Err(step.src.error(&span, message, Some(hint)));
    };
    if text == Pause::MANUAL {
        return Ok(Pause::Manual);
    }
    match parse_duration(text) {
        Ok(d) => {
            step.src.check(&span, rules::pause(Dur(d)))?;
            Ok(Pause::For(Dur(d)))
        }
        Err(why) => {
            let word = text.starts_with(|c: char| c.is_alphabetic());
            let message = if word {
                format!("invalid pause {text:?}: expected a duration or \"manual\"")
            } else {
                format!("invalid pause {text:?}: {why}")
            };
            let hint = match suggest::closest(text, &[Pause::MANUAL]).filter(|_| word) {
                Some(close) => format!("did you mean {close:?}? {}", rules::pause_hint()),
                None => rules::pause_hint(),
            };
            Err(step.src.error(&span, message, Some(hint)))
        }
    }
}

fn read_blue_green(sec: &Section<'_>, listen: SocketAddr) -> Result<BlueGreenSpec, SpecError> {
    const PREVIEW: &str = "preview_listen = \"127.0.0.1:8081\"";
    let preview_listen = match sec.address("preview_listen", PREVIEW)? {
        Some(addr) => {
            sec.src
                .check(&addr.span, rules::preview_listen(addr.value, listen))?;
            Some(addr.value)
        }
        None => None,
    };
    let scale_down_delay = sec
        .duration("scale_down_delay", "30s")?
        .map_or(BlueGreenSpec::DEFAULT_SCALE_DOWN_DELAY, |d| d.value);
    let analysis_for = match sec.duration("analysis_for", "5m")? {
        Some(d) => {
            sec.src
                .check(&d.span, rules::positive("analysis_for", d.value, "5m"))?;
            Some(d.value)
        }
        None => None,
    };
    Ok(BlueGreenSpec {
        preview_listen,
        scale_down_delay,
        analysis_for,
    })
}

/// `[analysis]`; `cluster_prometheus`: `[kubernetes] prometheus`, the address when
/// `[analysis]` gives none.
fn read_analysis(
    sec: &Section<'_>,
    cluster_prometheus: Option<&str>,
) -> Result<AnalysisSpec, SpecError> {
    sec.check_keys(keys_of("analysis"))?;
    let interval = match sec.duration("interval", "10s")? {
        Some(d) => {
            sec.src
                .check(&d.span, rules::interval("interval", d.value, "10s"))?;
            d.value
        }
        None => AnalysisSpec::DEFAULT_INTERVAL,
    };
    let limit = |key: &str, default: u32| -> Result<u32, SpecError> {
        match sec.count(key, &format!("{key} = {default}"))? {
            Some(n) => {
                sec.src
                    .check(&n.span, rules::at_least_one(key, n.value, default))?;
                Ok(n.value)
            }
            None => Ok(default),
        }
    };
    let failure_limit = limit("failure_limit", AnalysisSpec::DEFAULT_FAILURE_LIMIT)?;
    let min_requests = sec
        .count_u64("min_requests", "min_requests = 50")?
        .map_or(AnalysisSpec::DEFAULT_MIN_REQUESTS, |n| n.value);
    let inconclusive_limit = limit(
        "inconclusive_limit",
        AnalysisSpec::DEFAULT_INCONCLUSIVE_LIMIT,
    )?;
    let max_intervals = limit("max_intervals", AnalysisSpec::DEFAULT_MAX_INTERVALS)?;
    let prometheus = match sec.string("prometheus", "prometheus = \"http://127.0.0.1:9090\"")? {
        Some(url) => {
            sec.src.check(&url.span, rules::prometheus_url(url.value))?;
            Some(url.value.to_owned())
        }
        None => cluster_prometheus.map(str::to_owned),
    };
    let requests = sec
        .string(
            "requests",
            "requests = 'sum(increase(http_requests_total{version=\"{version}\"}[10s]))'",
        )?
        .map(|q| q.value.to_owned());

    let mut metrics: Vec<AnalysisMetric> = Vec::new();
    let mut names: Vec<Span> = Vec::new();
    if let Some(tables) = sec.tables("metrics", "metric", METRIC_EXAMPLE)? {
        for mut table in tables.value {
            // Name the table by its metric's name when it has one.
            if let Some(name) = table.table.get("name").and_then(Item::as_str) {
                if !name.trim().is_empty() {
                    table.label = format!("metric {name:?} of [analysis]");
                }
            }
            let earlier = Earlier {
                metrics: &metrics,
                name_spans: &names,
            };
            let read = read_metric(&table, prometheus.is_some(), earlier);
            if let Some((metric, name_span)) = sec.src.recover(read) {
                metrics.push(metric);
                names.push(name_span);
            }
        }
    }

    Ok(AnalysisSpec {
        interval,
        failure_limit,
        min_requests,
        inconclusive_limit,
        max_intervals,
        prometheus,
        requests,
        metrics,
    })
}

/// The metrics read before the current one, and the spans of their names.
struct Earlier<'a> {
    metrics: &'a [AnalysisMetric],
    name_spans: &'a [Span],
}

/// One `[[analysis.metrics]]` table, and the span of its name (names are unique among
/// `earlier` ones).
fn read_metric(
    sec: &Section<'_>,
    prometheus_configured: bool,
    earlier: Earlier<'_>,
) -> Result<(AnalysisMetric, Span), SpecError> {
    sec.check_keys(METRIC_KEYS)?;
    const NAME: &str = "name = \"error-rate\"";
    let name = sec.required("name", NAME, sec.string("name", NAME)?)?;
    sec.src.check(&name.span, rules::metric_name(name.value))?;
    if let Some(i) = earlier.metrics.iter().position(|m| m.name == name.value) {
        let line = sec.src.line_of(&earlier.name_spans[i]);
        sec.src.check(
            &name.span,
            rules::metric_name_unique(name.value, &format!("on line {line}")),
        )?;
    }

    const SOURCE: &str = "source = \"proxy\"";
    let source_text = sec.required("source", SOURCE, sec.string("source", SOURCE)?)?;
    let source = source_text.value.parse::<MetricSource>().map_err(|()| {
        let names: Vec<&str> = MetricSource::ALL.iter().map(|s| s.as_str()).collect();
        unknown_word(
            sec,
            &source_text,
            "metric source",
            &names,
            rules::sources_hint(),
        )
    })?;
    sec.src.check(
        &source_text.span,
        rules::prometheus_configured(source, prometheus_configured),
    )?;

    let metric = match sec.string("metric", "metric = \"error_rate\"")? {
        Some(text) => {
            sec.src.check(&text.span, rules::metric_allowed(source))?;
            let names: Vec<&str> = ProxyMetric::ALL.iter().map(|m| m.as_str()).collect();
            let metric = text.value.parse::<ProxyMetric>().map_err(|()| {
                unknown_word(
                    sec,
                    &text,
                    "proxy metric",
                    &names,
                    rules::proxy_metrics_hint(),
                )
            })?;
            Some(At {
                value: metric,
                span: text.span,
            })
        }
        None => None,
    };
    let query = match sec.string("query", "query = \"sum(rate(http_requests_total[1m]))\"")? {
        Some(text) => {
            sec.src.check(&text.span, rules::query_allowed(source))?;
            sec.src.check(&text.span, rules::query(text.value))?;
            Some(text.value.to_owned())
        }
        None => None,
    };
    sec.src.check(
        &source_text.span,
        rules::source_needs(source, metric.is_some(), query.is_some()),
    )?;
    let metric = metric.map(|m| m.value);

    const FAIL_IF: &str = "fail_if = \"> 0.05\"";
    let fail_if = sec.required("fail_if", FAIL_IF, sec.string("fail_if", FAIL_IF)?)?;
    sec.src.check(
        &fail_if.span,
        rules::condition("fail_if", fail_if.value, metric),
    )?;
    let pause_if = match sec.string("pause_if", "pause_if = \"> 0.01\"")? {
        Some(text) => {
            sec.src
                .check(&text.span, rules::condition("pause_if", text.value, metric))?;
            Some(text.value.to_owned())
        }
        None => None,
    };

    let for_ = match sec.duration("for", "30s")? {
        Some(d) => {
            sec.src
                .check(&d.span, rules::positive("for", d.value, "30s"))?;
            Some(d.value)
        }
        None => None,
    };
    let option = |key: &str, example: &str, range: fn(f64) -> Result<(), Problem>| match sec
        .fraction(key, example)?
    {
        Some(x) => {
            sec.src
                .check(&x.span, rules::statistical_option(key, metric))?;
            sec.src.check(&x.span, range(x.value))?;
            Ok(Some(x.value))
        }
        None => Ok(None),
    };
    let confidence = option("confidence", "confidence = 0.95", rules::confidence)?;
    let min_effect = option("min_effect", "min_effect = 0.2", rules::min_effect)?;

    let metric = AnalysisMetric {
        name: name.value.to_owned(),
        source,
        metric,
        query,
        fail_if: fail_if.value.to_owned(),
        pause_if,
        for_,
        confidence,
        min_effect,
    };
    Ok((metric, name.span))
}

/// An error for a word that is not one of `valid` (`what` names the kind of word).
fn unknown_word(
    sec: &Section<'_>,
    text: &At<&str>,
    what: &str,
    valid: &[&str],
    list: String,
) -> SpecError {
    let hint = match suggest::closest(text.value, valid) {
        Some(close) => format!("did you mean \"{close}\"? {list}"),
        None => list,
    };
    sec.src.error(
        &text.span,
        format!("unknown {what} {:?}", text.value),
        Some(hint),
    )
}

fn keys_of(section: &str) -> &'static [&'static str] {
    SECTIONS
        .iter()
        .find(|&&(name, _)| name == section)
        .map_or(&[], |&(_, keys)| keys)
}

/// The sections (other than `current`) that have a key called `key`, as
/// `[health] or [analysis]`, if any.
fn home_of(key: &str, current: &str) -> Option<String> {
    let homes: Vec<String> = SECTIONS
        .iter()
        .filter(|&&(name, keys)| name != current && keys.contains(&key))
        .map(|&(name, _)| format!("[{name}]"))
        .collect();
    (!homes.is_empty()).then(|| homes.join(" or "))
}

/// The text being read, for making located errors, and the problems found so far.
struct Source<'a> {
    text: &'a str,
    origin: &'a str,
    problems: RefCell<Vec<SpecError>>,
}

impl Source<'_> {
    fn error(&self, span: &Span, message: impl Into<String>, hint: Option<String>) -> SpecError {
        SpecError::at(self.origin, self.text, span.clone(), message, hint)
    }

    /// Records a failed rule as a problem at `span` and lets reading go on: the value is
    /// kept, as nothing read later depends on the rule (see [`Source::require`] for the
    /// rules that something does depend on). Returns a `Result` so that a rule can be
    /// made fatal by switching to `require` without touching the call.
    fn check(&self, span: &Span, rule: Result<(), Problem>) -> Result<(), SpecError> {
        if let Err(p) = rule {
            self.record(self.error(span, p.message, p.hint));
        }
        Ok(())
    }

    /// A failed rule as an error at `span` that stops reading the current part (the code
    /// after it relies on the rule, e.g. a command having a first word).
    fn require(&self, span: &Span, rule: Result<(), Problem>) -> Result<(), SpecError> {
        rule.map_err(|p| self.error(span, p.message, p.hint))
    }

    /// Records a problem; reading goes on.
    fn record(&self, problem: SpecError) {
        self.problems.borrow_mut().push(problem);
    }

    /// How many problems have been recorded so far.
    fn problem_count(&self) -> usize {
        self.problems.borrow().len()
    }

    /// The value of a part that was read, or `None` with its problem recorded.
    fn recover<T>(&self, part: Result<T, SpecError>) -> Option<T> {
        part.map_err(|problem| self.record(problem)).ok()
    }

    /// The 1-based line where `span` starts.
    fn line_of(&self, span: &Span) -> usize {
        let start = span.start.min(self.text.len());
        self.text.as_bytes()[..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
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
    /// Dotted path of the table (`run`, `run.env`, `strategy.steps` for a step); empty
    /// for the root.
    path: String,
    /// How the table is named in messages: `[run]`, `step 2 of [strategy]`.
    label: String,
    table: &'a dyn TableLike,
    /// Where to point for errors about the table as a whole (e.g. a missing key).
    span: Span,
}

impl<'a> Section<'a> {
    /// How the table is named in messages.
    fn title(&self) -> &str {
        &self.label
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
    /// Records every key of this table that is not `allowed`; reading goes on without
    /// them.
    fn check_keys(&self, allowed: &[&str]) -> Result<(), SpecError> {
        for (key, item) in self.table.iter() {
            if !item.is_none() && !allowed.contains(&key) {
                self.src.record(self.unknown_key(key, item, allowed));
            }
        }
        Ok(())
    }

    fn unknown_key(&self, key: &str, item: &Item, allowed: &[&str]) -> SpecError {
        let span = self.key_span(key);
        if self.path.is_empty() {
            let sections: Vec<String> = allowed.iter().map(|s| section_header(s)).collect();
            let valid = format!("valid sections: {}", sections.join(", "));
            if let Some(home) = home_of(key, "").filter(|_| !item.is_table_like()) {
                return self.src.error(
                    &span,
                    format!("unknown key `{key}` at the top level"),
                    Some(format!(
                        "`{key}` belongs in {home}: move it below the {home} line"
                    )),
                );
            }
            // `[migrate]` for `[hooks.migrate]` is an exact name in the wrong place,
            // likelier than a typo of some section's name.
            let close = hooks::header_of(key)
                .filter(|_| item.is_table_like())
                .map(str::to_owned)
                .or_else(|| suggest::closest(key, allowed).map(section_header));
            let hint = match close {
                Some(close) => format!("did you mean {close}? {valid}"),
                None => valid,
            };
            return self
                .src
                .error(&span, format!("unknown section [{key}]"), Some(hint));
        }

        let valid = format!("valid keys: {}", allowed.join(", "));
        let hint = if let Some(close) = suggest::closest(key, allowed) {
            format!("did you mean `{close}`? {valid}")
        } else if let Some(home) = home_of(key, &self.path).filter(|_| !self.path.contains('.')) {
            format!("`{key}` belongs in {home}; {valid}")
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
        self.whole(key, example, u32::MAX)
    }

    /// A non-negative integer that fits a `u64`.
    fn count_u64(&self, key: &str, example: &str) -> Result<Option<At<u64>>, SpecError> {
        self.whole(key, example, u64::MAX)
    }

    /// A non-negative integer that fits a `T`, whose largest value is `max`.
    fn whole<T: TryFrom<i64> + std::fmt::Display>(
        &self,
        key: &str,
        example: &str,
        max: T,
    ) -> Result<Option<At<T>>, SpecError> {
        let Some(n) = self.get(key, "a whole number", example, Value::as_integer)? else {
            return Ok(None);
        };
        match T::try_from(n.value) {
            Ok(value) => Ok(Some(At {
                value,
                span: n.span,
            })),
            Err(_) => {
                let message = if n.value < 0 {
                    format!("`{key}` cannot be negative")
                } else {
                    format!("`{key}` is too large (the maximum is {max})")
                };
                Err(self
                    .src
                    .error(&n.span, message, Some(format!("for example: {example}"))))
            }
        }
    }

    /// A number, written with or without a fraction (`0.95`, `1`).
    fn fraction(&self, key: &str, example: &str) -> Result<Option<At<f64>>, SpecError> {
        self.get(key, "a number", example, |v| match v {
            Value::Float(x) => Some(*x.value()),
            // Whole numbers this small convert exactly.
            Value::Integer(n) => Some(*n.value() as f64),
            _ => None,
        })
    }

    /// An `ip:port` string; `example` is a whole `key = value` line.
    fn address(&self, key: &str, example: &str) -> Result<Option<At<SocketAddr>>, SpecError> {
        let Some(text) = self.string(key, example)? else {
            return Ok(None);
        };
        match text.value.parse::<SocketAddr>() {
            Ok(value) => Ok(Some(At {
                value,
                span: text.span,
            })),
            Err(_) => Err(self.src.error(
                &text.span,
                format!("invalid {key} address {:?}", text.value),
                Some(rules::listen_hint(key, text.value)),
            )),
        }
    }

    /// The array of tables under `key` (`steps = [{ … }, { … }]` or `[[key]]` tables),
    /// if present, each table labelled `<item> N of <this table>`, with the span of the
    /// whole array.
    fn tables(
        &self,
        key: &str,
        item: &str,
        example: &str,
    ) -> Result<Option<At<Vec<Section<'a>>>>, SpecError> {
        let Some((found, span)) = self.entry(key) else {
            return Ok(None);
        };
        let path = if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        };
        let element = |i: usize, table: &'a dyn TableLike, at: Span| Section {
            src: self.src,
            path: path.clone(),
            label: format!("{item} {} of {}", i + 1, self.title()),
            table,
            span: header_span(self.src.text, at),
        };
        let tables = match found {
            Item::ArrayOfTables(array) => array
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let at = t.span().unwrap_or_else(|| span.clone());
                    element(i, t as &dyn TableLike, at)
                })
                .collect(),
            Item::Value(Value::Array(array)) => {
                let mut tables = Vec::with_capacity(array.len());
                for (i, value) in array.iter().enumerate() {
                    let at = value.span().unwrap_or_else(|| span.clone());
                    let Some(table) = value.as_inline_table() else {
                        return Err(self.src.error(
                            &at,
                            format!(
                                "every element of `{key}` must be a table, found {}",
                                describe_value(value)
                            ),
                            Some(format!("for example: {example}")),
                        ));
                    };
                    tables.push(element(i, table as &dyn TableLike, at));
                }
                tables
            }
            other => {
                return Err(self.src.error(
                    &span,
                    format!(
                        "`{key}` must be an array of tables, found {}",
                        describe(other)
                    ),
                    Some(format!("for example: {example}")),
                ))
            }
        };
        Ok(Some(At {
            value: tables,
            span,
        }))
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
            label: format!("[{path}]"),
            path,
            table,
            span: header_span(self.src.text, span),
        }))
    }
}

/// How a top-level section is written: `[service]`, `[[checks]]`.
fn section_header(name: &str) -> String {
    if name == "checks" {
        format!("[[{name}]]")
    } else {
        format!("[{name}]")
    }
}

/// A table's span runs from its `[header]` to its last value; errors about the table
/// as a whole underline just the header (or the first character of an inline table).
fn header_span(text: &str, span: Span) -> Span {
    let rest = text.get(span.start..).unwrap_or("");
    let len = if rest.starts_with("[[") {
        rest.find("]]").map_or(1, |end| end + 2)
    } else if rest.starts_with('[') {
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
