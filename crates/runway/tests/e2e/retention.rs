//! `runway server --retention`: the journal of a deployment ended longer ago than the period
//! is thinned to its story and its deciding verdicts, and the logs of replicas long stopped
//! are removed, by the pass a server runs at start (then every hour).

use std::time::{Duration, Instant};

use runway_demo_app::load::Load;

use crate::harness::{events, text, App, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_deployment_keeps_its_story_and_stopped_replicas_lose_their_logs() {
    let mut h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let load = Load::start(h.listen, "/", 2, 200);
    let canary = App::default().strategy(
        "[strategy]\nkind = \"canary\"\nsteps = [{ weight = 50, pause = \"3s\" }, { weight = 100 }]\n\n\
         [analysis]\ninterval = \"300ms\"\nmin_requests = 10\nmax_intervals = 400\n",
    );
    // The judge never promotes on a p99 of too few canary requests (about a thousand): on a
    // loaded CI machine that can take longer than the default 60 intervals of 300 ms, and
    // the step then waits for a human. 400 leaves room; the timeout turns a wait into a
    // failure instead of a hang.
    let out = tokio::time::timeout(Duration::from_secs(180), h.deploy("v2", &canary))
        .await
        .expect("the canary of v2 ended within 3 minutes");
    assert!(out.status.success(), "{}", text(&out));
    let seen = load.stop().await;
    assert_eq!(seen.failed, 0);

    let history = h.history().await;
    let v2 = history.iter().find(|d| d["version"] == "v2").unwrap()["id"].clone();
    let path = format!("/v1/deployments/{v2}");
    let before: serde_json::Value = h.client().get(&path).await.unwrap();
    let before = events(&before);
    let analyses = |events: &[String]| events.iter().filter(|e| *e == "analysis").count();
    assert!(analyses(&before) >= 4, "{before:?}");
    let logs = h.state_path().join("logs").join("web");
    let v1_logs: Vec<_> = ["web-1.log", "web-2.log"]
        .iter()
        .map(|name| logs.join(name))
        .collect();
    assert!(v1_logs.iter().all(|l| l.exists()), "v1's replicas had logs");

    // A second later, a server with a retention of one second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    h.stop_server();
    h.server_args = vec!["--retention".into(), "1s".into()];
    h.start_server().await;

    let started = Instant::now();
    let after = loop {
        let detail: serde_json::Value = h.client().get(&path).await.unwrap();
        let after = events(&detail);
        if analyses(&after) < analyses(&before) {
            break after;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the journal was not thinned: {after:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "journal of v2: {} entries before, {} after",
        before.len(),
        after.len()
    );
    assert_eq!(analyses(&after), 1, "the verdict that promoted: {after:?}");
    let story = |events: &[String]| -> Vec<String> {
        events
            .iter()
            .filter(|e| *e != "analysis" && *e != "replica_unhealthy")
            .cloned()
            .collect()
    };
    assert_eq!(story(&after), story(&before));
    assert!(
        v1_logs.iter().all(|l| !l.exists()),
        "the logs of v1's stopped replicas went"
    );
    // The running replicas keep theirs.
    let status = h.status().await;
    for r in status["services"][0]["replicas"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        assert!(
            logs.join(format!("{name}.log")).exists(),
            "{name} lost its log"
        );
    }
    let out = h.runway(&["logs"]).await;
    assert!(out.status.success(), "{}", text(&out));
}
