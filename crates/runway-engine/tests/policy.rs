//! Issue 14 on the engine's fast lane: deployment types, locks, windows and freezes, and
//! approvals, judged by a clock the test sets (crates/runway-fakes' `FakeClock`).

mod common;

use std::sync::Arc;

use common::Harness;
use runway_engine::records::Records;
use runway_engine::{Engine, EngineError};
use runway_wire::api::{DeployRequest, Identity, Role};
use runway_wire::id::DeploymentId;
use runway_wire::record::Status;
use runway_wire::Event;

const POLICY: &str = r#"
[deploy]
timezone = "Europe/Berlin"
windows = ["Mon-Thu 14:00-18:00"]

[[deploy.freeze]]
name = "holiday"
from = "2026-12-15"
to = "2027-01-02"
except = ["emergency"]

[types.standard]
approvals = 2
approval_ttl = "1h"

[types.solo]
approvals = 1
self_approval = true

[types.emergency]
approvals = 1
approvers = ["admin"]
windows = []
skip_checks = ["*"]

[types.quick]
"#;

fn who(name: &str, role: Role) -> Identity {
    Identity {
        name: name.into(),
        role,
    }
}

fn request(h: &Harness, version: &str, more: &str, deploy_type: Option<&str>) -> DeployRequest {
    let mut r = DeployRequest::new(
        version,
        h.spec(&format!("{POLICY}\n{more}")),
        &h.dir.path().to_string_lossy(),
    );
    r.deploy_type = deploy_type.map(str::to_string);
    r
}

async fn digest_of(engine: &Arc<Engine>, id: DeploymentId) -> String {
    engine
        .awaiting(None)
        .unwrap()
        .into_iter()
        .find(|v| v.deployment.id == id)
        .and_then(|v| v.deployment.digest)
        .expect("it waits")
}

#[tokio::test(start_paused = true)]
async fn a_closed_window_names_its_rule_and_the_next_window_across_daylight_saving() {
    let h = Harness::new();
    let engine = h.engine();
    // Friday 2026-03-27 17:00 CET: outside Mon-Thu. Berlin moves to CEST on Sunday the 29th.
    h.fakes.clock.set("2026-03-27T16:00:00Z");
    let err = engine
        .deploy(request(&h, "v1", "", Some("quick")), "dee")
        .await
        .expect_err("closed");
    assert!(matches!(err, EngineError::Conflict(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "a `quick` deployment of `web` cannot start now: outside the deploy windows \
         (Mon-Thu 14:00-18:00, Europe/Berlin); the next window opens Mon 2026-03-30 14:00 CEST \
         (12:00 UTC). `runway windows` shows the calendar; an admin may deploy anyway with \
         --override --reason"
    );
    assert!(
        h.store.history(None, 10).unwrap().is_empty(),
        "nothing recorded"
    );
    // An override needs a reason, and is journaled with what it passed.
    let mut r = request(&h, "v1", "", Some("quick"));
    r.override_policy = true;
    let err = engine.deploy(r, "ada").await.expect_err("no reason");
    assert!(
        err.to_string().contains("--override needs --reason"),
        "{err}"
    );
    let mut r = request(&h, "v1", "", Some("quick"));
    r.override_policy = true;
    r.reason = Some("INC-1: the fix cannot wait".into());
    let d = engine.deploy(r, "ada").await.expect("overridden");
    let d = h.finished(&engine, d.id).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    assert_eq!(d.deploy_type.as_deref(), Some("quick"));
    assert!(h.events(d.id).iter().any(|e| matches!(e,
        Event::Overridden { rules, by, reason }
            if by == "ada" && reason.starts_with("INC-1") && rules[0].contains("outside the deploy windows"))));
    // Monday 14:00 CEST is open.
    h.fakes.clock.set("2026-03-30T12:00:00Z");
    let d = engine
        .deploy(request(&h, "v2", "", Some("quick")), "dee")
        .await
        .expect("open");
    assert_eq!(h.finished(&engine, d.id).await.status, Status::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn the_holiday_freeze_holds_across_the_year_boundary_but_not_for_its_exception() {
    let h = Harness::new();
    let engine = h.engine();
    h.fakes.clock.set("2026-12-17T14:00:00Z"); // a Thursday, 15:00 in Berlin
    let err = engine
        .deploy(request(&h, "v1", "", Some("quick")), "dee")
        .await
        .expect_err("frozen");
    let said = err.to_string();
    assert!(
        said.contains("freeze `holiday` (2026-12-15 to 2027-01-02)")
            && said.contains("the next window opens Mon 2027-01-04 14:00 CET"),
        "{said}"
    );
    // The emergency type passes the freeze and has no windows; it waits for an admin.
    let d = engine
        .deploy(request(&h, "v1", "", Some("emergency")), "dee")
        .await
        .expect("admitted");
    assert_eq!(d.status, Status::AwaitingApproval);
    let digest = digest_of(&engine, d.id).await;
    let err = engine
        .approve(d.id, &who("abe", Role::Approver), &digest)
        .await
        .expect_err("an emergency is the admin's");
    assert!(matches!(err, EngineError::Forbidden(_)), "{err:?}");
    let (started, message) = engine
        .approve(d.id, &who("ada", Role::Admin), &digest)
        .await
        .expect("approved");
    assert!(message.contains("starts"), "{message}");
    assert_eq!(
        h.finished(&engine, started.id).await.status,
        Status::Succeeded
    );
}

#[tokio::test(start_paused = true)]
async fn a_lock_holds_deploys_until_unlocked_and_names_who_and_why() {
    let h = Harness::new();
    let engine = h.engine();
    let d = engine
        .deploy(request(&h, "v1", "", Some("quick")), "dee")
        .await
        .unwrap();
    h.finished(&engine, d.id).await;
    engine.lock("web", "ops", "INC-7: checkout down").unwrap();
    assert!(
        engine.lock("web", "ops", "again").is_err(),
        "locked already"
    );
    let err = engine
        .deploy(request(&h, "v2", "", Some("quick")), "dee")
        .await
        .expect_err("locked");
    assert!(
        err.to_string()
            .contains("held by the lock ops put on `web`")
            && err.to_string().contains("INC-7: checkout down"),
        "{err}"
    );
    // A rollback still runs under a lock.
    assert!(engine.lock_of("web").is_some());
    engine.unlock("web", "ops").unwrap();
    let d = engine
        .deploy(request(&h, "v2", "", Some("quick")), "dee")
        .await
        .unwrap();
    assert_eq!(h.finished(&engine, d.id).await.status, Status::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn approvals_need_a_quorum_of_others_that_is_fresh_and_of_what_was_asked() {
    let h = Harness::new();
    let engine = h.engine();
    let d = engine
        .deploy(request(&h, "v1", "", None), "dee")
        .await
        .unwrap();
    assert_eq!(d.status, Status::AwaitingApproval, "standard needs 2");
    let view = &engine.awaiting(Some("web")).unwrap()[0];
    assert!(
        view.changed.contains(&"run".to_string()),
        "a first release: {:?}",
        view.changed
    );
    assert!(h.fakes.platform.starts().is_empty(), "nothing started");
    let digest = digest_of(&engine, d.id).await;

    // The requester may not approve their own.
    let err = engine
        .approve(d.id, &who("dee", Role::Admin), &digest)
        .await
        .expect_err("self");
    assert!(matches!(err, EngineError::Forbidden(_)), "{err:?}");
    // A deployer may not approve at all.
    assert!(engine
        .approve(d.id, &who("dan", Role::Deployer), &digest)
        .await
        .is_err());
    // A stale digest is refused.
    let err = engine
        .approve(d.id, &who("abe", Role::Approver), "0000")
        .await
        .expect_err("stale");
    assert!(err.to_string().contains("not what you were shown"), "{err}");
    // One approval, twice from the same identity, is one.
    for _ in 0..2 {
        let (_, message) = engine
            .approve(d.id, &who("abe", Role::Approver), &digest)
            .await
            .unwrap();
        assert!(message.contains("1 of 2"), "{message}");
    }
    // An hour later abe's approval has expired: amy's is again the first of two.
    h.fakes.clock.advance(chrono::Duration::minutes(61));
    let (_, message) = engine
        .approve(d.id, &who("amy", Role::Approver), &digest)
        .await
        .unwrap();
    assert!(message.contains("1 of 2"), "expired: {message}");
    // Survives a restart: a new engine on the same store sees it waiting.
    let engine = h.engine();
    assert_eq!(engine.awaiting(Some("web")).unwrap().len(), 1);
    let (started, message) = engine
        .approve(d.id, &who("ada", Role::Admin), &digest)
        .await
        .unwrap();
    assert!(message.contains("approved (2 of 2)"), "{message}");
    let done = h.finished(&engine, started.id).await;
    assert_eq!(done.status, Status::Succeeded, "{:?}", done.reason);
    assert_eq!(done.requested_by, "dee");
    let events = h.events(d.id);
    let approvers: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Approved { by, .. } => Some(by.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(approvers, ["abe", "abe", "amy", "ada"]);
}

#[tokio::test(start_paused = true)]
async fn a_changed_config_supersedes_the_request_and_its_approvals() {
    let h = Harness::new();
    let engine = h.engine();
    let first = engine
        .deploy(request(&h, "v1", "", None), "dee")
        .await
        .unwrap();
    let old_digest = digest_of(&engine, first.id).await;
    engine
        .approve(first.id, &who("abe", Role::Approver), &old_digest)
        .await
        .unwrap();
    // The same version with another strategy: another thing to approve.
    let second = engine
        .deploy(
            request(
                &h,
                "v1",
                "[types.standard.strategy]\nkind = \"rolling\"\nmax_surge = 2\n",
                None,
            ),
            "dee",
        )
        .await
        .unwrap();
    let new_digest = digest_of(&engine, second.id).await;
    assert_ne!(old_digest, new_digest);
    let superseded = h.deployment(first.id);
    assert_eq!(superseded.status, Status::Failed);
    assert!(superseded
        .reason
        .unwrap()
        .contains("superseded by deployment"));
    // The old approval does not carry over; the old digest is refused on the new request.
    assert!(engine
        .approve(second.id, &who("amy", Role::Approver), &old_digest)
        .await
        .is_err());
    let (_, message) = engine
        .approve(second.id, &who("amy", Role::Approver), &new_digest)
        .await
        .unwrap();
    assert!(message.contains("1 of 2"), "{message}");
    // One rejection ends it.
    let rejected = engine
        .reject(
            second.id,
            &who("abe", Role::Approver),
            "not during the launch",
        )
        .unwrap();
    assert_eq!(rejected.status, Status::Failed);
    assert_eq!(
        rejected.reason.as_deref(),
        Some("rejected by abe: not during the launch")
    );
    assert!(engine
        .approve(second.id, &who("ada", Role::Admin), &new_digest)
        .await
        .is_err());
    assert!(h.fakes.platform.starts().is_empty(), "nothing ever started");
}

#[tokio::test(start_paused = true)]
async fn a_window_that_closes_while_it_waits_keeps_it_waiting_until_the_next_one() {
    let h = Harness::new();
    let engine = h.engine();
    h.fakes.clock.set("2026-03-02T16:30:00Z"); // Monday 17:30 in Berlin
    let d = engine
        .deploy(request(&h, "v1", "", Some("solo")), "dee")
        .await
        .unwrap();
    let digest = digest_of(&engine, d.id).await;
    h.fakes.clock.set("2026-03-02T17:30:00Z"); // 18:30: closed
    let (waiting, message) = engine
        .approve(d.id, &who("dee", Role::Approver), &digest)
        .await
        .expect("self-approval allowed for solo");
    assert_eq!(waiting.status, Status::AwaitingApproval);
    assert!(
        message.contains("cannot start now") && message.contains("Tue 2026-03-03 14:00 CET"),
        "{message}"
    );
    h.fakes.clock.set("2026-03-03T13:05:00Z"); // Tuesday 14:05
    let (started, message) = engine
        .approve(d.id, &who("dee", Role::Approver), &digest)
        .await
        .unwrap();
    assert!(message.contains("starts"), "{message}");
    assert_eq!(
        h.finished(&engine, started.id).await.status,
        Status::Succeeded
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_type_and_a_forbidden_skip_are_refused_before_anything_is_recorded() {
    let h = Harness::new();
    let engine = h.engine();
    let err = engine
        .deploy(request(&h, "v1", "", Some("yolo")), "dee")
        .await
        .expect_err("unknown");
    assert!(matches!(err, EngineError::BadRequest(_)));
    assert!(
        err.to_string().contains("emergency, quick, solo, standard"),
        "{err}"
    );
    let mut r = request(&h, "v1", "", Some("quick"));
    r.skip_checks = true;
    let err = engine
        .deploy(r, "dee")
        .await
        .expect_err("quick may not skip");
    assert!(err.to_string().contains("may not skip checks"), "{err}");
    assert!(h.store.history(None, 10).unwrap().is_empty());
}

const MONITORED: &str = r#"
[types.watched]
monitor = "2m"

[types.watched.analysis]
interval = "10s"

[[types.watched.analysis.metrics]]
name = "errors"
source = "proxy"
metric = "error_rate"
fail_if = "> 0.05"
"#;

#[tokio::test(start_paused = true)]
async fn the_judge_keeps_watching_for_the_monitoring_period_and_can_still_roll_back() {
    use runway_fakes::Traffic;
    use std::time::Duration;
    let h = Harness::new();
    let engine = h.engine();
    let watched = |h: &Harness, version: &str| request(h, version, MONITORED, Some("watched"));
    // v1 is healthy for its two minutes: it succeeds after them.
    let d = engine.deploy(watched(&h, "v1"), "dee").await.unwrap();
    h.router()
        .script("v1", Traffic::new(50, 0, Duration::from_millis(20)));
    let d = h.finished(&engine, d.id).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    let events = h.events(d.id);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Monitoring { seconds: 120 })));
    assert!(events.iter().any(|e| matches!(e, Event::Monitored {})));
    let verdicts = events
        .iter()
        .filter(|e| matches!(e, Event::Analysis(_)))
        .count();
    assert!(verdicts >= 11, "a verdict every 10s for 2m: {verdicts}");

    // v2 has all traffic and then fails 20% of its requests: rolled back to v1 within its
    // period, with the number that decided.
    h.router()
        .script("v2", Traffic::new(50, 10, Duration::from_millis(20)));
    let d = engine.deploy(watched(&h, "v2"), "dee").await.unwrap();
    let d = h.finished(&engine, d.id).await;
    assert_eq!(d.status, Status::RolledBack, "{:?}", d.reason);
    let reason = d.reason.unwrap_or_default();
    assert!(
        reason.contains("during its monitoring period") && reason.contains("0.2"),
        "{reason}"
    );
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
}

#[tokio::test(start_paused = true)]
async fn an_emergency_skips_the_canary_and_the_skip_is_recorded() {
    let h = Harness::new();
    let engine = h.engine();
    let canary = "[strategy]\nkind = \"canary\"\nsteps = [{ weight = 10, pause = \"5m\" }, { weight = 100 }]\n\n[types.hurry]\nstrategy = { kind = \"rolling\" }\nskip_checks = [\"*\"]\n";
    let mut r = request(&h, "v1", canary, Some("hurry"));
    r.skip_checks = true;
    let d = engine.deploy(r, "dee").await.unwrap();
    let d = h.finished(&engine, d.id).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    let events = h.events(d.id);
    assert!(
        events.iter().any(|e| matches!(e, Event::TypeApplied { deploy_type, changes }
            if deploy_type == "hurry" && changes[0] == "strategy rolling instead of the file's canary (the `hurry` type's)")),
        "{events:#?}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::PreflightSkipped { .. })));
    assert!(
        !events.iter().any(|e| matches!(e, Event::CanaryStep { .. })),
        "no canary step"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deploy_without_approvals_supersedes_a_waiting_one_and_a_later_lock_holds_an_overridden_one(
) {
    let h = Harness::new();
    let engine = h.engine();
    let waiting = engine
        .deploy(request(&h, "v2", "", None), "dee")
        .await
        .unwrap();
    assert_eq!(waiting.status, Status::AwaitingApproval);
    let digest = digest_of(&engine, waiting.id).await;
    // A quick v3 ships: the waiting v2 can never be approved into replacing it.
    let v3 = engine
        .deploy(request(&h, "v3", "", Some("quick")), "dee")
        .await
        .unwrap();
    h.finished(&engine, v3.id).await;
    let superseded = h.deployment(waiting.id);
    assert_eq!(superseded.status, Status::Failed);
    assert!(superseded
        .reason
        .unwrap()
        .contains("superseded by deployment #2"));
    assert!(engine
        .approve(waiting.id, &who("abe", Role::Approver), &digest)
        .await
        .is_err());

    // An admin overrides a closed window for a solo request; a lock that comes later holds it.
    h.fakes.clock.set("2026-03-06T12:00:00Z"); // Friday: outside Mon-Thu
    let mut r = request(&h, "v4", "", Some("solo"));
    r.override_policy = true;
    r.reason = Some("release train".into());
    let d = engine.deploy(r, "ada").await.unwrap();
    let digest = digest_of(&engine, d.id).await;
    let view = &engine.awaiting(Some("web")).unwrap()[0];
    assert!(
        view.changed.is_empty(),
        "the same config as v3: {:?}",
        view.changed
    );
    engine.lock("web", "ops", "INC-8").unwrap();
    let (held, message) = engine
        .approve(d.id, &who("abe", Role::Approver), &digest)
        .await
        .unwrap();
    assert_eq!(held.status, Status::AwaitingApproval, "{message}");
    assert!(message.contains("locked by ops: INC-8"), "{message}");
    engine.unlock("web", "ops").unwrap();
    // The window it overrode is still passed.
    let (started, message) = engine
        .approve(d.id, &who("abe", Role::Approver), &digest)
        .await
        .unwrap();
    assert!(message.contains("starts"), "{message}");
    assert_eq!(
        h.finished(&engine, started.id).await.status,
        Status::Succeeded
    );
    assert_eq!(
        h.deployment(started.id).previous_version.as_deref(),
        Some("v3"),
        "its previous release is the one serving when it started"
    );
}

#[tokio::test(start_paused = true)]
async fn abort_during_the_monitoring_period_takes_the_release_back() {
    use runway_engine::canary::Control;
    let h = Harness::new();
    let engine = h.engine();
    let d = engine
        .deploy(request(&h, "v1", "", Some("quick")), "dee")
        .await
        .unwrap();
    h.finished(&engine, d.id).await;
    let id = engine
        .deploy(request(&h, "v2", MONITORED, Some("watched")), "dee")
        .await
        .unwrap()
        .id;
    h.journaled(&engine, id, |e| matches!(e, Event::Monitoring { .. }))
        .await;
    engine.control("web", Control::Abort, "ops").expect("taken");
    let d = h.finished(&engine, id).await;
    assert_eq!(d.status, Status::RolledBack);
    assert!(
        d.reason
            .unwrap_or_default()
            .contains("during its monitoring period"),
        "the reason"
    );
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
}

#[tokio::test(start_paused = true)]
async fn a_revoked_tokens_approval_no_longer_counts() {
    let h = Harness::new();
    let engine = h.engine();
    h.store
        .create_token("abe", Role::Approver, "hash-of-abe", "bootstrap-admin")
        .unwrap();
    let d = engine
        .deploy(request(&h, "v1", "", None), "dee")
        .await
        .unwrap();
    let digest = digest_of(&engine, d.id).await;
    engine
        .approve(d.id, &who("abe", Role::Approver), &digest)
        .await
        .unwrap();
    h.store.revoke_token("abe").unwrap();
    let (still, message) = engine
        .approve(d.id, &who("amy", Role::Approver), &digest)
        .await
        .unwrap();
    assert_eq!(still.status, Status::AwaitingApproval);
    assert!(
        message.contains("1 of 2"),
        "abe's no longer counts: {message}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rollback_back_is_always_open_and_one_forward_is_judged_as_a_deploy() {
    let h = Harness::new();
    let engine = h.engine();
    for version in ["v1", "v2"] {
        let d = engine
            .deploy(request(&h, version, "", Some("quick")), "dee")
            .await
            .unwrap();
        h.finished(&engine, d.id).await;
    }
    engine.lock("web", "ops", "INC-9").unwrap();
    let back = engine
        .rollback("web", &runway_wire::api::RollbackRequest::default(), "ops")
        .await
        .expect("back is open under a lock");
    assert_eq!(h.finished(&engine, back.id).await.status, Status::Succeeded);
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
    let err = engine
        .rollback(
            "web",
            &runway_wire::api::RollbackRequest {
                version: Some("v2".into()),
                ..Default::default()
            },
            "dee",
        )
        .await
        .expect_err("forward is a deploy");
    assert!(
        err.to_string().contains("newer than the serving release")
            && err.to_string().contains("INC-9"),
        "{err}"
    );
    // Outside the window too.
    engine.unlock("web", "ops").unwrap();
    h.fakes.clock.set("2026-03-07T12:00:00Z"); // Saturday
    let err = engine
        .rollback(
            "web",
            &runway_wire::api::RollbackRequest {
                version: Some("v2".into()),
                ..Default::default()
            },
            "dee",
        )
        .await
        .expect_err("closed");
    assert!(
        err.to_string().contains("outside the deploy windows"),
        "{err}"
    );
    h.fakes.clock.set("2026-03-09T13:00:00Z"); // Monday 14:00 CET
    let forward = engine
        .rollback(
            "web",
            &runway_wire::api::RollbackRequest {
                version: Some("v2".into()),
                ..Default::default()
            },
            "dee",
        )
        .await
        .expect("open");
    assert_eq!(
        h.finished(&engine, forward.id).await.status,
        Status::Succeeded
    );
}
