//! The state store refusing writes in the middle of a canary (store_faults.rs): the rollout
//! stops and goes back to the stable release, its outcome is held and shown, nothing new
//! starts, and once the store takes writes again everything held is written, in order, with
//! the times it happened. On fakes and the real store, which refuses writes here as a
//! filesystem gone read-only does; crates/runway/tests/e2e/full_disk.rs fills a real disk.

mod common;

use runway_wire::api::DeployRequest;
use std::time::Duration;

use common::{all, healthy_traffic, Harness};
use runway_engine::records::Records;
use runway_engine::EngineError;
use runway_wire::record::Status;
use runway_wire::Event;

const CANARY: &str = r#"
[strategy]
kind = "canary"
steps = [{ weight = 10, pause = "manual" }, { weight = 100 }]

[analysis]
interval = "10s"
"#;

const ROLLING: &str = "[strategy]\nkind = \"rolling\"\n";

#[tokio::test(start_paused = true)]
async fn a_store_that_refuses_writes_stops_the_canary_and_everything_held_is_written_after() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(CANARY)).await;
    h.router().script("v1", healthy_traffic());
    h.router().script("v2", healthy_traffic());
    let id = h.deploy(&engine, "v2", h.spec(CANARY)).await;
    h.journaled(&engine, id, |e| matches!(e, Event::CanaryStep { .. }))
        .await;
    let written_before = h.events(id).len();

    h.store.refuse_writes(true).unwrap();
    // The next analysis interval's entry is refused: the fault begins there.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let fault = engine.store_fault().expect("the fault is seen");
    assert!(fault.error.contains("readonly"), "{fault:?}");
    assert!(fault.held_writes >= 1);

    // The canary went back: v1 alone serves, v2's instances are gone.
    h.operation_stopped(&engine).await;
    assert_eq!(h.running(), all("v1", 3));
    assert_eq!(h.router().endpoints().get("v2"), None);
    // The store still says running; what the engine shows is the held outcome.
    assert_eq!(h.deployment(id).status, Status::Running);
    let shown = engine.deployment(id).unwrap().unwrap();
    assert_eq!(shown.status, Status::RolledBack);
    let reason = shown.reason.unwrap();
    assert!(
        reason.starts_with("the state store refused a write"),
        "{reason}"
    );
    assert!(!reason.contains("aborted by an operator"), "{reason}");
    let status = engine.status().await.unwrap();
    assert!(status.store_fault.is_some());
    assert_eq!(
        status.services[0].last_failure.as_ref().map(|d| d.status),
        Some(Status::RolledBack)
    );
    assert_eq!(h.events(id).len(), written_before, "nothing half-written");

    // Nothing new starts while the store refuses writes.
    let base_dir = h.dir.path().to_string_lossy().to_string();
    let refused = engine
        .deploy(
            DeployRequest::new("v3", h.spec(CANARY), &base_dir),
            "tester",
        )
        .await
        .expect_err("a deploy is refused");
    assert!(matches!(refused, EngineError::Unavailable(_)), "{refused}");
    assert_eq!(refused.code(), runway_wire::ErrorCode::Unavailable);

    // Space returns: within a retry everything held is written, in order (the journal's
    // entries, and the outcome, which is no entry).
    let held = engine.store_fault().unwrap().held_writes as usize;
    h.store.refuse_writes(false).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(engine.store_fault().is_none(), "the fault is over");
    let d = h.deployment(id);
    assert_eq!(d.status, Status::RolledBack);
    assert_eq!(d.reason.as_deref(), Some(reason.as_str()));
    let events = h.events(id);
    assert_eq!(events.len(), written_before + held - 1, "{events:#?}");
    let tail: Vec<&str> = events[written_before..]
        .iter()
        .filter_map(|e| match e {
            Event::RollingBack { .. } => Some("rolling-back"),
            Event::Reverted { .. } => Some("reverted"),
            _ => None,
        })
        .collect();
    assert_eq!(tail, ["rolling-back", "reverted"]);
    // The entries keep the times they happened at, before the store took them.
    let entries = h.store.journal_since(id, 0).unwrap();
    let last = entries.last().unwrap();
    assert!(d.finished_at.as_deref().unwrap() >= last.at.as_str());
    assert_eq!(h.serving_version().as_deref(), Some("v1"));

    // And the next deployment runs as ever.
    let d = h.deploy_and_wait(&engine, "v3", h.spec(ROLLING)).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
}

/// `runway pause` (or promote, abort) whose journal entry is the first write the store
/// refuses: the command returns, and the rollout it would have steered is stopped by the
/// fault, with the store's reason rather than an operator's.
#[tokio::test(start_paused = true)]
async fn a_command_whose_entry_meets_the_fault_returns_and_the_rollout_stops() {
    use runway_engine::canary::Control;
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(CANARY)).await;
    h.router().script("v1", healthy_traffic());
    h.router().script("v2", healthy_traffic());
    let id = h.deploy(&engine, "v2", h.spec(CANARY)).await;
    h.journaled(&engine, id, |e| matches!(e, Event::CanaryStep { .. }))
        .await;

    h.store.refuse_writes(true).unwrap();
    // On a thread of its own, with a deadline: a command that deadlocked would hang here.
    let (done, answer) = std::sync::mpsc::channel();
    let commanding = engine.clone();
    std::thread::spawn(move || {
        let _ = done.send(commanding.control("web", Control::Pause, "tester"));
    });
    let answered = answer
        .recv_timeout(Duration::from_secs(10))
        .expect("the command returned");
    assert!(answered.is_ok(), "{answered:?}");
    assert!(engine.store_fault().is_some());

    h.operation_stopped(&engine).await;
    let shown = engine.deployment(id).unwrap().unwrap();
    assert_eq!(shown.status, Status::RolledBack);
    let reason = shown.reason.unwrap();
    assert!(
        reason.starts_with("the state store refused a write"),
        "{reason}"
    );
    assert_eq!(h.running(), all("v1", 3));

    h.store.refuse_writes(false).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(engine.store_fault().is_none());
    assert_eq!(h.deployment(id).status, Status::RolledBack);
}

/// A fault that begins while a `pre-deploy` hook runs (a rolling update: no rollout to stop)
/// stops the deployment at the next stage: failed, before any change, v1 untouched.
#[tokio::test(start_paused = true)]
async fn a_fault_during_the_pre_deploy_hooks_stops_the_deployment_before_any_change() {
    let h = Harness::new();
    let engine = h.engine();
    let spec = h.spec(
        "[strategy]\nkind = \"rolling\"\n\n[[hooks.run]]\nat = \"pre-deploy\"\ncommand = [\"notify-team\"]\n",
    );
    h.deploy_and_wait(&engine, "v1", spec.clone()).await;
    h.fakes.tasks.takes("notify-team", Duration::from_secs(10));
    let starts = h.fakes.platform.starts().len();
    let id = h.deploy(&engine, "v2", spec.clone()).await;
    h.journaled(
        &engine,
        id,
        |e| matches!(e, Event::HookStarted { phase, .. } if phase == "pre-deploy"),
    )
    .await;
    h.store.refuse_writes(true).unwrap();

    h.operation_stopped(&engine).await;
    let shown = engine.deployment(id).unwrap().unwrap();
    assert_eq!(shown.status, Status::Failed, "{:?}", shown.reason);
    assert!(
        shown
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("the state store refused a write")),
        "{:?}",
        shown.reason
    );
    assert_eq!(
        h.fakes.platform.starts().len(),
        starts,
        "no replica started"
    );
    assert_eq!(h.running(), all("v1", 3));

    h.store.refuse_writes(false).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(engine.store_fault().is_none());
    let d = h.deployment(id);
    assert_eq!(d.status, Status::Failed);
    assert!(h.events(id).iter().any(|e| matches!(
        e,
        Event::Failed {
            before_change: Some(true),
            ..
        }
    )));
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
}
