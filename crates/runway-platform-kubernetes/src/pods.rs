//! A Deployment's pods as `runway status` shows them: the version runway marked their template
//! with, their node, whether they are ready, and why a container waits.

use k8s_openapi::api::core::v1::Pod;
use runway_wire::api::PodView;

use crate::revision::VERSION;

/// What `runway status` shows of `pod`.
pub fn view(pod: &Pod) -> PodView {
    let status = pod.status.clone().unwrap_or_default();
    let containers = status.container_statuses.unwrap_or_default();
    PodView {
        name: pod.metadata.name.clone().unwrap_or_default(),
        version: pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(VERSION))
            .cloned(),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        phase: status.phase.unwrap_or_else(|| "Unknown".into()),
        ready: status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        restarts: containers
            .iter()
            .map(|c| c.restart_count.max(0) as u32)
            .sum(),
        waiting: containers.iter().find_map(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.clone())
        }),
    }
}

/// A pod log read with timestamps (`timestamps=true`): its lines without them, those at or
/// before `after` (nanoseconds since the epoch: the cursor of an earlier read) left out, and
/// the cursor for the next read (the last line's time).
pub fn log_lines(raw: &str, after: u64) -> (Vec<String>, u64) {
    let mut cursor = after;
    let mut lines = Vec::new();
    for line in raw.lines() {
        let (stamp, text) = line.split_once(' ').unwrap_or((line, ""));
        let at = stamp
            .parse::<k8s_openapi::jiff::Timestamp>()
            .ok()
            .and_then(|t| u64::try_from(t.as_nanosecond()).ok());
        match at {
            Some(at) if at <= after => continue,
            Some(at) => {
                cursor = cursor.max(at);
                lines.push(text.to_string());
            }
            // A line the kubelet did not stamp (should not happen): kept as it is.
            None => lines.push(line.to_string()),
        }
    }
    (lines, cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_drop_their_stamps_and_what_was_read_before() {
        let raw = "2026-11-30T16:00:00.000000001Z first\n2026-11-30T16:00:01.5Z second line\n";
        let (lines, cursor) = log_lines(raw, 0);
        assert_eq!(lines, ["first", "second line"]);
        let (again, same) = log_lines(raw, cursor);
        assert!(again.is_empty());
        assert_eq!(same, cursor);
        let (later, _) = log_lines(&format!("{raw}2026-11-30T16:00:02Z third\n"), cursor);
        assert_eq!(later, ["third"]);
    }
    use serde_json::json;

    #[test]
    fn a_crash_looping_pod_shows_its_restarts_and_why_it_waits() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "api-7d-x1", "annotations": {VERSION: "v3"}},
            "spec": {"nodeName": "node-2", "containers": []},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": "False"}],
                       "containerStatuses": [
                           {"name": "api", "ready": false, "restartCount": 4, "image": "api:v3",
                            "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                           {"name": "proxy", "ready": true, "restartCount": 1, "image": "envoy",
                            "imageID": "", "state": {"running": {}}}]},
        }))
        .unwrap();
        assert_eq!(
            view(&pod),
            PodView {
                name: "api-7d-x1".into(),
                version: Some("v3".into()),
                node: Some("node-2".into()),
                phase: "Running".into(),
                ready: false,
                restarts: 5,
                waiting: Some("CrashLoopBackOff".into()),
            }
        );
    }
}
