//! docs/json.md against what the commands print: every documented field of a shape is printed,
//! and every printed field is documented. A doc that lies is a bug.

use std::collections::{BTreeMap, BTreeSet};

use crate::harness::{text, App, Harness, RUNWAY};

/// The documented fields of each `### Type` table of docs/json.md.
pub(crate) fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let doc = include_str!("../../../../docs/json.md");
    let mut shapes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        if let Some(name) = line.strip_prefix("### ") {
            current = Some(name.trim().to_string());
        } else if line.starts_with("## ") {
            current = None;
        } else if let (Some(shape), Some(row)) = (&current, line.strip_prefix("| `")) {
            if let Some((field, _)) = row.split_once('`') {
                shapes
                    .entry(shape.clone())
                    .or_default()
                    .insert(field.to_string());
            }
        }
    }
    shapes
}

#[track_caller]
pub(crate) fn assert_shape(
    shapes: &BTreeMap<String, BTreeSet<String>>,
    shape: &str,
    printed: &serde_json::Value,
    optional: &[&str],
) {
    let documented = shapes
        .get(shape)
        .unwrap_or_else(|| panic!("docs/json.md has no ### {shape}"));
    let keys: BTreeSet<String> = printed
        .as_object()
        .unwrap_or_else(|| panic!("{shape} is not an object: {printed}"))
        .keys()
        .cloned()
        .collect();
    let undocumented: Vec<&String> = keys.difference(documented).collect();
    let missing: Vec<&String> = documented
        .difference(&keys)
        .filter(|k| !optional.contains(&k.as_str()))
        .collect();
    assert!(
        undocumented.is_empty() && missing.is_empty(),
        "{shape}: printed but not documented {undocumented:?}, documented but not printed \
         {missing:?}\n{printed:#}"
    );
}

/// Issue 10: one documented shape per read command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_output_has_the_documented_shape() {
    let shapes = documented();
    let h = Harness::start().await;
    let one = App {
        replicas: 1,
        ..App::default()
    };
    assert!(h.deploy("v1", &one).await.status.success());
    let _ = h.get("/").await;

    let status = h.status().await;
    assert_shape(&shapes, "StatusView", &status, &["store_fault"]);
    let service = &status["services"][0];
    // A process service has no pods (see kubernetes.rs for a cluster's).
    assert_shape(
        &shapes,
        "ServiceView",
        service,
        &["pods", "pods_error", "locked"],
    );
    // A locked service says by whom, why and since when.
    let out = h
        .runway(&["lock", "--reason", "release freeze", "--service", "web"])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let locked = h.status().await["services"][0]["locked"].clone();
    assert_eq!(locked["reason"], "release freeze", "{locked}");
    assert_eq!(locked["by"], "bootstrap-admin", "{locked}");
    assert!(locked["since"].is_string(), "{locked}");
    let out = h.runway(&["unlock", "--service", "web"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_shape(&shapes, "ReleaseView", &service["serving"][0], &[]);
    assert_shape(&shapes, "ReplicaView", &service["replicas"][0], &[]);
    assert_shape(&shapes, "ReleaseMetrics", &service["metrics"][0], &[]);
    assert_shape(&shapes, "RefusedCounts", &service["refused"], &[]);
    assert_shape(&shapes, "ClientErrorCounts", &service["client_errors"], &[]);

    let history = h.history().await;
    assert_shape(
        &shapes,
        "Deployment",
        &history[0],
        &[
            "request_reason",
            "rolled_back_by",
            "commit",
            "commit_time",
            "secret_versions",
        ],
    );

    // A deployment that waits for approval, with one approval.
    let mut with_types = h.config(&one);
    with_types.push_str("\n[types.standard]\napprovals = 2\n");
    std::fs::write(h.dir.path().join("waits.toml"), with_types).unwrap();
    let out = h
        .runway(&["-f", "waits.toml", "deploy", "v2", "--reason", "why"])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = h
        .runway(&["tokens", "create", "abe", "--role", "approver", "--json"])
        .await;
    let abe: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut approve = std::process::Command::new(RUNWAY);
    approve
        .args(["approve", "2", "--detach"])
        .env("RUNWAY_STATE_DIR", &h.state)
        .env("RUNWAY_TOKEN", abe["token"].as_str().unwrap());
    let out = approve.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = h.runway(&["approvals", "--json"]).await;
    let waiting: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_shape(&shapes, "ApprovalView", &waiting[0], &[]);
    assert_shape(
        &shapes,
        "Deployment",
        &waiting[0]["deployment"],
        &["rolled_back_by", "commit", "commit_time", "secret_versions"],
    );
    assert_shape(
        &shapes,
        "ApprovalRow",
        &waiting[0]["approvals"][0],
        &["reason"],
    );

    let out = h
        .runway(&["tokens", "create", "alice", "--role", "approver", "--json"])
        .await;
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_shape(&shapes, "CreatedToken", &created, &[]);
    h.runway(&["tokens", "revoke", "alice"]).await;
    let out = h.runway(&["tokens", "list", "--json"]).await;
    let tokens: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let alice = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "alice")
        .unwrap();
    assert_shape(&shapes, "TokenView", alice, &[]);
    let out = h.runway(&["whoami", "--json"]).await;
    let me: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_shape(&shapes, "Identity", &me, &[]);

    let out = h.runway(&["nodes", "list", "--json"]).await;
    let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_shape(&shapes, "ReplicaView", &nodes[0], &[]);

    // Streams: one object per line.
    let out = h.runway(&["logs", "--json", "-n", "3"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!stdout.trim().is_empty(), "no log line");
    for line in stdout.lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_shape(&shapes, "LogLine", &line, &["hook"]);
    }

    // Lists are arrays, `[]` when empty.
    for args in [
        &["backups", "--json"][..],
        &["check", "history", "--json"],
        &["check", "--json", "-f", "runway-v1.toml"],
    ] {
        let out = h.runway(args).await;
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out)));
        assert_eq!(printed, serde_json::json!([]), "{args:?}");
    }

    // Secrets and flags (issue 17).
    let out = h
        .runway_with_input(&["secrets", "set", "API_KEY", "--service", "web"], "k-1")
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = h
        .runway(&["secrets", "list", "--json", "--service", "web"])
        .await;
    let secrets: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_shape(&shapes, "SecretView", &secrets[0], &["serving_version"]);
    let out = h
        .runway(&[
            "flags",
            "set",
            "new-ui",
            "--on",
            "--percent",
            "5",
            "--service",
            "web",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = h
        .runway(&["flags", "list", "--json", "--service", "web"])
        .await;
    let flags: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_shape(&shapes, "FlagView", &flags[0], &["rollout"]);
    assert_shape(&shapes, "Flag", &flags[0]["definition"], &["rules"]);
    let history = h.history().await;
    assert_eq!(history[0]["kind"], "flag");
}
