//! Server-sent event streams of the journal: one deployment's (`/v1/deployments/{id}/stream`,
//! which the CLI's follow mode reads) and everything's (`/v1/events/stream`, which the
//! dashboard reads). Both are read from the store, not from a channel: a stream resumes from
//! any point (`after`, or the `Last-Event-ID` a reconnecting browser sends), and nothing
//! written while no one listened is missed.
//!
//! A stream opens with `ready`, whose id is where it starts: a browser that loses the
//! connection before any entry came resumes from there, not from "now" again. Each journal
//! entry is an SSE event named `journal` whose id is its place in the stream; the deployment's
//! stream also sends `deployment` (its record, at the start and whenever its status changes),
//! `metrics` every [`METRICS_EVERY`] while it runs (each release's counters and latencies as
//! the router measures them: the dashboard's live charts) and ends once the deployment has.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use runway_engine::records::Records;
use runway_store::Status;
use runway_wire::api::{DeploymentView, StreamQuery};
use runway_wire::id::DeploymentId;
use runway_wire::ErrorCode;

use super::{Api, ApiError};

/// How often a stream looks at the store even without a journal tick: a deployment's status
/// is written just after its last entry.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How often a running deployment's stream sends its service's metrics.
pub const METRICS_EVERY: Duration = Duration::from_secs(1);
/// Entries read from the store at a time.
const BATCH: usize = 500;

type Events = std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, Infallible>> + Send>>;
type EventStream = Sse<axum::response::sse::KeepAliveStream<Events>>;

/// `GET /v1/deployments/{id}/stream`.
pub(super) async fn deployment(
    State(api): State<Api>,
    Path(id): Path<DeploymentId>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<EventStream, ApiError> {
    if api.store.deployment(id)?.is_none() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no deployment #{id}"),
        ));
    }
    let after = last_event_id(&headers)?.or(q.after).unwrap_or(0);
    Ok(open(api, move |api, tx| {
        follow_deployment(api, id, after, tx)
    }))
}

/// `GET /v1/events/stream`.
pub(super) async fn everything(
    State(api): State<Api>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<EventStream, ApiError> {
    let after = match last_event_id(&headers)?.or(q.after) {
        Some(after) => after,
        None => api.store.journal_cursor()?,
    };
    Ok(open(api, move |api, tx| {
        follow_everything(api, after, q.service, tx)
    }))
}

/// A stream fed by `produce` in a task of its own, which ends when the client goes away, the
/// server stops or `produce` returns.
fn open<F, Fut>(api: Api, produce: F) -> EventStream
where
    F: FnOnce(Api, mpsc::Sender<SseEvent>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    let stopping = api.stopping.clone();
    let closed = tx.clone();
    let work = produce(api, tx);
    tokio::spawn(async move {
        tokio::select! {
            result = work => {
                if let Err(e) = result {
                    tracing::warn!("event stream ended: {e:#}");
                }
            }
            _ = stopping.cancelled() => {}
            _ = closed.closed() => {}
        }
    });
    let stream = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Sse::new(Box::pin(stream) as Events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The first event of a stream: where it starts.
fn ready(after: i64) -> anyhow::Result<SseEvent> {
    Ok(SseEvent::default()
        .event("ready")
        .id(after.to_string())
        .json_data(serde_json::json!({ "after": after }))?)
}

async fn follow_deployment(
    api: Api,
    id: DeploymentId,
    mut after: i64,
    tx: mpsc::Sender<SseEvent>,
) -> anyhow::Result<()> {
    let mut ticks = api.engine.journal_ticks();
    if tx.send(ready(after)?).await.is_err() {
        return Ok(());
    }
    let mut told: Option<Status> = None;
    let mut metrics_due = tokio::time::Instant::now();
    loop {
        ticks.borrow_and_update();
        // The status before the entries: an ended deployment's last entries are all written
        // by the time its status says so.
        let Some(d) = api.store.deployment(id)? else {
            return Ok(());
        };
        let service = d.service.clone();
        for entry in api.store.journal_since(id, after)? {
            after = entry.seq;
            let event = SseEvent::default()
                .event("journal")
                .id(entry.seq.to_string())
                .json_data(&entry)?;
            if tx.send(event).await.is_err() {
                return Ok(());
            }
        }
        if told != Some(d.status) {
            told = Some(d.status);
            let ended = d.status != Status::Running;
            let view: DeploymentView = d.into();
            if tx
                .send(SseEvent::default().event("deployment").json_data(&view)?)
                .await
                .is_err()
                || ended
            {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= metrics_due {
            metrics_due = tokio::time::Instant::now() + METRICS_EVERY;
            if let Ok(status) = api.engine.status().await {
                let Some(view) = status.services.into_iter().find(|s| s.name == service) else {
                    continue;
                };
                let sample = serde_json::json!({
                    "at": status.at,
                    "releases": view.metrics,
                    "canary": view.deployment.and_then(|op| op.canary),
                });
                let event = SseEvent::default().event("metrics").json_data(sample)?;
                if tx.send(event).await.is_err() {
                    return Ok(());
                }
            }
        }
        let _ = tokio::time::timeout(LOOK_EVERY, ticks.changed()).await;
    }
}

async fn follow_everything(
    api: Api,
    mut after: i64,
    service: Option<String>,
    tx: mpsc::Sender<SseEvent>,
) -> anyhow::Result<()> {
    let mut ticks = api.engine.journal_ticks();
    if tx.send(ready(after)?).await.is_err() {
        return Ok(());
    }
    loop {
        ticks.borrow_and_update();
        let entries = api.store.journal_feed(after, service.as_deref(), BATCH)?;
        let full = entries.len() == BATCH;
        for entry in entries {
            after = entry.cursor;
            let event = SseEvent::default()
                .event("journal")
                .id(entry.cursor.to_string())
                .json_data(&entry)?;
            if tx.send(event).await.is_err() {
                return Ok(());
            }
        }
        if !full {
            let _ = tokio::time::timeout(LOOK_EVERY, ticks.changed()).await;
        }
    }
}

/// The `Last-Event-ID` header of a reconnecting client: where it left off.
fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|v| *v >= 0)
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "Last-Event-ID must be the id of an event this stream sent (a whole number)",
            )
        })
}
