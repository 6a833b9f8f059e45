//! Every strategy of the engine, end to end on fakes (see common/mod.rs): the rolling update
//! and its invariants, a release that cannot start and the revert, canary verdicts (pass, fail,
//! inconclusive, pause) and an operator's promote and abort, the blue-green switch and switch
//! back, recreate behind its page.

mod common;

use runway_wire::api::DeployRequest;
use std::time::Duration;

use common::{all, healthy_traffic, Harness};
use runway_engine::canary::Control;
use runway_fakes::{Behavior, Traffic};
use runway_wire::record::Status;
use runway_wire::Event;

const ROLLING: &str = r#"
[strategy]
kind = "rolling"
max_surge = 1
max_unavailable = 0
"#;

#[tokio::test(start_paused = true)]
async fn a_first_deploy_starts_every_replica_and_routes_them() {
    let h = Harness::new();
    let engine = h.engine();
    let d = h.deploy_and_wait(&engine, "v1", h.spec(ROLLING)).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    assert_eq!(h.running(), all("v1", 3));
    assert_eq!(h.router().endpoints().get("v1"), Some(&3));
    assert!(h.router().is_open(), "the router takes traffic");
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
}

#[tokio::test(start_paused = true)]
async fn a_rolling_update_replaces_one_at_a_time_and_never_serves_below_strength() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(ROLLING)).await;
    let before = h.router().history().len();

    let d = h.deploy_and_wait(&engine, "v2", h.spec(ROLLING)).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    assert_eq!(h.running(), all("v2", 3));
    assert_eq!(h.serving_version().as_deref(), Some("v2"));

    // Every route set during the update served at least 3 and at most 3 + max_surge endpoints.
    for splits in &h.router().history()[before..] {
        let endpoints: usize = splits.iter().map(|s| s.endpoints.len()).sum();
        assert!(
            (3..=4).contains(&endpoints),
            "{endpoints} endpoints in {splits:?}"
        );
    }
    // One at a time: a new replica is routed before the next old one retires.
    let order: Vec<&str> = h
        .events(d.id)
        .iter()
        .filter_map(|e| match e {
            Event::ReplicaRouted { .. } => Some("routed"),
            Event::ReplicaRetiring { .. } => Some("retiring"),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        ["routed", "retiring", "routed", "retiring", "routed", "retiring"]
    );
    // Three new instances, none of the old restarted.
    assert_eq!(h.fakes.platform.starts().len(), 6);
}

/// Drain: a retiring replica leaves the splits first, then the engine waits for its requests
/// in flight, up to `drain_timeout` (5s here), and only then stops it.
#[tokio::test(start_paused = true)]
async fn a_retiring_replica_leaves_the_splits_then_drains_up_to_its_timeout() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(ROLLING)).await;
    let old: Vec<String> = h
        .router()
        .splits()
        .iter()
        .flat_map(|s| s.endpoints.iter().map(|e| e.id.clone()))
        .collect();
    assert_eq!(old.len(), 3);
    // The first old replica has 4 requests that finish in 2s; the second 1 that takes a
    // minute (it is cut off at 5s); the third none.
    h.router().hold(&old[0], 4, Duration::from_secs(2));
    h.router().hold(&old[1], 1, Duration::from_secs(60));

    let started = tokio::time::Instant::now();
    let d = h.deploy_and_wait(&engine, "v2", h.spec(ROLLING)).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    let took = started.elapsed();

    let drains = h.router().drains();
    assert_eq!(drains.len(), 3, "{drains:?}");
    assert!(
        drains.iter().all(|d| !d.still_routed),
        "a replica drained while it was still routed: {drains:?}"
    );
    let stopped: std::collections::BTreeMap<String, bool> = h
        .events(d.id)
        .into_iter()
        .filter_map(|e| match e {
            Event::ReplicaStopped {
                replica, drained, ..
            } => Some((replica, drained)),
            _ => None,
        })
        .collect();
    assert_eq!(stopped.get(&old[0]), Some(&true), "{stopped:?}");
    assert_eq!(
        stopped.get(&old[1]),
        Some(&false),
        "cut off at drain_timeout: {stopped:?}"
    );
    assert_eq!(stopped.get(&old[2]), Some(&true), "{stopped:?}");
    let retiring: Vec<(String, u64)> = h
        .events(d.id)
        .into_iter()
        .filter_map(|e| match e {
            Event::ReplicaRetiring {
                replica, in_flight, ..
            } => Some((replica, in_flight)),
            _ => None,
        })
        .collect();
    assert!(retiring.contains(&(old[0].clone(), 4)), "{retiring:?}");
    assert!(retiring.contains(&(old[1].clone(), 1)), "{retiring:?}");
    // The update waited for the drains: 2s for the first, the whole 5s for the second.
    assert!(took >= Duration::from_secs(7), "{took:?}");
    assert!(
        took < Duration::from_secs(60),
        "not the minute-long request: {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn max_unavailable_lets_an_update_go_below_strength_but_not_further() {
    let h = Harness::new();
    let engine = h.engine();
    let rules = "[strategy]\nkind = \"rolling\"\nmax_surge = 0\nmax_unavailable = 1\n";
    h.deploy_and_wait(&engine, "v1", h.spec(rules)).await;
    let before = h.router().history().len();
    let d = h.deploy_and_wait(&engine, "v2", h.spec(rules)).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    for splits in &h.router().history()[before..] {
        let endpoints: usize = splits.iter().map(|s| s.endpoints.len()).sum();
        assert!((2..=3).contains(&endpoints), "{endpoints} endpoints");
    }
    assert_eq!(h.running(), all("v2", 3));
}

#[tokio::test(start_paused = true)]
async fn a_release_that_cannot_start_fails_and_the_old_one_keeps_serving() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(ROLLING)).await;
    h.fakes
        .platform
        .behave("v2", Behavior::FailToStart("no such file: ./app".into()));

    let d = h.deploy_and_wait(&engine, "v2", h.spec(ROLLING)).await;
    assert_eq!(d.status, Status::Failed);
    let reason = d.reason.unwrap_or_default();
    assert!(reason.contains("no such file: ./app"), "{reason}");
    assert_eq!(h.running(), all("v1", 3), "the old release is whole");
    assert_eq!(h.router().endpoints().get("v1"), Some(&3));
    assert_eq!(h.router().endpoints().get("v2"), None);
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
}

#[tokio::test(start_paused = true)]
async fn a_release_that_crashes_after_the_first_replica_is_reverted() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(ROLLING)).await;
    // v2's first replica serves; then v2 starts crashing: the update is half done.
    let id = h.deploy(&engine, "v2", h.spec(ROLLING)).await;
    h.journaled(&engine, id, |e| matches!(e, Event::ReplicaRetiring { .. }))
        .await;
    h.fakes
        .platform
        .behave("v2", Behavior::ExitAtStart("exited with status 1".into()));

    let d = h.finished(&engine, id).await;
    assert_eq!(d.status, Status::Failed);
    assert!(h
        .events(id)
        .iter()
        .any(|e| matches!(e, Event::Reverted { to } if to == "v1")));
    assert_eq!(
        h.running(),
        all("v1", 3),
        "reverted to the whole old release"
    );
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
}

#[tokio::test(start_paused = true)]
async fn a_release_that_never_becomes_ready_fails_at_the_health_deadline() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(ROLLING)).await;
    h.fakes.platform.behave("v2", Behavior::NeverReady);
    let started = tokio::time::Instant::now();

    let d = h.deploy_and_wait(&engine, "v2", h.spec(ROLLING)).await;
    assert_eq!(d.status, Status::Failed);
    let reason = d.reason.unwrap_or_default();
    assert!(reason.contains("not healthy within 30s"), "{reason}");
    assert!(
        reason.contains("answered 503"),
        "the probe's own words: {reason}"
    );
    assert!(started.elapsed() >= Duration::from_secs(30));
    assert_eq!(h.running(), all("v1", 3));
}

const CANARY: &str = r#"
[strategy]
kind = "canary"
steps = [{ weight = 10, pause = "1m" }, { weight = 50, pause = "1m" }, { weight = 100 }]

[analysis]
interval = "10s"
"#;

#[tokio::test(start_paused = true)]
async fn a_good_canary_is_promoted_through_every_step_by_the_analysis() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(CANARY)).await;
    h.router().script("v1", healthy_traffic());
    h.router().script("v2", healthy_traffic());

    let d = h.deploy_and_wait(&engine, "v2", h.spec(CANARY)).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    let events = h.events(d.id);
    let steps: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::CanaryStep { weight, .. } => Some(*weight),
            _ => None,
        })
        .collect();
    assert_eq!(steps, [10, 50, 100]);
    let promoted_by_analysis = events
        .iter()
        .filter(|e| matches!(e, Event::Promoted { by, .. } if by == "analysis"))
        .count();
    assert_eq!(promoted_by_analysis, 2, "the two paused steps, each judged");
    assert!(events.iter().any(|e| matches!(e, Event::Analysis(_))));
    assert_eq!(h.running(), all("v2", 3));
    assert_eq!(h.router().weights().get("v2"), Some(&3));
}

#[tokio::test(start_paused = true)]
async fn a_canary_that_fails_is_rolled_back_with_the_numbers_that_decided_it() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(CANARY)).await;
    h.router().script("v1", healthy_traffic());
    h.router()
        .script("v2", Traffic::new(50, 10, Duration::from_millis(40)));

    let d = h.deploy_and_wait(&engine, "v2", h.spec(CANARY)).await;
    assert_eq!(d.status, Status::RolledBack);
    let reason = d.reason.unwrap_or_default();
    assert!(reason.contains("canary analysis failed"), "{reason}");
    assert!(
        reason.contains("error_rate 0.2"),
        "the number that decided: {reason}"
    );
    assert_eq!(h.running(), all("v1", 3));
    assert_eq!(
        h.router().weights().get("v2"),
        None,
        "no traffic to the canary"
    );
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
}

#[tokio::test(start_paused = true)]
async fn a_canary_without_requests_is_never_promoted_it_pauses_and_abort_rolls_it_back() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(CANARY)).await;
    h.router().script("v1", healthy_traffic());
    // v2 gets no request: every interval is inconclusive.

    let id = h.deploy(&engine, "v2", h.spec(CANARY)).await;
    h.journaled(
        &engine,
        id,
        |e| matches!(e, Event::Paused { by, .. } if by == "analysis"),
    )
    .await;
    assert!(!h
        .events(id)
        .iter()
        .any(|e| matches!(e, Event::Promoted { .. })));
    // It stays paused however long nobody decides.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(h.deployment(id).status, Status::Running);

    engine
        .control("web", Control::Abort, "tester")
        .expect("the canary takes it");
    let d = h.finished(&engine, id).await;
    assert_eq!(d.status, Status::RolledBack);
    assert_eq!(h.running(), all("v1", 3));
}

#[tokio::test(start_paused = true)]
async fn pause_if_pauses_for_a_human_and_promote_goes_on() {
    let h = Harness::new();
    let engine = h.engine();
    let canary = format!(
        "{CANARY}\n[[analysis.metrics]]\nname = \"errors\"\nsource = \"proxy\"\nmetric = \"error_rate\"\nfail_if = \"> 0.2\"\npause_if = \"> 0.01\"\n"
    );
    h.deploy_and_wait(&engine, "v1", h.spec(&canary)).await;
    h.router().script("v1", healthy_traffic());
    h.router()
        .script("v2", Traffic::new(100, 5, Duration::from_millis(40)));

    let id = h.deploy(&engine, "v2", h.spec(&canary)).await;
    h.journaled(
        &engine,
        id,
        |e| matches!(e, Event::Paused { by, .. } if by == "analysis"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(h.deployment(id).status, Status::Running, "it waits");

    engine
        .control("web", Control::PromoteFull, "tester")
        .expect("the canary takes it");
    let d = h.finished(&engine, id).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    assert!(h.events(id).iter().any(|e| matches!(
        e,
        Event::Promoted {
            full: Some(true),
            ..
        }
    )));
    assert_eq!(h.running(), all("v2", 3));
}

#[tokio::test(start_paused = true)]
async fn a_manual_step_waits_for_promote() {
    let h = Harness::new();
    let engine = h.engine();
    let manual = "[strategy]\nkind = \"canary\"\nsteps = [{ weight = 20, pause = \"manual\" }, { weight = 100 }]\n[analysis]\ninterval = \"10s\"\n";
    h.deploy_and_wait(&engine, "v1", h.spec(manual)).await;
    h.router().script("v1", healthy_traffic());
    h.router().script("v2", healthy_traffic());

    let id = h.deploy(&engine, "v2", h.spec(manual)).await;
    h.journaled(&engine, id, |e| {
        matches!(e, Event::CanaryStep { weight: 20, .. })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        h.deployment(id).status,
        Status::Running,
        "a manual pause waits"
    );
    let weights = h.router().weights();
    assert_eq!(weights.get("v2"), Some(&20), "{weights:?}");
    assert_eq!(weights.get("v1"), Some(&80), "{weights:?}");

    engine
        .control("web", Control::Promote, "tester")
        .expect("taken");
    let d = h.finished(&engine, id).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    assert!(h
        .events(id)
        .iter()
        .any(|e| matches!(e, Event::Promoted { by, .. } if by == "operator")));
}

const BLUE_GREEN: &str = r#"
[strategy]
kind = "blue-green"
preview_listen = "127.0.0.1:18081"
scale_down_delay = "5m"
"#;

#[tokio::test(start_paused = true)]
async fn blue_green_previews_switches_at_once_and_scales_down_after_the_delay() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(BLUE_GREEN)).await;

    let id = h.deploy(&engine, "v2", h.spec(BLUE_GREEN)).await;
    h.journaled(&engine, id, |e| matches!(e, Event::Switched { .. }))
        .await;
    let switched = tokio::time::Instant::now();
    // Switched: all traffic to v2, v1 still up for an instant way back.
    let weights = h.router().weights();
    assert_eq!(weights.get("v1").copied().unwrap_or(0), 0, "{weights:?}");
    assert_eq!(weights.get("v2"), Some(&100), "{weights:?}");
    assert_eq!(h.running().len(), 6);
    let preview_seen = h.events(id).iter().any(|e| {
        matches!(
            e,
            Event::PreviewReady {
                preview: Some(_),
                ..
            }
        )
    });
    assert!(preview_seen, "a preview before the switch");

    let d = h.finished(&engine, id).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    assert!(
        switched.elapsed() >= Duration::from_secs(300),
        "v1 stayed up for the whole scale-down delay, not {:?}",
        switched.elapsed()
    );
    assert_eq!(h.running(), all("v2", 3));
    assert_eq!(h.router().previews(), 0, "the preview is gone");
}

#[tokio::test(start_paused = true)]
async fn blue_green_abort_within_the_delay_switches_back_without_starting_anything() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(BLUE_GREEN)).await;
    let id = h.deploy(&engine, "v2", h.spec(BLUE_GREEN)).await;
    h.journaled(&engine, id, |e| matches!(e, Event::ScaleDownPending { .. }))
        .await;
    let starts = h.fakes.platform.starts().len();

    engine
        .control("web", Control::Abort, "tester")
        .expect("taken");
    let d = h.finished(&engine, id).await;
    assert_eq!(d.status, Status::RolledBack);
    assert_eq!(h.running(), all("v1", 3));
    assert_eq!(h.router().weights().get("v2"), None);
    assert_eq!(
        h.fakes.platform.starts().len(),
        starts,
        "switching back starts no replica"
    );
}

const RECREATE: &str = r#"
[strategy]
kind = "recreate"

[maintenance]
message = "Back in a minute"
"#;

#[tokio::test(start_paused = true)]
async fn recreate_stops_the_old_release_behind_the_page_before_the_new_one_starts() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(RECREATE)).await;

    let d = h.deploy_and_wait(&engine, "v2", h.spec(RECREATE)).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    let events = h.events(d.id);
    let position = |pred: &dyn Fn(&Event) -> bool| events.iter().position(pred);
    let page_on = position(&|e| matches!(e, Event::MaintenanceOn {})).expect("the page");
    let last_old_stopped = events
        .iter()
        .rposition(|e| matches!(e, Event::ReplicaStopped { version, .. } if version == "v1"))
        .expect("v1 stopped");
    let first_new =
        position(&|e| matches!(e, Event::ReplicaStarting { version, .. } if version == "v2"))
            .expect("v2 started");
    let page_off = position(&|e| matches!(e, Event::MaintenanceOff {})).expect("the page lifted");
    assert!(page_on < last_old_stopped && last_old_stopped < first_new && first_new < page_off);
    assert_eq!(h.running(), all("v2", 3));
    assert_eq!(h.router().maintenance(), None, "the page is down");
}

#[tokio::test(start_paused = true)]
async fn a_second_operation_on_a_busy_service_is_refused_with_what_holds_it() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(CANARY)).await;
    h.router().script("v1", healthy_traffic());
    let _id = h.deploy(&engine, "v2", h.spec(CANARY)).await;
    let base_dir = h.dir.path().to_string_lossy().to_string();
    let refused = engine
        .deploy(
            DeployRequest::new("v3", h.spec(CANARY), &base_dir),
            "tester",
        )
        .await
        .expect_err("busy");
    assert_eq!(refused.code(), runway_wire::ErrorCode::Busy);
    assert!(
        refused.to_string().contains("deployment #2 of v2"),
        "{refused}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_canary_judged_by_a_prometheus_query_is_rolled_back_on_its_value() {
    let h = Harness::new();
    let engine = h.engine();
    let canary = r#"
[strategy]
kind = "canary"
steps = [{ weight = 10, pause = "1m" }, { weight = 100 }]

[analysis]
interval = "10s"
prometheus = "http://prometheus.invalid:9090"

[[analysis.metrics]]
name = "app-errors"
source = "prometheus"
query = 'sum(app_errors{version="{version}"})'
fail_if = "> 0.05"
"#;
    h.deploy_and_wait(&engine, "v1", h.spec(canary)).await;
    h.router().script("v1", healthy_traffic());
    h.router().script("v2", healthy_traffic());
    let queries = &h.fakes.queries;
    queries.answer(r#"sum(app_errors{version="v1"})"#, Ok(Some(0.0)));
    queries.answer(r#"sum(app_errors{version="v2"})"#, Ok(Some(0.4)));

    let d = h.deploy_and_wait(&engine, "v2", h.spec(canary)).await;
    assert_eq!(d.status, Status::RolledBack);
    let reason = d.reason.unwrap_or_default();
    assert!(reason.contains("app-errors"), "{reason}");
    assert!(reason.contains("0.4"), "the value that decided: {reason}");
    assert_eq!(h.running(), all("v1", 3));
}

#[tokio::test(start_paused = true)]
async fn a_canary_on_a_router_that_can_only_switch_is_refused_with_what_to_use() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(ROLLING)).await;
    h.router()
        .set_granularity(runway_engine::router::Granularity::SwitchOnly);
    let base_dir = h.dir.path().to_string_lossy().to_string();
    let refused = engine
        .deploy(
            DeployRequest::new("v2", h.spec(CANARY), &base_dir),
            "tester",
        )
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), runway_wire::ErrorCode::InvalidRequest);
    assert!(refused.to_string().contains("blue-green"), "{refused}");
    assert_eq!(h.running(), all("v1", 3), "nothing changed");
}
