//! Issue 14 through the real server and CLI: deployment types, a freeze, an admin's override,
//! approvals by other identities (their tokens), a rejection, a lock, and a waiting deployment
//! that survives a server restart. The calendar's corner cases (daylight saving, the year
//! boundary, quarter ends, a window closing while a deployment waits) run on a clock the test
//! sets, in crates/runway-calendar and crates/runway-engine/tests/policy.rs.

use std::process::{Command, Output};

use super::harness::*;

struct People {
    dee: String,
    abe: String,
    amy: String,
    ada: String,
    vic: String,
}

async fn token(h: &Harness, name: &str, role: &str) -> String {
    let out = h.runway(&["tokens", "create", name, "--role", role]).await;
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn people(h: &Harness) -> People {
    People {
        dee: token(h, "dee", "deployer").await,
        abe: token(h, "abe", "approver").await,
        amy: token(h, "amy", "approver").await,
        ada: token(h, "ada", "admin").await,
        vic: token(h, "vic", "viewer").await,
    }
}

async fn as_(h: &Harness, token: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(RUNWAY);
    cmd.args(args)
        .current_dir(h.dir.path())
        .env("RUNWAY_STATE_DIR", &h.state)
        .env("RUNWAY_TOKEN", token);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// runway.toml (in the test dir) for the demo app with `policy` after it.
fn write_config(h: &Harness, policy: &str) {
    let one = App {
        replicas: 1,
        ..App::default()
    };
    std::fs::write(
        h.dir.path().join("runway.toml"),
        format!("{}\n{policy}", h.config(&one)),
    )
    .unwrap();
}

const TYPES: &str = r#"
[types.standard]
approvals = 2

[types.hotfix]
approvals = 1

[types.emergency]
approvals = 1
approvers = ["admin"]
skip_checks = ["*"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_an_override_and_an_approval_through_the_cli() {
    let h = Harness::start().await;
    let p = people(&h).await;
    let today = time::OffsetDateTime::now_utc().date();
    let day = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
    let (yesterday, tomorrow) = (
        day(today.previous_day().unwrap()),
        day(today.next_day().unwrap()),
    );
    let after = day(today.next_day().unwrap().next_day().unwrap());
    write_config(
        &h,
        &format!(
            "{TYPES}\n[[deploy.freeze]]\nname = \"launch\"\nfrom = \"{yesterday}\"\nto = \"{tomorrow}\"\nexcept = [\"emergency\"]\n"
        ),
    );

    // The freeze refuses a deployer, naming the rule and when it opens; nothing is recorded.
    let out = as_(&h, &p.dee, &["deploy", "v1", "--type", "hotfix"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("freeze `launch` ({yesterday} to {tomorrow})"))
            && said.contains("the next window opens")
            && said.contains(&after),
        "{said}"
    );
    assert!(h.history().await.is_empty());
    // `runway windows` says the same.
    let out = h
        .runway(&["windows", "--type", "hotfix", "--days", "5"])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        shown.contains("may not start now: freeze `launch`") && shown.contains(&after),
        "{shown}"
    );
    let out = h
        .runway(&["windows", "--type", "emergency", "--json"])
        .await;
    let calendar: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        calendar["open"], true,
        "emergency is the freeze's exception: {calendar}"
    );

    // A deployer cannot override; an admin can, with a reason, and it still needs approval.
    let out = as_(
        &h,
        &p.dee,
        &[
            "deploy",
            "v1",
            "--type",
            "hotfix",
            "--override",
            "--reason",
            "x",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let out = as_(
        &h,
        &p.ada,
        &[
            "deploy",
            "v1",
            "--type",
            "hotfix",
            "--override",
            "--reason",
            "launch blocker",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.contains("waits for 1 approval by approver or admin"),
        "{said}"
    );
    assert!(said.contains("runway approve 1"), "{said}");

    // Anyone may see what waits; a viewer may not approve.
    let out = as_(&h, &p.vic, &["approvals", "--json"]).await;
    let waiting: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(waiting[0]["deployment"]["id"], 1, "{waiting}");
    assert_eq!(waiting[0]["deployment"]["status"], "awaiting_approval");
    assert_eq!(waiting[0]["needed"], 1);
    let out = as_(&h, &p.vic, &["approve", "1"]).await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));

    // abe approves: it starts and the CLI follows it to the end.
    let out = as_(&h, &p.abe, &["approve", "1"]).await;
    assert!(out.status.success(), "approve: {}", text(&out));
    let said = text(&out);
    assert!(said.contains("approved (1 of 1)"), "{said}");
    assert!(
        said.contains("OVERRIDDEN by ada (launch blocker)"),
        "{said}"
    );
    let history = h.history().await;
    assert_eq!(history[0]["status"], "succeeded", "{history:#?}");
    assert_eq!(history[0]["requested_by"], "ada");
    assert_eq!(history[0]["deploy_type"], "hotfix");
    let out = h.runway(&["logs", "--deployment", "1"]).await;
    assert!(out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_are_others_a_rejection_ends_it_a_lock_holds_and_waiting_survives_a_restart() {
    let mut h = Harness::start().await;
    let p = people(&h).await;
    write_config(&h, TYPES);

    let out = as_(&h, &p.dee, &["deploy", "v1", "--reason", "first"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("waits for 2 approvals"));
    // Not their own.
    let out = as_(&h, &p.dee, &["approve", "1"]).await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let out = as_(&h, &p.abe, &["approve", "1"]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 of 2"),
        "{}",
        text(&out)
    );
    // A rejection ends it.
    let out = as_(
        &h,
        &p.amy,
        &["reject", "1", "--reason", "not before the demo"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let history = h.history().await;
    assert_eq!(history[0]["status"], "failed");
    assert_eq!(history[0]["reason"], "rejected by amy: not before the demo");

    // A lock holds every deploy, names who and why, and goes with unlock.
    let out = as_(&h, &p.dee, &["lock", "--reason", "INC-9: payments"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = as_(&h, &p.dee, &["deploy", "v2"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("INC-9: payments") && text(&out).contains("dee"),
        "{}",
        text(&out)
    );
    let out = as_(&h, &p.dee, &["unlock"]).await;
    assert!(out.status.success(), "{}", text(&out));

    // A waiting deployment survives a restart, with its approvals.
    let out = as_(&h, &p.dee, &["deploy", "v2"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = as_(&h, &p.abe, &["approve", "2", "--detach"]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 of 2"),
        "{}",
        text(&out)
    );
    h.stop_server();
    h.start_server().await;
    let out = as_(&h, &p.amy, &["approve", "2"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("approved (2 of 2)"), "{}", text(&out));
    let history = h.history().await;
    assert_eq!(history[0]["version"], "v2");
    assert_eq!(history[0]["status"], "succeeded", "{history:#?}");
    let out = as_(&h, &p.vic, &["approvals"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("no deployment waits"));

    // The policy in force judges: a deployer's runway.toml that drops the approvals is refused,
    // an admin's is deployed (and then holds for everyone).
    write_config(&h, "[types.standard]\napprovals = 0\n");
    let out = as_(&h, &p.dee, &["deploy", "v3"]).await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        text(&out).contains("changes the deploy policy"),
        "{}",
        text(&out)
    );
    let out = as_(&h, &p.ada, &["deploy", "v3"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(h.history().await[0]["status"], "succeeded");
    // A deployer's lock is lifted by them or an admin, not by another deployer... here by ada.
    let out = as_(&h, &p.dee, &["lock", "--reason", "launch"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = as_(&h, &p.ada, &["unlock"]).await;
    assert!(out.status.success(), "{}", text(&out));
}
