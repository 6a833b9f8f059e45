//! Routing: spreading, weighted per-request split, drain, no routes.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{bounded, client, eventually, get, release, RunningProxy, TestBackend};
use http::StatusCode;

#[tokio::test]
async fn no_routes_answers_503() {
    let proxy = RunningProxy::start("svc").await;
    let client = client();
    let answer = get(&client, &proxy.url("/")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body, "no healthy replica");

    // Releases without weight or without backends are not routable either.
    let a = TestBackend::start("a").await;
    proxy
        .proxy
        .set_routes(vec![release("v1", 0, &[&a]), release("v2", 100, &[])]);
    let answer = get(&client, &proxy.url("/")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    // Not attributed to any release.
    assert!(proxy.proxy.metrics().iter().all(|m| m.requests == 0));
}

#[tokio::test]
async fn requests_spread_over_the_backends_of_a_release() {
    let backends = [
        TestBackend::start("a").await,
        TestBackend::start("b").await,
        TestBackend::start("c").await,
    ];
    let proxy = RunningProxy::start("svc").await;
    let routes = vec![release(
        "v1",
        1,
        &[&backends[0], &backends[1], &backends[2]],
    )];
    proxy.proxy.set_routes(routes.clone());
    assert_eq!(proxy.proxy.routes(), routes);

    let client = client();
    let mut hits: HashMap<String, usize> = HashMap::new();
    for _ in 0..300 {
        let answer = get(&client, &proxy.url("/")).await;
        assert_eq!(answer.status, StatusCode::OK);
        *hits.entry(answer.body).or_default() += 1;
    }
    for name in ["a", "b", "c"] {
        let count = hits.get(name).copied().unwrap_or(0);
        assert!(count >= 50, "backend {name} got {count} of 300: {hits:?}");
    }
}

#[tokio::test]
async fn weights_split_traffic_per_request() {
    let stable = TestBackend::start("stable-1").await;
    let canary = TestBackend::start("canary-1").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![
        release("stable", 90, &[&stable]),
        release("canary", 10, &[&canary]),
    ]);

    // Few keep-alive connections carrying many requests: the split must
    // happen per request, not per connection.
    const TASKS: usize = 4;
    const PER_TASK: usize = 2_500;
    let client = client();
    let url = proxy.url("/");
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut canary = 0usize;
            for _ in 0..PER_TASK {
                let answer = get(&client, &url).await;
                assert_eq!(answer.status, StatusCode::OK);
                if answer.body == "canary-1" {
                    canary += 1;
                }
            }
            canary
        }));
    }
    let mut canary = 0;
    for task in tasks {
        canary += bounded(task).await.unwrap();
    }
    let total = TASKS * PER_TASK;
    let share = canary as f64 / total as f64 * 100.0;
    assert!(
        (8.5..=11.5).contains(&share),
        "canary share {share:.2}% ({canary} of {total})"
    );

    common::settled(&proxy.proxy).await;
    let metrics = proxy.proxy.metrics();
    let by_release: HashMap<_, _> = metrics.iter().map(|m| (m.release.as_str(), m)).collect();
    assert_eq!(by_release["canary"].requests as usize, canary);
    assert_eq!(by_release["stable"].requests as usize, total - canary);
}

#[tokio::test]
async fn removed_backend_drains_and_gets_no_new_requests() {
    let old = TestBackend::start("old").await;
    let new = TestBackend::start("new").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&old])]);

    let client = client();
    let slow = tokio::spawn({
        let (client, url) = (client.clone(), proxy.url("/gate"));
        async move { get(&client, &url).await }
    });
    eventually("slow request in flight", || {
        proxy.proxy.in_flight("old") == 1
    })
    .await;

    proxy.proxy.set_routes(vec![release("v2", 1, &[&new])]);
    for _ in 0..50 {
        let answer = get(&client, &proxy.url("/")).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "new")
        );
    }
    assert_eq!(proxy.proxy.in_flight("old"), 1);
    assert_eq!(proxy.proxy.in_flight("new"), 0);

    let drained = tokio::spawn({
        let proxy = proxy.proxy.clone();
        async move { proxy.wait_drained("old", Duration::from_secs(15)).await }
    });
    old.gate.add_permits(1);
    let answer = bounded(slow).await.unwrap();
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "old")
    );
    assert!(bounded(drained).await.unwrap());
    assert_eq!(proxy.proxy.in_flight("old"), 0);

    // Metrics of the release that left the routes are kept.
    common::settled(&proxy.proxy).await;
    let metrics = proxy.proxy.metrics();
    let releases: Vec<_> = metrics
        .iter()
        .map(|m| (m.release.as_str(), m.requests))
        .collect();
    assert_eq!(releases, [("v1", 1), ("v2", 50)]);
}

#[tokio::test]
async fn wait_drained_times_out_while_busy_and_is_true_for_unknown_ids() {
    let a = TestBackend::start("a").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    assert!(proxy.proxy.wait_drained("nope", Duration::ZERO).await);
    assert_eq!(proxy.proxy.in_flight("nope"), 0);

    let client = client();
    let slow = tokio::spawn({
        let (client, url) = (client.clone(), proxy.url("/gate"));
        async move { get(&client, &url).await }
    });
    eventually("slow request in flight", || proxy.proxy.in_flight("a") == 1).await;
    assert!(
        !proxy
            .proxy
            .wait_drained("a", Duration::from_millis(20))
            .await
    );
    a.gate.add_permits(1);
    bounded(slow).await.unwrap();
    assert!(bounded(proxy.proxy.wait_drained("a", Duration::from_secs(15))).await);
}

#[tokio::test]
async fn many_concurrent_drain_waiters_all_wake() {
    let a = TestBackend::start("a").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    let client = client();
    let mut slow = Vec::new();
    for _ in 0..3 {
        let (client, url) = (client.clone(), proxy.url("/gate"));
        slow.push(tokio::spawn(async move { get(&client, &url).await }));
    }
    eventually("3 requests in flight", || proxy.proxy.in_flight("a") == 3).await;
    proxy.proxy.set_routes(vec![]);
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let proxy = proxy.proxy.clone();
            tokio::spawn(async move { proxy.wait_drained("a", Duration::from_secs(15)).await })
        })
        .collect();
    a.gate.add_permits(3);
    for request in slow {
        assert_eq!(bounded(request).await.unwrap().status, StatusCode::OK);
    }
    for waiter in waiters {
        assert!(bounded(waiter).await.unwrap());
    }
}
