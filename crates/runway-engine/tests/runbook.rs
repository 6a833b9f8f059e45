//! The runbook around the traffic shift, on fakes: the preflight and verify checks gate a
//! deployment, the backup and the migration run once and in order before the new release
//! starts, a failed migration changes nothing, and a rollback gives the old release its
//! traffic back before the migration's undo runs.

mod common;

use common::{all, Harness};
use runway_engine::tasks::Outcome;
use runway_wire::record::Status;
use runway_wire::Event;

const ROLLING: &str = "[strategy]\nkind = \"rolling\"\n";

const HOOKS: &str = r#"
[strategy]
kind = "rolling"

[hooks.backup]
command = ["backup-db"]
verify = ["verify-backup"]

[hooks.migrate]
command = ["migrate", "up"]
undo = ["migrate", "down"]
"#;

fn position(events: &[Event], what: &str, matches: impl Fn(&Event) -> bool) -> usize {
    events
        .iter()
        .position(matches)
        .unwrap_or_else(|| panic!("no {what} in {events:#?}"))
}

#[tokio::test(start_paused = true)]
async fn a_failing_preflight_check_refuses_the_deployment_before_anything_changes() {
    let h = Harness::new();
    let engine = h.engine();
    let spec = format!(
        "{ROLLING}\n[[checks]]\nname = \"db\"\nkind = \"tcp\"\naddress = \"db.internal:5432\"\nphases = [\"preflight\"]\n"
    );
    h.deploy_and_wait(&engine, "v1", h.spec(&spec)).await;
    h.fakes.checks.fail("db", Some("connection refused"));
    let starts = h.fakes.platform.starts().len();

    let d = h.deploy_and_wait(&engine, "v2", h.spec(&spec)).await;
    assert_eq!(d.status, Status::Failed);
    let reason = d.reason.unwrap_or_default();
    assert!(
        reason.contains("preflight checks failed: db: connection refused"),
        "{reason}"
    );
    assert!(h.events(d.id).iter().any(|e| matches!(
        e,
        Event::Failed {
            before_change: Some(true),
            ..
        }
    )));
    assert_eq!(h.fakes.platform.starts().len(), starts, "nothing started");
    assert_eq!(h.running(), all("v1", 3));
}

#[tokio::test(start_paused = true)]
async fn a_failing_verify_check_keeps_the_new_release_out_of_rotation() {
    let h = Harness::new();
    let engine = h.engine();
    let spec = format!(
        "{ROLLING}\n[[checks]]\nname = \"ready\"\nkind = \"http\"\nurl = \"http://{{replica}}/health\"\nphases = [\"verify\"]\n"
    );
    h.deploy_and_wait(&engine, "v1", h.spec(&spec)).await;
    h.fakes.checks.fail("ready", Some("answered 500"));

    let d = h.deploy_and_wait(&engine, "v2", h.spec(&spec)).await;
    assert_eq!(d.status, Status::Failed);
    assert!(d.reason.unwrap_or_default().contains("answered 500"));
    let routed_v2 = h
        .events(d.id)
        .iter()
        .any(|e| matches!(e, Event::ReplicaRouted { version, .. } if version == "v2"));
    assert!(!routed_v2, "a replica that failed verify never got traffic");
    assert_eq!(h.running(), all("v1", 3));
    assert!(h.fakes.checks.ran().iter().any(|name| name == "ready"));
}

#[tokio::test(start_paused = true)]
async fn backup_then_migration_run_once_with_the_new_release_before_it_starts() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(HOOKS)).await;
    let before = h.fakes.tasks.runs().len();

    let d = h.deploy_and_wait(&engine, "v2", h.spec(HOOKS)).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    let runs = &h.fakes.tasks.runs()[before..];
    let programs: Vec<&str> = runs.iter().map(|r| r.argv[0].as_str()).collect();
    assert_eq!(programs, ["backup-db", "verify-backup", "migrate"]);
    for run in runs {
        assert_eq!(
            run.version, "v2",
            "tasks run with the release being deployed"
        );
        assert_eq!(
            run.env.get("RUNWAY_VERSION").map(String::as_str),
            Some("v2")
        );
    }
    assert!(runs[0].env.contains_key("RUNWAY_BACKUP_DIR"));
    let events = h.events(d.id);
    let migrated = position(
        &events,
        "the migration",
        |e| matches!(e, Event::HookFinished { phase, outcome, .. } if phase == "migrate" && outcome == "ok"),
    );
    let first_new = position(
        &events,
        "a v2 replica",
        |e| matches!(e, Event::ReplicaStarting { version, .. } if version == "v2"),
    );
    assert!(migrated < first_new, "the schema first, then the code");
    assert_eq!(h.running(), all("v2", 3));
}

#[tokio::test(start_paused = true)]
async fn a_failed_migration_fails_the_deployment_with_nothing_switched() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(HOOKS)).await;
    h.fakes.tasks.answer(
        "migrate",
        Outcome::Failed,
        "exited with status 1",
        "relation \"users\" already exists",
    );
    let starts = h.fakes.platform.starts().len();

    let d = h.deploy_and_wait(&engine, "v2", h.spec(HOOKS)).await;
    assert_eq!(d.status, Status::Failed);
    let reason = d.reason.unwrap_or_default();
    assert!(reason.contains("migrate"), "{reason}");
    assert_eq!(
        h.fakes.platform.starts().len(),
        starts,
        "no v2 replica started"
    );
    assert_eq!(h.running(), all("v1", 3));
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
}

#[tokio::test(start_paused = true)]
async fn a_rollback_gives_the_old_release_its_traffic_back_then_runs_the_undo() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(HOOKS)).await;
    h.deploy_and_wait(&engine, "v2", h.spec(HOOKS)).await;

    let back = engine
        .rollback(
            "web",
            &runway_wire::api::RollbackRequest::default(),
            "tester",
        )
        .await
        .expect("rollback starts");
    let back = h.finished(&engine, back.id).await;
    assert_eq!(back.status, Status::Succeeded, "{:?}", back.reason);
    let events = h.events(back.id);
    let last_v2_stopped = events
        .iter()
        .rposition(|e| matches!(e, Event::ReplicaStopped { version, .. } if version == "v2"))
        .expect("v2 stopped");
    let undo = position(&events, "the undo", |e| {
        matches!(e, Event::UndoStarted { .. })
    });
    assert!(
        last_v2_stopped < undo,
        "v1 serves alone before the schema goes back"
    );
    let last = h.fakes.tasks.runs().last().cloned().expect("tasks ran");
    assert_eq!(last.argv, ["migrate", "down"]);
    assert_eq!(h.running(), all("v1", 3));
}
