//! A `[kubernetes]` release on the engine's fast lane: the engine hands the cluster the whole
//! release and follows its rollout (crates/runway-fakes' `FakeCluster` rolls at once, or fails
//! as scripted); the runbook around it is the engine's as everywhere. The Kubernetes side
//! itself is tested against a scripted and a stateful fake API server
//! (crates/runway-platform-kubernetes, crates/runway/tests/e2e/kubernetes.rs).

mod common;

use common::Harness;
use runway_spec::Spec;
use runway_wire::api::DeployRequest;
use runway_wire::id::DeploymentId;
use runway_wire::record::Status;
use runway_wire::Event;

const CLUSTER: &str = r#"
[service]
name = "web"

[kubernetes]
namespace = "production"
image = "registry.example.com/web:{version}"
replicas = 3
"#;

fn spec(more: &str) -> Spec {
    let text = format!("{CLUSTER}\n{more}");
    runway_spec::parse_str(&text, "runway.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[tokio::test(start_paused = true)]
async fn a_release_is_rolled_by_the_cluster_and_followed_in_the_journal() {
    let h = Harness::new();
    let engine = h.engine();
    let v1 = h.deploy_and_wait(&engine, "v1", spec("")).await;
    assert_eq!(v1.status, Status::Succeeded, "{:?}", v1.reason);
    let v2 = h.deploy_and_wait(&engine, "v2", spec("")).await;
    assert_eq!(v2.status, Status::Succeeded, "{:?}", v2.reason);
    assert_eq!(
        h.fakes.cluster.rolled(),
        [("web".into(), "v1".into()), ("web".into(), "v2".into())]
    );
    assert!(
        h.fakes.platform.starts().is_empty(),
        "no replica of runway's own: the cluster runs the pods"
    );
    let events = h.events(v2.id);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::RolloutProgress { message }
            if message.contains("0 of 3 updated replicas are available"))),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::RolledOut { revision: 2, .. })),
        "{events:#?}"
    );
    assert_eq!(h.serving_version().as_deref(), Some("v2"));
    let status = engine.status().await.unwrap();
    let pods = &status.services[0].pods;
    assert_eq!(
        pods.len(),
        3,
        "the cluster's pods are the replicas: {pods:?}"
    );
    assert!(status.services[0].replicas.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_rollout_rolls_the_previous_release_out_again() {
    let h = Harness::new();
    let engine = h.engine();
    let v1 = h.deploy_and_wait(&engine, "v1", spec("")).await;
    h.fakes
        .cluster
        .fail("v2", "deployment \"web\" exceeded its progress deadline");
    let v2 = h.deploy_and_wait(&engine, "v2", spec("")).await;
    assert_eq!(v2.status, Status::Failed);
    assert!(
        h.events(v2.id)
            .iter()
            .any(|e| matches!(e, Event::Reverted { to } if to == "v1")),
        "{:#?}",
        h.events(v2.id)
    );
    assert!(
        v2.reason
            .as_deref()
            .unwrap_or("")
            .contains("exceeded its progress deadline"),
        "{:?}",
        v2.reason
    );
    assert_eq!(
        h.fakes.cluster.running("web"),
        Some(v1.id),
        "v1's template again"
    );
    assert_eq!(h.serving_version().as_deref(), Some("v1"));
}

#[tokio::test(start_paused = true)]
async fn rollback_to_a_revision_goes_to_the_release_that_revision_runs() {
    let h = Harness::new();
    let engine = h.engine();
    let mut ids = Vec::new();
    for version in ["v1", "v2", "v3"] {
        ids.push(h.deploy_and_wait(&engine, version, spec("")).await.id);
    }
    // Revisions 1, 2, 3 run v1, v2, v3: revision 1 is v1 with its config.
    let back = engine
        .rollback(
            "web",
            &runway_wire::api::RollbackRequest {
                revision: Some(DeploymentId(1)),
                ..Default::default()
            },
            "tester",
        )
        .await
        .expect("rollback starts");
    let back = h.finished(&engine, back.id).await;
    assert_eq!(back.status, Status::Succeeded, "{:?}", back.reason);
    assert_eq!(back.version, "v1");
    assert_eq!(h.fakes.cluster.running("web"), Some(ids[0]));
    // As with the controller, v1's revision became the newest: 4. Revision 1 is gone.
    let err = engine
        .rollback(
            "web",
            &runway_wire::api::RollbackRequest {
                revision: Some(DeploymentId(1)),
                ..Default::default()
            },
            "tester",
        )
        .await
        .expect_err("no revision 1 any more");
    assert_eq!(
        err.to_string(),
        "the Deployment of `web` has no revision 1 (it has 2, 3, 4); see `kubectl rollout history`"
    );
}

#[tokio::test(start_paused = true)]
async fn what_a_cluster_cannot_do_is_refused_before_anything_changes() {
    let h = Harness::new();
    let engine = h.engine();
    let base_dir = h.dir.path().to_string_lossy().to_string();
    let canary = spec(
        "[strategy]\nkind = \"canary\"\nsteps = [{ weight = 10, pause = \"1m\" }, { weight = 100 }]\n",
    );
    let err = engine
        .deploy(DeployRequest::new("v1", canary, &base_dir), "tester")
        .await
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains("a canary is judged on Prometheus metrics alone"),
        "{err}"
    );
    assert!(h.fakes.cluster.rolled().is_empty());

    h.deploy_and_wait(&engine, "v1", spec("")).await;
    let err = engine
        .set_maintenance("web", true, None, "tester")
        .expect_err("no proxy to serve a page");
    assert!(err.to_string().contains("runs on Kubernetes"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn recreate_scales_the_old_release_to_zero_before_the_migration() {
    let h = Harness::new();
    let engine = h.engine();
    let recreate = || {
        spec("[strategy]\nkind = \"recreate\"\n\n[hooks.migrate]\ncommand = [\"migrate\", \"up\"]\nundo = [\"migrate\", \"down\"]\n")
    };
    h.deploy_and_wait(&engine, "v1", recreate()).await;
    assert!(
        h.fakes.cluster.stopped().is_empty(),
        "nothing ran before v1"
    );
    let v2 = h.deploy_and_wait(&engine, "v2", recreate()).await;
    assert_eq!(v2.status, Status::Succeeded, "{:?}", v2.reason);
    assert_eq!(h.fakes.cluster.stopped(), ["web"]);
    let events = h.events(v2.id);
    let at = |wanted: fn(&Event) -> bool| events.iter().position(wanted).unwrap_or(usize::MAX);
    let stopped = at(|e| matches!(e, Event::RecreateStoppingOld { replicas: 3 }));
    let migrated = at(|e| matches!(e, Event::HookStarted { phase, .. } if phase == "migrate"));
    let started = at(|e| matches!(e, Event::RecreateStartingNew { .. }));
    let rolled = at(|e| matches!(e, Event::RolledOut { .. }));
    assert!(
        stopped < migrated && migrated < started && started < rolled,
        "old stopped, then migrated, then the new one rolled out: {events:#?}"
    );
    assert_eq!(
        h.fakes.tasks.programs(),
        ["migrate", "migrate"],
        "v1's migration and v2's"
    );
}

#[tokio::test(start_paused = true)]
async fn scaling_or_redeploying_a_release_keeps_its_revision() {
    let h = Harness::new();
    let engine = h.engine();
    let v1 = h.deploy_and_wait(&engine, "v1", spec("")).await;
    let scale = engine
        .scale("web", 5, "tester")
        .await
        .expect("scaling starts");
    let scaled = h.finished(&engine, scale.id).await;
    assert_eq!(scaled.status, Status::Succeeded, "{:?}", scaled.reason);
    // The same release (its template names deployment #1): the same revision.
    assert_eq!(h.fakes.cluster.running("web"), Some(v1.id));
    assert!(h
        .events(scaled.id)
        .iter()
        .any(|e| matches!(e, Event::RolledOut { revision: 1, .. })));
    let again = h.deploy_and_wait(&engine, "v1", spec("")).await;
    assert!(h
        .events(again.id)
        .iter()
        .any(|e| matches!(e, Event::RolledOut { revision: 1, .. })));
}

const BLUE_GREEN: &str = "[strategy]\nkind = \"blue-green\"\nscale_down_delay = \"30s\"\n";

#[tokio::test(start_paused = true)]
async fn blue_green_rolls_the_idle_slot_switches_the_service_and_scales_the_old_slot_down() {
    let h = Harness::new();
    let engine = h.engine();
    let v1 = h.deploy_and_wait(&engine, "v1", spec(BLUE_GREEN)).await;
    assert_eq!(
        h.fakes.cluster.running("web"),
        Some(v1.id),
        "a first release: the Deployment"
    );

    let v2 = h.deploy_and_wait(&engine, "v2", spec(BLUE_GREEN)).await;
    assert_eq!(v2.status, Status::Succeeded, "{:?}", v2.reason);
    assert_eq!(h.fakes.cluster.running("web-blue"), Some(v2.id));
    assert_eq!(
        h.fakes.cluster.selected("web-preview").as_deref(),
        Some("blue")
    );
    assert_eq!(h.fakes.cluster.selected("web").as_deref(), Some("blue"));
    assert_eq!(
        h.fakes.cluster.stopped(),
        ["web"],
        "v1's Deployment scaled down after the delay"
    );

    let v3 = h.deploy_and_wait(&engine, "v3", spec(BLUE_GREEN)).await;
    assert_eq!(v3.status, Status::Succeeded, "{:?}", v3.reason);
    assert_eq!(h.fakes.cluster.running("web-green"), Some(v3.id));
    assert_eq!(h.fakes.cluster.selected("web").as_deref(), Some("green"));
    assert_eq!(h.fakes.cluster.stopped(), ["web", "web-blue"]);
    let events = h.events(v3.id);
    let at = |wanted: fn(&Event) -> bool| events.iter().position(wanted).unwrap_or(usize::MAX);
    let preview = at(|e| matches!(e, Event::PreviewReady { .. }));
    let switched = at(|e| matches!(e, Event::Switched { .. }));
    let pending = at(|e| matches!(e, Event::ScaleDownPending { .. }));
    assert!(preview < switched && switched < pending, "{events:#?}");

    // An abort within the delay puts the Service back on the old slot, starting nothing.
    let id = h.deploy(&engine, "v4", spec(BLUE_GREEN)).await;
    h.journaled(&engine, id, |e| matches!(e, Event::ScaleDownPending { .. }))
        .await;
    assert_eq!(h.fakes.cluster.selected("web").as_deref(), Some("blue"));
    let rolled = h.fakes.cluster.rolled().len();
    engine
        .control("web", runway_engine::canary::Control::Abort, "tester")
        .expect("taken");
    let v4 = h.finished(&engine, id).await;
    assert_eq!(v4.status, Status::RolledBack, "{:?}", v4.reason);
    assert_eq!(
        h.fakes.cluster.selected("web").as_deref(),
        Some("green"),
        "switched back"
    );
    assert_eq!(h.fakes.cluster.running("web-green"), Some(v3.id));
    assert!(
        h.fakes.cluster.rolled()[rolled..]
            .iter()
            .all(|(deployment, version)| deployment == "web-green" && version == "v3"),
        "the way back rolls nothing new: {:?}",
        &h.fakes.cluster.rolled()[rolled..]
    );
    assert_eq!(h.serving_version().as_deref(), Some("v3"));
    assert_eq!(
        h.fakes.cluster.stopped().last().map(String::as_str),
        Some("web-blue"),
        "v4's slot scaled down"
    );
}

/// A canary on a cluster: judged on Prometheus (answered by the fake), never without the
/// requests `[analysis] requests` counts.
fn cluster_canary(more: &str) -> Spec {
    spec(&format!(
        r#"prometheus = "http://prometheus.monitoring:9090"

[strategy]
kind = "canary"
steps = [{{ weight = 10, pause = "30s" }}, {{ weight = 50, pause = "30s" }}, {{ weight = 100 }}]

[analysis]
interval = "10s"
min_requests = 20
requests = 'sum(increase(app_requests{{version="{{version}}"}}[10s]))'

[[analysis.metrics]]
name = "app-errors"
source = "prometheus"
query = 'sum(app_errors{{version="{{version}}"}})'
fail_if = "> 0.05"
{more}"#
    ))
}

#[tokio::test(start_paused = true)]
async fn a_cluster_canary_steps_by_replica_ratio_and_promotes_the_stable_deployment() {
    let h = Harness::new();
    let engine = h.engine();
    let v1 = h.deploy_and_wait(&engine, "v1", cluster_canary("")).await;
    let q = &h.fakes.queries;
    for v in ["v1", "v2"] {
        q.answer(
            &format!(r#"sum(app_errors{{version="{v}"}})"#),
            Ok(Some(0.0)),
        );
        q.answer(
            &format!(r#"sum(increase(app_requests{{version="{v}"}}[10s]))"#),
            Ok(Some(100.0)),
        );
    }
    let v2 = h.deploy_and_wait(&engine, "v2", cluster_canary("")).await;
    assert_eq!(v2.status, Status::Succeeded, "{:?}", v2.reason);
    // 10% of 3 pods is one canary pod beside two stable ones; then 50%: two beside one.
    let events = h.events(v2.id);
    let said: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::RolloutProgress { message } if message.starts_with("replica ratio") => {
                Some(message.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(said.len(), 2, "{events:#?}");
    assert!(
        said[0].starts_with("replica ratio: 1 of 3 pods run v2: about 33%"),
        "{}",
        said[0]
    );
    assert!(said[0].contains("approximate"));
    assert!(
        said[1].starts_with("replica ratio: 2 of 3 pods run v2: about 67%"),
        "{}",
        said[1]
    );
    // Promoted: the stable Deployment runs v2, the canary's is scaled down.
    assert_eq!(h.fakes.cluster.running("web"), Some(v2.id));
    assert_eq!(h.fakes.cluster.stopped(), ["web-canary"]);
    assert_ne!(Some(v1.id), h.fakes.cluster.running("web"));
}

#[tokio::test(start_paused = true)]
async fn a_cluster_canary_with_errors_is_rolled_back_and_one_without_requests_never_promoted() {
    let h = Harness::new();
    let engine = h.engine();
    let v1 = h.deploy_and_wait(&engine, "v1", cluster_canary("")).await;
    let q = &h.fakes.queries;
    q.answer(r#"sum(app_errors{version="v1"})"#, Ok(Some(0.0)));
    q.answer(r#"sum(app_errors{version="v2"})"#, Ok(Some(0.3)));
    q.answer(
        r#"sum(increase(app_requests{version="v2"}[10s]))"#,
        Ok(Some(100.0)),
    );
    let v2 = h.deploy_and_wait(&engine, "v2", cluster_canary("")).await;
    assert_eq!(v2.status, Status::RolledBack);
    let reason = v2.reason.unwrap_or_default();
    assert!(
        reason.contains("app-errors") && reason.contains("0.3"),
        "{reason}"
    );
    assert_eq!(
        h.fakes.cluster.running("web"),
        Some(v1.id),
        "stable untouched"
    );
    assert_eq!(
        h.fakes.cluster.stopped(),
        ["web-canary"],
        "the canary scaled down"
    );

    // No requests counted: the canary waits (pauses), it is never promoted.
    q.answer(r#"sum(app_errors{version="v3"})"#, Ok(Some(0.0)));
    q.answer(
        r#"sum(increase(app_requests{version="v3"}[10s]))"#,
        Ok(Some(0.0)),
    );
    let id = h.deploy(&engine, "v3", cluster_canary("")).await;
    h.journaled(&engine, id, |e| matches!(e, Event::Paused { .. }))
        .await;
    assert!(h
        .events(id)
        .iter()
        .all(|e| !matches!(e, Event::Promoted { .. })));
    engine
        .control("web", runway_engine::canary::Control::Abort, "tester")
        .expect("taken");
    let v3 = h.finished(&engine, id).await;
    assert_eq!(v3.status, Status::RolledBack);
}

#[tokio::test(start_paused = true)]
async fn the_first_blue_green_switch_goes_back_to_the_services_own_deployment_at_once() {
    let h = Harness::new();
    let engine = h.engine();
    let v1 = h.deploy_and_wait(&engine, "v1", spec(BLUE_GREEN)).await;
    let id = h.deploy(&engine, "v2", spec(BLUE_GREEN)).await;
    h.journaled(&engine, id, |e| matches!(e, Event::ScaleDownPending { .. }))
        .await;
    assert_eq!(h.fakes.cluster.selected("web").as_deref(), Some("blue"));
    let rolled = h.fakes.cluster.rolled().len();
    engine
        .control("web", runway_engine::canary::Control::Abort, "tester")
        .expect("taken");
    let v2 = h.finished(&engine, id).await;
    assert_eq!(v2.status, Status::RolledBack, "{:?}", v2.reason);
    // The Service selects the pods of the service's own Deployment (slot `main`) again.
    assert_eq!(h.fakes.cluster.selected("web").as_deref(), Some("main"));
    assert_eq!(h.fakes.cluster.running("web"), Some(v1.id));
    assert_eq!(
        h.fakes.cluster.stopped(),
        ["web-blue"],
        "only the rejected release's slot scaled down"
    );
    assert!(
        h.fakes.cluster.rolled()[rolled..]
            .iter()
            .all(|(deployment, _)| deployment == "web"),
        "the revert finds v1 where it runs: {:?}",
        &h.fakes.cluster.rolled()[rolled..]
    );
}

#[tokio::test(start_paused = true)]
async fn a_gateway_api_canary_sets_the_route_weights_and_sends_them_back() {
    let h = Harness::new();
    let engine = h.engine();
    let gateway = || {
        let mut s = cluster_canary("");
        let k8s = s.kubernetes.as_mut().unwrap();
        k8s.traffic = runway_spec::ClusterTraffic::GatewayApi;
        k8s.route = Some("web".into());
        k8s.port = Some(8000);
        s
    };
    h.deploy_and_wait(&engine, "v1", gateway()).await;
    let q = &h.fakes.queries;
    for (v, errors) in [("v1", 0.0), ("v2", 0.0), ("v3", 0.4)] {
        q.answer(
            &format!(r#"sum(app_errors{{version="{v}"}})"#),
            Ok(Some(errors)),
        );
        q.answer(
            &format!(r#"sum(increase(app_requests{{version="{v}"}}[10s]))"#),
            Ok(Some(100.0)),
        );
    }
    let v2 = h.deploy_and_wait(&engine, "v2", gateway()).await;
    assert_eq!(v2.status, Status::Succeeded, "{:?}", v2.reason);
    let weights: Vec<u32> = h.fakes.cluster.weights().iter().map(|(_, w)| *w).collect();
    assert_eq!(
        weights,
        [10, 50, 0],
        "each step's weight, then all back to the promoted stable"
    );
    assert!(h
        .events(v2.id)
        .iter()
        .any(|e| matches!(e, Event::RolloutProgress { message }
        if message == "HTTPRoute weights: 10% to v2, 90% to v1")));
    let view = h.deployment(v2.id);
    let progress = runway_engine::canary::view(&view).expect("a canary view");
    assert_eq!(
        progress.effective, None,
        "exact weights: nothing approximate to say"
    );

    let v3 = h.deploy_and_wait(&engine, "v3", gateway()).await;
    assert_eq!(v3.status, Status::RolledBack);
    let weights: Vec<u32> = h.fakes.cluster.weights().iter().map(|(_, w)| *w).collect();
    assert_eq!(
        &weights[3..],
        [10, 0],
        "rolled back: the route sent back to stable"
    );
    assert_eq!(h.fakes.cluster.running("web"), Some(v2.id));
}

#[tokio::test(start_paused = true)]
async fn a_change_that_does_not_reach_the_pods_writes_the_same_template() {
    let h = Harness::new();
    let engine = h.engine();
    let v1 = h.deploy_and_wait(&engine, "v1", spec("")).await;
    // Another strategy and a check: the pods run what they ran.
    let other = spec(
        "[strategy]\nkind = \"recreate\"\n\n[[checks]]\nname = \"up\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\nphases = [\"verify\"]\nseverity = \"warning\"\n",
    );
    let again = h.deploy_and_wait(&engine, "v1", other).await;
    assert_eq!(again.status, Status::Succeeded, "{:?}", again.reason);
    assert_eq!(
        h.fakes.cluster.running("web"),
        Some(v1.id),
        "the same template: v1's"
    );
    // An env change reaches the pods: a new template.
    let env = spec("").clone();
    let mut env = env;
    env.run.env.insert("FEATURE".into(), "on".into());
    let changed = h.deploy_and_wait(&engine, "v1", env).await;
    assert_eq!(h.fakes.cluster.running("web"), Some(changed.id));
}

#[tokio::test(start_paused = true)]
async fn a_cluster_release_is_backed_up_and_migrated_before_the_cluster_rolls_it() {
    let h = Harness::new();
    let engine = h.engine();
    let with_backup = || {
        spec(
            "backup_claim = \"web-backups\"\n[hooks.backup]\ncommand = [\"pg_dump\"]\nverify = \
             [\"pg_verify\"]\n[hooks.migrate]\ncommand = [\"migrate\"]\nundo = [\"unmigrate\"]\n",
        )
    };
    let v1 = h.deploy_and_wait(&engine, "v1", with_backup()).await;
    assert_eq!(v1.status, Status::Succeeded, "{:?}", v1.reason);
    assert_eq!(
        h.fakes.tasks.programs(),
        ["pg_dump", "pg_verify", "migrate"]
    );
    let backup = &h.fakes.tasks.runs()[0];
    assert_eq!(backup.env["RUNWAY_PHASE"], "backup");
    assert!(
        backup.env["RUNWAY_BACKUP_DIR"].ends_with("backups/web/deployment-1"),
        "the storage's location is what the task is given: {:?}",
        backup.env
    );
    assert_eq!(h.fakes.cluster.rolled(), [("web".into(), "v1".into())]);

    // A backup that fails its verification stops the deployment before the cluster is touched.
    h.fakes.tasks.answer(
        "pg_verify",
        runway_engine::tasks::Outcome::Failed,
        "exited with status 1",
        "truncated\n",
    );
    let v2 = h.deploy_and_wait(&engine, "v2", with_backup()).await;
    assert_eq!(v2.status, Status::Failed, "{:?}", v2.reason);
    assert!(
        v2.reason
            .as_deref()
            .unwrap_or("")
            .contains("verify-backup hook"),
        "{:?}",
        v2.reason
    );
    assert_eq!(h.fakes.cluster.rolled(), [("web".into(), "v1".into())]);
}
