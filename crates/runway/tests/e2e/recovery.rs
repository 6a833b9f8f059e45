//! The server dies (`kill -9`) or restarts: replicas are re-adopted, the interrupted deployment
//! finishes, nothing is lost.

use std::time::Duration;

use crate::harness::{pid_alive, text, App, Harness, RUNWAY};

fn pids(status: &serde_json::Value) -> Vec<(String, i64)> {
    status["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap().to_string(),
                r["pid"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_deployment_then_restart_resumes_it_and_loses_nothing() {
    let mut h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let v1_pids: Vec<i64> = pids(&h.status().await)
        .into_iter()
        .map(|(_, p)| p)
        .collect();

    // A slow-starting v2, followed by the CLI in the background.
    let slow = App::default().args(&["--slow-start-ms", "1500"]);
    let file = h.write("v2.toml", &slow);
    let cli = {
        let mut cmd = std::process::Command::new(RUNWAY);
        cmd.args(["-f", file.to_str().unwrap(), "deploy", "v2"])
            .env("RUNWAY_STATE_DIR", h.state_path());
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    // Kill the server once the first v2 replica serves and the second is starting.
    let mut mid_way = false;
    for _ in 0..200 {
        let status = h.status().await;
        let replicas = status["services"][0]["replicas"]
            .as_array()
            .unwrap()
            .clone();
        let v2_routed = replicas
            .iter()
            .filter(|r| r["version"] == "v2" && r["in_rotation"] == true)
            .count();
        let v2_total = replicas.iter().filter(|r| r["version"] == "v2").count();
        if v2_routed == 1 && v2_total == 2 {
            mid_way = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        mid_way,
        "never saw the deployment half-way:\n{}",
        h.server_log()
    );
    h.kill9_server();

    // The replicas outlive the server, and the proxy's listener is gone with it.
    let survivors = v1_pids.iter().filter(|p| pid_alive(**p)).count();
    assert!(survivors >= 2, "replicas died with the server");

    h.start_server().await;
    let out = cli.await.unwrap();
    assert!(
        out.status.success(),
        "the CLI did not see the resumed deployment succeed: {}\n{}",
        text(&out),
        h.server_log()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("resuming"), "{stdout}");

    let status = h.status().await;
    let now = pids(&status);
    assert_eq!(now.len(), 3, "{now:?}");
    assert!(
        now.iter().all(|(v, p)| v == "v2" && pid_alive(*p)),
        "{now:?}"
    );
    for p in &v1_pids {
        assert!(!pid_alive(*p), "old replica {p} was left running");
    }
    let history = h.history().await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["status"], "succeeded");
    assert_eq!(history[1]["status"], "succeeded");
    let (code, version, _) = h.get("/").await;
    assert_eq!((code, version.as_str()), (200, "v2"));

    let detail: serde_json::Value = h.client().get("/v1/deployments/2").await.unwrap();
    let events: Vec<&str> = detail["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"resumed"), "{events:?}");
    assert_eq!(events.last(), Some(&"succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_serving_re_adopts_the_same_processes() {
    let mut h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let before = pids(&h.status().await);
    h.kill9_server();
    h.start_server().await;
    let after = pids(&h.status().await);
    assert_eq!(
        before, after,
        "replicas were replaced instead of re-adopted"
    );
    let (code, version, _) = h.get("/").await;
    assert_eq!((code, version.as_str()), (200, "v1"));
    // An adopted replica that dies is restarted like any other.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(after[0].1 as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let mut back = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = h.status().await;
        let r = &now["services"][0]["replicas"][0];
        if r["health"] == "healthy" && r["pid"].as_i64() != Some(after[0].1) {
            back = true;
            break;
        }
    }
    assert!(back, "an adopted replica that died was not restarted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_restart_of_the_server_brings_the_serving_release_back() {
    let mut h = Harness::start().await;
    assert!(h
        .deploy(
            "v1",
            &App {
                replicas: 2,
                ..App::default()
            }
        )
        .await
        .status
        .success());
    let pids_before: Vec<i64> = pids(&h.status().await)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    h.stop_server();
    for p in &pids_before {
        assert!(
            !pid_alive(*p),
            "a clean server stop left replica {p} running"
        );
    }
    h.start_server().await;
    let mut serving = false;
    for _ in 0..100 {
        let status = h.status().await;
        let replicas = status["services"][0]["replicas"]
            .as_array()
            .unwrap()
            .clone();
        if replicas.len() == 2
            && replicas
                .iter()
                .all(|r| r["health"] == "healthy" && r["in_rotation"] == true)
        {
            serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        serving,
        "v1 did not come back after a restart:\n{}",
        h.server_log()
    );
    assert_eq!(h.get("/").await.1, "v1");
}

/// Issue 11: a state dir written by runway before versioned migrations (a fixture made by that
/// code: v1 serving on two replicas, deployment #2 of v2 interrupted by `kill -9`) is upgraded
/// in place on the first start; the upgraded server adopts the replicas that still run (same
/// pids) and finishes the interrupted deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_dir_from_before_migrations_is_upgraded_and_resumed() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    let mut live: Vec<(i64, std::process::Child)> = Vec::new();
    let h = Harness::start_with_state(|dir, state, listen| {
        std::fs::create_dir_all(state).unwrap();
        std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700)).unwrap();
        // The fixture's v2 started slowly on purpose; here it may become healthy at once.
        let sql = include_str!("../../../runway-store/tests/fixtures/state-before-migrations.sql")
            .replace("@RUNWAY@", RUNWAY)
            .replace("@BASE_DIR@", dir.to_str().unwrap())
            .replace("@LISTEN@", &listen.to_string())
            .replace(r#","--slow-start-ms","60000""#, "");
        let db = state.join("state.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(&sql).unwrap();
        // web-1 and web-2 (v1) outlived the old server: start them, as it had, and write their
        // pids, start times and ports where that server kept them.
        for (id, version) in [(1, "v1"), (2, "v1")] {
            let port = crate::harness::free_addr().port();
            let child = std::process::Command::new(RUNWAY)
                .args([
                    "demo-app",
                    "--port",
                    &port.to_string(),
                    "--version",
                    version,
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap();
            let pid = child.id() as i32;
            let start = runway_platform_process::process::start_time(pid).unwrap();
            conn.execute(
                "UPDATE replicas SET pid = ?1, proc_start = ?2, port = ?3 WHERE id = ?4",
                rusqlite::params![pid, start as i64, port, id],
            )
            .unwrap();
            live.push((id, child));
        }
        // web-3 (v2, still starting) died with the old server.
        drop(conn);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    })
    .await;
    let old_pids: Vec<i64> = live.iter().map(|(_, c)| c.id() as i64).collect();

    // The interrupted deployment finishes: v2 serves on two replicas.
    let began = std::time::Instant::now();
    loop {
        let history = h.history().await;
        let v2 = history.iter().find(|d| d["id"] == 2).unwrap().clone();
        if v2["status"] != "running" {
            assert_eq!(v2["status"], "succeeded", "{v2}\n{}", h.server_log());
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "deployment #2 still running:\n{}",
            h.server_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(h.get("/").await.1, "v2");
    let log = h.server_log();
    assert!(
        log.contains("state database upgraded") && log.contains("re-adopting running replica"),
        "{log}"
    );
    // The adopted v1 replicas were drained and stopped by the resumed rollout, as any old
    // release's are.
    for (pid, (_, mut child)) in old_pids.iter().zip(live) {
        let exited = began.elapsed();
        while pid_alive(*pid) && exited < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.try_wait();
        assert!(!pid_alive(*pid), "v1 replica {pid} still runs");
    }
    let history = h.history().await;
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[1]["status"], "succeeded");
}
