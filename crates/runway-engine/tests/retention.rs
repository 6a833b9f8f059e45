//! Retention on fakes and the real store: a long canary's journal is thinned to its story once
//! the deployment has ended longer ago than the period, each pass reads only what crossed the
//! line since the last, and what a person reads of the deployment keeps its verdicts.

mod common;

use std::time::Duration;

use common::Harness;
use runway_engine::retention::REPEATED;
use runway_fakes::Traffic;
use runway_wire::record::Status;
use runway_wire::Event;

const CANARY: &str = r#"
[strategy]
kind = "canary"
steps = [{ weight = 10, pause = "2m" }, { weight = 50, pause = "2m" }, { weight = 100 }]

[analysis]
interval = "10s"
"#;

#[tokio::test(start_paused = true)]
async fn an_ended_canary_keeps_its_story_and_the_verdict_of_each_step() {
    let h = Harness::new();
    let engine = h.engine();
    h.deploy_and_wait(&engine, "v1", h.spec(CANARY)).await;
    h.router()
        .script("v1", Traffic::new(50, 0, Duration::from_millis(40)));
    h.router()
        .script("v2", Traffic::new(50, 0, Duration::from_millis(40)));
    let d = h.deploy_and_wait(&engine, "v2", h.spec(CANARY)).await;
    assert_eq!(d.status, Status::Succeeded, "{:?}", d.reason);
    let before = h.events(d.id);
    let analyses = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Analysis(_)))
            .count()
    };
    assert!(analyses(&before) >= 20, "{} analyses", analyses(&before));

    // Within the period: nothing goes.
    let keep_for = Duration::from_secs(30 * 24 * 3600);
    let (pruned, until) = engine.prune(keep_for, None).unwrap();
    assert_eq!(pruned.entries, 0);

    // 31 days later: the repeated entries go, the story stays.
    h.fakes
        .clock
        .set(&(chrono::Utc::now() + chrono::Duration::days(31)).to_rfc3339());
    let (pruned, next) = engine.prune(keep_for, Some(&until)).unwrap();
    assert_eq!(pruned.deployments, 2, "v1 and v2 ended in the window");
    let after = h.events(d.id);
    assert!(pruned.entries as usize >= before.len() - after.len());
    assert_eq!(
        analyses(&after),
        2,
        "one verdict per judged step: {after:#?}"
    );
    let story = |events: &[Event]| -> Vec<String> {
        events
            .iter()
            .filter(|e| !REPEATED.contains(&e.to_row().0.as_str()))
            .map(|e| e.to_row().0)
            .collect()
    };
    assert_eq!(story(&after), story(&before));
    // The verdicts kept are the last of each step: the ones that promoted.
    let last_before: Vec<&Event> = before
        .iter()
        .zip(before.iter().skip(1))
        .filter(|(e, next)| matches!(e, Event::Analysis(_)) && !matches!(next, Event::Analysis(_)))
        .map(|(e, _)| e)
        .collect();
    let kept: Vec<&Event> = after
        .iter()
        .filter(|e| matches!(e, Event::Analysis(_)))
        .collect();
    assert_eq!(kept, last_before);

    // The next pass starts where this one stopped: nothing to read again.
    let (pruned, _) = engine.prune(keep_for, Some(&next)).unwrap();
    assert_eq!(pruned.deployments, 0);
}
