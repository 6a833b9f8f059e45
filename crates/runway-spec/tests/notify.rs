//! `[[notify]]` (issue 15): Slack-compatible and generic webhooks, the notices each gets,
//! retries and templates, each mistake located where it is written.

mod common;

use common::{assert_error, parse};
use runway_spec::notify::{NoticeKind, NotifyFormat};
use std::time::Duration;

const BASE: &str =
    "[service]\nname = \"api\"\nlisten = \"127.0.0.1:8080\"\n\n[run]\ncommand = [\"./api\"]\n";

#[test]
fn targets_read_whole_with_their_defaults() {
    let spec = parse(&format!(
        r#"{BASE}
[[notify]]
kind = "slack"
url = "env:SLACK_WEBHOOK_URL"

[[notify]]
name = "pager"
kind = "webhook"
url = "https://hooks.example.com/runway"
events = ["rolled_back", "failed", "rolled_back"]
timeout = "2s"
retries = 5
backoff = "250ms"
templates = {{ rolled_back = "ROLLBACK {{service}} {{version}} -> {{previous_version}}: {{reason}}{{details}}" }}
"#
    ));
    assert_eq!(spec.notify.len(), 2);
    let slack = &spec.notify[0];
    assert_eq!(slack.name, "notify-1");
    assert_eq!(slack.kind, NotifyFormat::Slack);
    assert_eq!(slack.url, "env:SLACK_WEBHOOK_URL");
    assert!(slack.wants(NoticeKind::Started) && slack.wants(NoticeKind::RolledBack));
    assert_eq!(
        (slack.timeout.0, slack.retries, slack.backoff.0),
        (Duration::from_secs(5), 3, Duration::from_secs(1))
    );
    assert!(slack
        .template(NoticeKind::Started)
        .starts_with("DEPLOYMENT STARTING"));
    let pager = &spec.notify[1];
    assert_eq!(
        pager.events,
        vec![NoticeKind::RolledBack, NoticeKind::Failed]
    );
    assert!(!pager.wants(NoticeKind::Started));
    assert!(pager.wants(NoticeKind::Test), "a test reaches every target");
    assert_eq!(
        (pager.timeout.0, pager.retries, pager.backoff.0),
        (Duration::from_secs(2), 5, Duration::from_millis(250))
    );
    assert!(pager
        .template(NoticeKind::RolledBack)
        .starts_with("ROLLBACK {service}"));
    assert!(pager
        .template(NoticeKind::Failed)
        .starts_with("DEPLOYMENT FAILED"));
}

#[test]
fn mistakes_are_located_with_what_to_write() {
    let notify = |body: &str| format!("{BASE}\n[[notify]]\n{body}\n");
    // Line 8 is the first line after [[notify]].
    assert_error(
        &notify("kind = \"slak\"\nurl = \"env:X\""),
        (9, 8),
        "unknown notify kind `slak`",
        "did you mean \"slack\"?",
    );
    assert_error(
        &notify("kind = \"slack\"\nurl = \"hooks.slack.com/services/T0/B0/x\""),
        (10, 7),
        "must be an http:// or https:// URL, or env:NAME / secret:NAME",
        "env:SLACK_WEBHOOK_URL",
    );
    assert_error(
        &notify("kind = \"slack\"\nurl = \"env:X\"\nevents = [\"started\", \"rolledback\"]"),
        (11, 22),
        "unknown notify event `rolledback`",
        "did you mean \"rolled_back\"?",
    );
    assert_error(
        &notify(
            "kind = \"slack\"\nurl = \"env:X\"\ntemplates = { started = \"{service} {verison}\" }",
        ),
        (11, 25),
        "unknown placeholder `{verison}`",
        "{version}",
    );
    assert_error(
        &notify("kind = \"slack\"\nurl = \"env:X\"\ntemplates = { begun = \"x\" }"),
        (11, 15),
        "no notice is called `begun`",
        "started",
    );
    assert_error(
        &notify("kind = \"slack\"\nurl = \"env:X\"\nretries = 50"),
        (11, 11),
        "`retries` is at most 10",
        "retries = 3",
    );
    assert_error(
        &notify("kind = \"slack\"\nurl = \"env:X\"\ntimeout = \"0s\""),
        (11, 11),
        "`timeout` must be greater than 0",
        "5s",
    );
    assert_error(
        &notify("url = \"env:X\""),
        (8, 1),
        "kind",
        "kind = \"slack\"",
    );
    assert_error(
        &notify("kind = \"slack\"\nurl = \"env:X\"\nchannel = \"#deploys\""),
        (11, 1),
        "unknown key `channel`",
        "",
    );
}
