//! Per-release metrics and their Prometheus exposition.

mod common;

use std::collections::HashMap;

use common::{client, closed_port, get, release, settled, RunningProxy, TestBackend};
use http::StatusCode;
use runway_proxy::{render_prometheus, Backend, ReleaseRoute};

/// Sends the status mix used below to the current routes of `proxy`.
async fn send_mix(proxy: &RunningProxy) {
    let client = client();
    for (path, count, status) in [
        ("/status/200", 4, 200),
        ("/status/204", 1, 204),
        ("/status/302", 1, 302),
        ("/status/404", 3, 404),
        ("/status/500", 2, 500),
        ("/status/503", 1, 503),
    ] {
        for _ in 0..count {
            assert_eq!(get(&client, &proxy.url(path)).await.status.as_u16(), status);
        }
    }
}

async fn proxy_with_history(service: &str) -> (RunningProxy, TestBackend) {
    let a = TestBackend::start("a").await;
    let proxy = RunningProxy::start(service).await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    send_mix(&proxy).await;

    // Then a release whose only replica is gone: every request fails.
    proxy.proxy.set_routes(vec![ReleaseRoute {
        release: "v0-broken".to_owned(),
        weight: 1,
        backends: vec![Backend {
            id: "gone".to_owned(),
            addr: closed_port().await,
        }],
    }]);
    let client = client();
    for _ in 0..2 {
        let answer = get(&client, &proxy.url("/")).await;
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    }
    settled(&proxy.proxy).await;
    (proxy, a)
}

#[tokio::test]
async fn counts_per_class_and_failed_are_exact() {
    let (proxy, _a) = proxy_with_history("svc").await;
    let metrics = proxy.proxy.metrics();
    let names: Vec<_> = metrics.iter().map(|m| m.release.as_str()).collect();
    assert_eq!(
        names,
        ["v0-broken", "v1"],
        "sorted, and v1 kept after removal"
    );

    let broken = &metrics[0];
    assert_eq!(broken.requests, 2);
    assert_eq!(broken.failed, 2);
    assert_eq!(
        (
            broken.status_2xx,
            broken.status_3xx,
            broken.status_4xx,
            broken.status_5xx
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(broken.error_rate, 1.0);

    let v1 = &metrics[1];
    assert_eq!(v1.requests, 12);
    assert_eq!(
        (
            v1.status_2xx,
            v1.status_3xx,
            v1.status_4xx,
            v1.status_5xx,
            v1.failed
        ),
        (5, 1, 3, 3, 0)
    );
    assert_eq!(v1.in_flight, 0);
    assert!((v1.error_rate - 3.0 / 12.0).abs() < 1e-12);
    assert!(v1.latency_p50 > 0.0);
    assert!(v1.latency_p50 <= v1.latency_p95 && v1.latency_p95 <= v1.latency_p99);
    assert!(v1.latency_p99 < 10.0);
}

#[tokio::test]
async fn release_without_requests_reports_zeros() {
    let a = TestBackend::start("a").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    let metrics = proxy.proxy.metrics();
    assert_eq!(metrics.len(), 1);
    let m = &metrics[0];
    assert_eq!((m.requests, m.in_flight, m.error_rate), (0, 0, 0.0));
    assert_eq!(
        (m.latency_p50, m.latency_p95, m.latency_p99),
        (0.0, 0.0, 0.0)
    );
}

/// One parsed sample line: `name{labels} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').expect("`series value`");
    let value = match value {
        "+Inf" => f64::INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    let (name, labels) = match series.split_once('{') {
        None => (series, ""),
        Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
    };
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "bad metric name in {line:?}"
    );
    let mut parsed = HashMap::new();
    for pair in labels.split(',').filter(|p| !p.is_empty()) {
        let (key, quoted) = pair.split_once('=').expect("label=value");
        let unquoted = quoted
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("unquoted label in {line:?}"));
        parsed.insert(key.to_owned(), unquoted.to_owned());
    }
    Sample {
        name: name.to_owned(),
        labels: parsed,
        value,
    }
}

#[tokio::test]
async fn prometheus_text_parses_and_matches_the_metrics() {
    let (one, _a) = proxy_with_history("web").await;
    let (two, _b) = proxy_with_history("api").await;
    let text = render_prometheus(&[one.proxy.clone(), two.proxy.clone()]);

    let mut help = HashMap::<String, usize>::new();
    let mut kinds = HashMap::<String, String>::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            *help
                .entry(rest.split(' ').next().unwrap().to_owned())
                .or_default() += 1;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                kinds.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE of {name} twice"
            );
        } else {
            assert!(!line.is_empty() && !line.starts_with('#'), "{line:?}");
            samples.push(parse_sample(line));
        }
    }
    let expected = [
        ("runway_requests_total", "counter"),
        ("runway_request_duration_seconds", "histogram"),
        ("runway_requests_in_flight", "gauge"),
        ("runway_request_latency_quantile_seconds", "gauge"),
        ("runway_requests_refused_total", "counter"),
        ("runway_client_errors_total", "counter"),
    ];
    for (family, kind) in expected {
        assert_eq!(help.get(family), Some(&1), "HELP of {family}");
        assert_eq!(kinds.get(family).map(String::as_str), Some(kind));
    }
    assert_eq!(help.len(), expected.len());

    let find = |name: &str, service: &str, release: &str, extra: Option<(&str, &str)>| {
        let matching: Vec<&Sample> = samples
            .iter()
            .filter(|s| {
                s.name == name
                    && s.labels["service"] == service
                    && s.labels["release"] == release
                    && extra.is_none_or(|(k, v)| s.labels.get(k).map(String::as_str) == Some(v))
            })
            .collect();
        assert_eq!(matching.len(), 1, "{name} {service} {release} {extra:?}");
        matching[0].value
    };
    // Refusals (maintenance, read-only) carry no release label.
    for service in ["web", "api"] {
        for reason in ["maintenance", "read_only"] {
            let refused: Vec<&Sample> = samples
                .iter()
                .filter(|s| {
                    s.name == "runway_requests_refused_total"
                        && s.labels["service"] == service
                        && s.labels["reason"] == reason
                })
                .collect();
            assert_eq!(refused.len(), 1, "{service} {reason}");
            assert_eq!(refused[0].value, 0.0);
            assert!(!refused[0].labels.contains_key("release"));
        }
        // So do the client's own errors.
        for reason in ["bad_request_body", "client_aborted"] {
            let errors: Vec<&Sample> = samples
                .iter()
                .filter(|s| {
                    s.name == "runway_client_errors_total"
                        && s.labels["service"] == service
                        && s.labels["reason"] == reason
                })
                .collect();
            assert_eq!(errors.len(), 1, "{service} {reason}");
            assert_eq!(errors[0].value, 0.0);
            assert!(!errors[0].labels.contains_key("release"));
        }
    }
    for service in ["web", "api"] {
        let total = |class| {
            find(
                "runway_requests_total",
                service,
                "v1",
                Some(("class", class)),
            )
        };
        assert_eq!(
            [
                total("2xx"),
                total("3xx"),
                total("4xx"),
                total("5xx"),
                total("failed")
            ],
            [5.0, 1.0, 3.0, 3.0, 0.0]
        );
        let failed = Some(("class", "failed"));
        assert_eq!(
            find("runway_requests_total", service, "v0-broken", failed),
            2.0
        );
        assert_eq!(find("runway_requests_in_flight", service, "v1", None), 0.0);

        let count = find("runway_request_duration_seconds_count", service, "v1", None);
        assert_eq!(count, 12.0);
        let inf = Some(("le", "+Inf"));
        assert_eq!(
            find("runway_request_duration_seconds_bucket", service, "v1", inf),
            12.0
        );
        assert!(find("runway_request_duration_seconds_sum", service, "v1", None) > 0.0);
        // Buckets are cumulative.
        let mut buckets: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| {
                s.name == "runway_request_duration_seconds_bucket"
                    && s.labels["service"] == service
                    && s.labels["release"] == "v1"
            })
            .map(|s| {
                let le = &s.labels["le"];
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (bound, s.value)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.first().unwrap().0 <= 0.001 && buckets.len() >= 10);
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1));

        let metrics = if service == "web" { &one } else { &two }.proxy.metrics();
        let v1 = metrics.iter().find(|m| m.release == "v1").unwrap();
        for (quantile, value) in [
            ("0.5", v1.latency_p50),
            ("0.95", v1.latency_p95),
            ("0.99", v1.latency_p99),
        ] {
            let q = Some(("quantile", quantile));
            assert_eq!(
                find("runway_request_latency_quantile_seconds", service, "v1", q),
                value
            );
        }
    }
}

/// Issue 11: each reader has its own analysis window. A baseline capture taking its window
/// does not take the canary analysis's samples, a window sees only what happened while it was
/// open, and a release that appears while a window is open is in it.
#[tokio::test]
async fn each_reader_has_its_own_window() {
    let a = TestBackend::start("a").await;
    let proxy = RunningProxy::start("windows").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    let client = client();
    let count = |windows: Vec<runway_proxy::WindowSnapshot>, name: &str| {
        windows
            .iter()
            .find(|w| w.release == name)
            .map_or((0, 0, 0), |w| {
                (w.requests, w.errors, w.latencies.len() as u64)
            })
    };

    // Before any window: nothing is kept for windows.
    get(&client, &proxy.url("/status/200")).await;
    let analysis = proxy.proxy.open_window();
    send_mix(&proxy).await; // 12 requests, 3 of them 5xx
    let baseline = proxy.proxy.open_window();
    for _ in 0..5 {
        get(&client, &proxy.url("/status/200")).await;
    }
    settled(&proxy.proxy).await;

    // The baseline takes its window: 5 requests. The analysis still has all 17.
    assert_eq!(count(baseline.take(), "v1"), (5, 0, 5));
    assert_eq!(count(analysis.take(), "v1"), (17, 3, 17));
    // Taking starts the next interval of that window only.
    get(&client, &proxy.url("/status/500")).await;
    settled(&proxy.proxy).await;
    assert_eq!(count(analysis.take(), "v1"), (1, 1, 1));
    assert_eq!(count(baseline.take(), "v1"), (1, 1, 1));

    // A release routed while windows are open is counted in them.
    let b = TestBackend::start("b").await;
    proxy.proxy.set_routes(vec![release("v2", 1, &[&b])]);
    get(&client, &proxy.url("/status/200")).await;
    settled(&proxy.proxy).await;
    assert_eq!(count(analysis.take(), "v2"), (1, 0, 1));

    // A closed window is gone; the other goes on.
    drop(baseline);
    get(&client, &proxy.url("/status/200")).await;
    settled(&proxy.proxy).await;
    assert_eq!(count(analysis.take(), "v2"), (1, 0, 1));
}
