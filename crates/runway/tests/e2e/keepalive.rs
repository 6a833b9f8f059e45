//! Keep-alive clients through the real binary's proxy: a Python `requests.Session` POSTing
//! JSON bodies in a loop on its pooled connection, during a recreate deploy (the page goes up,
//! the old release stops, the new one starts, the page comes down) and while an operator
//! switches the page on and off by hand. Every answer must be a release's 200 or the 503 page;
//! no connection error, and the one connection survives every answer.
//!
//! Needs python3 with requests (Debian packages python3 and python3-requests, installed by
//! scripts/test).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::{http_get, text, App, Harness};

/// The load: POSTs JSON bodies (2 B to 64 KiB) to `/` (the demo app takes any method there) in
/// a loop on one `requests.Session` until `stop` exists (or `max_seconds` passed); touches
/// `started` after its first answer; prints a JSON summary.
const LOAD: &str = r#"
import json, os, sys, time
import requests, urllib3.connection

url, stop, started, max_seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
out = {"requests": 0, "served": 0, "maintenance": 0, "other": [], "errors": [], "connections": 0}
connect = urllib3.connection.HTTPConnection.connect
def counting_connect(self):
    out["connections"] += 1
    return connect(self)
urllib3.connection.HTTPConnection.connect = counting_connect
sizes = [2, 100, 1024, 16 * 1024, 64 * 1024]
deadline = time.monotonic() + max_seconds
with requests.Session() as session:
    i = 0
    while not os.path.exists(stop) and time.monotonic() < deadline:
        size = sizes[i % len(sizes)]
        i += 1
        body = b"{}" if size <= 2 else json.dumps({"data": "x" * (size - 12)}).encode()
        out["requests"] += 1
        try:
            r = session.post(url, data=body, timeout=10, headers={
                "Content-Type": "application/json", "Accept": "application/json"})
            if r.status_code == 200:
                out["served"] += 1
            elif r.status_code == 503 and r.json().get("error") == "maintenance":
                out["maintenance"] += 1
            else:
                out["other"].append(f"{r.status_code} {r.text[:80]}")
        except Exception as e:
            out["errors"].append(f"{size} B: {type(e).__name__}: {e}")
        if out["requests"] == 1:
            open(started, "w").close()
        time.sleep(0.002)
print(json.dumps(out))
"#;

fn interpreter() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

async fn wait_until<F, Fut>(what: &str, mut ok: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ok().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn refused_maintenance(h: &Harness) -> u64 {
    h.status().await["services"][0]["refused"]["maintenance"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_requests_session_survives_a_recreate_and_the_page_by_hand() {
    let h = Harness::start().await;
    let recreate = App {
        replicas: 2,
        deadline: "8s",
        ..App::default()
    }
    .strategy(
        "[strategy]\nkind = \"recreate\"\n\n[hooks.migrate]\ncommand = [\"sh\", \"-c\", \"sleep 1\"]\n",
    );
    let out = h.deploy("v1", &recreate).await;
    assert!(out.status.success(), "{}", text(&out));

    let stop = h.dir.path().join("load.stop");
    let started = h.dir.path().join("load.started");
    let load = tokio::process::Command::new(interpreter())
        .arg("-c")
        .arg(LOAD)
        .arg(format!("http://{}/", h.listen))
        .arg(&stop)
        .arg(&started)
        .arg("45")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect(
            "python3 (Debian packages python3 and python3-requests, installed by scripts/test)",
        );
    wait_until("the load's first answer", || {
        let started = started.clone();
        async move { started.exists() }
    })
    .await;

    // A recreate: the page goes up, v1 stops, the migration runs, v2 starts, the page comes down.
    let out = h.deploy("v2", &recreate).await;
    assert!(out.status.success(), "{}", text(&out));
    let after_recreate = refused_maintenance(&h).await;
    assert!(
        after_recreate > 0,
        "the load never met the page during the recreate"
    );

    // The page switched on by hand, for at least 20 more refused requests, then off.
    let out = h.runway(&["maintenance", "on"]).await;
    assert!(out.status.success(), "{}", text(&out));
    wait_until("20 requests refused by the page", || async {
        refused_maintenance(&h).await >= after_recreate + 20
    })
    .await;
    let out = h.runway(&["maintenance", "off"]).await;
    assert!(out.status.success(), "{}", text(&out));
    wait_until("the release serving again", || async {
        http_get(h.listen, "/").await.0 == 200
    })
    .await;
    // Some more served requests on the same connection after the page came down.
    tokio::time::sleep(Duration::from_millis(200)).await;

    std::fs::write(&stop, b"").unwrap();
    let output = tokio::time::timeout(Duration::from_secs(30), load.wait_with_output())
        .await
        .expect("the load stopped within 30 s")
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&output.stdout));
    });
    eprintln!("requests.Session through a recreate and the page by hand: {summary}");
    assert_eq!(
        summary["errors"],
        serde_json::json!([]),
        "connection errors"
    );
    assert_eq!(
        summary["other"],
        serde_json::json!([]),
        "neither 200 nor the page"
    );
    assert!(summary["served"].as_u64().unwrap() > 0, "{summary}");
    assert!(summary["maintenance"].as_u64().unwrap() >= 20, "{summary}");
    assert_eq!(
        summary["requests"].as_u64().unwrap(),
        summary["served"].as_u64().unwrap() + summary["maintenance"].as_u64().unwrap()
    );
    assert_eq!(
        summary["connections"], 1,
        "every answer kept the connection: {summary}"
    );
}
