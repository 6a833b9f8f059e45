//! Rolling deployments under load: nothing lost when it works, the old release keeps serving
//! when it does not.

use std::time::Duration;

use runway_demo_app::load::Load;

use crate::harness::{text, App, Harness};

const WORKERS: u64 = 6;
const RPS: u64 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_deploy_under_load_loses_no_request_and_drains_in_flight_ones() {
    let h = Harness::start().await;
    let app = App::default().args(&["--slow-start-ms", "200"]);
    let out = h.deploy("v1", &app).await;
    assert!(out.status.success(), "{}", text(&out));

    let load = Load::start(h.listen, "/", WORKERS, RPS);
    // Slow requests that are in flight on v1 replicas when they leave rotation: the drain must
    // let them finish.
    let slow: Vec<_> = (0..6)
        .map(|_| tokio::spawn(crate::harness::http_get(h.listen, "/slow?ms=1500")))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = h.deploy("v2", &app).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("succeeded"), "{stdout}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = load.stop().await;
    for s in slow {
        let (status, version, _) = s.await.unwrap();
        assert_eq!(
            (status, version.as_str()),
            (200, "v1"),
            "an in-flight request was cut off by the drain"
        );
    }

    assert_eq!(
        seen.failed, 0,
        "failed requests during a rolling deploy: {:?}",
        seen.errors
    );
    assert!(
        seen.ok > 100,
        "too little load to mean anything: {}",
        seen.ok
    );
    assert!(
        seen.versions.contains_key("v1") && seen.versions.contains_key("v2"),
        "{}",
        seen.by_version()
    );

    let status = h.status().await;
    let replicas = status["services"][0]["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 3);
    for r in replicas {
        assert_eq!(r["version"], "v2");
        assert_eq!(r["health"], "healthy");
        assert_eq!(r["state"], "running");
    }
    let (_, version, _) = h.get("/").await;
    assert_eq!(version, "v2");
    let history = h.history().await;
    assert_eq!(history[0]["status"], "succeeded");
    assert_eq!(history[0]["previous_version"], "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_failing_its_health_check_is_refused_and_the_old_one_keeps_serving() {
    let h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let load = Load::start(h.listen, "/", WORKERS, RPS);
    let bad = App {
        deadline: "2s",
        ..App::default()
    }
    .args(&["--fail-health"]);
    let out = h.deploy("v2", &bad).await;
    let seen = load.stop().await;

    assert!(
        !out.status.success(),
        "a deploy that failed its health check exited 0: {}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was not healthy within 2s")
            && stderr.contains("503")
            // The URL names the path probed, the usual culprit.
            && stderr.contains("/health/ready answered"),
        "{stderr}"
    );
    assert_eq!(seen.failed, 0, "{:?}", seen.errors);
    assert_eq!(
        seen.versions.keys().collect::<Vec<_>>(),
        vec!["v1"],
        "the bad release got traffic"
    );

    let history = h.history().await;
    assert_eq!(history[0]["status"], "failed");
    assert!(history[0]["reason"]
        .as_str()
        .unwrap()
        .contains("not healthy"));
    let status = h.status().await;
    let replicas = status["services"][0]["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 3);
    assert!(replicas.iter().all(|r| r["version"] == "v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_does_not_exist_fails_with_the_os_error_while_the_old_release_serves() {
    let h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let missing = App {
        command: Some(vec![
            "/nonexistent/bin/app".into(),
            "--port".into(),
            "{port}".into(),
        ]),
        ..App::default()
    };
    let out = h.deploy("v2", &missing).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/bin/app") && stderr.contains("No such file or directory"),
        "{stderr}"
    );
    let (status, version, _) = h.get("/").await;
    assert_eq!((status, version.as_str()), (200, "v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_crashes_under_load_costs_no_request_and_is_restarted() {
    let h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let status = h.status().await;
    let victim = status["services"][0]["replicas"][0].clone();
    let load = Load::start(h.listen, "/", WORKERS, RPS);
    tokio::time::sleep(Duration::from_millis(500)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim["pid"].as_i64().unwrap() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Wait for the supervisor to bring it back.
    let mut restarted = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let status = h.status().await;
        let r = status["services"][0]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == victim["name"])
            .cloned()
            .unwrap();
        if r["restarts"].as_u64() == Some(1) && r["health"] == "healthy" {
            assert_ne!(r["pid"], victim["pid"]);
            restarted = true;
            break;
        }
    }
    let seen = load.stop().await;
    assert!(
        restarted,
        "the crashed replica was not restarted and healthy within 10s"
    );
    assert_eq!(
        seen.failed, 0,
        "a crashed replica cost requests: {:?}",
        seen.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_deployment_is_refused_with_the_name_of_the_first() {
    let h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let slow = App::default().args(&["--slow-start-ms", "3000"]);
    let file = h.write("slow.toml", &slow);
    let first = {
        let mut cmd = std::process::Command::new(crate::harness::RUNWAY);
        cmd.args(["-f", file.to_str().unwrap(), "deploy", "v2"])
            .env("RUNWAY_STATE_DIR", h.state_path());
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    // Wait until the first deployment is under way.
    for _ in 0..100 {
        if !h.status().await["services"][0]["deployment"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = h.deploy("v3", &App::default()).await;
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("busy with deployment #2 of v2"), "{stderr}");
    let first = first.await.unwrap();
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(
        h.history().await.len(),
        2,
        "the refused deployment must not be recorded"
    );
}

/// Issue 10: while a deploy waits for a replica that fails its health checks, it says why as
/// it happens (not only at the deadline), a few times rather than on every probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_health_checks_are_shown_while_the_deploy_waits() {
    let h = Harness::start().await;
    let bad = App {
        replicas: 1,
        deadline: "4s",
        ..App::default()
    }
    .args(&["--fail-health"]);
    let out = h.deploy("v1", &bad).await;
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    let live: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("not healthy yet after"))
        .collect();
    assert!(
        (1..=2).contains(&live.len()),
        "expected one or two live reports in 4s: {said}"
    );
    assert!(
        live[0].contains("of 4s") && live[0].contains("/health/ready answered 503"),
        "{said}"
    );
}
