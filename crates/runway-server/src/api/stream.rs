//! Server-sent event streams of the journal: one deployment's (`/v1/deployments/{id}/stream`,
//! which the CLI's follow mode and the dashboard's live view read) and everything's
//! (`/v1/events/stream`: the engine's feed, which the notices follow too, and which the
//! dashboard's lists refresh on). Both are read from the store, not from a channel: a stream resumes from
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
use axum::Extension;
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use runway_engine::records::Records;
use runway_store::Status;
use runway_wire::api::{DeploymentStreamQuery, DeploymentView, StreamQuery};
use runway_wire::id::DeploymentId;
use runway_wire::ErrorCode;

use super::{Api, ApiError, Credential};

/// How often a stream looks at the store even without a journal tick: a deployment's status
/// is written just after its last entry.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Event streams open at once, over every client: each holds a task and reads the store.
pub const MAX_STREAMS: usize = 256;
/// How often a running deployment's stream sends its service's metrics.
pub const METRICS_EVERY: Duration = Duration::from_secs(1);

type Events = std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, Infallible>> + Send>>;
type EventStream = Sse<axum::response::sse::KeepAliveStream<Events>>;

/// `GET /v1/deployments/{id}/stream`.
pub(super) async fn deployment(
    State(api): State<Api>,
    Path(id): Path<DeploymentId>,
    Query(q): Query<DeploymentStreamQuery>,
    Extension(credential): Extension<Credential>,
    headers: HeaderMap,
) -> Result<EventStream, ApiError> {
    if api.store.deployment(id)?.is_none() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no deployment #{id}"),
        ));
    }
    let after = last_event_id(&headers)?.or(q.after).unwrap_or(0);
    let metrics = q.metrics;
    open(api, credential, move |api, tx| {
        follow_deployment(api, id, after, metrics, tx)
    })
}

/// `GET /v1/events/stream`.
pub(super) async fn everything(
    State(api): State<Api>,
    Query(q): Query<StreamQuery>,
    Extension(credential): Extension<Credential>,
    headers: HeaderMap,
) -> Result<EventStream, ApiError> {
    let after = match last_event_id(&headers)?.or(q.after) {
        Some(after) => after,
        None => api.engine.records().journal_cursor()?,
    };
    open(api, credential, move |api, tx| {
        follow_everything(api, after, q.service, tx)
    })
}

/// A stream fed by `produce` in a task of its own, which ends when the client goes away, the
/// server stops, `produce` returns, or the credential it was opened with is no longer good
/// (a revoked token, an ended session): a stream is a request that lasts, and is checked as
/// long as it lasts. At most [`MAX_STREAMS`] are open at once.
fn open<F, Fut>(api: Api, credential: Credential, produce: F) -> Result<EventStream, ApiError>
where
    F: FnOnce(Api, mpsc::Sender<SseEvent>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let Ok(permit) = api.streams.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            ErrorCode::Busy,
            format!("{MAX_STREAMS} event streams are open already: close one, or try again later"),
        ));
    };
    let (tx, rx) = mpsc::channel(64);
    let stopping = api.stopping.clone();
    let closed = tx.clone();
    let checker = api.clone();
    let work = produce(api, tx);
    tokio::spawn(async move {
        let _permit = permit;
        let revoked = async {
            loop {
                tokio::time::sleep(LOOK_EVERY).await;
                if !checker.still_good(&credential) {
                    return;
                }
            }
        };
        tokio::select! {
            result = work => {
                if let Err(e) = result {
                    tracing::warn!("event stream ended: {e:#}");
                }
            }
            _ = stopping.cancelled() => {}
            _ = closed.closed() => {}
            _ = revoked => {}
        }
    });
    let stream = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Ok(Sse::new(Box::pin(stream) as Events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
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
    metrics: bool,
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
        // With the outcome the store has not taken yet (a full disk): the follower sees the
        // deployment end.
        let Some(d) = api.engine.deployment(id)? else {
            return Ok(());
        };
        // What the live charts need: the router's counters and the canary's standing.
        let due = tokio::time::Instant::now() >= metrics_due;
        let sample = (metrics && due && d.status == Status::Running).then(|| {
            serde_json::json!({
                "at": runway_store::now(),
                "releases": api
                    .engine
                    .service(&d.service)
                    .map(|s| s.router.metrics())
                    .unwrap_or_default(),
                "canary": runway_engine::canary::view(&d),
            })
        });
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
            // Waiting for approvals is not an end: the stream follows it into its rollout.
            let ended = d.status.is_final();
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
        if let Some(sample) = sample {
            metrics_due = tokio::time::Instant::now() + METRICS_EVERY;
            let event = SseEvent::default().event("metrics").json_data(sample)?;
            if tx.send(event).await.is_err() {
                return Ok(());
            }
        }
        let _ = tokio::time::timeout(LOOK_EVERY, ticks.changed()).await;
    }
}

/// The stream of everything is the engine's feed of the journal, as the notices hear it.
async fn follow_everything(
    api: Api,
    after: i64,
    service: Option<String>,
    tx: mpsc::Sender<SseEvent>,
) -> anyhow::Result<()> {
    let mut feed = api.engine.feed(Some(after), service)?;
    if tx.send(ready(after)?).await.is_err() {
        return Ok(());
    }
    while let Some(entry) = feed.next().await {
        let entry = entry?;
        let event = SseEvent::default()
            .event("journal")
            .id(entry.cursor.to_string())
            .json_data(&entry)?;
        if tx.send(event).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
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
