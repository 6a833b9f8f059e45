//! Reading `[[notify]]`: each target's kind, URL, notices, timing and templates, every
//! problem at the key to change.

use super::checks::strings;
use super::Section;
use crate::duration::Dur;
use crate::error::SpecError;
use crate::notify::{check_template, NoticeKind, NotifyFormat, NotifySpec};
use crate::rules::positive;
use crate::suggest;

const KEYS: &[&str] = &[
    "name",
    "kind",
    "url",
    "events",
    "timeout",
    "retries",
    "backoff",
    "templates",
];

const EXAMPLE: &str = "[[notify]]\nkind = \"slack\"\nurl = \"env:SLACK_WEBHOOK_URL\"";

/// `[[notify]]` of the document `root`; none when absent.
pub(super) fn read_notify(root: &Section<'_>) -> Result<Vec<NotifySpec>, SpecError> {
    let Some(tables) = root.tables("notify", "notify target", EXAMPLE)? else {
        return Ok(Vec::new());
    };
    let mut targets: Vec<NotifySpec> = Vec::new();
    for (i, sec) in tables.value.iter().enumerate() {
        let target = read_target(sec, i)?;
        if targets.iter().any(|t| t.name == target.name) {
            return Err(sec.src.error(
                &sec.span,
                format!("two notify targets are named `{}`", target.name),
                Some("give each [[notify]] its own name".into()),
            ));
        }
        targets.push(target);
    }
    Ok(targets)
}

fn read_target(sec: &Section<'_>, index: usize) -> Result<NotifySpec, SpecError> {
    sec.check_keys(KEYS)?;
    let name = match sec.string("name", "name = \"deploys-channel\"")? {
        Some(name) if name.value.trim().is_empty() => {
            return Err(sec.src.error(
                &name.span,
                "`name` cannot be empty",
                Some("for example: name = \"deploys-channel\"".into()),
            ))
        }
        Some(name) => name.value.to_owned(),
        None => format!("notify-{}", index + 1),
    };
    let kind = sec.required(
        "kind",
        "kind = \"slack\"",
        sec.string("kind", "kind = \"slack\"")?,
    )?;
    let format = match kind.value {
        "slack" => NotifyFormat::Slack,
        "webhook" => NotifyFormat::Webhook,
        other => {
            let hint = match suggest::closest(other, &["slack", "webhook"]) {
                Some(close) => format!("did you mean \"{close}\"? kinds: \"slack\", \"webhook\""),
                None => "kinds: \"slack\" (an incoming webhook) or \"webhook\" (any JSON endpoint)"
                    .into(),
            };
            return Err(sec.src.error(
                &kind.span,
                format!("unknown notify kind `{other}`"),
                Some(hint),
            ));
        }
    };
    let url_example = "url = \"env:SLACK_WEBHOOK_URL\"";
    let url = sec.required("url", url_example, sec.string("url", url_example)?)?;
    let value = url.value.trim();
    let reference = value.starts_with("env:") || value.starts_with("secret:");
    if !(reference || value.starts_with("http://") || value.starts_with("https://")) {
        return Err(sec.src.error(
            &url.span,
            "`url` must be an http:// or https:// URL, or env:NAME / secret:NAME",
            Some(
                "a webhook URL is a credential: keep it out of the file with \
                 url = \"env:SLACK_WEBHOOK_URL\" (the server's environment) or \
                 url = \"secret:slack-webhook\" (the server's secrets directory)"
                    .into(),
            ),
        ));
    }
    let mut events = Vec::new();
    if let Some(words) = strings(sec, "events", "events = [\"started\", \"rolled_back\"]")? {
        for word in words.value {
            let Some(kind) = NoticeKind::parse(word.value) else {
                let names: Vec<&str> = NoticeKind::ALL.iter().map(|k| k.as_str()).collect();
                let hint = match suggest::closest(word.value, &names) {
                    Some(close) => {
                        format!("did you mean \"{close}\"? events: {}", names.join(", "))
                    }
                    None => format!("events: {}", names.join(", ")),
                };
                return Err(sec.src.error(
                    &word.span,
                    format!("unknown notify event `{}`", word.value),
                    Some(hint),
                ));
            };
            if !events.contains(&kind) {
                events.push(kind);
            }
        }
    }
    let timeout = duration_or(sec, "timeout", "5s", Dur(std::time::Duration::from_secs(5)))?;
    let backoff = duration_or(sec, "backoff", "1s", Dur(std::time::Duration::from_secs(1)))?;
    let retries = match sec.count("retries", "retries = 3")? {
        Some(n) if n.value > 10 => {
            return Err(sec.src.error(
                &n.span,
                "`retries` is at most 10",
                Some("for example: retries = 3 (with backoff doubling each time)".into()),
            ))
        }
        Some(n) => n.value,
        None => 3,
    };
    let mut templates = std::collections::BTreeMap::new();
    if let Some(table) = sec.section("templates", "templates = { started = \"...\" }")? {
        for (key, _) in table.table.iter() {
            let example = format!("{key} = \"{{service}} {{version}}\"");
            let Some(kind) = NoticeKind::parse(key) else {
                let names: Vec<&str> = NoticeKind::ALL.iter().map(|k| k.as_str()).collect();
                return Err(table.src.error(
                    &table.key_span(key),
                    format!("no notice is called `{key}`"),
                    Some(format!(
                        "templates are named by event: {}",
                        names.join(", ")
                    )),
                ));
            };
            let text = table.required(key, &example, table.string(key, &example)?)?;
            if let Err(problem) = check_template(text.value) {
                return Err(table.src.error(
                    &text.span,
                    problem,
                    Some(format!(
                        "placeholders: {}",
                        crate::notify::PLACEHOLDERS
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )),
                ));
            }
            templates.insert(kind, text.value.to_owned());
        }
    }
    Ok(NotifySpec {
        name,
        kind: format,
        url: value.to_owned(),
        events,
        timeout,
        retries,
        backoff,
        templates,
    })
}

fn duration_or(
    sec: &Section<'_>,
    key: &str,
    example: &str,
    default: Dur,
) -> Result<Dur, SpecError> {
    match sec.duration(key, example)? {
        Some(d) => {
            sec.src.check(&d.span, positive(key, d.value, example))?;
            Ok(d.value)
        }
        None => Ok(default),
    }
}
