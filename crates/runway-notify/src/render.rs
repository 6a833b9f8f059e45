//! A template with a notice's values in its `{placeholders}`.

use runway_wire::notice::Notice;

/// `template` with each `{placeholder}` replaced by the notice's value (`-` when it has none;
/// `{details}` is empty, or the metrics that decided a rollback, one a line).
pub fn render(template: &str, notice: &Notice) -> String {
    let or_dash = |v: Option<String>| v.filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into());
    let value = |name: &str| -> String {
        match name {
            "service" => notice.service.clone(),
            "version" => or_dash(notice.version.clone()),
            "previous_version" => or_dash(notice.previous_version.clone()),
            "by" => or_dash(notice.by.clone()),
            "reason" => or_dash(notice.reason.clone()),
            // HH:MM of the RFC 3339 time, as runbook 001's `date -u +%H:%M`.
            "time" => notice.at.get(11..16).unwrap_or(&notice.at).to_string(),
            "duration" => or_dash(notice.seconds.map(duration)),
            "deployment" => or_dash(notice.deployment.map(|d| d.to_string())),
            "status" => notice.kind.as_str().to_string(),
            "weight" => or_dash(notice.weight.map(|w| w.to_string())),
            "details" => details(notice),
            "audit_head" => or_dash(notice.audit_head.clone()),
            _ => String::new(),
        }
    };
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push_str(&value(&after[..close]));
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn duration(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.1} seconds")
    } else {
        format!("{:.0} minutes", seconds / 60.0)
    }
}

/// The verdicts behind a rollback, one a line, after a blank line; empty without them.
fn details(notice: &Notice) -> String {
    if notice.verdicts.is_empty() {
        return String::new();
    }
    let value = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
    let mut text = String::from("\n\nMetrics (canary vs stable, condition, verdict):");
    for v in &notice.verdicts {
        text.push_str(&format!(
            "\n- {}: {} vs {}, {}: {}",
            v.metric,
            value(v.canary),
            value(v.stable),
            v.condition,
            v.verdict.to_uppercase()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use runway_wire::notice::{NoticeKind, Verdict};

    #[test]
    fn runbook_001s_rollback_text_with_the_numbers() {
        let mut n = Notice::new(NoticeKind::RolledBack, "api-server");
        n.at = "2026-11-30T14:05:09Z".into();
        n.version = Some("v1.2.3".into());
        n.previous_version = Some("v1.2.2".into());
        n.by = Some("alice".into());
        n.reason = Some("canary analysis failed: error_rate 0.2 > 0.05".into());
        n.verdicts = vec![Verdict {
            metric: "error_rate".into(),
            verdict: "fail".into(),
            canary: Some(0.2),
            stable: Some(0.0),
            condition: "fail_if > 0.05".into(),
            reason: "error_rate 0.2 > 0.05".into(),
        }];
        let text = render(NoticeKind::RolledBack.default_template(), &n);
        assert_eq!(
            text,
            "ROLLBACK INITIATED\n--------------------\nService: api-server\nFrom: v1.2.3\n\
             To: v1.2.2\nReason: canary analysis failed: error_rate 0.2 > 0.05\nOwner: @alice\n\
             Status: IN PROGRESS\n\nMetrics (canary vs stable, condition, verdict):\n\
             - error_rate: 0.2000 vs 0.0000, fail_if > 0.05: FAIL"
        );
        let mut done = Notice::new(NoticeKind::Succeeded, "api-server");
        done.at = "2026-11-30T14:05:09Z".into();
        done.version = Some("v1.2.3".into());
        done.seconds = Some(2700.0);
        assert_eq!(
            render(NoticeKind::Succeeded.default_template(), &done),
            "DEPLOYMENT COMPLETE\n--------------------\nService: api-server\nVersion: v1.2.3\n\
             Duration: 45 minutes\nStatus: SUCCESS"
        );
        assert_eq!(render("{time} {nope} {unclosed", &done), "14:05  {unclosed");
    }
}
