//! Resuming after a crash at each journaled stage: the server dies (its runtime is dropped
//! with every task of the engine, as with `kill -9`) right after a stage is journaled; a new
//! engine on the same store and fakes recovers, adopts the instances that still run, and
//! finishes the operation from where it was, not from the start.

mod common;

use std::time::Duration;

use common::{all, paused_runtime, Harness};
use runway_engine::canary::Control;
use runway_fakes::{Behavior, Traffic};
use runway_spec::Spec;
use runway_wire::id::DeploymentId;
use runway_wire::record::{Deployment, Status};
use runway_wire::Event;

/// Deploys v1, then v2, and crashes the server once v2's journal has an event that `at`
/// matches; returns v2's deployment id.
fn deploy_and_crash(h: &Harness, spec: &Spec, at: impl Fn(&Event) -> bool) -> DeploymentId {
    deploy_and_crash_with(h, spec, |_| {}, at)
}

/// [`deploy_and_crash`], with `after_v1` run once v1 serves (to script its traffic, say).
fn deploy_and_crash_with(
    h: &Harness,
    spec: &Spec,
    after_v1: impl FnOnce(&Harness),
    at: impl Fn(&Event) -> bool,
) -> DeploymentId {
    let runtime = paused_runtime();
    let id = runtime.block_on(async {
        let engine = h.engine();
        let v1 = h.deploy_and_wait(&engine, "v1", spec.clone()).await;
        assert_eq!(v1.status, Status::Succeeded, "{:?}", v1.reason);
        after_v1(h);
        let id = h.deploy(&engine, "v2", spec.clone()).await;
        h.journaled(&engine, id, at).await;
        id
    });
    drop(runtime);
    id
}

/// A new server: recovers and waits for deployment `id` to end.
fn restart_and_finish(h: &Harness, id: DeploymentId) -> Deployment {
    paused_runtime().block_on(async {
        let engine = h.engine();
        engine.recover().await.expect("recovery");
        h.finished(&engine, id).await
    })
}

fn starts_of(h: &Harness, version: &str) -> usize {
    h.fakes
        .platform
        .starts()
        .iter()
        .filter(|(_, v)| v == version)
        .count()
}

/// Adopted, not restarted: no replica's instance was started a second time. (The engine runs
/// on while the test notices the event it waits for, so a crash lands at or shortly after
/// it; a replica that was starting then never served and is replaced under a new name.)
fn no_replica_started_twice(h: &Harness) {
    let starts = h.fakes.platform.starts();
    let mut names: Vec<&String> = starts.iter().map(|(name, _)| name).collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        starts.len(),
        "a replica started twice: {starts:?}"
    );
}

/// Asserts that deployment `id` says it resumed; where in its journal.
fn resumed(h: &Harness, id: DeploymentId) -> usize {
    h.events(id)
        .iter()
        .position(|e| matches!(e, Event::Resumed { .. }))
        .unwrap_or_else(|| panic!("deployment #{id} did not resume: {:#?}", h.events(id)))
}

/// Like [`no_replica_started_twice`], for a platform that adopts nothing: each replica started
/// at most twice, `restarted` of them twice.
fn no_replica_started_twice_but(h: &Harness, restarted: usize) {
    let starts = h.fakes.platform.starts();
    let mut names: Vec<&String> = starts.iter().map(|(name, _)| name).collect();
    names.sort();
    names.dedup();
    assert_eq!(starts.len() - names.len(), restarted, "{starts:?}");
}

fn rolling(h: &Harness) -> Spec {
    h.spec("[strategy]\nkind = \"rolling\"\nmax_surge = 1\nmax_unavailable = 0\n")
}

/// A rolling update from v1 to v2, crashed at `at`, finishes after a restart: it says it
/// resumed, v2 serves whole, v1's instances were adopted (never started again) and no
/// replica was started twice.
fn a_rolling_update_resumes_after(at: impl Fn(&Event) -> bool) {
    let h = Harness::new();
    let spec = rolling(&h);
    let id = deploy_and_crash(&h, &spec, at);
    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    resumed(&h, id);
    assert_eq!(h.running(), all("v2", 3));
    assert_eq!(h.serving_version().as_deref(), Some("v2"));
    assert_eq!(
        starts_of(&h, "v1"),
        3,
        "v1's instances were adopted, never restarted"
    );
    no_replica_started_twice(&h);
}

#[test]
fn a_rolling_update_resumes_after_a_replica_was_started_but_not_yet_ready() {
    a_rolling_update_resumes_after(
        |e| matches!(e, Event::ReplicaStarting { version, .. } if version == "v2"),
    );
}

#[test]
fn a_rolling_update_resumes_after_a_new_replica_was_routed() {
    a_rolling_update_resumes_after(
        |e| matches!(e, Event::ReplicaRouted { version, .. } if version == "v2"),
    );
}

#[test]
fn a_rolling_update_resumes_after_an_old_replica_began_retiring() {
    a_rolling_update_resumes_after(
        |e| matches!(e, Event::ReplicaRetiring { version, .. } if version == "v1"),
    );
}

#[test]
fn a_first_deploy_resumes() {
    let h = Harness::new();
    let spec = rolling(&h);
    let runtime = paused_runtime();
    let id = runtime.block_on(async {
        let engine = h.engine();
        let id = h.deploy(&engine, "v1", spec.clone()).await;
        // All three start at once (no old release to keep at strength) and are routed
        // together: crash while they start.
        h.journaled(&engine, id, |e| matches!(e, Event::ReplicaStarting { .. }))
            .await;
        id
    });
    drop(runtime);
    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    assert_eq!(h.running(), all("v1", 3));
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
    resumed(&h, id);
    no_replica_started_twice(&h);
}

#[test]
fn a_revert_that_was_under_way_finishes_and_the_deployment_stays_failed() {
    let h = Harness::new();
    let spec = rolling(&h);
    let runtime = paused_runtime();
    let id = runtime.block_on(async {
        let engine = h.engine();
        h.deploy_and_wait(&engine, "v1", spec.clone()).await;
        let id = h.deploy(&engine, "v2", spec.clone()).await;
        h.journaled(&engine, id, |e| matches!(e, Event::ReplicaRetiring { .. }))
            .await;
        h.fakes
            .platform
            .behave("v2", Behavior::ExitAtStart("exited with status 1".into()));
        h.journaled(&engine, id, |e| matches!(e, Event::Reverting { .. }))
            .await;
        id
    });
    drop(runtime);
    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::Failed, "{:?}", d.reason);
    assert_eq!(h.running(), all("v1", 3));
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
    resumed(&h, id);
    // web-3, the v1 replica the update had not reached, was adopted and kept; the two that
    // had retired were started again by the revert, once each.
    let running: Vec<String> = h
        .fakes
        .platform
        .running()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(running.contains(&"web-3".to_string()), "{running:?}");
    no_replica_started_twice(&h);
}

const CANARY: &str = r#"
[strategy]
kind = "canary"
steps = [{ weight = 10, pause = "1m" }, { weight = 50, pause = "1m" }, { weight = 100 }]

[analysis]
interval = "10s"
"#;

fn script_healthy(h: &Harness) {
    // The router exists once v1 has deployed; scripted before, through the routers' map.
    let traffic = Traffic::new(50, 0, Duration::from_millis(40));
    let router = h.fakes.routers.of("web").expect("a router");
    router.script("v1", traffic);
    router.script("v2", traffic);
}

#[test]
fn a_canary_resumes_at_its_step_not_at_the_first() {
    let h = Harness::new();
    let spec = h.spec(CANARY);
    let id = deploy_and_crash_with(&h, &spec, script_healthy, |e| {
        matches!(e, Event::CanaryStep { weight: 50, .. })
    });

    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    let events = h.events(id);
    let resumed = events
        .iter()
        .position(|e| matches!(e, Event::Resumed { .. }))
        .expect("resumed");
    let steps_after: Vec<u32> = events[resumed..]
        .iter()
        .filter_map(|e| match e {
            Event::CanaryStep { weight, .. } => Some(*weight),
            _ => None,
        })
        .collect();
    // It goes on within the 50% step (no new step event for it), then to 100%: never back
    // to 10%.
    assert_eq!(steps_after, [100], "from the step it was at");
    let promoted_at_50 = events[resumed..]
        .iter()
        .any(|e| matches!(e, Event::Promoted { weight: 50, by, .. } if by == "analysis"));
    assert!(promoted_at_50, "the 50% step was judged after the restart");
    assert_eq!(h.running(), all("v2", 3));
}

#[test]
fn a_canary_paused_for_a_human_is_still_paused_after_a_restart() {
    let h = Harness::new();
    let spec = h.spec(
        "[strategy]\nkind = \"canary\"\nsteps = [{ weight = 20, pause = \"manual\" }, { weight = 100 }]\n[analysis]\ninterval = \"10s\"\n",
    );
    let id = deploy_and_crash_with(&h, &spec, script_healthy, |e| {
        matches!(e, Event::CanaryStep { weight: 20, .. })
    });

    paused_runtime().block_on(async {
        let engine = h.engine();
        engine.recover().await.expect("recovery");
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(h.deployment(id).status, Status::Running, "still waiting");
        let weights = h.router().weights();
        assert_eq!(
            weights.get("v2"),
            Some(&20),
            "its weight restored: {weights:?}"
        );
        engine
            .control("web", Control::Promote, "tester")
            .expect("taken");
        let d = h.finished(&engine, id).await;
        assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    });
    assert_eq!(h.running(), all("v2", 3));
}

const BLUE_GREEN: &str = r#"
[strategy]
kind = "blue-green"
scale_down_delay = "5m"
"#;

#[test]
fn blue_green_resumes_before_the_switch() {
    let h = Harness::new();
    let spec = h.spec(BLUE_GREEN);
    let id = deploy_and_crash(&h, &spec, |e| matches!(e, Event::PreviewReady { .. }));
    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    assert_eq!(h.running(), all("v2", 3));
    assert_eq!(h.serving_version().as_deref(), Some("v2"));
    resumed(&h, id);
    assert_eq!(
        starts_of(&h, "v2"),
        3,
        "the previewed release was adopted, not started again"
    );
    no_replica_started_twice(&h);
}

#[test]
fn blue_green_resumes_within_the_scale_down_delay() {
    let h = Harness::new();
    let spec = h.spec(BLUE_GREEN);
    let id = deploy_and_crash(&h, &spec, |e| matches!(e, Event::ScaleDownPending { .. }));
    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    assert_eq!(h.running(), all("v2", 3));
    assert_eq!(starts_of(&h, "v2"), 3, "nothing started twice");
    no_replica_started_twice(&h);
}

#[test]
fn recreate_resumes_after_the_old_release_stopped() {
    let h = Harness::new();
    let spec = h.spec("[strategy]\nkind = \"recreate\"\n");
    let id = deploy_and_crash(&h, &spec, |e| {
        matches!(e, Event::RecreateStartingNew { .. })
    });
    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    assert_eq!(h.running(), all("v2", 3));
    assert_eq!(h.router().maintenance(), None, "the page is down");
    let events = h.events(id);
    let after = resumed(&h, id);
    assert!(
        !events[after..]
            .iter()
            .any(|e| matches!(e, Event::RecreateStoppingOld { .. })),
        "the old release is not stopped a second time"
    );
    no_replica_started_twice(&h);
}

#[test]
fn a_crashed_replica_of_a_serving_release_is_restarted_after_a_restart() {
    let h = Harness::new();
    let spec = rolling(&h);
    let runtime = paused_runtime();
    runtime.block_on(async {
        let engine = h.engine();
        h.deploy_and_wait(&engine, "v1", spec.clone()).await;
    });
    drop(runtime);
    // While no server runs, one instance dies.
    let (replica, _) = h.fakes.platform.running()[0].clone();
    assert!(h.fakes.platform.crash(&replica, "killed by signal SIGKILL"));
    assert_eq!(h.running().len(), 2);

    paused_runtime().block_on(async {
        let engine = h.engine();
        engine.recover().await.expect("recovery");
        let wait = async {
            while h.running().len() < 3 || !h.router().is_open() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .expect("back to three");
    });
    assert_eq!(h.running(), all("v1", 3));
    assert_eq!(
        starts_of(&h, "v1"),
        4,
        "one new instance; the other two adopted"
    );
}

#[test]
fn a_migration_that_finished_before_the_crash_does_not_run_again() {
    let h = Harness::new();
    let spec = h.spec(
        "[strategy]\nkind = \"rolling\"\n[hooks.backup]\ncommand = [\"backup-db\"]\n[hooks.migrate]\ncommand = [\"migrate\", \"up\"]\n",
    );
    let id = deploy_and_crash(
        &h,
        &spec,
        |e| matches!(e, Event::HookFinished { phase, .. } if phase == "migrate"),
    );
    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    resumed(&h, id);
    let programs = h.fakes.tasks.programs();
    let count = |p: &str| programs.iter().filter(|x| x.as_str() == p).count();
    assert_eq!(
        count("migrate"),
        2,
        "once for v1, once for v2: {programs:?}"
    );
    assert_eq!(count("backup-db"), 2, "{programs:?}");
    assert_eq!(h.running(), all("v2", 3));
}

#[test]
fn a_platform_whose_instances_die_with_the_server_gets_its_serving_replicas_started_again() {
    let h = Harness::new();
    let spec = rolling(&h);
    let runtime = paused_runtime();
    runtime.block_on(async {
        let engine = h.engine();
        h.deploy_and_wait(&engine, "v1", spec.clone()).await;
    });
    drop(runtime);
    // A platform that says its instances do not outlive the server: the new server adopts
    // none of them, whatever it finds.
    h.fakes.platform.without_adoption();

    paused_runtime().block_on(async {
        let engine = h.engine();
        engine.recover().await.expect("recovery");
        let wait = async {
            while starts_of(&h, "v1") < 6 || !h.router().is_open() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .expect("back to three");
    });
    // (The fake's old rows still read as running: a real platform's died with the server.)
    assert_eq!(
        starts_of(&h, "v1"),
        6,
        "each serving replica started once more"
    );
    no_replica_started_twice_but(&h, 3);
}

#[test]
fn recreate_resumes_while_the_old_release_was_being_stopped_behind_the_page() {
    let h = Harness::new();
    let spec = h.spec("[strategy]\nkind = \"recreate\"\n");
    // Each old replica takes 3s to drain: the crash lands while they are being stopped.
    let slow_drains = |h: &Harness| h.router().hold_every_drain(Duration::from_secs(3));
    let id = deploy_and_crash_with(&h, &spec, slow_drains, |e| {
        matches!(e, Event::RecreateStoppingOld { .. })
    });
    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    resumed(&h, id);
    assert_eq!(h.running(), all("v2", 3));
    assert_eq!(h.serving_version().as_deref(), Some("v2"));
    assert_eq!(h.router().maintenance(), None, "the page is down");
    assert_eq!(starts_of(&h, "v2"), 3, "each new replica started once");
}

#[test]
fn a_canary_rollback_that_was_under_way_finishes_rolled_back() {
    let h = Harness::new();
    let spec = h.spec(CANARY);
    // v2 fails its analysis, and its replicas take 3s to drain: the crash lands while the
    // rollback takes them away.
    let failing = |h: &Harness| {
        let router = h.fakes.routers.of("web").expect("a router");
        router.script("v1", Traffic::new(50, 0, Duration::from_millis(40)));
        router.script("v2", Traffic::new(50, 10, Duration::from_millis(40)));
        router.hold_every_drain(Duration::from_secs(3));
    };
    // The judge's verdict is journaled, then the canary's replicas retire: crash there.
    let id = deploy_and_crash_with(
        &h,
        &spec,
        failing,
        |e| matches!(e, Event::ReplicaRetiring { version, .. } if version == "v2"),
    );
    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::RolledBack, "{:?}", d.reason);
    resumed(&h, id);
    assert_eq!(h.running(), all("v1", 3));
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
    assert_eq!(h.router().weights().get("v2"), None, "no weight left to v2");
    let after = resumed(&h, id);
    assert!(
        !h.events(id)[after..]
            .iter()
            .any(|e| matches!(e, Event::CanaryStep { .. } | Event::Promoted { .. })),
        "a rollback under way does not go forward again"
    );
    assert_eq!(starts_of(&h, "v1"), 3, "v1 adopted, never restarted");
}

#[test]
fn a_backup_taken_before_the_crash_is_not_taken_again_nor_the_preflight_run_again() {
    let h = Harness::new();
    let spec = h.spec(
        "[strategy]\nkind = \"rolling\"\n[hooks.backup]\ncommand = [\"backup-db\"]\n[hooks.migrate]\ncommand = [\"migrate\", \"up\"]\n",
    );
    let id = deploy_and_crash(&h, &spec, |e| matches!(e, Event::Backup { .. }));
    let before = h
        .events(id)
        .iter()
        .filter(|e| matches!(e, Event::StageDone { stage } if stage == "preflight"))
        .count();
    assert_eq!(before, 1, "the preflight finished before the crash");
    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    resumed(&h, id);
    let programs = h.fakes.tasks.programs();
    let count = |p: &str| programs.iter().filter(|x| x.as_str() == p).count();
    assert_eq!(
        count("backup-db"),
        2,
        "once for v1, once for v2: {programs:?}"
    );
    assert_eq!(count("migrate"), 2, "{programs:?}");
    let preflights = h
        .events(id)
        .iter()
        .filter(|e| matches!(e, Event::StageDone { stage } if stage == "preflight"))
        .count();
    assert_eq!(preflights, 1, "the preflight did not run again");
    assert_eq!(h.running(), all("v2", 3));
}

#[test]
fn a_migration_interrupted_by_the_crash_runs_again_and_the_deployment_finishes() {
    let h = Harness::new();
    let spec = h
        .spec("[strategy]\nkind = \"rolling\"\n[hooks.migrate]\ncommand = [\"migrate\", \"up\"]\n");
    // v2's migration takes 10s: the crash lands while it runs.
    let slow_migration = |h: &Harness| h.fakes.tasks.takes("migrate", Duration::from_secs(10));
    let id = deploy_and_crash_with(
        &h,
        &spec,
        slow_migration,
        |e| matches!(e, Event::HookStarted { phase, .. } if phase == "migrate"),
    );
    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    resumed(&h, id);
    // It had started but not finished: a migration tool's own bookkeeping makes a second run
    // apply only what the first did not.
    let after = resumed(&h, id);
    assert!(
        h.events(id)[after..].iter().any(
            |e| matches!(e, Event::HookFinished { phase, outcome, .. } if phase == "migrate" && outcome == "ok")
        ),
        "{:#?}",
        h.events(id)
    );
    assert_eq!(h.running(), all("v2", 3));
}

#[test]
fn a_rollback_resumes_after_a_crash_and_is_recorded_on_the_release_it_went_past() {
    let h = Harness::new();
    let spec = rolling(&h);
    let runtime = paused_runtime();
    let (v2, id) = runtime.block_on(async {
        let engine = h.engine();
        h.deploy_and_wait(&engine, "v1", spec.clone()).await;
        let v2 = h.deploy_and_wait(&engine, "v2", spec.clone()).await;
        let back = engine
            .rollback(
                "web",
                &runway_wire::api::RollbackRequest::default(),
                "tester",
            )
            .await
            .expect("rollback started");
        h.journaled(&engine, back.id, |e| {
            matches!(e, Event::ReplicaRouted { .. })
        })
        .await;
        (v2.id, back.id)
    });
    drop(runtime);
    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    resumed(&h, id);
    assert_eq!(h.running(), all("v1", 3));
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
    let v2 = h.deployment(v2);
    assert_eq!(v2.status, Status::Succeeded, "its own outcome stays");
    assert_eq!(v2.rolled_back_by, Some(id));
    no_replica_started_twice(&h);
}

#[test]
fn a_scale_change_resumes_after_a_crash() {
    let h = Harness::new();
    let spec = rolling(&h);
    let runtime = paused_runtime();
    let id = runtime.block_on(async {
        let engine = h.engine();
        h.deploy_and_wait(&engine, "v1", spec.clone()).await;
        let scale = engine
            .scale("web", 5, "tester")
            .await
            .expect("scale started");
        h.journaled(&engine, scale.id, |e| {
            matches!(e, Event::ReplicaStarting { .. })
        })
        .await;
        scale.id
    });
    drop(runtime);
    let d = restart_and_finish(&h, id);
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    resumed(&h, id);
    assert_eq!(h.running(), all("v1", 5));
    no_replica_started_twice(&h);
}
