//! Retries: closed ports, replicas dying under load, replicas dropping
//! requests, and what is (not) retried.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::{
    bounded, client, closed_port, eventually, get, send, settled, RunningProxy, TestBackend,
};
use http::{Request, StatusCode};
use http_body_util::Full;
use runway_proxy::{Backend, ProxyConfig, ReleaseRoute};

fn route(name: &str, backends: Vec<Backend>) -> ReleaseRoute {
    ReleaseRoute {
        release: name.to_owned(),
        weight: 1,
        backends,
    }
}

fn post(url: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::post(url)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

#[tokio::test]
async fn connect_failures_are_retried_for_every_method() {
    let live = TestBackend::start("live").await;
    let dead = Backend {
        id: "dead".to_owned(),
        addr: closed_port().await,
    };
    let proxy = RunningProxy::start("svc").await;
    proxy
        .proxy
        .set_routes(vec![route("v1", vec![dead, live.backend()])]);

    let client = client();
    for _ in 0..500 {
        let answer = get(&client, &proxy.url("/")).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "live")
        );
    }
    // Not idempotent, but the request never reached the dead replica.
    for _ in 0..50 {
        let answer = send(&client, post(&proxy.url("/echo"), "payload")).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "payload")
        );
    }
    settled(&proxy.proxy).await;
    let metrics = &proxy.proxy.metrics()[0];
    assert_eq!(
        (metrics.requests, metrics.failed, metrics.status_2xx),
        (550, 0, 550)
    );
    assert_eq!(proxy.proxy.in_flight("dead"), 0);
}

#[tokio::test]
async fn retry_moves_to_another_release_when_its_own_is_exhausted() {
    let live = TestBackend::start("live").await;
    let dead = Backend {
        id: "dead".to_owned(),
        addr: closed_port().await,
    };
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![
        route("broken", vec![dead]),
        route("healthy", vec![live.backend()]),
    ]);
    let client = client();
    for _ in 0..100 {
        let answer = get(&client, &proxy.url("/")).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    // Served requests count for the release that served them.
    settled(&proxy.proxy).await;
    let metrics = proxy.proxy.metrics();
    assert_eq!(metrics[0].release, "broken");
    assert_eq!((metrics[0].requests, metrics[0].in_flight), (0, 0));
    assert_eq!((metrics[1].requests, metrics[1].failed), (100, 0));
}

#[tokio::test]
async fn all_backends_down_answers_502_counted_as_failed() {
    let proxy = RunningProxy::start_with(
        "svc",
        ProxyConfig {
            max_retries: 5,
            ..ProxyConfig::default()
        },
    )
    .await;
    proxy.proxy.set_routes(vec![route(
        "v1",
        vec![
            Backend {
                id: "d1".to_owned(),
                addr: closed_port().await,
            },
            Backend {
                id: "d2".to_owned(),
                addr: closed_port().await,
            },
        ],
    )]);
    let client = client();
    for _ in 0..3 {
        let answer = get(&client, &proxy.url("/")).await;
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
        assert!(answer.headers.contains_key("x-request-id"));
    }
    settled(&proxy.proxy).await;
    let metrics = &proxy.proxy.metrics()[0];
    assert_eq!(
        (metrics.requests, metrics.failed, metrics.status_5xx),
        (3, 3, 0)
    );
    assert_eq!(metrics.error_rate, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_killed_under_load_costs_no_get_request() {
    let doomed = Arc::new(TestBackend::start("doomed").await);
    let survivor = TestBackend::start("survivor").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![route(
        "v1",
        vec![doomed.backend(), survivor.backend()],
    )]);

    const TASKS: usize = 4;
    const PER_TASK: usize = 150;
    let client = client();
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (client, url) = (client.clone(), proxy.url("/"));
        let (doomed, done) = (Arc::clone(&doomed), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::with_capacity(PER_TASK);
            for i in 0..PER_TASK {
                if task == 0 && i == PER_TASK / 3 {
                    doomed.kill(); // while the other tasks keep going
                }
                statuses.push(get(&client, &url).await.status);
                done.fetch_add(1, Ordering::Relaxed);
            }
            statuses
        }));
    }
    for task in tasks {
        let statuses = bounded(task).await.unwrap();
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "{statuses:?}"
        );
    }
    assert_eq!(done.load(Ordering::Relaxed), TASKS * PER_TASK);
    settled(&proxy.proxy).await;
    let metrics = &proxy.proxy.metrics()[0];
    assert_eq!(metrics.requests as usize, TASKS * PER_TASK);
    assert_eq!(metrics.failed, 0);
    assert_eq!(proxy.proxy.in_flight("doomed"), 0);
}

#[tokio::test]
async fn replica_dying_with_requests_in_flight_costs_no_get_request() {
    let doomed = TestBackend::start("doomed").await;
    let survivor = TestBackend::start("survivor").await;
    survivor.gate.add_permits(1_000); // `/gate` answers at once there
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![route(
        "v1",
        vec![doomed.backend(), survivor.backend()],
    )]);

    // Requests routed to `doomed` hang on its closed gate until it dies.
    let client = client();
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) = (client.clone(), proxy.url("/gate"));
            tokio::spawn(async move { get(&client, &url).await })
        })
        .collect();
    eventually("requests stuck on the doomed replica", || {
        proxy.proxy.in_flight("doomed") >= 1
    })
    .await;
    doomed.kill();
    for request in requests {
        let answer = bounded(request).await.unwrap();
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "survivor")
        );
    }
    settled(&proxy.proxy).await;
    let metrics = &proxy.proxy.metrics()[0];
    assert_eq!((metrics.requests, metrics.failed), (20, 0));
    assert_eq!(proxy.proxy.in_flight("doomed"), 0);
}

#[tokio::test]
async fn dropped_requests_are_retried_only_when_idempotent() {
    let dropper = TestBackend::start_closing("dropper").await;
    let good = TestBackend::start("good").await;
    let proxy = RunningProxy::start("svc").await;
    proxy
        .proxy
        .set_routes(vec![route("v1", vec![dropper.backend(), good.backend()])]);
    let client = client();

    for method in ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"] {
        for _ in 0..20 {
            let req = Request::builder()
                .method(method)
                .uri(proxy.url("/"))
                .body(Full::default())
                .unwrap();
            let answer = send(&client, req).await;
            assert_eq!(answer.status, StatusCode::OK, "{method}");
            assert_eq!(answer.headers["x-backend"], "good");
        }
    }

    // POST may have been processed by the replica that dropped it: never
    // replayed. With two backends picked at random, some of 40 hit the dropper.
    let mut failed = 0;
    for _ in 0..40 {
        let answer = send(&client, post(&proxy.url("/echo"), "once")).await;
        match answer.status {
            StatusCode::OK => assert_eq!(answer.body, "once"),
            StatusCode::BAD_GATEWAY => failed += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(failed > 0, "no POST was routed to the dropping replica");
    settled(&proxy.proxy).await;
    let metrics = &proxy.proxy.metrics()[0];
    assert_eq!(metrics.failed, failed);
    assert_eq!(metrics.requests, 100 + 40);
}

#[tokio::test]
async fn streamed_large_bodies_go_through_once() {
    let a = TestBackend::start("a").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![route("v1", vec![a.backend()])]);
    let client = client();
    // Over the 1 MiB buffering limit: streamed, still delivered intact.
    let big = "x".repeat(3 * 1024 * 1024);
    let req = Request::post(proxy.url("/echo"))
        .body(Full::new(Bytes::from(big.clone())))
        .unwrap();
    let answer = send(&client, req).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body.len(), big.len());
}
