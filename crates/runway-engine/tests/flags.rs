//! Feature flags' judged rollouts and secrets' rotations on fakes, on a paused clock: a rollout
//! that completes, one that a rising error rate turns off, the kill switch in the middle of
//! one, a crash in the middle of one; a rotation that rolls every replica onto the new
//! version and a rollback that brings the old one back.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{paused_runtime, Harness};
use runway_engine::records::Records;
use runway_engine::Engine;
use runway_fakes::Traffic;
use runway_flags::Flag;
use runway_wire::api::FlagRolloutRequest;
use runway_wire::id::DeploymentId;
use runway_wire::record::{Kind, Status};
use runway_wire::Event;

/// A canary-style policy on the error rate against the baseline, judged every 10 s.
const ANALYSIS: &str = r#"
[analysis]
interval = "10s"
min_requests = 50
failure_limit = 2

[[analysis.metrics]]
name = "error-rate"
source = "proxy"
metric = "error_rate"
fail_if = "> stable + 0.02"
"#;

fn healthy() -> Traffic {
    Traffic::new(100, 0, Duration::from_millis(20))
}

fn request(steps: &[f64]) -> FlagRolloutRequest {
    FlagRolloutRequest {
        steps: steps.to_vec(),
        interval: "1m".into(),
        variant: None,
        reason: None,
    }
}

/// v1 serves with healthy traffic and flag `pack` exists, off.
async fn serving_with_a_flag(h: &Harness, engine: &Arc<Engine>) {
    let v1 = h.deploy_and_wait(engine, "v1", h.spec(ANALYSIS)).await;
    assert_eq!(v1.status, Status::Succeeded, "{:?}", v1.reason);
    h.router().script("v1", healthy());
    let flag = serde_json::to_value(Flag::boolean("pack")).unwrap();
    engine
        .set_flag("web", "pack", &flag, None, "tester")
        .expect("the flag is set");
}

/// `runway rollback` with no argument.
fn plain_rollback() -> runway_wire::api::RollbackRequest {
    runway_wire::api::RollbackRequest {
        version: None,
        revision: None,
        keep_schema: false,
        reason: None,
    }
}

fn flag(engine: &Engine) -> Flag {
    serde_json::from_value(engine.flag("web", "pack").unwrap().definition).unwrap()
}

fn steps_of(h: &Harness, id: DeploymentId) -> Vec<f64> {
    h.events(id)
        .into_iter()
        .filter_map(|e| match e {
            Event::FlagStep { percent, .. } => Some(percent),
            _ => None,
        })
        .collect()
}

#[test]
fn a_rollout_with_healthy_steps_ends_with_the_variant_for_everyone() {
    let h = Harness::new();
    paused_runtime().block_on(async {
        let engine = h.engine();
        serving_with_a_flag(&h, &engine).await;
        let d = engine
            .flag_rollout("web", "pack", &request(&[5.0, 25.0, 50.0, 100.0]), "tester")
            .await
            .expect("the rollout starts");
        assert_eq!((d.kind, d.version.as_str()), (Kind::Flag, "pack"));
        let started = tokio::time::Instant::now();
        let d = h.finished(&engine, d.id).await;
        assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
        // A baseline of one interval, then four steps of at least one interval each.
        assert!(
            started.elapsed() >= Duration::from_secs(5 * 60),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(steps_of(&h, d.id), vec![5.0, 25.0, 50.0, 100.0]);
        assert!(h.events(d.id).iter().any(
            |e| matches!(e, Event::FlagBaseline { requests, errors: 0, .. } if *requests > 1000)
        ));
        let flag = flag(&engine);
        assert!(flag.enabled);
        assert_eq!(flag.default_variant, "on");
        assert_eq!(flag.rollout, None);
        // A flag's record is not a release: the serving release is still v1's.
        assert_eq!(
            engine.status().await.unwrap().services[0].serving[0].version,
            "v1"
        );
    });
}

#[test]
fn a_rising_error_rate_turns_the_flag_off_with_the_numbers_that_decided() {
    let h = Harness::new();
    paused_runtime().block_on(async {
        let engine = h.engine();
        serving_with_a_flag(&h, &engine).await;
        let d = engine
            .flag_rollout("web", "pack", &request(&[5.0, 25.0, 50.0, 100.0]), "tester")
            .await
            .unwrap();
        // The flag's users start failing once it reaches anyone: 10% of all requests.
        h.journaled(&engine, d.id, |e| matches!(e, Event::FlagStep { .. }))
            .await;
        h.router()
            .script("v1", Traffic::new(100, 10, Duration::from_millis(20)));
        let d = h.finished(&engine, d.id).await;
        assert_eq!(d.status, Status::RolledBack);
        let reason = d.reason.unwrap();
        assert!(reason.contains("flag analysis failed at 5%"), "{reason}");
        assert!(reason.contains("error-rate"), "{reason}");
        assert!(!flag(&engine).enabled, "the judge turned it off");
        assert_eq!(steps_of(&h, d.id), vec![5.0]);
        assert!(h
            .events(d.id)
            .iter()
            .any(|e| matches!(e, Event::FlagChanged { by, .. } if by.starts_with("rollout #"))));
        // The service is free again.
        assert!(engine.service("web").unwrap().operation().is_none());
    });
}

#[test]
fn the_kill_switch_ends_a_rollout_and_a_set_waits_for_it() {
    let h = Harness::new();
    paused_runtime().block_on(async {
        let engine = h.engine();
        serving_with_a_flag(&h, &engine).await;
        let d = engine
            .flag_rollout("web", "pack", &request(&[5.0, 50.0, 100.0]), "tester")
            .await
            .unwrap();
        h.journaled(&engine, d.id, |e| matches!(e, Event::FlagStep { .. }))
            .await;
        // Changing the flag by hand is refused while it rolls out; a deploy waits too.
        let definition = serde_json::to_value(flag(&engine)).unwrap();
        let refused = engine.set_flag("web", "pack", &definition, None, "ada");
        assert!(refused.is_err(), "a set during the rollout");
        engine
            .flag_off("web", "pack", Some("errors in the pack"), "ada")
            .expect("the kill switch needs no lock");
        assert!(!flag(&engine).enabled);
        let d = h.finished(&engine, d.id).await;
        assert_eq!(d.status, Status::Failed);
        assert!(d.reason.unwrap().contains("changed by ada"));
        assert!(!flag(&engine).enabled, "left as ada set it");
    });
}

#[test]
fn a_rollout_resumes_at_its_step_after_a_crash() {
    let h = Harness::new();
    let runtime = paused_runtime();
    let id = runtime.block_on(async {
        let engine = h.engine();
        serving_with_a_flag(&h, &engine).await;
        let d = engine
            .flag_rollout("web", "pack", &request(&[5.0, 25.0, 100.0]), "tester")
            .await
            .unwrap();
        h.journaled(
            &engine,
            d.id,
            |e| matches!(e, Event::FlagStep { percent, .. } if *percent == 25.0),
        )
        .await;
        d.id
    });
    drop(runtime);
    paused_runtime().block_on(async {
        let engine = h.engine();
        engine.recover().await.expect("recovery");
        let d = h.finished(&engine, id).await;
        assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
        // No step twice, and the baseline measured once.
        assert_eq!(steps_of(&h, id), vec![5.0, 25.0, 100.0]);
        let baselines = h
            .events(id)
            .iter()
            .filter(|e| matches!(e, Event::FlagBaseline { .. }))
            .count();
        assert_eq!(baselines, 1);
        assert!(h
            .events(id)
            .iter()
            .any(|e| matches!(e, Event::Resumed { .. })));
        assert!(flag(&engine).enabled);
    });
}

#[test]
fn a_rotation_rolls_every_replica_and_a_rollback_brings_the_old_version_back() {
    let h = Harness::new();
    paused_runtime().block_on(async {
        let engine = h.engine();
        h.store
            .set_secret("web", "DATABASE_URL", "postgres://one", "tester")
            .unwrap();
        let spec = h.spec("[run.env]\nDATABASE_URL = \"secret:DATABASE_URL\"\n");
        let v1 = h.deploy_and_wait(&engine, "v1", spec.clone()).await;
        assert_eq!(v1.status, Status::Succeeded, "{:?}", v1.reason);
        assert_eq!(v1.secret_versions.get("DATABASE_URL"), Some(&1));
        let v2 = h.deploy_and_wait(&engine, "v2", spec).await;
        assert_eq!(v2.status, Status::Succeeded, "{:?}", v2.reason);
        let starts_before = h.fakes.platform.starts().len();

        let set = engine
            .set_secret("web", "DATABASE_URL", "postgres://two", "tester")
            .await
            .unwrap();
        assert_eq!(set.version, 2);
        let rollout = set.rollout.expect("the serving release uses it");
        let d = h.finished(&engine, rollout.id).await;
        assert_eq!((d.kind, d.status), (Kind::Secrets, Status::Succeeded));
        assert_eq!(d.secret_versions.get("DATABASE_URL"), Some(&2));
        assert_eq!(
            h.fakes.platform.starts().len(),
            starts_before + 3,
            "each replica restarted once with the new value"
        );
        // A secret the release does not use rolls nothing.
        let other = engine
            .set_secret("web", "UNUSED", "x", "tester")
            .await
            .unwrap();
        assert!(other.rollout.is_none());

        let back = engine
            .rollback("web", &plain_rollback(), "tester")
            .await
            .expect("a rollback after a rotation");
        let back = h.finished(&engine, back.id).await;
        assert_eq!(back.status, Status::Succeeded, "{:?}", back.reason);
        assert_eq!(back.secret_versions.get("DATABASE_URL"), Some(&1));
        assert_eq!(back.version, "v2", "the same version, with the old secret");
        let listed = engine.secrets("web").unwrap();
        let url = listed.iter().find(|s| s.name == "DATABASE_URL").unwrap();
        assert_eq!((url.version, url.serving_version), (2, Some(1)));
        // The rotation is rolled back: a second rollback goes on to v1, not back to it.
        let again = engine
            .rollback("web", &plain_rollback(), "tester")
            .await
            .expect("a second rollback");
        let again = h.finished(&engine, again.id).await;
        assert_eq!(again.status, Status::Succeeded, "{:?}", again.reason);
        assert_eq!(again.version, "v1");
        assert_eq!(again.secret_versions.get("DATABASE_URL"), Some(&1));
    });
}
