//! `runway secrets`: set before the first deployment, used by a release, rotated under load
//! (the serving replicas roll with the new value, no request lost), brought back by a
//! rollback, and nowhere to be read: not in any output, log, API answer or file of the state
//! dir.

use std::path::Path;
use std::time::Duration;

use runway_demo_app::load::Load;

use crate::harness::{api_request, environ, text, App, Harness};

const FIRST: &str = "postgres://app:Zq7-first-S3CRET@db:5432/app";
const SECOND: &str = "postgres://app:Zq7-second-S3CRET@db:5432/app";
/// What must never be found (the values' distinctive parts).
const NEEDLES: [&str; 2] = ["Zq7-first-S3CRET", "Zq7-second-S3CRET"];

/// The DATABASE_URL each replica serving now runs with.
async fn replica_values(h: &Harness) -> Vec<String> {
    let status = h.status().await;
    status["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["in_rotation"] == true)
        .map(|r| {
            environ(r["pid"].as_i64().unwrap())
                .into_iter()
                .find_map(|e| e.strip_prefix("DATABASE_URL=").map(str::to_string))
                .unwrap_or_default()
        })
        .collect()
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if path.is_file() {
            // A socket (the server's handover.sock) holds no bytes to read.
            out.push(path);
        }
    }
}

fn assert_not_in(what: &str, bytes: &[u8]) {
    for needle in NEEDLES {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the secret's value is in {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_is_set_used_rotated_under_load_rolled_back_and_never_shown() {
    let h = Harness::start().await;
    let mut outputs = String::new();
    let mut say = |out: &std::process::Output| {
        outputs.push_str(&text(out));
        text(out)
    };

    // Before the service's first deployment; the value from stdin.
    let out = h
        .runway_with_input(
            &["secrets", "set", "DATABASE_URL", "--service", "web"],
            &format!("{FIRST}\n"),
        )
        .await;
    let shown = say(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("version 1"), "{shown}");
    // Never from the command line.
    let out = h
        .runway(&[
            "secrets",
            "set",
            "DATABASE_URL",
            "leaked-on-argv",
            "--service",
            "web",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", say(&out));
    // Nothing on stdin is no value, and changes nothing.
    let out = h
        .runway_with_input(&["secrets", "set", "EMPTY", "--service", "web"], "")
        .await;
    assert!(!out.status.success(), "{}", say(&out));

    let app = App {
        env: vec![
            ("APP_ENV".into(), "test".into()),
            ("DATABASE_URL".into(), "secret:DATABASE_URL".into()),
        ],
        ..App::default()
    };
    let out = h.deploy("v1", &app).await;
    let shown = say(&out);
    assert!(out.status.success(), "{shown}");
    assert_eq!(replica_values(&h).await, vec![FIRST.to_string(); 3]);

    // Rotation under load: the serving replicas roll with the new value.
    let load = Load::start(h.listen, "/", 6, 300);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = h
        .runway_with_input(
            &["secrets", "set", "DATABASE_URL", "--service", "web"],
            SECOND,
        )
        .await;
    let shown = say(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("version 2"), "{shown}");
    assert!(shown.contains("secrets #2"), "{shown}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = load.stop().await;
    eprintln!(
        "rotation under load: {} requests answered, {} failed",
        seen.ok, seen.failed
    );
    assert_eq!(
        seen.failed, 0,
        "failed requests during the rotation: {:?}",
        seen.errors
    );
    assert!(
        seen.ok > 100,
        "too little load to mean anything: {}",
        seen.ok
    );
    assert_eq!(replica_values(&h).await, vec![SECOND.to_string(); 3]);

    let history = h.history().await;
    assert_eq!(history[0]["kind"], "secrets");
    assert_eq!(history[0]["status"], "succeeded");
    assert_eq!(history[0]["version"], "v1");
    assert_eq!(history[0]["secret_versions"]["DATABASE_URL"], 2);
    assert_eq!(history[1]["secret_versions"]["DATABASE_URL"], 1);
    let out = h
        .runway(&["secrets", "list", "--json", "--service", "web"])
        .await;
    let shown = say(&out);
    assert!(out.status.success(), "{shown}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["name"], "DATABASE_URL");
    assert_eq!(listed[0]["version"], 2);
    assert_eq!(listed[0]["serving_version"], 2);
    assert_eq!(listed[0]["set_by"], "bootstrap-admin");

    // A rollback brings back the versions its release ran with.
    let out = h.runway(&["rollback", "--service", "web"]).await;
    let shown = say(&out);
    assert!(out.status.success(), "{shown}");
    assert_eq!(replica_values(&h).await, vec![FIRST.to_string(); 3]);
    let history = h.history().await;
    assert_eq!(history[0]["kind"], "rollback");
    assert_eq!(history[0]["secret_versions"]["DATABASE_URL"], 1);
    let out = h.runway(&["secrets", "list", "--service", "web"]).await;
    let shown = say(&out);
    assert!(shown.contains("DATABASE_URL"), "{shown}");
    assert!(
        shown.contains("version 1"),
        "the serving release runs version 1: {shown}"
    );

    // Unsetting what the serving release uses is refused.
    let out = h
        .runway(&["secrets", "unset", "DATABASE_URL", "--service", "web"])
        .await;
    let shown = say(&out);
    assert!(!out.status.success(), "{shown}");
    assert!(shown.contains("uses secret:DATABASE_URL"), "{shown}");

    // Nowhere: outputs, API answers, the server's log, every file of the state dir.
    let server = h.server_file();
    let api = server["api"].as_str().unwrap().parse().unwrap();
    let token = server["token"].as_str().unwrap();
    let mut answers = String::new();
    for path in [
        "/v1/status".to_string(),
        "/v1/deployments".to_string(),
        "/v1/services/web/secrets".to_string(),
        "/v1/audit".to_string(),
        "/v1/deliveries".to_string(),
    ]
    .into_iter()
    .chain((1..=3).map(|id| format!("/v1/deployments/{id}")))
    .chain((1..=3).map(|id| format!("/v1/deployments/{id}/hooks")))
    {
        let (status, answer) = api_request(api, "GET", &path, "", Some(token)).await;
        assert_eq!(status, 200, "{path}: {answer}");
        answers.push_str(&answer.to_string());
    }
    assert!(
        answers.contains("\"kind\":\"secrets\""),
        "the API shows the rotation"
    );
    assert_not_in("the API's answers", answers.as_bytes());
    assert_not_in("the CLI's output", outputs.as_bytes());
    assert_not_in("the server's log", h.server_log().as_bytes());
    let mut files = Vec::new();
    files_under(h.state_path(), &mut files);
    assert!(files.iter().any(|f| f.ends_with("state.db")));
    for file in &files {
        assert_not_in(&file.display().to_string(), &std::fs::read(file).unwrap());
    }
}
