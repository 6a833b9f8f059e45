//! The runbook's checklists in a deployment: preflight gates, verification before traffic,
//! smoke tests of a blue-green preview, and `runway check`.

use crate::harness::{free_addr, text, App, Harness};

fn with_checks(app: App, checks: &str) -> App {
    let strategy = app
        .strategy
        .clone()
        .unwrap_or_else(|| "[strategy]\nkind = \"rolling\"\n".into());
    app.strategy(&format!("{strategy}\n{checks}"))
}

fn pids(status: &serde_json::Value) -> Vec<i64> {
    status["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pid"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_preflight_blocker_stops_the_deploy_with_nothing_changed() {
    let h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let before = pids(&h.status().await);
    let closed = free_addr();
    let checks = format!(
        "[[checks]]\nname = \"queue port\"\nkind = \"tcp\"\naddress = \"{closed}\"\ntimeout = \"1s\"\nphases = [\"preflight\"]\n\n\
         [[checks]]\nname = \"disk\"\nkind = \"disk\"\npath = \"/\"\nmin_free = \"1B\"\nphases = [\"preflight\"]\n"
    );
    let out = h.deploy("v2", &with_checks(App::default(), &checks)).await;
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("preflight checks failed") && stderr.contains("queue port"),
        "{stderr}"
    );
    assert_eq!(
        pids(&h.status().await),
        before,
        "a failed preflight changed the replicas"
    );
    let history = h.history().await;
    assert_eq!(history[0]["status"], "failed");
    let detail: serde_json::Value = h.client().get("/v1/deployments/2").await.unwrap();
    let checks_event = detail["journal"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "checks")
        .unwrap()
        .clone();
    let results = checks_event["detail"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert!(
        results
            .iter()
            .any(|r| r["name"] == "queue port" && r["status"] == "fail"),
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .any(|r| r["name"] == "disk" && r["status"] == "pass"),
        "{results:?}"
    );
    assert!(!detail["journal"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "replica_starting"));

    // --skip-checks deploys anyway, and says so in the record.
    let file = h.write("v2.toml", &with_checks(App::default(), &checks));
    let out = h
        .runway(&[
            "deploy",
            "v2",
            "-f",
            file.to_str().unwrap(),
            "--skip-checks",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let detail: serde_json::Value = h.client().get("/v1/deployments/3").await.unwrap();
    assert!(detail["journal"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "preflight_skipped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_verify_keeps_the_new_release_away_from_traffic() {
    let h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let checks = "[[checks]]\nname = \"ready\"\nkind = \"http\"\nurl = \"http://{replica}/health/ready\"\nexpect_status = 200\n\
                  expect_json = { \".status\" = \"broken\" }\nphases = [\"verify\"]\n";
    let out = h.deploy("v2", &with_checks(App::default(), checks)).await;
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("verify checks failed") && stderr.contains("ready (127.0.0.1:"),
        "{stderr}"
    );
    for _ in 0..20 {
        assert_eq!(h.get("/").await.1, "v1");
    }
    let detail: serde_json::Value = h.client().get("/v1/deployments/2").await.unwrap();
    assert!(
        !detail["journal"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "replica_routed"),
        "a v2 replica got traffic"
    );

    // The same check, satisfiable, lets it through.
    let good = checks.replace("\"broken\"", "\"healthy\"");
    let out = h.deploy("v3", &with_checks(App::default(), &good)).await;
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_smoke_check_stops_a_blue_green_switch() {
    let h = Harness::start().await;
    let out = h.deploy("v1", &App::default()).await;
    assert!(out.status.success(), "{}", text(&out));
    let app = App::default().strategy(
        "[strategy]\nkind = \"blue-green\"\n\n[[checks]]\nname = \"smoke\"\nkind = \"http\"\nurl = \"http://{replica}/nope\"\nphases = [\"smoke\"]\n",
    );
    let out = h.deploy("v2", &app).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("smoke checks failed"),
        "{}",
        text(&out)
    );
    for _ in 0..10 {
        assert_eq!(h.get("/").await.1, "v1");
    }
    let replicas = h.status().await["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .clone();
    assert!(replicas.iter().all(|r| r["version"] == "v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runway_check_prints_a_table_and_fails_on_a_blocker() {
    let h = Harness::start().await;
    let app = with_checks(
        App::default(),
        &format!(
            "[[checks]]\nname = \"ready\"\nkind = \"http\"\nurl = \"http://{{replica}}/health/ready\"\nexpect_json = {{ \".status\" = \"healthy\" }}\nphases = [\"daily\"]\n\n\
             [[checks]]\nname = \"secret present\"\nkind = \"env\"\nvars = [\"APP_ENV\"]\nphases = [\"daily\"]\n\n\
             [[checks]]\nname = \"closed port\"\nkind = \"tcp\"\naddress = \"{}\"\nseverity = \"warning\"\ntimeout = \"1s\"\nphases = [\"daily\"]\n",
            free_addr()
        ),
    );
    std::fs::write(h.dir.path().join("runway.toml"), h.config(&app)).unwrap();
    assert!(h.runway(&["deploy", "v1"]).await.status.success());
    let out = h.runway(&["check", "--phase", "daily"]).await;
    assert!(
        out.status.success(),
        "a warning must not fail the checklist: {}",
        text(&out)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("PASS") && table.contains("WARN") && table.contains("closed port"),
        "{table}"
    );
    assert!(
        !table.contains("APP_ENV=test") && !table.contains("=test"),
        "an env value was printed: {table}"
    );
    let out = h.runway(&["check", "--phase", "daily", "--json"]).await;
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        results.iter().filter(|r| r["name"] == "ready").count(),
        3,
        "one result per replica"
    );
    // A blocker that fails: exit 1.
    let blocking = h.config(&app).replace("severity = \"warning\"\n", "");
    std::fs::write(h.dir.path().join("runway.toml"), blocking).unwrap();
    let out = h.runway(&["check", "--phase", "daily"]).await;
    assert!(!out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_failure_after_full_traffic_rolls_back() {
    let h = Harness::start().await;
    assert!(h
        .deploy(
            "v1",
            &App {
                replicas: 1,
                ..App::default()
            }
        )
        .await
        .status
        .success());
    // Passes the first time (before traffic), fails the second (after all traffic moved).
    let marker = h.dir.path().join("verified-once");
    let checks = format!(
        "[[checks]]\nname = \"once\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"test ! -e {m} && touch {m}\"]\nphases = [\"verify\"]\n",
        m = marker.display()
    );
    let out = h
        .deploy(
            "v2",
            &with_checks(
                App {
                    replicas: 1,
                    ..App::default()
                },
                &checks,
            ),
        )
        .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(marker.exists(), "the check never ran before traffic");
    let history = h.history().await;
    assert_eq!(history[0]["status"], "rolled_back");
    assert!(
        history[0]["reason"]
            .as_str()
            .unwrap()
            .contains("after taking all traffic"),
        "{}",
        history[0]["reason"]
    );
    assert_eq!(h.get("/").await.1, "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_checklist_runs_inside_the_server_and_is_kept() {
    let h = Harness::start().await;
    let channel = crate::notify::Receiver::start(crate::notify::Mode::Answer).await;
    let checks = format!("[[checks]]\nname = \"ready\"\nkind = \"http\"\nurl = \"http://{{replica}}/health/ready\"\nphases = [\"daily\"]\nschedule = \"every 1s\"\n\n\
                  [[checks]]\nname = \"maintenance flag absent\"\nkind = \"file\"\npath = \"maintenance.flag\"\nexists = false\nphases = [\"daily\"]\nschedule = \"every 1s\"\n\n\
                  [[notify]]\nkind = \"webhook\"\nurl = \"http://{}/hook\"\nevents = [\"checklist_failed\"]\n", channel.addr);
    let checks = checks.as_str();
    std::fs::write(
        h.dir.path().join("runway.toml"),
        h.config(&with_checks(
            App {
                replicas: 2,
                ..App::default()
            },
            checks,
        )),
    )
    .unwrap();
    assert!(h.runway(&["deploy", "v1"]).await.status.success());
    let started = std::time::Instant::now();
    let runs = loop {
        let out = h.runway(&["check", "history", "--json"]).await;
        let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        if runs.len() >= 2 {
            break runs;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "the schedule did not run: {}",
            text(&out)
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert!(runs.iter().all(|r| r["passed"] == true), "{runs:?}");
    // 2 replicas for {replica} + the file check.
    assert_eq!(
        runs[0]["results"].as_array().unwrap().len(),
        3,
        "{}",
        runs[0]
    );

    // The maintenance flag appears: the next run records the failure.
    std::fs::write(h.dir.path().join("maintenance.flag"), "on").unwrap();
    let started = std::time::Instant::now();
    loop {
        let out = h.runway(&["check", "history", "--json", "-n", "1"]).await;
        let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        if runs[0]["passed"] == false {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "the failure was not recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let out = h.runway(&["check", "history"]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("FAILED"),
        "{}",
        text(&out)
    );

    // The failing checklist is announced once and opens one incident, however many runs fail.
    channel
        .until("the checklist_failed notice", |seen| !seen.is_empty())
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let seen = channel.seen();
    assert_eq!(seen.len(), 1, "announced once: {seen:#?}");
    assert_eq!(seen[0].1["event"], "checklist_failed");
    assert!(
        seen[0].1["notice"]["reason"]
            .as_str()
            .unwrap()
            .contains("maintenance flag absent"),
        "{seen:#?}"
    );
    let out = h.runway(&["incident", "list", "--json"]).await;
    let incidents: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(incidents[0]["cause"], "checklist");
    assert_eq!(incidents[0]["severity"], "SEV-3", "no request failed");
    assert!(
        incidents[0]["title"]
            .as_str()
            .unwrap()
            .contains("maintenance flag absent"),
        "{incidents:#?}"
    );
}
