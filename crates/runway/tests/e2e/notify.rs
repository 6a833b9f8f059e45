//! Issue 15: notifications to real webhook receivers on loopback. One receiver checks every
//! payload, one always fails, one never answers: the deployment is not delayed by either, the
//! failures are retried and recorded, and no secret reaches any of them or any record.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use runway_demo_app::load::Load;

use crate::harness::{text, App, Harness};

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    /// 200 to everything.
    Answer,
    /// 500 to everything.
    Fail,
    /// Reads the request and never answers.
    Hang,
}

/// An HTTP endpoint on a free loopback port that keeps every request it got: (path, body).
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Receiver {
    pub(crate) async fn start(mode: Mode) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
        let kept = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let kept = kept.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let kept = kept.clone();
                            async move {
                                let path = req.uri().path().to_string();
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let json = serde_json::from_slice(&body)
                                    .unwrap_or(serde_json::Value::Null);
                                kept.lock().unwrap().push((path, json));
                                match mode {
                                    Mode::Answer => {}
                                    Mode::Fail => {
                                        return Ok::<_, Infallible>(
                                            Response::builder()
                                                .status(500)
                                                .body(Full::new(Bytes::from("boom")))
                                                .unwrap(),
                                        )
                                    }
                                    Mode::Hang => {
                                        tokio::time::sleep(Duration::from_secs(3600)).await
                                    }
                                }
                                Ok(Response::new(Full::new(Bytes::from("ok"))))
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, seen }
    }

    pub(crate) fn seen(&self) -> Vec<(String, serde_json::Value)> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (10 s at most) until `done` holds for what it got.
    pub(crate) async fn until(
        &self,
        what: &str,
        done: impl Fn(&[(String, serde_json::Value)]) -> bool,
    ) {
        let started = Instant::now();
        while !done(&self.seen()) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{what}: {:#?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The secret part of the Slack URL: it must appear nowhere runway writes.
const SECRET: &str = "T000-B000-hunter2-webhook-secret";

fn canary_with_notify(good: SocketAddr, failing: SocketAddr, hanging: SocketAddr) -> String {
    format!(
        r#"[strategy]
kind = "canary"
steps = [{{ weight = 20, pause = "30s" }}, {{ weight = 100 }}]

[analysis]
interval = "500ms"
failure_limit = 2
min_requests = 10
inconclusive_limit = 4
max_intervals = 120

[[notify]]
name = "slack"
kind = "slack"
url = "env:RUNWAY_TEST_SLACK_URL"

[[notify]]
name = "audit-sink"
kind = "webhook"
url = "http://{good}/runway"
events = ["rolled_back", "succeeded"]

[[notify]]
name = "broken"
kind = "webhook"
url = "http://{failing}/hook"
retries = 2
backoff = "100ms"

[[notify]]
name = "stuck"
kind = "webhook"
url = "http://{hanging}/hook"
timeout = "1s"
retries = 1
backoff = "100ms"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_reach_their_targets_failing_ones_are_retried_and_recorded_and_nothing_waits() {
    let good = Receiver::start(Mode::Answer).await;
    let failing = Receiver::start(Mode::Fail).await;
    let hanging = Receiver::start(Mode::Hang).await;
    let slack_url = format!("http://{}/services/{SECRET}", good.addr);
    let h = Harness::start_with_env(vec![("RUNWAY_TEST_SLACK_URL".into(), slack_url)]).await;
    let notify = canary_with_notify(good.addr, failing.addr, hanging.addr);

    // v1: started and succeeded, to each target that wants them.
    let v1 = App::default().strategy(&notify);
    let started = Instant::now();
    let out = h.deploy("v1", &v1).await;
    assert!(out.status.success(), "{}", text(&out));
    // The hanging target (1s timeout, 2 attempts a notice) and the failing one do not hold
    // the deployment up: a first deploy takes well under a second here.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the deployment waited for a target: {:?}",
        started.elapsed()
    );
    let slack = |seen: &[(String, serde_json::Value)]| -> Vec<String> {
        seen.iter()
            .filter(|(path, _)| path.starts_with("/services/"))
            .map(|(_, body)| body["text"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    good.until("v1's two Slack notices", |seen| slack(seen).len() >= 2)
        .await;
    let texts = slack(&good.seen());
    assert!(
        texts[0].starts_with(
            "DEPLOYMENT STARTING\n--------------------\nService: web\nVersion: v1\nTime: "
        ) && texts[0].contains("Owner: @bootstrap-admin"),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].starts_with(
            "DEPLOYMENT COMPLETE\n--------------------\nService: web\nVersion: v1\nDuration: "
        ) && texts[1].contains("Status: SUCCESS"),
        "{}",
        texts[1]
    );
    // The webhook target gets only the kinds it asked for, with the whole notice and the
    // audit trail's head.
    good.until("the webhook's succeeded notice", |seen| {
        seen.iter()
            .any(|(p, b)| p == "/runway" && b["event"] == "succeeded")
    })
    .await;
    let hook: Vec<serde_json::Value> = good
        .seen()
        .into_iter()
        .filter(|(p, _)| p == "/runway")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(hook.len(), 1, "only `succeeded` of v1: {hook:#?}");
    assert_eq!(hook[0]["notice"]["service"], "web");
    assert_eq!(hook[0]["notice"]["version"], "v1");
    assert_eq!(hook[0]["notice"]["deployment"], 1);
    let head = hook[0]["audit_head"]
        .as_str()
        .expect("the audit head")
        .to_string();
    assert_eq!(head.len(), 64, "{head}");
    // The head a notification carried verifies the trail as it stands.
    let out = h.runway(&["audit", "verify", "--head", &head]).await;
    assert!(out.status.success(), "{}", text(&out));

    // v2 is bad: the judge rolls it back, and the rollback notice carries the numbers.
    let load = Load::start(h.listen, "/", 6, 300);
    let v2 = App::default()
        .args(&["--error-rate", "0.3"])
        .strategy(&notify);
    let out = h.deploy("v2", &v2).await;
    load.stop().await;
    assert!(!out.status.success(), "{}", text(&out));
    good.until("the rollback notice", |seen| {
        slack(seen)
            .iter()
            .any(|t| t.starts_with("ROLLBACK INITIATED"))
    })
    .await;
    let rollback = slack(&good.seen())
        .into_iter()
        .find(|t| t.starts_with("ROLLBACK INITIATED"))
        .unwrap();
    assert!(
        rollback.contains("Service: web\nFrom: v2\nTo: v1\nReason: canary analysis failed: ")
            && rollback.contains("Status: IN PROGRESS"),
        "{rollback}"
    );
    assert!(
        rollback.contains("- error_rate: ") && rollback.contains("FAIL"),
        "the metrics that decided it: {rollback}"
    );
    // The audit trail's head travels in the Slack text too (once the trail has an entry).
    let head_line = rollback
        .lines()
        .find_map(|l| l.strip_prefix("(audit trail head: "))
        .unwrap_or_else(|| panic!("no audit head: {rollback}"));
    let slack_head = head_line.trim_end_matches(')');
    assert_eq!(slack_head.len(), 64, "{rollback}");
    let out = h.runway(&["audit", "verify", "--head", slack_head]).await;
    assert!(out.status.success(), "{}", text(&out));
    let texts = slack(&good.seen());
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("CANARY STEP: web v2 takes 20%")),
        "{texts:#?}"
    );
    good.until("the webhook's rollback", |seen| {
        seen.iter()
            .any(|(p, b)| p == "/runway" && b["event"] == "rolled_back")
    })
    .await;
    let hooked = good
        .seen()
        .into_iter()
        .find(|(p, b)| p == "/runway" && b["event"] == "rolled_back")
        .unwrap()
        .1;
    let verdicts = hooked["notice"]["verdicts"].as_array().expect("verdicts");
    let error_rate = verdicts
        .iter()
        .find(|v| v["metric"] == "error_rate")
        .expect("error_rate's verdict");
    assert_eq!(error_rate["verdict"], "fail");
    assert!(
        error_rate["canary"].as_f64().unwrap() > 0.05,
        "{error_rate}"
    );
    assert!(
        error_rate["condition"].as_str().unwrap().contains("0.05"),
        "{error_rate}"
    );

    // The failing target got each notice three times (two retries), the hanging one twice;
    // both are recorded as failed, the good ones as delivered.
    let deliveries = || async {
        let out = h.runway(&["notify", "log", "-n", "200", "--json"]).await;
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
    };
    let started = Instant::now();
    let log = loop {
        let log = deliveries().await;
        let stuck_done = log
            .iter()
            .filter(|d| d["target"] == "stuck" && d["outcome"] == "failed")
            .count();
        if stuck_done >= 2 {
            break log;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{log:#?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let of = |target: &str| -> Vec<&serde_json::Value> {
        log.iter().filter(|d| d["target"] == target).collect()
    };
    assert!(
        of("slack")
            .iter()
            .all(|d| d["outcome"] == "delivered" && d["attempts"] == 1 && d["status"] == 200),
        "{log:#?}"
    );
    let broken = of("broken");
    assert!(!broken.is_empty());
    for d in &broken {
        assert_eq!(d["outcome"], "failed", "{d}");
        assert_eq!(d["attempts"], 3, "{d}");
        assert_eq!(d["status"], 500, "{d}");
        assert_eq!(d["error"], "answered 500", "{d}");
    }
    let stuck: Vec<_> = of("stuck")
        .into_iter()
        .filter(|d| d["outcome"] == "failed")
        .collect();
    for d in &stuck {
        assert_eq!(d["attempts"], 2, "{d}");
        assert_eq!(d["error"], "no answer within 1s", "{d}");
    }
    let first_started = failing
        .seen()
        .iter()
        .filter(|(_, b)| b["event"] == "started" && b["notice"]["version"] == "v1")
        .count();
    assert_eq!(first_started, 3, "the first try and two retries");

    // `runway notify test` reaches every target now and says which failed (exit 1).
    let file = h.write("notify.toml", &App::default().strategy(&notify));
    let out = h
        .runway(&[
            "-f",
            file.to_str().unwrap(),
            "notify",
            "test",
            "--target",
            "slack",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("delivered"), "{}", text(&out));
    let out = h
        .runway(&[
            "-f",
            file.to_str().unwrap(),
            "notify",
            "test",
            "--target",
            "broken",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("answered 500"), "{}", text(&out));
    let out = h
        .runway(&[
            "-f",
            file.to_str().unwrap(),
            "notify",
            "test",
            "--target",
            "nope",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no [[notify]] target named `nope`"),
        "{}",
        text(&out)
    );

    // The Slack URL's secret is nowhere: not in any record, journal, delivery, audit entry,
    // the server's log, nor any payload a target received.
    let mut everything = String::new();
    for args in [
        vec!["history", "--json"],
        vec!["notify", "log", "--json", "-n", "500"],
        vec!["audit", "--json"],
        vec!["status", "--json"],
    ] {
        everything += &text(&h.runway(&args).await);
    }
    for id in 1..=2 {
        everything += &text(&h.runway(&["logs", "--deployment", &id.to_string()]).await);
        everything += &serde_json::to_string(
            &h.client()
                .get::<serde_json::Value>(&format!("/v1/deployments/{id}"))
                .await
                .unwrap(),
        )
        .unwrap();
    }
    everything += &h.server_log();
    for r in [&good, &failing, &hanging] {
        for (_, body) in r.seen() {
            everything += &body.to_string();
        }
    }
    assert!(!everything.contains(SECRET), "the webhook secret leaked");
    assert!(
        everything.contains("ROLLBACK INITIATED"),
        "the check looked at the payloads"
    );
}
