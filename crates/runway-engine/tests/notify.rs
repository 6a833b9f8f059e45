//! What the engine announces (issue 15), on fakes: each deployment's notices in order, a
//! rollback's with the verdicts that decided it, a deploy refused by a lock, and only to the
//! targets that want them.

mod common;

use std::time::Duration;

use common::Harness;
use runway_fakes::Traffic;
use runway_wire::api::DeployRequest;
use runway_wire::notice::NoticeKind;
use runway_wire::record::Status;

const CANARY_NOTIFIED: &str = r#"
[strategy]
kind = "canary"
steps = [{ weight = 10, pause = "1m" }, { weight = 100 }]

[analysis]
interval = "10s"

[[notify]]
name = "channel"
kind = "slack"
url = "env:SLACK_WEBHOOK_URL"

[[notify]]
name = "pager"
kind = "webhook"
url = "https://pager.example.com/hook"
events = ["rolled_back", "refused"]
"#;

#[tokio::test(start_paused = true)]
async fn deployments_rollbacks_and_refusals_are_announced_with_their_numbers() {
    let h = Harness::new();
    let engine = h.engine();
    let spec = h.spec(CANARY_NOTIFIED);
    let v1 = h.deploy_and_wait(&engine, "v1", spec.clone()).await;
    assert_eq!(v1.status, Status::Succeeded, "{:?}", v1.reason);
    let notices = h.fakes.notifier.notices();
    let kinds: Vec<NoticeKind> = notices.iter().map(|(_, n)| n.kind).collect();
    assert_eq!(
        kinds,
        [NoticeKind::Started, NoticeKind::Succeeded],
        "{notices:#?}"
    );
    let (to, started) = &notices[0];
    assert_eq!(to, &["channel"], "the pager does not want `started`");
    assert_eq!(started.service, "web");
    assert_eq!(started.version.as_deref(), Some("v1"));
    assert_eq!(started.by.as_deref(), Some("tester"));
    assert!(notices[1].1.seconds.is_some());

    // A canary with 20% errors: its step, then the rollback with the judge's numbers.
    h.router()
        .script("v1", Traffic::new(50, 0, Duration::from_millis(40)));
    h.router()
        .script("v2", Traffic::new(50, 10, Duration::from_millis(40)));
    let v2 = h.deploy_and_wait(&engine, "v2", spec.clone()).await;
    assert_eq!(v2.status, Status::RolledBack, "{:?}", v2.reason);
    let notices = h.fakes.notifier.notices();
    let of_v2: Vec<_> = notices
        .iter()
        .filter(|(_, n)| n.deployment == Some(v2.id))
        .collect();
    let kinds: Vec<NoticeKind> = of_v2.iter().map(|(_, n)| n.kind).collect();
    assert_eq!(
        kinds,
        [
            NoticeKind::Started,
            NoticeKind::Step,
            NoticeKind::RolledBack
        ],
        "{of_v2:#?}"
    );
    assert_eq!(of_v2[1].1.weight, Some(10));
    let (to, rollback) = of_v2[2];
    assert_eq!(to, &["channel", "pager"]);
    assert_eq!(rollback.version.as_deref(), Some("v2"));
    assert_eq!(rollback.previous_version.as_deref(), Some("v1"));
    assert!(
        rollback
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("error_rate"),
        "{rollback:?}"
    );
    let error_rate = rollback
        .verdicts
        .iter()
        .find(|v| v.metric == "error_rate")
        .expect("the error rate's verdict");
    assert_eq!(error_rate.verdict, "fail");
    assert!(
        (error_rate.canary.unwrap() - 0.2).abs() < 1e-9,
        "{error_rate:?}"
    );
    assert_eq!(error_rate.stable, Some(0.0));

    // A lock refuses the next deploy: announced to both, with who asked and why not.
    engine.lock("web", "tester", "incident 42").expect("locked");
    let base_dir = h.dir.path().to_string_lossy().to_string();
    let refused = engine
        .deploy(DeployRequest::new("v3", spec, &base_dir), "mallory")
        .await;
    assert!(refused.is_err());
    let (to, notice) = h.fakes.notifier.notices().last().cloned().unwrap();
    assert_eq!(notice.kind, NoticeKind::Refused);
    assert_eq!(to, ["channel", "pager"]);
    assert_eq!(notice.version.as_deref(), Some("v3"));
    assert_eq!(notice.by.as_deref(), Some("mallory"));
    assert!(notice.reason.unwrap().contains("incident 42"));
}

/// A scheduled checklist: its failure, and a certificate close to expiry, are announced when
/// they start, not at every run; one checklist incident stays open meanwhile.
#[tokio::test(start_paused = true)]
async fn a_failing_checklist_and_an_expiring_certificate_are_announced_once() {
    let h = Harness::new();
    let engine = h.engine();
    let spec = h.spec(
        r#"
[[checks]]
name = "certificate"
kind = "tls"
address = "api.example.com:443"
min_days = 30
phases = ["daily"]
schedule = "every 1s"

[[notify]]
kind = "webhook"
url = "https://hooks.example.com/runway"
"#,
    );
    let v1 = h.deploy_and_wait(&engine, "v1", spec).await;
    assert_eq!(v1.status, Status::Succeeded, "{:?}", v1.reason);
    h.fakes.checks.fail(
        "certificate",
        Some("api.example.com of api.example.com:443 expires on 2026-12-09, in 9 day(s) (min_days 30)"),
    );
    // Several scheduled runs, each failing.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let notices = h.fakes.notifier.notices();
    let kinds: Vec<NoticeKind> = notices
        .iter()
        .map(|(_, n)| n.kind)
        .filter(|k| {
            matches!(
                k,
                NoticeKind::CertificateExpiring | NoticeKind::ChecklistFailed
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [NoticeKind::CertificateExpiring, NoticeKind::ChecklistFailed],
        "once each: {notices:#?}"
    );
    let certificate = notices
        .iter()
        .find(|(_, n)| n.kind == NoticeKind::CertificateExpiring)
        .unwrap();
    assert!(
        certificate
            .1
            .reason
            .as_deref()
            .unwrap()
            .contains("in 9 day(s)"),
        "{certificate:?}"
    );
    let incidents = engine.incidents(Some("web"), 10).unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(incidents[0].cause, "checklist");
}

/// A certificate check that only warns leaves every run passed; its expiry is still announced
/// once, not at every run.
#[tokio::test(start_paused = true)]
async fn a_warning_certificate_is_announced_once_though_every_run_passes() {
    let h = Harness::new();
    let engine = h.engine();
    let spec = h.spec(
        r#"
[[checks]]
name = "certificate"
kind = "tls"
address = "api.example.com:443"
min_days = 30
severity = "warning"
phases = ["daily"]
schedule = "every 1s"

[[notify]]
kind = "webhook"
url = "https://hooks.example.com/runway"
"#,
    );
    let v1 = h.deploy_and_wait(&engine, "v1", spec).await;
    assert_eq!(v1.status, Status::Succeeded, "{:?}", v1.reason);
    h.fakes
        .checks
        .fail("certificate", Some("expires in 9 day(s) (min_days 30)"));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let kinds: Vec<NoticeKind> = h
        .fakes
        .notifier
        .notices()
        .iter()
        .map(|(_, n)| n.kind)
        .filter(|k| {
            matches!(
                k,
                NoticeKind::CertificateExpiring | NoticeKind::ChecklistFailed
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [NoticeKind::CertificateExpiring],
        "once, and no failed checklist"
    );
    assert!(
        engine.incidents(Some("web"), 10).unwrap().is_empty(),
        "a passing run opens none"
    );
}

/// A flag's change is announced like a deployment: `flag_changed` with what it serves now and
/// who changed it; a rollout's steps are `step` notices and its judged end `rolled_back`.
#[tokio::test(start_paused = true)]
async fn flag_changes_and_rollouts_are_announced() {
    let h = Harness::new();
    let engine = h.engine();
    let spec = h.spec(
        "[analysis]\ninterval = \"10s\"\n\n[[notify]]\nname = \"channel\"\nkind = \"slack\"\n\
         url = \"https://hooks.example.com/x\"\n",
    );
    let v1 = h.deploy_and_wait(&engine, "v1", spec).await;
    assert_eq!(v1.status, Status::Succeeded, "{:?}", v1.reason);
    h.router()
        .script("v1", Traffic::new(100, 0, Duration::from_millis(20)));
    let flag = serde_json::to_value(runway_flags::Flag::boolean("pack")).unwrap();
    engine.set_flag("web", "pack", &flag, None, "ada").unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    let notices = h.fakes.notifier.notices();
    let (to, changed) = notices.last().unwrap();
    assert_eq!(to, &["channel"]);
    assert_eq!(changed.kind, NoticeKind::FlagChanged);
    assert_eq!(changed.version.as_deref(), Some("pack"));
    assert_eq!(changed.by.as_deref(), Some("ada"));
    assert!(
        changed.reason.as_deref().unwrap().starts_with("off"),
        "{changed:?}"
    );

    let rollout = engine
        .flag_rollout(
            "web",
            "pack",
            &runway_wire::api::FlagRolloutRequest {
                steps: vec![10.0, 100.0],
                interval: "1m".into(),
                variant: None,
                reason: None,
            },
            "ada",
        )
        .await
        .unwrap();
    h.journaled(&engine, rollout.id, |e| {
        matches!(e, runway_wire::Event::FlagStep { .. })
    })
    .await;
    h.router()
        .script("v1", Traffic::new(100, 30, Duration::from_millis(20)));
    let ended = h.finished(&engine, rollout.id).await;
    assert_eq!(ended.status, Status::RolledBack, "{:?}", ended.reason);
    let kinds: Vec<NoticeKind> = h
        .fakes
        .notifier
        .notices()
        .iter()
        .filter(|(_, n)| n.deployment == Some(rollout.id))
        .map(|(_, n)| n.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            NoticeKind::Started,
            NoticeKind::Step,
            NoticeKind::RolledBack,
            NoticeKind::FlagChanged
        ]
    );
}
