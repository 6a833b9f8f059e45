//! What an operator does besides deploying, on fakes: restart, stop and start one node, scale,
//! roll back to an earlier release with its config, and what a platform cannot do refused.

mod common;

use common::{all, Harness};
use runway_engine::logs::LogSelection;
use runway_engine::nodes::NodeAction;
use runway_fakes::Happened;
use runway_wire::record::{Kind, Status};
use runway_wire::ErrorCode;

const ROLLING: &str = "[strategy]\nkind = \"rolling\"\n";

#[tokio::test(start_paused = true)]
async fn restarting_a_node_starts_its_replacement_before_it_stops() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(ROLLING)).await;
    let before = h.fakes.platform.starts().len();

    let message = engine
        .node_action("web", "web-1", NodeAction::Restart)
        .await
        .expect("restarted");
    assert!(message.contains("web-1"), "{message}");
    assert_eq!(h.running(), all("v1", 3));
    assert_eq!(h.fakes.platform.starts().len(), before + 1);
    let names: Vec<String> = h
        .fakes
        .platform
        .running()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(!names.contains(&"web-1".to_string()), "{names:?}");
    // The replacement started before web-1 stopped: the service never had two.
    let history = h.fakes.platform.history();
    let replacement = history
        .iter()
        .rposition(|e| matches!(e, Happened::Started { .. }))
        .expect("a start");
    let stopped = history
        .iter()
        .position(|e| matches!(e, Happened::Stopped { replica } if replica == "web-1"))
        .expect("web-1 stopped");
    assert!(replacement < stopped, "{history:?}");
}

#[tokio::test(start_paused = true)]
async fn scaling_keeps_the_running_replicas_and_rollback_brings_back_the_old_config() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(ROLLING)).await;
    let scale = engine
        .scale("web", 5, "tester")
        .await
        .expect("scaling starts");
    let scaled = h.finished(&engine, scale.id).await;
    assert_eq!(scaled.status, Status::Succeeded, "{:?}", scaled.reason);
    assert_eq!(h.running(), all("v1", 5));
    assert_eq!(
        h.fakes.platform.starts().len(),
        5,
        "the three kept, two added"
    );

    let v2 = h.spec("[strategy]\nkind = \"rolling\"\n").clone();
    h.deploy_and_wait(&engine, "v2", v2).await;
    assert_eq!(h.running(), all("v2", 3), "v2's own config: 3 replicas");

    let back = engine
        .rollback(
            "web",
            &runway_wire::api::RollbackRequest::default(),
            "tester",
        )
        .await
        .expect("rollback starts");
    assert_eq!(back.kind, Kind::Rollback);
    let back = h.finished(&engine, back.id).await;
    assert_eq!(back.status, Status::Succeeded, "{:?}", back.reason);
    assert_eq!(
        h.running(),
        all("v1", 5),
        "v1 with the config it last ran with"
    );
}

#[tokio::test(start_paused = true)]
async fn logs_of_a_platform_that_keeps_no_output_are_refused_with_what_to_do() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(ROLLING)).await;
    let refused = engine
        .log_sources("web", &LogSelection::default())
        .expect_err("the fake platform keeps no output");
    assert_eq!(refused.code(), ErrorCode::InvalidRequest);
    assert!(
        refused
            .to_string()
            .contains("fake platform keeps no output of its replicas"),
        "{refused}"
    );
}
