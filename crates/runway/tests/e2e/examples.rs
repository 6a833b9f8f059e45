//! The shipped examples run as written (addresses aside) against real servers.

use runway_testkit::{Postgres, Redis};

use crate::harness::{text, Harness, RUNWAY};

/// examples/checklists: runbook 004's pre-deployment checklist and 003's morning checklist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checklists_example_gates_a_deploy_and_runs_the_morning_checklist() {
    let h = Harness::start().await;
    let pg = Postgres::start("s3cret-pg");
    let redis = Redis::start(&["--maxmemory", "100mb"]);
    let prometheus = crate::prometheus::start_prometheus(
        h.dir.path(),
        h.server_file()["metrics"].as_str().unwrap(),
    )
    .await;

    // A certificate valid for 90 days, where the example expects it.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(90);
    std::fs::create_dir_all(h.dir.path().join("certs")).unwrap();
    std::fs::write(
        h.dir.path().join("certs/service.crt"),
        params.self_signed(&key).unwrap().pem(),
    )
    .unwrap();

    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/checklists/runway.toml"
    ))
    .unwrap();
    let config = example
        .replace("listen = \"127.0.0.1:8000\"", &format!("listen = \"{}\"", h.listen))
        .replace("command = [\"runway\",", &format!("command = [{RUNWAY:?},"))
        .replace("http://127.0.0.1:9090", &prometheus.url)
        // The CI machine's free disk varies; the threshold is the example's business, not the test's.
        .replace("min_free = \"10GB\"", "min_free = \"1MB\"")
        // Secrets through the service's env here; in production they come from the environment.
        .replace(
            "env = { APP_ENV = \"production\" }",
            &format!(
                "env = {{ APP_ENV = \"production\", DATABASE_URL = \"{}\", REDIS_URL = \"redis://127.0.0.1:{}\", JWT_SECRET = \"jwt-s3cret\" }}",
                pg.url("s3cret-pg"),
                redis.port
            ),
        );
    assert_ne!(config, example);
    std::fs::write(h.dir.path().join("runway.toml"), &config).unwrap();

    // 004's checklist gates the deploy, and passes.
    let out = h.runway(&["deploy", "v1"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let detail: serde_json::Value = h.client().get("/v1/deployments/1").await.unwrap();
    let preflight = detail["journal"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "checks")
        .unwrap()
        .clone();
    assert_eq!(preflight["detail"]["phase"], "preflight");
    assert_eq!(preflight["detail"]["results"].as_array().unwrap().len(), 7);

    // 003's morning checklist: every item passes against the running service.
    let out = h.runway(&["check", "--phase", "morning", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        results.iter().all(|r| r["status"] == "pass"),
        "{results:#?}"
    );
    assert_eq!(
        results.iter().filter(|r| r["name"] == "live").count(),
        2,
        "one per replica"
    );
    let all = String::from_utf8_lossy(&out.stdout);
    for secret in ["s3cret-pg", "jwt-s3cret"] {
        assert!(!all.contains(secret), "a secret was printed");
    }

    // Maintenance mode is on: 004's checklist stops the next deploy before anything changes.
    std::fs::write(h.dir.path().join("maintenance.flag"), "on").unwrap();
    let out = h.runway(&["deploy", "v2"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no maintenance flag"),
        "{}",
        text(&out)
    );
    assert_eq!(h.get("/").await.1, "v1");
}
