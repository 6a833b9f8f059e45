//! The HTTP API the CLI talks to. Every route needs the bearer token from server.json; the
//! Prometheus endpoint lives on a separate admin listener without it (it carries no secrets,
//! and Prometheus should not need the CLI's token).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use runway_builtin_router::BuiltinRouter;
use runway_engine::logs::LogSelection;
use runway_engine::platform::{LogChunk, LogRead};
use runway_engine::records::Records;
use runway_engine::{replica_view, Engine, EngineError};
use runway_store::{Status, Store};
use runway_wire::api::*;
use runway_wire::id::DeploymentId;
use runway_wire::{ErrorBody, ErrorCode};

#[derive(Clone)]
struct Api {
    engine: Arc<Engine>,
    /// What the API reads that the engine does not (history, hook runs, backups).
    store: Arc<Store>,
    token: Arc<str>,
    metrics_addr: String,
}

pub fn router(
    engine: Arc<Engine>,
    store: Arc<Store>,
    token: String,
    metrics_addr: String,
) -> Router {
    let api = Api {
        engine,
        store,
        token: token.into(),
        metrics_addr,
    };
    Router::new()
        .route("/v1/info", get(info))
        .route("/v1/status", get(status))
        .route("/v1/deployments", get(history).post(deploy))
        .route("/v1/deployments/{id}", get(deployment))
        .route("/v1/deployments/{id}/events", get(events))
        .route("/v1/deployments/{id}/hooks", get(hook_runs))
        .route("/v1/services/{service}", delete(remove_service))
        .route("/v1/services/{service}/restore", post(restore))
        .route("/v1/services/{service}/backups", get(backups))
        .route("/v1/services/{service}/maintenance", post(maintenance))
        .route("/v1/services/{service}/read-only", post(read_only))
        .route("/v1/services/{service}/rollback", post(rollback))
        .route("/v1/services/{service}/scale", post(scale))
        .route("/v1/services/{service}/nodes", get(nodes))
        .route(
            "/v1/services/{service}/nodes/{node}/{action}",
            post(node_action),
        )
        .route("/v1/services/{service}/logs", get(logs))
        .route(
            "/v1/services/{service}/canary/{command}",
            post(canary_control),
        )
        .route("/v1/services/{service}/baselines", post(capture_baseline))
        .route("/v1/services/{service}/checks/history", get(check_history))
        .route(
            "/v1/services/{service}/baselines/compare",
            get(compare_baseline),
        )
        .layer(middleware::from_fn_with_state(api.clone(), require_token))
        .layer(middleware::from_fn(json_errors))
        .with_state(api)
}

pub fn metrics_router(engine: Arc<Engine>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let engine = engine.clone();
            async move {
                let proxies: Vec<_> = engine
                    .services()
                    .iter()
                    .filter_map(|s| {
                        let builtin = s.router.as_any().downcast_ref::<BuiltinRouter>()?;
                        Some(builtin.proxy().clone())
                    })
                    .collect();
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    runway_proxy::render_prometheus(&proxies),
                )
            }
        }),
    )
}

async fn require_token(State(api): State<Api>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), api.token.as_bytes()) {
        let mut response = ApiError::new(
            ErrorCode::Unauthorized,
            "missing or wrong token: the CLI reads it from the server's state dir (server.json)",
        )
        .into_response();
        // RFC 6750: a 401 names the scheme it wants.
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"runway\""),
        );
        return response;
    }
    next.run(req).await
}

/// The token of an `Authorization: Bearer TOKEN` value; the scheme is case-insensitive
/// (RFC 9110 section 11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim_start())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An error answer: [`ErrorBody`] with its code's HTTP status.
struct ApiError {
    code: ErrorCode,
    message: String,
    hint: Option<String>,
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            hint: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody::new(self.code, self.message, self.hint);
        (status, Json(body)).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = e.code();
        let message = match e {
            // The chain (paths, SQL, OS errors) is for the operator's log, not the client.
            EngineError::Internal(err) => {
                let id = crate::state_dir::new_token()[..8].to_string();
                tracing::error!(error_id = %id, "internal error: {err:#}");
                format!("internal error {id} in the server")
            }
            other => other.to_string(),
        };
        ApiError::new(code, message)
    }
}

/// Errors that did not come from a handler (an unknown route, a body that is not the JSON a
/// route takes, a wrong method) answer in the same JSON shape as the others.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    // The status stays what it was (e.g. 422 for a body of the wrong shape), and so do the
    // headers but the body's (a 405 keeps its Allow); the body says it in JSON.
    let mut body = ErrorBody::new(ErrorCode::from_http_status(status.as_u16()), message, None);
    body.status = status.as_u16();
    let mut answer = (parts.status, Json(body)).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        EngineError::Internal(e).into()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

async fn info(State(api): State<Api>) -> ApiResult<ServerInfo> {
    Ok(Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        state_dir: api.engine.state_dir().display().to_string(),
        metrics: api.metrics_addr.clone(),
    }))
}

async fn status(State(api): State<Api>) -> ApiResult<StatusView> {
    Ok(Json(api.engine.status().await?))
}

async fn history(
    State(api): State<Api>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Vec<runway_store::Deployment>> {
    Ok(Json(
        api.store
            .history(q.service.as_deref(), q.limit.unwrap_or(50))?,
    ))
}

async fn deploy(
    State(api): State<Api>,
    Json(req): Json<DeployRequest>,
) -> Result<(StatusCode, Json<runway_store::Deployment>), ApiError> {
    let d = api
        .engine
        .deploy(
            &req.version,
            req.spec,
            &req.base_dir,
            req.skip_checks,
            req.from_here,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(d)))
}

async fn deployment(
    State(api): State<Api>,
    Path(id): Path<DeploymentId>,
) -> ApiResult<DeploymentDetail> {
    let store = &api.store;
    let deployment = store
        .deployment(id)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no deployment #{id}")))?;
    Ok(Json(DeploymentDetail {
        deployment,
        journal: store.journal_since(id, 0)?,
    }))
}

/// Journal entries after `after`; waits up to `wait` seconds for new ones while the deployment
/// runs, so `runway deploy` can follow a deployment without busy polling.
async fn events(
    State(api): State<Api>,
    Path(id): Path<DeploymentId>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<DeploymentDetail> {
    let after = q.after.unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.unwrap_or(0).min(30));
    let mut ticks = api.engine.journal_ticks();
    loop {
        ticks.borrow_and_update();
        let store = &api.store;
        let deployment = store
            .deployment(id)?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no deployment #{id}")))?;
        let journal = store.journal_since(id, after)?;
        if !journal.is_empty() || deployment.status != Status::Running {
            return Ok(Json(DeploymentDetail {
                deployment,
                journal,
            }));
        }
        if tokio::time::timeout_at(deadline, ticks.changed())
            .await
            .is_err()
        {
            return Ok(Json(DeploymentDetail {
                deployment,
                journal,
            }));
        }
    }
}

async fn rollback(
    State(api): State<Api>,
    Path(service): Path<String>,
    Json(req): Json<RollbackRequest>,
) -> Result<(StatusCode, Json<runway_store::Deployment>), ApiError> {
    let d = api
        .engine
        .rollback(
            &service,
            req.version.as_deref(),
            req.revision,
            req.keep_schema,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(d)))
}

async fn restore(
    State(api): State<Api>,
    Path(service): Path<String>,
    Json(req): Json<RestoreRequest>,
) -> Result<(StatusCode, Json<runway_store::Deployment>), ApiError> {
    let d = api.engine.restore(&service, req.backup_id).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

async fn backups(
    State(api): State<Api>,
    Path(service): Path<String>,
) -> ApiResult<Vec<runway_store::BackupRow>> {
    Ok(Json(api.store.backups(&service)?))
}

async fn maintenance(
    State(api): State<Api>,
    Path(service): Path<String>,
    Json(req): Json<ModeRequest>,
) -> ApiResult<Message> {
    let message = api.engine.set_maintenance(&service, req.on, req.message)?;
    Ok(Json(Message { message }))
}

async fn read_only(
    State(api): State<Api>,
    Path(service): Path<String>,
    Json(req): Json<ModeRequest>,
) -> ApiResult<Message> {
    let message = api.engine.set_read_only(&service, req.on, req.message)?;
    Ok(Json(Message { message }))
}

async fn hook_runs(
    State(api): State<Api>,
    Path(id): Path<DeploymentId>,
) -> ApiResult<Vec<runway_store::HookRun>> {
    if api.store.deployment(id)?.is_none() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no deployment #{id}; see `runway history`"),
        ));
    }
    Ok(Json(api.store.hook_runs(id)?))
}

async fn scale(
    State(api): State<Api>,
    Path(service): Path<String>,
    Json(req): Json<ScaleRequest>,
) -> Result<(StatusCode, Json<runway_store::Deployment>), ApiError> {
    let d = api.engine.scale(&service, req.count).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

async fn nodes(State(api): State<Api>, Path(service): Path<String>) -> ApiResult<Vec<ReplicaView>> {
    let svc = api.engine.service(&service)?;
    Ok(Json(
        svc.replicas().iter().map(|r| replica_view(r)).collect(),
    ))
}

/// `DELETE /v1/services/NAME[?force=true]`: refused (409) while the service serves, unless
/// forced.
async fn remove_service(
    State(api): State<Api>,
    Path(service): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<Message> {
    let message = api.engine.remove_service(&service, q.force).await?;
    Ok(Json(Message { message }))
}

async fn node_action(
    State(api): State<Api>,
    Path((service, node, action)): Path<(String, String, String)>,
) -> ApiResult<Message> {
    let action = NodeAction::from_path(&action).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("unknown node action `{action}`: restart, stop or start"),
        )
    })?;
    let message = api.engine.node_action(&service, &node, action).await?;
    Ok(Json(Message { message }))
}

async fn check_history(
    State(api): State<Api>,
    Path(service): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Vec<runway_engine::schedule::CheckRun>> {
    Ok(Json(
        api.engine.check_history(&service, q.limit.unwrap_or(20))?,
    ))
}

fn window_of(q: &BaselineQuery) -> Result<Duration, ApiError> {
    let seconds = q.window.unwrap_or(10.0);
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, format!("bad window {seconds}")))
}

async fn capture_baseline(
    State(api): State<Api>,
    Path(service): Path<String>,
    Query(q): Query<BaselineQuery>,
) -> ApiResult<runway_engine::baseline::Baseline> {
    Ok(Json(
        api.engine
            .capture_baseline(&service, window_of(&q)?)
            .await?,
    ))
}

async fn compare_baseline(
    State(api): State<Api>,
    Path(service): Path<String>,
    Query(q): Query<BaselineQuery>,
) -> ApiResult<runway_engine::baseline::Comparison> {
    Ok(Json(
        api.engine
            .compare_baseline(&service, q.id, window_of(&q)?)
            .await?,
    ))
}

/// `runway promote [--full] | pause | resume | abort`.
async fn canary_control(
    State(api): State<Api>,
    Path((service, command)): Path<(String, String)>,
) -> ApiResult<Message> {
    let control = CanaryCommand::from_path(&command).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("unknown command `{command}`: promote, promote-full, pause, resume or abort"),
        )
    })?;
    let message = api.engine.control(&service, control)?;
    Ok(Json(Message { message }))
}

/// The last `n` lines of each selected replica's log, or what each wrote since `cursor`.
async fn logs(
    State(api): State<Api>,
    Path(service): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<LogsResponse> {
    let cursor: BTreeMap<String, u64> = match &q.cursor {
        Some(c) => serde_json::from_str(c)
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("bad cursor: {e}")))?,
        None => BTreeMap::new(),
    };
    let selection = LogSelection {
        node: q.node,
        version: q.version,
        deployment: q.deployment,
    };
    let mut out = LogsResponse {
        lines: Vec::new(),
        cursor: BTreeMap::new(),
    };
    let now = runway_store::now();
    // A cluster's pods, read from the cluster.
    if let Some(pods) = api.engine.pod_log_sources(&service, &selection).await? {
        for pod in pods {
            let (read, read_at) = match cursor.get(&pod.replica) {
                Some(&after) => (LogRead::Since(after), Some(now.clone())),
                None => (LogRead::Tail(q.n.unwrap_or(50)), None),
            };
            let chunk = api
                .engine
                .read_pod_log(&service, &pod.replica, read)
                .await
                .unwrap_or_default();
            out.cursor.insert(pod.replica.clone(), chunk.cursor);
            out.lines
                .extend(chunk.lines.into_iter().map(|line| LogLine {
                    at: read_at.clone(),
                    replica: Some(pod.replica.clone()),
                    version: Some(pod.version.clone()),
                    hook: None,
                    line,
                }));
        }
        return Ok(Json(out));
    }
    for source in api.engine.log_sources(&service, &selection)? {
        // Lines that appeared since the cursor's offset were written in the last moments; of
        // a tail (a first read, or a replica new to the cursor) the time of writing is not
        // known (see `LogLine::at`).
        let (read, read_at) = match cursor.get(&source.replica) {
            Some(&offset) => (LogRead::Since(offset), Some(now.clone())),
            None => (LogRead::Tail(q.n.unwrap_or(50)), None),
        };
        let LogChunk {
            lines,
            cursor: offset,
        } = api
            .engine
            .platform()
            .read_log(&service, &source.replica, read)
            .unwrap_or_default();
        out.cursor.insert(source.replica.clone(), offset);
        out.lines.extend(lines.into_iter().map(|line| LogLine {
            at: read_at.clone(),
            replica: Some(source.replica.clone()),
            version: Some(source.version.clone()),
            hook: None,
            line,
        }));
    }
    Ok(Json(out))
}
