//! The HTTP API the CLI talks to. Every route needs a bearer token: the server's bootstrap
//! admin token from server.json, or a named token (`runway tokens create`) whose role the route
//! checks ([`required_role`]: one table, read by the role matrix test). A missing or unknown
//! token gets 401, a role that may not do it 403 naming the role it needs. The Prometheus
//! endpoint lives on a separate admin listener without a token (it carries no secrets, and
//! Prometheus should not need one).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Extension;
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
use tokio_util::sync::CancellationToken;

use crate::session::{self, Sessions};

mod ofrep;
mod stream;

#[derive(Clone)]
struct Api {
    engine: Arc<Engine>,
    /// What the API reads that the engine does not (history, hook runs, backups, tokens).
    store: Arc<Store>,
    /// The bootstrap admin token (server.json).
    token: Arc<str>,
    metrics_addr: String,
    /// Cancelled when the server stops: event streams end with it.
    stopping: CancellationToken,
    /// The dashboard's sessions.
    sessions: Arc<Sessions>,
    /// Session cookies are `Secure` (the API is served over TLS, or behind a proxy that is).
    secure_cookies: bool,
    /// The SHA-256 of the bootstrap token, which sessions and streams are checked against.
    token_hash: Arc<str>,
    /// Event streams that may still open (stream::MAX_STREAMS in all).
    streams: Arc<tokio::sync::Semaphore>,
}

/// What a request was let in with: checked again, for as long as an event stream lasts.
#[derive(Clone)]
pub(crate) enum Credential {
    /// The SHA-256 of a bearer token.
    Token(String),
    /// A session cookie's value.
    Session(String),
}

impl Api {
    /// Whether `credential` would still be let in now.
    fn still_good(&self, credential: &Credential) -> bool {
        let hash = match credential {
            Credential::Token(hash) => hash.clone(),
            Credential::Session(id) => match self.sessions.peek(id) {
                Some(session) => session.token_hash,
                None => return false,
            },
        };
        matches!(identify_hash(self, &hash), Ok(Some(_)))
    }
}

/// What the API is built from.
pub struct ApiOptions {
    pub engine: Arc<Engine>,
    pub store: Arc<Store>,
    /// The bootstrap admin token (server.json).
    pub token: String,
    /// Where Prometheus scrapes (told in `/v1/info`).
    pub metrics_addr: String,
    /// Cancelled when the server stops.
    pub stopping: CancellationToken,
    /// Session cookies are marked `Secure`: the API is served over TLS, or behind a proxy
    /// that terminates it (`--insecure-http`).
    pub secure_cookies: bool,
}

/// The identity of the server's bootstrap token: the admin who can create the others.
pub const BOOTSTRAP: &str = "bootstrap-admin";

pub fn router(options: ApiOptions) -> Router {
    let api = Api {
        engine: options.engine,
        store: options.store,
        token: options.token.clone().into(),
        metrics_addr: options.metrics_addr,
        stopping: options.stopping,
        sessions: Arc::new(Sessions::default()),
        secure_cookies: options.secure_cookies,
        token_hash: hash_token(&options.token).into(),
        streams: Arc::new(tokio::sync::Semaphore::new(stream::MAX_STREAMS)),
    };
    Router::new()
        .route("/v1/openapi.json", get(openapi_document))
        .route(
            "/v1/session",
            get(session_view).post(sign_in).delete(sign_out),
        )
        .route("/v1/info", get(info))
        .route("/v1/status", get(status))
        .route("/v1/deployments", get(history).post(deploy))
        .route("/v1/deployments/{id}", get(deployment))
        .route("/v1/deployments/{id}/events", get(events))
        .route("/v1/deployments/{id}/stream", get(stream::deployment))
        .route("/v1/events/stream", get(stream::everything))
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
        .route("/v1/approvals", get(approvals))
        .route("/v1/deployments/{id}/approve", post(approve))
        .route("/v1/deployments/{id}/reject", post(reject))
        .route("/v1/services/{service}/secrets", get(list_secrets))
        .route(
            "/v1/services/{service}/secrets/{name}",
            put(set_secret).delete(unset_secret),
        )
        .route("/v1/services/{service}/flags", get(list_flags))
        .route(
            "/v1/services/{service}/flags/{name}",
            get(get_flag).put(set_flag),
        )
        .route("/v1/services/{service}/flags/{name}/off", post(flag_off))
        .route(
            "/v1/services/{service}/flags/{name}/rollout",
            post(flag_rollout),
        )
        .route(
            "/v1/services/{service}/ofrep/v1/evaluate/flags",
            post(ofrep::evaluate_all),
        )
        .route(
            "/v1/services/{service}/ofrep/v1/evaluate/flags/{key}",
            post(ofrep::evaluate_one),
        )
        .route("/v1/services/{service}/lock", post(lock))
        .route("/v1/services/{service}/unlock", post(unlock))
        .route("/v1/whoami", get(whoami))
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{name}", delete(revoke_token))
        .route("/v1/audit", get(audit_trail))
        .route("/v1/audit/verify", get(audit_verify))
        .route("/v1/notify/test", post(notify_test))
        .route("/v1/deliveries", get(deliveries))
        .route("/v1/reports/dora", get(dora))
        .route("/v1/incidents", get(incidents))
        .route("/v1/incidents/{id}", get(incident))
        .route("/v1/incidents/{id}/ack", post(ack_incident))
        .route("/v1/incidents/{id}/resolve", post(resolve_incident))
        // After routing, so that the route's path decides the role it needs.
        .route_layer(middleware::from_fn_with_state(api.clone(), authorize))
        .layer(middleware::from_fn(json_errors))
        // Outermost: it sees the final answer of every state-changing request.
        .layer(middleware::from_fn_with_state(api.clone(), audit))
        .with_state(api)
        // The dashboard's files: no token (they hold no data), no audit (they change nothing).
        .merge(crate::dashboard::router())
        // Again outside: an unknown path, or a method no route has, answers in JSON too.
        .layer(middleware::from_fn(json_errors))
}

/// Every route of the API, as (method, path): what the role matrix test calls with each role
/// (a unit test below checks that it lists every route [`router`] has).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/session"),
    ("POST", "/v1/session"),
    ("DELETE", "/v1/session"),
    ("GET", "/v1/info"),
    ("GET", "/v1/status"),
    ("GET", "/v1/deployments"),
    ("POST", "/v1/deployments"),
    ("GET", "/v1/deployments/{id}"),
    ("GET", "/v1/deployments/{id}/events"),
    ("GET", "/v1/deployments/{id}/stream"),
    ("GET", "/v1/events/stream"),
    ("GET", "/v1/deployments/{id}/hooks"),
    ("DELETE", "/v1/services/{service}"),
    ("POST", "/v1/services/{service}/restore"),
    ("GET", "/v1/services/{service}/backups"),
    ("POST", "/v1/services/{service}/maintenance"),
    ("POST", "/v1/services/{service}/read-only"),
    ("POST", "/v1/services/{service}/rollback"),
    ("POST", "/v1/services/{service}/scale"),
    ("GET", "/v1/services/{service}/nodes"),
    ("POST", "/v1/services/{service}/nodes/{node}/{action}"),
    ("GET", "/v1/services/{service}/logs"),
    ("POST", "/v1/services/{service}/canary/{command}"),
    ("POST", "/v1/services/{service}/baselines"),
    ("GET", "/v1/services/{service}/checks/history"),
    ("GET", "/v1/services/{service}/baselines/compare"),
    ("GET", "/v1/approvals"),
    ("POST", "/v1/deployments/{id}/approve"),
    ("POST", "/v1/deployments/{id}/reject"),
    ("GET", "/v1/services/{service}/secrets"),
    ("PUT", "/v1/services/{service}/secrets/{name}"),
    ("DELETE", "/v1/services/{service}/secrets/{name}"),
    ("GET", "/v1/services/{service}/flags"),
    ("GET", "/v1/services/{service}/flags/{name}"),
    ("PUT", "/v1/services/{service}/flags/{name}"),
    ("POST", "/v1/services/{service}/flags/{name}/off"),
    ("POST", "/v1/services/{service}/flags/{name}/rollout"),
    ("POST", "/v1/services/{service}/ofrep/v1/evaluate/flags"),
    (
        "POST",
        "/v1/services/{service}/ofrep/v1/evaluate/flags/{key}",
    ),
    ("POST", "/v1/services/{service}/lock"),
    ("POST", "/v1/services/{service}/unlock"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/audit/verify"),
    ("GET", "/v1/whoami"),
    ("GET", "/v1/tokens"),
    ("POST", "/v1/tokens"),
    ("DELETE", "/v1/tokens/{name}"),
    ("POST", "/v1/notify/test"),
    ("GET", "/v1/deliveries"),
    ("GET", "/v1/reports/dora"),
    ("GET", "/v1/incidents"),
    ("GET", "/v1/incidents/{id}"),
    ("POST", "/v1/incidents/{id}/ack"),
    ("POST", "/v1/incidents/{id}/resolve"),
];

/// The routes anyone may call: the API's description, and signing in (which checks the token
/// it is given).
pub fn is_public(method: &http::Method, route: &str) -> bool {
    matches!(
        (method.as_str(), route),
        ("GET", "/v1/openapi.json") | ("POST", "/v1/session")
    )
}

/// The role a route needs, by method and route path. A route missing here needs `admin`
/// (the role matrix test in crates/runway/tests/e2e/roles.rs lists every route).
pub fn required_role(method: &http::Method, route: &str) -> Role {
    use http::Method;
    let read = *method == Method::GET || *method == Method::HEAD;
    match route {
        // Reading is a viewer's, whatever it reads; so is ending one's own session.
        _ if read => Role::Viewer,
        "/v1/session" => Role::Viewer,
        // Evaluating flags reads them (an application's token needs no more).
        "/v1/services/{service}/ofrep/v1/evaluate/flags"
        | "/v1/services/{service}/ofrep/v1/evaluate/flags/{key}" => Role::Viewer,
        "/v1/deployments"
        | "/v1/services/{service}/rollback"
        | "/v1/services/{service}/scale"
        | "/v1/services/{service}/maintenance"
        | "/v1/services/{service}/read-only"
        | "/v1/services/{service}/nodes/{node}/{action}"
        | "/v1/services/{service}/canary/{command}"
        | "/v1/services/{service}/baselines"
        | "/v1/services/{service}/lock"
        | "/v1/services/{service}/unlock"
        | "/v1/services/{service}/flags/{name}"
        | "/v1/services/{service}/flags/{name}/off"
        | "/v1/services/{service}/flags/{name}/rollout"
        | "/v1/notify/test"
        | "/v1/incidents/{id}/ack"
        | "/v1/incidents/{id}/resolve"
        // A requester may withdraw their own; the engine checks who else may reject.
        | "/v1/deployments/{id}/reject" => Role::Deployer,
        "/v1/deployments/{id}/approve" => Role::Approver,
        // Restoring puts old data back; removing forgets a service; tokens are who may do what.
        _ => Role::Admin,
    }
}

/// `runway notify test`: the request's targets (runway.toml's `[[notify]]`) get a test notice
/// now; the answer says what became of each.
async fn notify_test(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Json(req): Json<runway_wire::notice::NotifyTestRequest>,
) -> ApiResult<Vec<runway_wire::notice::Delivery>> {
    runway_spec::notify::validate_targets(&req.targets)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e))?;
    if req.targets.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "runway.toml has no [[notify]] target to test",
        ));
    }
    Ok(Json(
        api.engine
            .notify_test(&req.service, &req.targets, &by.name)
            .await,
    ))
}

async fn deliveries(
    State(api): State<Api>,
    Query(q): Query<runway_wire::notice::DeliveryQuery>,
) -> ApiResult<Vec<runway_wire::notice::Delivery>> {
    Ok(Json(
        api.engine
            .deliveries(q.service.as_deref(), q.limit.unwrap_or(50))?,
    ))
}

async fn dora(
    State(api): State<Api>,
    Query(q): Query<runway_wire::dora::DoraQuery>,
) -> ApiResult<runway_wire::dora::DoraReport> {
    let since = match q.since.as_deref() {
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    ApiError::new(
                        ErrorCode::InvalidRequest,
                        format!("since `{text}` is not an RFC 3339 time"),
                    )
                })?
                .with_timezone(&chrono::Utc),
        ),
        None => None,
    };
    Ok(Json(api.engine.dora(q.service.as_deref(), since)?))
}

async fn incidents(
    State(api): State<Api>,
    Query(q): Query<runway_wire::incident::IncidentQuery>,
) -> ApiResult<Vec<runway_wire::incident::Incident>> {
    Ok(Json(
        api.engine
            .incidents(q.service.as_deref(), q.limit.unwrap_or(50))?,
    ))
}

async fn incident(
    State(api): State<Api>,
    Path(id): Path<i64>,
) -> ApiResult<runway_wire::incident::IncidentDetail> {
    Ok(Json(api.engine.incident(id)?))
}

async fn ack_incident(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path(id): Path<i64>,
) -> ApiResult<runway_wire::incident::IncidentDetail> {
    Ok(Json(api.engine.ack_incident(id, &by.name)?))
}

async fn resolve_incident(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path(id): Path<i64>,
    Json(req): Json<runway_wire::incident::ResolveRequest>,
) -> ApiResult<runway_wire::incident::IncidentDetail> {
    Ok(Json(api.engine.resolve_incident(
        id,
        &by.name,
        req.note.as_deref(),
    )?))
}

/// DORA's figures over the last 90 days, per service, as Prometheus gauges (a figure without
/// data is left out, not written as 0).
fn dora_gauges(engine: &Engine) -> String {
    let mut out = String::new();
    let names: Vec<String> = engine.services().iter().map(|s| s.name.clone()).collect();
    let reports: Vec<_> = names
        .iter()
        .filter_map(|name| Some((name, engine.dora(Some(name), None).ok()?)))
        .collect();
    for (metric, help) in [
        (
            "deployment_frequency",
            "Deploys that succeeded per day, last 90 days.",
        ),
        (
            "lead_time",
            "Median seconds from commit to deployed, last 90 days.",
        ),
        (
            "deployment_failure_rate",
            "Share of deploys that reached production and did not succeed, last 90 days.",
        ),
        (
            "change_failure_rate",
            "Share of deploys rolled back or tied to an incident, last 90 days.",
        ),
        (
            "time_to_restore",
            "Median seconds a bad release affected users, last 90 days.",
        ),
        (
            "rework_rate",
            "Share of deploys right after a failed or rolled-back one, last 90 days.",
        ),
    ] {
        let gauge = match metric {
            "lead_time" | "time_to_restore" => format!("runway_dora_{metric}_seconds"),
            "deployment_frequency" => "runway_dora_deployments_per_day".to_string(),
            _ => format!("runway_dora_{metric}"),
        };
        out.push_str(&format!("# HELP {gauge} {help}\n# TYPE {gauge} gauge\n"));
        for (service, report) in &reports {
            if let Some(value) = report
                .metrics
                .iter()
                .find(|m| m.name == metric)
                .and_then(|m| m.value)
            {
                out.push_str(&format!("{gauge}{{service=\"{service}\"}} {value}\n"));
            }
        }
    }
    out
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
                let mut text = runway_proxy::render_prometheus(&proxies);
                text.push_str(&dora_gauges(&engine));
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
            }
        }),
    )
}

/// Who the request is from (401 when nobody known), and whether their role may call the route
/// (403 naming the role it needs). The identity goes on to the handler as an extension.
async fn authorize(State(api): State<Api>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    if is_public(req.method(), &route) {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(str::to_string);
    // A bearer token, else a dashboard session (whose changes carry its CSRF token).
    let identified = match presented {
        Some(token) => {
            req.extensions_mut()
                .insert(Credential::Token(hash_token(&token)));
            identify(&api, &token)
        }
        None => match session::cookie_of(req.headers()) {
            Some(cookie) => match api.sessions.find(&cookie) {
                Some(found) => {
                    let safe = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
                    let csrf = req
                        .headers()
                        .get(session::CSRF_HEADER)
                        .map(|v| v.as_bytes())
                        .unwrap_or_default();
                    if !safe && !constant_time_eq(csrf, found.csrf.as_bytes()) {
                        return ApiError::new(
                            ErrorCode::Forbidden,
                            "a change asked with a session cookie must carry the session's \
                             CSRF token in the X-CSRF-Token header (the dashboard sends it)",
                        )
                        .into_response();
                    }
                    req.extensions_mut().insert(Credential::Session(cookie));
                    identify_hash(&api, &found.token_hash)
                }
                None => Ok(None),
            },
            None => Ok(None),
        },
    };
    let identity = match identified {
        Ok(Some(identity)) => identity,
        Ok(None) => {
            let mut response = ApiError::new(
                ErrorCode::Unauthorized,
                "missing, unknown or revoked token: the CLI sends RUNWAY_TOKEN, or else the \
                 server's own token from its state dir (server.json); the dashboard signs in \
                 again",
            )
            .into_response();
            // RFC 6750: a 401 names the scheme it wants.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"runway\""),
            );
            return response;
        }
        Err(e) => return ApiError::from(EngineError::Internal(e)).into_response(),
    };
    let needed = required_role(req.method(), &route);
    if !identity.role.allows(needed) {
        let mut response = ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "{} {route} needs the {needed} role; the token `{}` has {}",
                req.method(),
                identity.name,
                identity.role
            ),
        )
        .into_response();
        // For the audit trail, which records refusals too.
        response.extensions_mut().insert(identity);
        return response;
    }
    req.extensions_mut().insert(identity.clone());
    let mut response = next.run(req).await;
    response.extensions_mut().insert(identity);
    response
}

/// The request fields the audit trail keeps: what was asked, never a config or its secrets.
const AUDITED_FIELDS: &[&str] = &[
    "version",
    "type",
    "reason",
    "override",
    "skip_checks",
    "from_here",
    "count",
    "backup_id",
    "keep_schema",
    "revision",
    "on",
    "message",
    "name",
    "role",
    "digest",
    "note",
    "commit",
    "commit_time",
];

/// Whether `path` is an OFREP evaluation (`/v1/services/S/ofrep/v1/evaluate/flags[/K]`), by
/// its segments: a service or flag named `ofrep` is audited like any other.
fn is_flag_evaluation(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    matches!(
        segments.as_slice(),
        ["", "v1", "services", _, "ofrep", "v1", "evaluate", "flags"]
            | [
                "",
                "v1",
                "services",
                _,
                "ofrep",
                "v1",
                "evaluate",
                "flags",
                _
            ]
    )
}

/// Appends every state-changing request to the audit trail, with who (known from `authorize`,
/// which runs inside this), from where, what and how it ended, refusals included.
async fn audit(State(api): State<Api>, req: Request, next: Next) -> Response {
    // Reads change nothing; nor do flag evaluations (an application's every request).
    if matches!(*req.method(), http::Method::GET | http::Method::HEAD)
        || is_flag_evaluation(req.uri().path())
    {
        return next.run(req).await;
    }
    let remote = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(String::new(), |c| c.0.to_string());
    let action = format!("{} {}", req.method(), req.uri());
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return ApiError::new(ErrorCode::InvalidRequest, "the request body is too large")
            .into_response();
    };
    let mut detail = serde_json::Map::new();
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(&bytes) {
        for key in AUDITED_FIELDS {
            if let Some(value) = fields.get(*key) {
                detail.insert(key.to_string(), value.clone());
            }
        }
        if let Some(service) = fields
            .get("spec")
            .and_then(|s| s["service"]["name"].as_str())
        {
            detail.insert("service".into(), service.into());
        }
    }
    let response = next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let identity = parts.extensions.get::<Identity>().cloned();
    let status = parts.status.as_u16();
    let result = if parts.status.is_success() {
        "ok".to_string()
    } else {
        match serde_json::from_slice::<runway_wire::ErrorBody>(&bytes) {
            Ok(e) => format!(
                "{}: {}",
                serde_json::to_value(e.code)
                    .ok()
                    .and_then(|c| c.as_str().map(str::to_string))
                    .unwrap_or_default(),
                e.message
            ),
            Err(_) => format!("status {status}"),
        }
    };
    let entry = runway_wire::record::AuditEntry {
        seq: 0,
        at: runway_store::now(),
        identity: identity
            .as_ref()
            .map_or("anonymous".to_string(), |i| i.name.clone()),
        role: identity.map_or(String::new(), |i| i.role.to_string()),
        remote,
        action,
        detail: serde_json::Value::Object(detail),
        status,
        result,
        prev_hash: String::new(),
        hash: String::new(),
    };
    if let Err(e) = api.store.append_audit(entry) {
        tracing::error!("cannot append to the audit trail: {e:#}");
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

async fn audit_trail(
    State(api): State<Api>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Vec<runway_wire::record::AuditEntry>> {
    Ok(Json(api.store.audit(q.since.as_deref())?))
}

async fn audit_verify(
    State(api): State<Api>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<runway_wire::record::AuditCheck> {
    Ok(Json(api.store.verify_audit(q.head.as_deref())?))
}

/// The identity of a presented token: the bootstrap admin, or a live named token.
fn identify(api: &Api, presented: &str) -> anyhow::Result<Option<Identity>> {
    if presented.is_empty() {
        return Ok(None);
    }
    if constant_time_eq(presented.as_bytes(), api.token.as_bytes()) {
        return Ok(Some(Identity {
            name: BOOTSTRAP.to_string(),
            role: Role::Admin,
        }));
    }
    identify_hash(api, &hash_token(presented))
}

/// The identity of the token whose hash is `hash` (a session's), if it is still live.
fn identify_hash(api: &Api, hash: &str) -> anyhow::Result<Option<Identity>> {
    if constant_time_eq(hash.as_bytes(), api.token_hash.as_bytes()) {
        return Ok(Some(Identity {
            name: BOOTSTRAP.to_string(),
            role: Role::Admin,
        }));
    }
    // Looked up by hash: the comparison is of digests, whose time says nothing of the token.
    Ok(api
        .store
        .token_by_hash(hash)?
        .map(|(name, role)| Identity { name, role }))
}

async fn openapi_document() -> Json<serde_json::Value> {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    Json(DOCUMENT.get_or_init(crate::openapi::document).clone())
}

/// `POST /v1/session`: signs in with a token; the answer sets the session cookie.
async fn sign_in(State(api): State<Api>, Json(req): Json<SignIn>) -> Response {
    let identity = match identify(&api, req.token.trim()) {
        Ok(Some(identity)) => identity,
        Ok(None) => {
            return ApiError::new(
                ErrorCode::Unauthorized,
                "that token is unknown or revoked: paste a token from `runway tokens create`",
            )
            .into_response()
        }
        Err(e) => return ApiError::from(EngineError::Internal(e)).into_response(),
    };
    let (id, session) = api.sessions.open(hash_token(req.token.trim()));
    let view = session_view_of(&identity, &session);
    let mut response = with_cookie(Json(view).into_response(), Some(&id), api.secure_cookies);
    // For the audit trail: who signed in.
    response.extensions_mut().insert(identity);
    response
}

fn session_view_of(identity: &Identity, session: &session::Session) -> SessionView {
    let ends = std::time::SystemTime::now() + session.ends_in(std::time::Instant::now());
    SessionView {
        name: identity.name.clone(),
        role: identity.role,
        csrf: session.csrf.clone(),
        expires_at: time::OffsetDateTime::from(ends)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    }
}

/// The answer `response` with the `Set-Cookie` that opens session `id`, or ends it (`None`).
fn with_cookie(mut response: Response, id: Option<&str>, secure: bool) -> Response {
    if let Ok(value) = header::HeaderValue::from_str(&session::set_cookie(id, secure)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The session cookie a request was let in with; refused when it came with a token.
fn session_cookie(credential: &Credential) -> Result<&str, ApiError> {
    match credential {
        Credential::Session(id) => Ok(id),
        Credential::Token(_) => Err(ApiError::new(
            ErrorCode::NotFound,
            "no session: this request carries a token, not a session cookie",
        )),
    }
}

/// `GET /v1/session`: the session of the cookie (a bearer token has none).
async fn session_view(
    State(api): State<Api>,
    Extension(identity): Extension<Identity>,
    Extension(credential): Extension<Credential>,
) -> ApiResult<SessionView> {
    let session = api
        .sessions
        .find(session_cookie(&credential)?)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "the session has ended"))?;
    Ok(Json(session_view_of(&identity, &session)))
}

/// `DELETE /v1/session`: signs out.
async fn sign_out(
    State(api): State<Api>,
    Extension(credential): Extension<Credential>,
) -> Result<Response, ApiError> {
    api.sessions.close(session_cookie(&credential)?);
    let response = Json(Message {
        message: "signed out".into(),
    })
    .into_response();
    Ok(with_cookie(response, None, api.secure_cookies))
}

/// The SHA-256 of a token, as the store keeps it.
pub fn hash_token(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
    Query(q): Query<DeploymentsQuery>,
) -> ApiResult<Vec<DeploymentView>> {
    Ok(Json(
        api.store
            .history_filtered(
                q.service.as_deref(),
                q.status,
                q.kind,
                q.limit.unwrap_or(50),
            )?
            .into_iter()
            .map(|d| DeploymentView::from(api.engine.overlay(d)))
            .collect(),
    ))
}

async fn deploy(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Json(req): Json<DeployRequest>,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    if req.override_policy && !by.role.allows(Role::Admin) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "--override needs the admin role; the token `{}` has {}",
                by.name, by.role
            ),
        ));
    }
    // The policy that judges this deploy is the one in force: a runway.toml that changes it
    // (to drop an approval, a window or a freeze) is an admin's to deploy.
    if !by.role.allows(Role::Admin) {
        let service = &req.spec.service.name;
        if let Some((deploy, types)) = api.engine.serving_policy(service)? {
            if deploy != req.spec.deploy || types != req.spec.types {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "this runway.toml changes the deploy policy of `{service}` ([deploy] or \
                         [types]) from what its serving release has; the token `{}` has {}, and \
                         a policy change needs the admin role",
                        by.name, by.role
                    ),
                ));
            }
        }
    }
    let d = api.engine.deploy(req, &by.name).await?;
    Ok((StatusCode::CREATED, Json(d.into())))
}

async fn approvals(
    State(api): State<Api>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Vec<ApprovalView>> {
    Ok(Json(api.engine.awaiting(q.service.as_deref())?))
}

async fn approve(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path(id): Path<DeploymentId>,
    Json(req): Json<ApproveRequest>,
) -> ApiResult<ApproveAnswer> {
    let (deployment, message) = api.engine.approve(id, &by, &req.digest).await?;
    Ok(Json(ApproveAnswer {
        deployment: deployment.into(),
        message,
    }))
}

async fn reject(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path(id): Path<DeploymentId>,
    Json(req): Json<ReasonRequest>,
) -> ApiResult<DeploymentView> {
    Ok(Json(api.engine.reject(id, &by, &req.reason)?.into()))
}

async fn list_flags(
    State(api): State<Api>,
    Path(service): Path<String>,
) -> ApiResult<Vec<runway_wire::api::FlagView>> {
    Ok(Json(api.engine.flags(&service)?))
}

async fn get_flag(
    State(api): State<Api>,
    Path((service, name)): Path<(String, String)>,
) -> ApiResult<runway_wire::api::FlagView> {
    Ok(Json(api.engine.flag(&service, &name)?))
}

async fn set_flag(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path((service, name)): Path<(String, String)>,
    Json(req): Json<runway_wire::api::SetFlag>,
) -> ApiResult<runway_wire::api::FlagView> {
    Ok(Json(api.engine.set_flag(
        &service,
        &name,
        &req.definition,
        req.reason.as_deref(),
        &by.name,
    )?))
}

async fn flag_off(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path((service, name)): Path<(String, String)>,
    body: Option<Json<runway_wire::api::MaybeReason>>,
) -> ApiResult<runway_wire::api::FlagView> {
    let reason = body.and_then(|Json(r)| r.reason);
    Ok(Json(api.engine.flag_off(
        &service,
        &name,
        reason.as_deref(),
        &by.name,
    )?))
}

async fn flag_rollout(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path((service, name)): Path<(String, String)>,
    Json(req): Json<runway_wire::api::FlagRolloutRequest>,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    let d = api
        .engine
        .flag_rollout(&service, &name, &req, &by.name)
        .await?;
    Ok((StatusCode::CREATED, Json(DeploymentView::from(&d))))
}

async fn list_secrets(
    State(api): State<Api>,
    Path(service): Path<String>,
) -> ApiResult<Vec<runway_wire::api::SecretView>> {
    Ok(Json(api.engine.secrets(&service)?))
}

/// `runway secrets set`: an admin's (a secret opens databases). The value is in the body,
/// which neither the audit trail nor any log keeps.
async fn set_secret(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path((service, name)): Path<(String, String)>,
    Json(req): Json<runway_wire::api::SetSecret>,
) -> ApiResult<runway_wire::api::SecretSet> {
    Ok(Json(
        api.engine
            .set_secret(&service, &name, &req.value, &by.name)
            .await?,
    ))
}

async fn unset_secret(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path((service, name)): Path<(String, String)>,
) -> ApiResult<Message> {
    api.engine.unset_secret(&service, &name, &by.name)?;
    Ok(Json(Message {
        message: format!("secret {name} of `{service}` unset"),
    }))
}

async fn lock(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path(service): Path<String>,
    Json(req): Json<ReasonRequest>,
) -> ApiResult<Message> {
    let message = api.engine.lock(&service, &by.name, &req.reason)?;
    Ok(Json(Message { message }))
}

async fn unlock(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path(service): Path<String>,
) -> ApiResult<Message> {
    // An admin's, or whoever put it on: a lock holds deployers, so it is not theirs to lift.
    if let Some(lock) = api.engine.lock_of(&service) {
        if lock.by != by.name && !by.role.allows(Role::Admin) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "the lock on `{service}` is {}'s; it is lifted by them or by an admin (the \
                     token `{}` has {})",
                    lock.by, by.name, by.role
                ),
            ));
        }
    }
    let message = api.engine.unlock(&service, &by.name)?;
    Ok(Json(Message { message }))
}

async fn whoami(Extension(identity): Extension<Identity>) -> ApiResult<Identity> {
    Ok(Json(identity))
}

async fn list_tokens(State(api): State<Api>) -> ApiResult<Vec<TokenView>> {
    Ok(Json(api.store.tokens()?))
}

/// `runway tokens create NAME --role ROLE`: the secret is in this answer and nowhere else.
async fn create_token(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Json(req): Json<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    check_token_name(&req.name)?;
    let token = format!("rwy_{}", crate::state_dir::new_token());
    api.store
        .create_token(&req.name, req.role, &hash_token(&token), &by.name)
        .map_err(token_error)?;
    tracing::info!(name = %req.name, role = %req.role, by = %by.name, "token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            name: req.name,
            role: req.role,
            token,
        }),
    ))
}

async fn revoke_token(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path(name): Path<String>,
) -> ApiResult<TokenView> {
    let token = api.store.revoke_token(&name).map_err(token_error)?;
    tracing::info!(name = %name, by = %by.name, "token revoked");
    Ok(Json(token))
}

fn token_error(e: runway_store::TokenError) -> ApiError {
    use runway_store::TokenError;
    match e {
        TokenError::Exists(_) | TokenError::Revoked(_) => {
            ApiError::new(ErrorCode::Conflict, e.to_string())
        }
        TokenError::Unknown(_) => ApiError::new(ErrorCode::NotFound, e.to_string()),
        TokenError::Store(e) => EngineError::Internal(e).into(),
    }
}

/// A token's name is what records say did something: short, plain and not the bootstrap's.
fn check_token_name(name: &str) -> Result<(), ApiError> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if !plain {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "`{name}` is not a token name: 1 to 64 letters, digits, `-`, `_`, `.` or `@` \
                 (a person or a system: alice, ci-bot)"
            ),
        ));
    }
    if name == BOOTSTRAP {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`{BOOTSTRAP}` is the server's own token; choose another name"),
        ));
    }
    Ok(())
}

async fn deployment(
    State(api): State<Api>,
    Path(id): Path<DeploymentId>,
) -> ApiResult<DeploymentDetail> {
    let deployment = api
        .engine
        .deployment(id)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no deployment #{id}")))?;
    Ok(Json(DeploymentDetail {
        deployment: deployment.into(),
        journal: api.store.journal_since(id, 0)?,
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
        let deployment = api
            .engine
            .deployment(id)?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no deployment #{id}")))?;
        let journal = api.store.journal_since(id, after)?;
        if !journal.is_empty() || deployment.status != Status::Running {
            return Ok(Json(DeploymentDetail {
                deployment: deployment.into(),
                journal,
            }));
        }
        if tokio::time::timeout_at(deadline, ticks.changed())
            .await
            .is_err()
        {
            return Ok(Json(DeploymentDetail {
                deployment: deployment.into(),
                journal,
            }));
        }
    }
}

async fn rollback(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path(service): Path<String>,
    Json(req): Json<RollbackRequest>,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    let d = api.engine.rollback(&service, &req, &by.name).await?;
    Ok((StatusCode::CREATED, Json(d.into())))
}

async fn restore(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path(service): Path<String>,
    Json(req): Json<RestoreRequest>,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    let d = api
        .engine
        .restore(&service, req.backup_id, &by.name)
        .await?;
    Ok((StatusCode::CREATED, Json(d.into())))
}

async fn backups(
    State(api): State<Api>,
    Path(service): Path<String>,
) -> ApiResult<Vec<runway_store::BackupRow>> {
    Ok(Json(api.store.backups(&service)?))
}

async fn maintenance(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path(service): Path<String>,
    Json(req): Json<ModeRequest>,
) -> ApiResult<Message> {
    let message = api
        .engine
        .set_maintenance(&service, req.on, req.message, &by.name)?;
    Ok(Json(Message { message }))
}

async fn read_only(
    State(api): State<Api>,
    Extension(by): Extension<Identity>,
    Path(service): Path<String>,
    Json(req): Json<ModeRequest>,
) -> ApiResult<Message> {
    let message = api
        .engine
        .set_read_only(&service, req.on, req.message, &by.name)?;
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
    Extension(by): Extension<Identity>,
    Path(service): Path<String>,
    Json(req): Json<ScaleRequest>,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    let d = api.engine.scale(&service, req.count, &by.name).await?;
    Ok((StatusCode::CREATED, Json(d.into())))
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

/// A baseline's window: more than nothing, at most an hour (the request lasts as long).
fn window_of(q: &BaselineQuery) -> Result<Duration, ApiError> {
    let seconds = q.window.unwrap_or(10.0);
    if !(seconds > 0.0 && seconds <= MAX_WINDOW_SECONDS) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "window {seconds} is not a number of seconds above 0 and at most {MAX_WINDOW_SECONDS}"
            ),
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

const MAX_WINDOW_SECONDS: f64 = 3600.0;

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
    Extension(by): Extension<Identity>,
    Path((service, command)): Path<(String, String)>,
) -> ApiResult<Message> {
    let control = CanaryCommand::from_path(&command).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("unknown command `{command}`: promote, promote-full, pause, resume or abort"),
        )
    })?;
    let message = api.engine.control(&service, control, &by.name)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// ROUTES is what the role matrix test covers: it must name every route the router has.
    #[test]
    fn routes_lists_every_route_of_the_router() {
        let source = include_str!("api.rs");
        let body = &source[source.find("pub fn router(").unwrap()..];
        let body = &body[..body.find("\n}\n").unwrap()];
        let mut routed = Vec::new();
        for chunk in body.split(".route(").skip(1) {
            let path = chunk.split('"').nth(1).unwrap();
            // Up to the next route (or the layers after the last one).
            let handlers = chunk.split(".route_layer(").next().unwrap_or("");
            for (method, call) in [
                ("GET", "get("),
                ("POST", "post("),
                ("PUT", "put("),
                ("DELETE", "delete("),
            ] {
                let called = handlers.contains(call) || handlers.contains(&format!(".{}", call));
                if called {
                    routed.push((method.to_string(), path.to_string()));
                }
            }
        }
        let mut listed: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routed.sort();
        listed.sort();
        assert_eq!(routed, listed);
    }

    #[test]
    fn only_flag_evaluations_skip_the_audit_trail() {
        assert!(is_flag_evaluation(
            "/v1/services/web/ofrep/v1/evaluate/flags"
        ));
        assert!(is_flag_evaluation(
            "/v1/services/web/ofrep/v1/evaluate/flags/pack"
        ));
        for audited in [
            "/v1/services/ofrep/rollback",
            "/v1/services/ofrep/secrets/ofrep",
            "/v1/services/web/flags/ofrep/off",
            "/v1/services/web/ofrep/v1/evaluate/flags/pack/more",
        ] {
            assert!(!is_flag_evaluation(audited), "{audited}");
        }
    }

    #[test]
    fn reading_is_a_viewers_and_acting_needs_more() {
        use http::Method;
        assert_eq!(required_role(&Method::GET, "/v1/tokens"), Role::Viewer);
        assert_eq!(
            required_role(&Method::POST, "/v1/deployments"),
            Role::Deployer
        );
        assert_eq!(required_role(&Method::POST, "/v1/tokens"), Role::Admin);
        assert_eq!(
            required_role(&Method::DELETE, "/v1/services/{service}"),
            Role::Admin
        );
        assert_eq!(required_role(&Method::PUT, "/v1/new-route"), Role::Admin);
        assert_eq!(hash_token("abc").len(), 64);
    }
}
