//! The CLI and API surface: bad input, authentication, history and status shapes, rollback with
//! config, nodes, scale, logs, metrics.

use std::time::{Duration, Instant};

use crate::harness::{environ, http_get_opt, pid_alive, text, App, Harness, RUNWAY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configs_are_rejected_with_file_line_col_and_nothing_starts() {
    let h = Harness::start().await;
    let good = h.config(&App::default());
    let cases = [
        (
            good.replace("replicas = 3", "replicas = 0"),
            "replicas must be at least 1",
        ),
        (
            good.replace("deadline = \"15s\"", "deadline = \"5 minutes\""),
            "duration",
        ),
        (
            good.replace("replicas = 3", "replicas = 3\nreplica = 2"),
            "unknown key `replica`",
        ),
        (
            good.replace("replicas = 3", "replicas = \"three\""),
            "replicas",
        ),
        (
            good.replace("name = \"web\"", "name = \"web"),
            "runway.toml:",
        ),
    ];
    for (config, expected) in cases {
        std::fs::write(h.dir.path().join("runway.toml"), &config).unwrap();
        let out = h.runway(&["deploy", "v1"]).await;
        assert!(!out.status.success(), "accepted a bad config:\n{config}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected),
            "expected `{expected}` in:\n{stderr}"
        );
        let location = stderr.lines().next().unwrap_or("");
        let parts: Vec<&str> = location.splitn(4, ':').collect();
        assert!(
            parts.len() == 4
                && parts[0].ends_with("runway.toml")
                && parts[1].parse::<u32>().is_ok()
                && parts[2].parse::<u32>().is_ok(),
            "no file:line:col in `{location}`"
        );
        assert!(stderr.contains("hint"), "no hint in:\n{stderr}");
    }
    let status = h.status().await;
    assert!(
        status["services"].as_array().unwrap().is_empty(),
        "something started: {status}"
    );
    assert!(h.history().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_requests_without_the_token() {
    let h = Harness::start().await;
    let server = h.server_file();
    let api: std::net::SocketAddr = server["api"].as_str().unwrap().parse().unwrap();
    for path in ["/v1/status", "/v1/deployments", "/v1/info"] {
        assert_eq!(
            crate::harness::http_get(api, path).await.0,
            401,
            "{path} without a token"
        );
    }
    // A wrong token is refused too, and a 401 names the scheme it wants (RFC 6750).
    let (code, headers) = crate::harness::get_with_headers(
        api,
        "/v1/status",
        &[("authorization", "Bearer not-the-token")],
    )
    .await;
    assert_eq!(code, 401);
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"runway\"");
    // The scheme is case-insensitive (RFC 9110): any spelling of Bearer with the token works.
    let token = server["token"].as_str().unwrap();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let value = format!("{scheme} {token}");
        let (code, _) = crate::harness::get_with_headers(
            api,
            "/v1/status",
            &[("authorization", value.as_str())],
        )
        .await;
        assert_eq!(code, 200, "{scheme}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(h.state_path().join("server.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn without_a_server_the_cli_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(RUNWAY)
        .args(["status"])
        .env("RUNWAY_STATE_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no runway server is running")
            && stderr.contains("runway server --state-dir"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_with_shell_metacharacters_is_just_a_string() {
    let h = Harness::start().await;
    let marker = h.dir.path().join("pwned");
    let version = format!(
        "v1;touch {}$(touch {})`touch {}`",
        marker.display(),
        marker.display(),
        marker.display()
    );
    let out = h
        .deploy(
            &version,
            &App {
                replicas: 1,
                ..App::default()
            },
        )
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let (_, served, _) = h.get("/").await;
    assert_eq!(served, version);
    assert!(!marker.exists(), "the version string reached a shell");
    assert_eq!(h.history().await[0]["version"], version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_the_config_that_went_with_the_release() {
    let h = Harness::start().await;
    let with_env = |v: &str| App {
        replicas: 2,
        env: vec![("APP_ENV".into(), v.into())],
        ..App::default()
    };
    assert!(h.deploy("v1", &with_env("one")).await.status.success());
    assert!(h.deploy("v2", &with_env("two")).await.status.success());
    let env_of_replicas = |status: serde_json::Value| -> Vec<String> {
        status["services"][0]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                environ(r["pid"].as_i64().unwrap())
                    .into_iter()
                    .find(|e| e.starts_with("APP_ENV="))
                    .unwrap_or_default()
            })
            .collect()
    };
    assert_eq!(env_of_replicas(h.status().await), vec!["APP_ENV=two"; 2]);

    let out = h.runway(&["rollback"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(h.get("/").await.1, "v1");
    assert_eq!(env_of_replicas(h.status().await), vec!["APP_ENV=one"; 2]);
    let history = h.history().await;
    assert_eq!(history[0]["kind"], "rollback");
    assert_eq!(history[0]["status"], "succeeded");
    assert_eq!(history[1]["version"], "v2");
    // Records are append-only: v2's outcome stays, the rollback is recorded beside it.
    assert_eq!(history[1]["status"], "succeeded");
    assert_eq!(history[1]["rolled_back_by"], history[0]["id"]);
    for key in [
        "id",
        "service",
        "version",
        "previous_version",
        "status",
        "started_at",
        "finished_at",
        "reason",
    ] {
        assert!(history[0].get(key).is_some(), "history entry lacks `{key}`");
    }

    // Back to v2 by revision, with its own config.
    let out = h.runway(&["rollback", "--to-revision", "2"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(h.get("/").await.1, "v2");
    assert_eq!(env_of_replicas(h.status().await), vec!["APP_ENV=two"; 2]);
    // And by version.
    assert!(h.runway(&["rollback", "v1"]).await.status.success());
    assert_eq!(h.get("/").await.1, "v1");
    let out = h.runway(&["rollback", "v9"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("never served version v9"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_names_releases_replicas_and_metrics() {
    let h = Harness::start().await;
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
    for _ in 0..20 {
        assert_eq!(h.get("/").await.0, 200);
    }
    let status = h.status().await;
    let svc = &status["services"][0];
    assert_eq!(svc["name"], "web");
    assert_eq!(svc["serving"][0]["version"], "v1");
    assert!(svc["deployment"].is_null());
    for r in svc["replicas"].as_array().unwrap() {
        assert!(r["port"].as_u64().unwrap() > 0);
        assert!(r["pid"].as_i64().unwrap() > 0);
        assert_eq!(r["state"], "running");
        assert_eq!(r["health"], "healthy");
    }
    let m = &svc["metrics"][0];
    assert_eq!(m["release"], "v1");
    assert_eq!(m["requests"], 20);
    assert_eq!(m["status_2xx"], 20);
    assert!(m["latency_p99"].as_f64().unwrap() > 0.0);

    // The same numbers in Prometheus format on the metrics address.
    let server = h.server_file();
    let metrics: std::net::SocketAddr = server["metrics"].as_str().unwrap().parse().unwrap();
    let (code, _, body) = crate::harness::http_get(metrics, "/metrics").await;
    assert_eq!(code, 200);
    let line = body
        .lines()
        .find(|l| {
            l.starts_with("runway_requests_total{")
                && l.contains("release=\"v1\"")
                && l.contains("class=\"2xx\"")
        })
        .unwrap_or_else(|| panic!("no 2xx counter in:\n{body}"));
    assert!(line.ends_with(" 20"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_scale_and_logs() {
    let h = Harness::start().await;
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
    let list = h.runway(&["nodes", "list", "--json"]).await;
    let nodes: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(nodes.len(), 2);
    let first = nodes[0]["name"].as_str().unwrap().to_string();

    let out = h.runway(&["nodes", "restart", &first]).await;
    assert!(out.status.success(), "{}", text(&out));
    let names: Vec<String> = h.status().await["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(
        !names.contains(&first),
        "restart kept the old replica: {names:?}"
    );

    let second = names[0].clone();
    assert!(h.runway(&["nodes", "stop", &second]).await.status.success());
    assert_eq!(
        h.status().await["services"][0]["replicas"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let out = h.runway(&["nodes", "start", &second]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        h.status().await["services"][0]["replicas"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let before: Vec<i64> = h.status().await["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    let out = h.runway(&["scale", "--count", "4"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let after: Vec<i64> = h.status().await["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(after.len(), 4);
    assert!(
        before.iter().all(|id| after.contains(id)),
        "scaling replaced running replicas"
    );
    assert_eq!(h.history().await[0]["kind"], "scale");

    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = h.runway(&["logs", "-n", "5"]).await;
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(
        logs.contains("demo-app v1 listening on 127.0.0.1:"),
        "{}",
        text(&out)
    );
    let out = h.runway(&["logs", "--version", "v9"]).await;
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn validate_init_and_plan_work_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(RUNWAY)
            .args(args)
            .current_dir(dir.path())
            .env("RUNWAY_STATE_DIR", dir.path().join("state"))
            .output()
            .unwrap()
    };
    assert!(run(&["init"]).status.success());
    assert!(!run(&["init"]).status.success(), "init overwrote a file");
    let out = run(&["validate"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["plan", "v2"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains("start") && plan.contains("nothing was changed"),
        "{plan}"
    );
    assert!(!dir.path().join("state").exists(), "plan changed something");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_pass_through_the_proxy() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    let mut conn = tokio::net::TcpStream::connect(h.listen).await.unwrap();
    conn.write_all(
        b"GET /ws HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "wrong accept key: {head}"
    );
    conn.write_all(b"ping through runway").await.unwrap();
    let mut echo = [0u8; 19];
    tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut echo))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echo, b"ping through runway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_json_gives_one_object_per_line() {
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
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = h.runway(&["logs", "--json", "-n", "1"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let line: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["version"], "v1");
    assert!(line["replica"].as_str().unwrap().starts_with("web-"));
}

/// The README's main command, end to end: exit 0, zero failed requests, no process left behind.
#[tokio::test]
async fn the_demo_runs_clean_and_leaves_nothing_behind() {
    let out = tokio::task::spawn_blocking(|| {
        std::process::Command::new(RUNWAY)
            .arg("demo")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout.contains("requests failed:  0"), "{stdout}");
    assert!(
        stdout.contains("deploy v3 (refused)") && stdout.contains("serving now: v1"),
        "{stdout}"
    );
    let served: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("requests served:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(served > 500, "{stdout}");
    // No demo replica survives the demo: none has RUNWAY_SERVICE=demo in its environment.
    let leftovers: Vec<_> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i64>().ok())
        .filter(|pid| environ(*pid).iter().any(|e| e == "RUNWAY_SERVICE=demo"))
        .filter(|pid| crate::harness::pid_alive(*pid))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the demo left processes behind: {leftovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_run_in_the_config_dir_with_port_version_and_service_in_their_env() {
    let h = Harness::start().await;
    let app = App {
        replicas: 1,
        ..App::default()
    };
    let out = h.deploy("v1", &app).await;
    assert!(out.status.success(), "{}", text(&out));
    let replica = h.status().await["services"][0]["replicas"][0].clone();
    let pid = replica["pid"].as_i64().unwrap();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(
        cwd,
        h.dir.path().canonicalize().unwrap(),
        "replicas run in runway.toml's directory"
    );
    let env = environ(pid);
    assert!(
        env.contains(&format!("PORT={}", replica["port"])),
        "{env:?}"
    );
    assert!(env.contains(&"RUNWAY_VERSION=v1".to_string()));
    assert!(env.contains(&"RUNWAY_SERVICE=web".to_string()));

    // `[run] dir` moves it, relative to runway.toml.
    std::fs::create_dir(h.dir.path().join("sub")).unwrap();
    let config = h.config(&app).replace("[run]\n", "[run]\ndir = \"sub\"\n");
    std::fs::write(h.dir.path().join("runway.toml"), config).unwrap();
    let out = h.runway(&["deploy", "v2"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let pid = h.status().await["services"][0]["replicas"][0]["pid"]
        .as_i64()
        .unwrap();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd, h.dir.path().join("sub").canonicalize().unwrap());
}

/// Issue 10: a node of a release that no longer serves cannot be started (it would put the old
/// version back in rotation); the message says what to do instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_a_retired_release_cannot_be_started() {
    let h = Harness::start().await;
    let app = App {
        replicas: 2,
        ..App::default()
    };
    assert!(h.deploy("v1", &app).await.status.success());
    let list = h.runway(&["nodes", "list", "--json"]).await;
    let nodes: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    let old = nodes[0]["name"].as_str().unwrap().to_string();
    assert!(h.deploy("v2", &app).await.status.success());

    for action in ["start", "restart"] {
        let out = h.runway(&["nodes", action, &old]).await;
        assert!(!out.status.success(), "{action}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains("ran v1, which no longer serves (v2 does)")
                && said.contains("runway scale"),
            "{action}: {said}"
        );
    }
    // Every replica still answers v2.
    for _ in 0..20 {
        assert_eq!(h.get("/").await.1, "v2");
    }
    let replicas = h.status().await["services"][0]["replicas"].clone();
    assert!(replicas
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["version"] == "v2"));
}

/// Issue 10: `check --json` without checks prints the same shape as with them: an empty list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_json_without_checks_is_an_empty_list() {
    let h = Harness::start().await;
    let file = h.write("runway.toml", &App::default());
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "check", "--json"])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list, serde_json::json!([]));
}

/// Issue 10: the log of a node that no longer runs is still there (after a failed or replaced
/// release it is the one a user wants); an unknown node or service is an error, not silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_stopped_nodes_and_unknown_names() {
    let h = Harness::start().await;
    let one = App {
        replicas: 1,
        ..App::default()
    };
    assert!(h.deploy("v1", &one).await.status.success());
    let list = h.runway(&["nodes", "list", "--json"]).await;
    let nodes: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    let old = nodes[0]["name"].as_str().unwrap().to_string();
    assert!(h.deploy("v2", &one).await.status.success());

    let out = h.runway(&["logs", "--node", &old]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with(&format!("{old} | "))),
        "no line of the stopped node {old}: {stdout}"
    );

    let out = h.runway(&["logs", "--node", "web-9999"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no node `web-9999`"), "{}", text(&out));

    for args in [
        &["--service", "nope", "status"][..],
        &["--service", "nope", "logs"][..],
    ] {
        let out = h.runway(args).await;
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("no service `nope`"),
            "{args:?}: {}",
            text(&out)
        );
    }
}

/// Issue 10: the next deploy after `runway scale` says that it goes back to runway.toml's
/// count, and how to keep the scaled one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_after_scale_says_it_restores_the_configured_count() {
    let h = Harness::start().await;
    let one = App {
        replicas: 1,
        ..App::default()
    };
    assert!(h.deploy("v1", &one).await.status.success());
    let out = h.runway(&["scale", "--count", "3"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = h.deploy("v1", &one).await;
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("v1 serves on 3 replicas now")
            && said.contains("this deploy runs 1 replica")
            && said.contains("set replicas = 3"),
        "{said}"
    );
    // Without a scale in between, nothing to say.
    let out = h.deploy("v2", &one).await;
    assert!(!text(&out).contains("note:"), "{}", text(&out));
}

/// Issue 10: `init` names the service after its directory, and a runway.toml from another
/// directory cannot silently deploy into a service that serves from elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projects_do_not_deploy_into_one_service() {
    let h = Harness::start().await;
    let init_in = |dir: &std::path::Path| {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new(RUNWAY)
            .arg("init")
            .current_dir(dir)
            .env("RUNWAY_STATE_DIR", &h.state)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        std::fs::read_to_string(dir.join("runway.toml")).unwrap()
    };
    let written = init_in(&h.dir.path().join("Billing API"));
    assert!(written.contains("name = \"billing-api\""), "{written}");

    // The same service name from two directories.
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let elsewhere = h.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let file = elsewhere.join("runway.toml");
    std::fs::write(&file, h.config(&App::default())).unwrap();
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "deploy", "v2"])
        .await;
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("is deployed from")
            && said.contains(elsewhere.to_str().unwrap())
            && said.contains("--from-here"),
        "{said}"
    );
    assert_eq!(h.get("/").await.1, "v1");
    // Asked for explicitly, the service moves.
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "deploy", "v2", "--from-here"])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(h.get("/").await.1, "v2");
}

/// Issue 10: Ctrl-C during `runway demo` still stops the demo's server and replicas and removes
/// its temporary directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_the_demo_cleans_up() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(RUNWAY)
        .arg("demo")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // "== runway demo: state in /tmp/runway-demo-XXXX, service on http://…"
    let (tmp, stdout) = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = lines.next().unwrap().unwrap();
        let tmp = first
            .strip_prefix("== runway demo: state in ")
            .and_then(|rest| rest.split(',').next())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| panic!("unexpected first line: {first}"));
        (tmp, lines)
    })
    .await
    .unwrap();
    // Wait until replicas run (the first deploy has begun), then interrupt.
    let started = std::time::Instant::now();
    let in_tmp = |tmp: &std::path::Path| -> Vec<i64> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i64>().ok())
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(tmp))
            })
            .filter(|pid| crate::harness::pid_alive(*pid))
            .collect()
    };
    while in_tmp(&tmp).is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no demo replica started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        // Read to the end: a closed pipe would fail the demo's last prints.
        stdout.for_each(drop);
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(130));
    let left = in_tmp(&tmp);
    assert!(left.is_empty(), "the demo left processes behind: {left:?}");
    assert!(!tmp.exists(), "the demo left {} behind", tmp.display());
}

/// Issue 10: the server's own log, written to a file, has no terminal colours and no Rust debug
/// formatting, and says when each deployment started and how it ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_log_is_plain_and_tells_deployments() {
    let h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let log = h.server_log();
    assert!(!log.contains('\u{1b}'), "colour codes in a file: {log}");
    assert!(!log.contains("Some("), "debug formatting: {log}");
    assert!(log.contains("deployment started"), "{log}");
    assert!(
        log.contains("deployment ended") && log.contains("status=\"succeeded\""),
        "{log}"
    );
}

/// Issue 10: a service can be removed, so that a test service does not linger. Refused while
/// it serves unless forced; forced, its replicas stop, its address closes and it leaves
/// `status`, while its deployments stay in `history`. The name can be deployed afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_can_be_removed() {
    let h = Harness::start().await;
    let one = App {
        replicas: 1,
        ..App::default()
    };
    assert!(h.deploy("v1", &one).await.status.success());
    let pids: Vec<i64> = h.status().await["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(pids.len(), 1);

    let out = h.runway(&["service", "remove", "web"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("serves v1") && said.contains("runway service remove web --force"),
        "{said}"
    );
    assert_eq!(
        h.get("/").await.1,
        "v1",
        "a refused removal changes nothing"
    );

    let out = h.runway(&["service", "remove", "web", "--force"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("service `web` removed"),
        "{}",
        text(&out)
    );
    assert_eq!(h.status().await["services"], serde_json::json!([]));
    assert!(!pid_alive(pids[0]), "its replica still runs");
    let closed = Instant::now();
    while http_get_opt(h.listen, "/").await.is_some() {
        assert!(
            closed.elapsed() < Duration::from_secs(15),
            "still listening"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(h.history().await.len(), 1, "the records stay");
    // ... and so do the logs of its deployments.
    let out = h.runway(&["logs", "--deployment", "1"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("== replicas deployment #1 started"),
        "{}",
        text(&out)
    );

    let out = h.runway(&["service", "remove", "web"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no service named `web`"),
        "{}",
        text(&out)
    );
    let out = h.runway(&["service", "remove", "../etc"]).await;
    assert!(
        text(&out).contains("no service named `../etc`"),
        "{}",
        text(&out)
    );

    // A restarted server does not bring it back, and the name starts afresh.
    let mut h = h;
    h.stop_server();
    h.start_server().await;
    assert_eq!(h.status().await["services"], serde_json::json!([]));
    assert!(h.deploy("v2", &one).await.status.success());
    assert_eq!(h.get("/").await.1, "v2");
}

/// Issue 10: inside a project directory `status` is about that project's service; `--all`
/// shows every service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_inside_a_project_shows_its_service() {
    let h = Harness::start().await;
    let one = App {
        replicas: 1,
        ..App::default()
    };
    assert!(h.deploy("v1", &one).await.status.success());
    let project = h.dir.path().join("billing");
    std::fs::create_dir_all(&project).unwrap();
    let other = h
        .config(&one)
        .replace("name = \"web\"", "name = \"billing\"");
    std::fs::write(project.join("runway.toml"), other).unwrap();
    let in_project = |args: &[&str]| {
        std::process::Command::new(RUNWAY)
            .args(args)
            .current_dir(&project)
            .env("RUNWAY_STATE_DIR", &h.state)
            .output()
            .unwrap()
    };
    let out = in_project(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("service `billing`")
            && said.contains("not deployed")
            && said.contains("--all"),
        "{said}"
    );
    assert!(!said.contains("v1"), "{said}");
    let out = in_project(&["status", "--all"]);
    assert!(text(&out).contains("v1"), "{}", text(&out));
    let out = in_project(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["services"], serde_json::json!([]));
    // `history` too: the project's deployments, or with --all everyone's.
    let out = in_project(&["history", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json, serde_json::json!([]));
    let out = in_project(&["history", "--json", "--all"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1, "{json}");
    // The project of the running service: that one.
    std::fs::write(project.join("runway.toml"), h.config(&one)).unwrap();
    let out = in_project(&["status"]);
    assert!(text(&out).contains("v1"), "{}", text(&out));
}

/// Issue 10: after a failed deploy, the logs of its replicas (which no longer run) are
/// reachable by version and by deployment; a version or deployment the service never had is
/// an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_a_failed_release_by_version_and_deployment() {
    let h = Harness::start().await;
    let one = App {
        replicas: 1,
        ..App::default()
    };
    assert!(h.deploy("v1", &one).await.status.success());
    let bad = App {
        deadline: "2s",
        ..one.clone()
    }
    .args(&["--fail-health"]);
    assert!(!h.deploy("v2", &bad).await.status.success());
    let failed = h.history().await[0]["id"].as_i64().unwrap();
    let failed = failed.to_string();

    let out = h.runway(&["logs", "--version", "v2", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty(), "no line of v2's stopped replica");
    assert!(lines.iter().all(|l| l["version"] == "v2"), "{lines:?}");

    let out = h.runway(&["logs", "--deployment", &failed]).await;
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    let started = said
        .lines()
        .find_map(|l| l.strip_prefix(&format!("== replicas deployment #{failed} started: ")))
        .unwrap_or_else(|| panic!("{said}"))
        .to_string();
    assert!(
        said.lines()
            .any(|l| l.starts_with(&format!("{started} | "))),
        "{said}"
    );

    for (args, expected) in [
        (vec!["logs", "--version", "v9"], "no replica of v9"),
        (vec!["logs", "--deployment", "999"], "no deployment #999"),
        (
            vec!["logs", "--deployment", "1", "--follow"],
            "cannot be used with",
        ),
    ] {
        let out = h.runway(&args).await;
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
    }
}

/// Issue 10: a deployment in progress shows its version, kind and start in `status --json`; a
/// service that never served shows its last failure; `history` fits 100 columns with times
/// to the second, however long the reasons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_what_runs_and_what_failed_and_history_fits() {
    let h = Harness::start().await;
    let bad = App {
        replicas: 1,
        deadline: "3s",
        ..App::default()
    }
    .args(&["--fail-health"]);
    let file = h.write("bad.toml", &bad);
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "deploy", "v1", "--detach"])
        .await;
    assert!(out.status.success(), "{}", text(&out));

    let begun = Instant::now();
    let running = loop {
        let status = h.status().await;
        let d = status["services"][0]["deployment"].clone();
        if !d.is_null() {
            break d;
        }
        assert!(begun.elapsed() < Duration::from_secs(10), "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(running["version"], "v1", "{running}");
    assert_eq!(running["kind"], "deploy", "{running}");
    let started = running["started_at"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(started, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{started}"
    );

    while !h.status().await["services"][0]["deployment"].is_null() {
        assert!(begun.elapsed() < Duration::from_secs(30), "still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = h.status().await;
    let failure = &status["services"][0]["last_failure"];
    assert_eq!(failure["version"], "v1", "{status}");
    assert_eq!(failure["status"], "failed", "{status}");
    let out = h.runway(&["status"]).await;
    let said = text(&out);
    assert!(
        said.contains("serving nothing yet")
            && said.contains("last deploy #")
            && said.contains("of v1 failed at")
            && said.contains("not healthy within 3s")
            && said.contains("runway logs --deployment"),
        "{said}"
    );

    let out = h.runway(&["history"]).await;
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    for line in shown.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} wide: {line}",
            line.chars().count()
        );
    }
    let today = time::OffsetDateTime::now_utc().date();
    let stamp = format!(
        "{:04}-{:02}-{:02} ",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    let row = shown
        .lines()
        .find(|l| l.contains(&stamp))
        .unwrap_or_else(|| panic!("{shown}"));
    let at = &row[row.find(&stamp).unwrap()..][..19];
    assert!(
        at.as_bytes()[13] == b':' && at.as_bytes()[16] == b':' && !row.contains(&format!("{at}.")),
        "not to the second: {row}"
    );
}

/// Issue 11: every API error is JSON with a stable code, the HTTP status, a message and a hint
/// (also the errors no handler made: an unknown route, a body that is not JSON); the CLI exits
/// by the code, with the documented statuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_a_contract_of_codes_and_exit_statuses() {
    use crate::harness::api_request;
    let h = Harness::start().await;
    let server = h.server_file();
    let api: std::net::SocketAddr = server["api"].as_str().unwrap().parse().unwrap();
    let token = server["token"].as_str().unwrap();
    for (method, path, body, token, status, code) in [
        ("GET", "/v1/status", "", None, 401, "unauthorized"),
        (
            "GET",
            "/v1/no-such-route",
            "",
            Some(token),
            404,
            "not_found",
        ),
        (
            "GET",
            "/v1/deployments/999",
            "",
            Some(token),
            404,
            "not_found",
        ),
        (
            "POST",
            "/v1/deployments",
            "this is not json",
            Some(token),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/deployments",
            "{\"version\": 1}",
            Some(token),
            422,
            "invalid_request",
        ),
    ] {
        let (got, answer) = api_request(api, method, path, body, token).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        assert_eq!(answer["code"], code, "{method} {path}: {answer}");
        assert_eq!(answer["status"], status, "{method} {path}: {answer}");
        assert!(
            !answer["message"].as_str().unwrap_or("").is_empty()
                && !answer["hint"].as_str().unwrap_or("").is_empty(),
            "{method} {path}: {answer}"
        );
    }

    // The CLI's exit statuses follow the codes.
    let one = App {
        replicas: 1,
        ..App::default()
    };
    assert!(h.deploy("v1", &one).await.status.success());
    let slow = App {
        replicas: 1,
        deadline: "20s",
        ..App::default()
    }
    .args(&["--slow-start-ms", "3000"]);
    let file = h.write("slow.toml", &slow);
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "deploy", "v2", "--detach"])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = h
        .runway(&["scale", "--count", "2", "--service", "web"])
        .await;
    assert_eq!(out.status.code(), Some(4), "busy: {}", text(&out));
    assert!(
        text(&out).contains("is busy with") && text(&out).contains("hint:"),
        "{}",
        text(&out)
    );
    let out = h.runway(&["history", "--service", "nope"]).await;
    assert_eq!(out.status.code(), Some(3), "not found: {}", text(&out));
    let out = h.runway(&["logs", "--deployment", "999"]).await;
    assert_eq!(out.status.code(), Some(3), "not found: {}", text(&out));
    let too_long = "v".repeat(200);
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "deploy", &too_long])
        .await;
    assert_eq!(out.status.code(), Some(2), "invalid: {}", text(&out));
    let empty = h.dir.path().join("no-server");
    let out = h
        .runway(&["status", "--state-dir", empty.to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(5), "no server: {}", text(&out));
}
