//! Request routing and the endpoint handlers.
//!
//! Everything a handler needs is computed once in [`App::new`] (the `/` body,
//! the `x-version` header value, the health deadlines), so that the hot path,
//! `GET /`, which proxy benchmarks hammer, does no formatting, no allocation
//! beyond the response itself and no logging.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use rand::Rng;
use serde_json::json;
use tokio::sync::watch;

use crate::args::Args;
use crate::websocket::{self, Refusal};

/// The body type of every response: all of them are small and fully known.
pub(crate) type Body = Full<Bytes>;

/// Longest `/slow` delay honoured, so a typo cannot pin a connection for days.
const MAX_SLOW: Duration = Duration::from_secs(600);

const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const X_VERSION: &str = "x-version";

/// Shared, read-only state of one running server.
pub(crate) struct App {
    version: String,
    version_header: HeaderValue,
    hello: Bytes,
    error_body: Bytes,
    port: u16,
    error_rate: f64,
    latency_ms: u64,
    latency_jitter_ms: u64,
    ready_at: Instant,
    fail_health: bool,
    log_requests: bool,
    /// Flips to `true` when the server stops, ending WebSocket echo sessions.
    stopping: watch::Receiver<bool>,
}

/// What `/health/ready` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    Healthy,
    Starting,
    Unhealthy,
}

impl Readiness {
    fn as_str(self) -> &'static str {
        match self {
            Readiness::Healthy => "healthy",
            Readiness::Starting => "starting",
            Readiness::Unhealthy => "unhealthy",
        }
    }
}

impl App {
    /// Builds the state for a server listening on `port`, started now.
    pub(crate) fn new(
        args: &Args,
        port: u16,
        stopping: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let version_header = HeaderValue::from_str(&args.version).map_err(|_| {
            anyhow::anyhow!(
                "--version {:?} is not usable as a header value",
                args.version
            )
        })?;
        Ok(Self {
            version: args.version.clone(),
            version_header,
            hello: Bytes::from(format!("hello from {}\n", args.version)),
            error_body: Bytes::from(format!("simulated error from {}\n", args.version)),
            port,
            error_rate: args.error_rate,
            latency_ms: args.latency_ms,
            latency_jitter_ms: args.latency_jitter_ms,
            ready_at: Instant::now() + Duration::from_millis(args.slow_start_ms),
            fail_health: args.fail_health,
            log_requests: args.log_requests,
            stopping,
        })
    }

    /// Answers one request. Never fails: every outcome is an HTTP response.
    pub(crate) async fn handle(
        &self,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        if !self.log_requests {
            return Ok(self.route(req).await);
        }
        let started = Instant::now();
        let line = format!("{} {}", req.method(), req.uri());
        let resp = self.route(req).await;
        println!(
            "{line} {} {:.1}ms",
            resp.status().as_u16(),
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(resp)
    }

    async fn route(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path();
        if path == "/" {
            // Any method: benchmarks and tests may POST here too.
            return self.root().await;
        }
        if !matches!(*req.method(), Method::GET | Method::HEAD) {
            return self.method_not_allowed();
        }
        match path {
            "/health/ready" => self.ready(),
            "/health/live" => self.json(StatusCode::OK, &json!({ "status": "alive" })),
            "/version" => self.json(
                StatusCode::OK,
                &json!({ "version": self.version, "pid": std::process::id(), "port": self.port }),
            ),
            "/slow" => self.slow(req.uri().query()).await,
            "/ws" => self.websocket(req),
            _ => self.text(StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
        }
    }

    /// `/`: the benchmark target, with optional simulated latency and errors.
    async fn root(&self) -> Response<Body> {
        if self.latency_ms > 0 || self.latency_jitter_ms > 0 {
            let jitter = match self.latency_jitter_ms {
                0 => 0,
                n => rand::thread_rng().gen_range(0..=n),
            };
            tokio::time::sleep(Duration::from_millis(
                self.latency_ms.saturating_add(jitter),
            ))
            .await;
        }
        if self.error_rate > 0.0 && rand::thread_rng().gen_bool(self.error_rate) {
            self.text(StatusCode::INTERNAL_SERVER_ERROR, self.error_body.clone())
        } else {
            self.text(StatusCode::OK, self.hello.clone())
        }
    }

    fn readiness(&self) -> Readiness {
        if self.fail_health {
            Readiness::Unhealthy
        } else if Instant::now() < self.ready_at {
            Readiness::Starting
        } else {
            Readiness::Healthy
        }
    }

    /// `/health/ready`: what runway's health gate polls before routing traffic.
    fn ready(&self) -> Response<Body> {
        let readiness = self.readiness();
        let status = match readiness {
            Readiness::Healthy => StatusCode::OK,
            Readiness::Starting | Readiness::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        };
        let state = readiness.as_str();
        self.json(
            status,
            &json!({ "status": state, "version": self.version, "checks": { "database": state } }),
        )
    }

    /// `/slow?ms=N`: a request that stays in flight for N ms, to test draining.
    async fn slow(&self, query: Option<&str>) -> Response<Body> {
        let ms = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("ms="));
        let ms = match ms.map(str::parse::<u64>) {
            None => 1000,
            Some(Ok(ms)) => ms,
            Some(Err(_)) => {
                return self.text(
                    StatusCode::BAD_REQUEST,
                    Bytes::from_static(b"ms must be a whole number of milliseconds\n"),
                )
            }
        };
        let delay = Duration::from_millis(ms).min(MAX_SLOW);
        tokio::time::sleep(delay).await;
        self.text(
            StatusCode::OK,
            Bytes::from(format!("slept {} ms\n", delay.as_millis())),
        )
    }

    /// `/ws`: WebSocket handshake, then a byte echo (see [`websocket`]).
    fn websocket(&self, req: Request<Incoming>) -> Response<Body> {
        match websocket::upgrade(req, self.stopping.clone()) {
            Ok(mut resp) => {
                resp.headers_mut()
                    .insert(X_VERSION, self.version_header.clone());
                resp
            }
            Err(refusal) => {
                let message = Bytes::from_static(refusal.message().as_bytes());
                let mut resp = self.text(refusal.status(), message);
                if refusal == Refusal::NotAnUpgrade {
                    resp.headers_mut()
                        .insert(UPGRADE, HeaderValue::from_static("websocket"));
                }
                resp
            }
        }
    }

    fn method_not_allowed(&self) -> Response<Body> {
        let mut resp = self.text(
            StatusCode::METHOD_NOT_ALLOWED,
            Bytes::from_static(b"method not allowed\n"),
        );
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        resp
    }

    fn text(&self, status: StatusCode, body: Bytes) -> Response<Body> {
        self.response(status, TEXT, body)
    }

    fn json(&self, status: StatusCode, value: &serde_json::Value) -> Response<Body> {
        let mut body = value.to_string();
        body.push('\n');
        self.response(status, JSON, Bytes::from(body))
    }

    fn response(
        &self,
        status: StatusCode,
        content_type: HeaderValue,
        body: Bytes,
    ) -> Response<Body> {
        let mut resp = Response::new(Full::new(body));
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert(X_VERSION, self.version_header.clone());
        resp
    }
}
