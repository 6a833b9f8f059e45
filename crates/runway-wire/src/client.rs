//! A typed client of the API: one method per route, taking and answering this crate's types,
//! so that a route's path, method, query and answer are written once, here. The CLI uses it;
//! so can any program (feature `client`).
//!
//! Where the server is and its token are asked of a [`Locate`] before every request: a
//! restarted server has a new address and token, and the CLI reads them from the state dir.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use serde::{de::DeserializeOwned, Serialize};

use crate::api::*;
use crate::id::DeploymentId;
use crate::record::{AuditCheck, AuditEntry, BackupRow, HookRun};
use crate::{ErrorBody, ErrorCode};

/// Where the API is and the bearer token it wants.
#[derive(Clone)]
pub struct ServerAddress {
    /// `host:port`.
    pub api: String,
    pub token: String,
    /// The SHA-256 of the server's TLS certificate (DER) when it serves TLS: the client
    /// trusts exactly that certificate, whatever name it carries (the CLI reads it from the
    /// state dir, as it reads the token).
    pub pinned_cert: Option<Vec<u8>>,
}

impl std::fmt::Debug for ServerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAddress")
            .field("api", &self.api)
            .field("token", &"<secret>")
            .field("tls", &self.pinned_cert.is_some())
            .finish()
    }
}

/// Finds the server before each request; an error is [`ClientError::NoServer`] or `Other`.
pub type Locate = Box<dyn Fn() -> std::result::Result<ServerAddress, ClientError> + Send + Sync>;

/// Why a request got no answer from the API: the server is not there (or went away), or it
/// answered with an error (whose code, not text, says what kind).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    NoServer(String),
    #[error("{message}")]
    Api {
        status: StatusCode,
        code: ErrorCode,
        message: String,
        hint: String,
    },
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// A name that does not exist, found out by the client itself: the same error as the
    /// server's `not_found`.
    pub fn not_found(message: String) -> ClientError {
        ClientError::Api {
            status: StatusCode::NOT_FOUND,
            code: ErrorCode::NotFound,
            message,
            hint: ErrorCode::NotFound.default_hint().to_string(),
        }
    }

    /// The API's error code, for an answer of the API.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub struct Client {
    locate: Locate,
    /// What to say when nothing answers at the located address.
    no_server: Box<dyn Fn(&str) -> ClientError + Send + Sync>,
    http: HyperClient<HttpConnector, Full<Bytes>>,
    /// The client of a TLS server, for the certificate it was made for (a restarted server
    /// may have another).
    https: std::sync::Mutex<Option<(Vec<u8>, HttpsClient)>>,
}

type HttpsClient = HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

type Result<T> = std::result::Result<T, ClientError>;

/// A path segment from a user's string: it never adds a segment (`../`) or a query.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query<Q: Serialize>(q: &Q) -> Result<String> {
    let encoded = serde_urlencoded::to_string(q).map_err(|e| ClientError::Other(e.to_string()))?;
    Ok(if encoded.is_empty() {
        String::new()
    } else {
        format!("?{encoded}")
    })
}

impl Client {
    /// A client that asks `locate` where the server is before each request, and says
    /// `no_server(why)` when nothing answers there.
    pub fn new(
        locate: Locate,
        no_server: Box<dyn Fn(&str) -> ClientError + Send + Sync>,
    ) -> Client {
        Client {
            locate,
            no_server,
            http: HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new()),
            https: std::sync::Mutex::new(None),
        }
    }

    /// The client for a server that presents `cert`.
    fn https_for(&self, cert: &[u8]) -> HttpsClient {
        let mut cached = self.https.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((pinned, client)) = cached.as_ref() {
            if pinned == cert {
                return client.clone();
            }
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::pinned::client_config(cert.to_vec()))
            .https_only()
            .enable_http1()
            .build();
        let client = HyperClient::builder(TokioExecutor::new()).build(connector);
        *cached = Some((cert.to_vec(), client.clone()));
        client
    }

    /// Follows deployment `id` from after journal entry `after`: its entries and its record
    /// (at the start and at each change of status), until it has ended.
    pub async fn deployment_stream(
        &self,
        id: DeploymentId,
        after: i64,
    ) -> Result<DeploymentStream> {
        use eventsource_stream::Eventsource;
        use futures_util::StreamExt;
        let q = query(&DeploymentStreamQuery {
            after: Some(after),
            metrics: false,
        })?;
        let resp = self
            .send(
                Method::GET,
                &format!("/v1/deployments/{id}/stream{q}"),
                None::<&()>,
            )
            .await?;
        let bytes = http_body_util::BodyDataStream::new(resp.into_body());
        Ok(Box::pin(bytes.eventsource().map(|event| {
            let event =
                event.map_err(|e| ClientError::Other(format!("reading the event stream: {e}")))?;
            let bad = |e: serde_json::Error| {
                ClientError::Other(format!("unexpected event from the server: {e}"))
            };
            Ok(match event.event.as_str() {
                "journal" => StreamItem::Journal(serde_json::from_str(&event.data).map_err(bad)?),
                "deployment" => {
                    StreamItem::Deployment(serde_json::from_str(&event.data).map_err(bad)?)
                }
                other => StreamItem::Other(other.to_string()),
            })
        })))
    }

    pub async fn info(&self) -> Result<ServerInfo> {
        self.get("/v1/info").await
    }

    pub async fn status(&self) -> Result<StatusView> {
        self.get("/v1/status").await
    }

    /// Starts a deployment; its outcome is in its record and journal.
    pub async fn deploy(&self, request: &DeployRequest) -> Result<DeploymentView> {
        self.post("/v1/deployments", request).await
    }

    /// Deployments, newest first.
    pub async fn history(&self, q: &HistoryQuery) -> Result<Vec<DeploymentView>> {
        self.get(&format!("/v1/deployments{}", query(q)?)).await
    }

    /// A deployment with its whole journal.
    pub async fn deployment(&self, id: DeploymentId) -> Result<DeploymentDetail> {
        self.get(&format!("/v1/deployments/{id}")).await
    }

    /// A deployment with the journal entries after `q.after`, waiting up to `q.wait` seconds
    /// for new ones while it runs.
    pub async fn events(&self, id: DeploymentId, q: &EventsQuery) -> Result<DeploymentDetail> {
        self.get(&format!("/v1/deployments/{id}/events{}", query(q)?))
            .await
    }

    pub async fn hook_runs(&self, id: DeploymentId) -> Result<Vec<HookRun>> {
        self.get(&format!("/v1/deployments/{id}/hooks")).await
    }

    pub async fn remove_service(&self, service: &str, force: bool) -> Result<Message> {
        let q = query(&RemoveQuery { force })?;
        self.request(
            Method::DELETE,
            &format!("/v1/services/{}{q}", segment(service)),
            None::<&()>,
        )
        .await
    }

    pub async fn approvals(&self, service: Option<&str>) -> Result<Vec<ApprovalView>> {
        let q = query(&HistoryQuery {
            service: service.map(str::to_string),
            ..Default::default()
        })?;
        self.get(&format!("/v1/approvals{q}")).await
    }

    pub async fn approve(&self, id: DeploymentId, digest: &str) -> Result<ApproveAnswer> {
        self.post(
            &format!("/v1/deployments/{id}/approve"),
            &ApproveRequest {
                digest: digest.to_string(),
            },
        )
        .await
    }

    pub async fn reject(&self, id: DeploymentId, reason: &str) -> Result<DeploymentView> {
        self.post(
            &format!("/v1/deployments/{id}/reject"),
            &ReasonRequest {
                reason: reason.to_string(),
            },
        )
        .await
    }

    pub async fn lock(&self, service: &str, reason: &str) -> Result<Message> {
        self.post(
            &self.of(service, "lock"),
            &ReasonRequest {
                reason: reason.to_string(),
            },
        )
        .await
    }

    pub async fn unlock(&self, service: &str) -> Result<Message> {
        self.post(&self.of(service, "unlock"), &serde_json::json!({}))
            .await
    }

    /// The audit trail, oldest first (at or after `since`, RFC 3339).
    /// A test notice to each of the request's targets, now; what became of each.
    pub async fn notify_test(
        &self,
        request: &crate::notice::NotifyTestRequest,
    ) -> Result<Vec<crate::notice::Delivery>> {
        self.post("/v1/notify/test", request).await
    }

    /// Recorded deliveries of notices, newest first.
    pub async fn deliveries(
        &self,
        q: &crate::notice::DeliveryQuery,
    ) -> Result<Vec<crate::notice::Delivery>> {
        self.get(&format!("/v1/deliveries{}", query(q)?)).await
    }

    /// DORA's figures.
    pub async fn dora(&self, q: &crate::dora::DoraQuery) -> Result<crate::dora::DoraReport> {
        self.get(&format!("/v1/reports/dora{}", query(q)?)).await
    }

    /// Incidents, newest first.
    pub async fn incidents(
        &self,
        q: &crate::incident::IncidentQuery,
    ) -> Result<Vec<crate::incident::Incident>> {
        self.get(&format!("/v1/incidents{}", query(q)?)).await
    }

    /// An incident with its deployment and timeline.
    pub async fn incident(&self, id: i64) -> Result<crate::incident::IncidentDetail> {
        self.get(&format!("/v1/incidents/{id}")).await
    }

    pub async fn ack_incident(&self, id: i64) -> Result<crate::incident::IncidentDetail> {
        self.post(&format!("/v1/incidents/{id}/ack"), &serde_json::json!({}))
            .await
    }

    pub async fn resolve_incident(
        &self,
        id: i64,
        note: Option<&str>,
    ) -> Result<crate::incident::IncidentDetail> {
        let request = crate::incident::ResolveRequest {
            note: note.map(str::to_string),
        };
        self.post(&format!("/v1/incidents/{id}/resolve"), &request)
            .await
    }

    pub async fn audit(&self, since: Option<&str>) -> Result<Vec<AuditEntry>> {
        let q = query(&AuditQuery {
            since: since.map(str::to_string),
            head: None,
        })?;
        self.get(&format!("/v1/audit{q}")).await
    }

    /// Checks the audit trail's chain (and that it still reaches `head`).
    pub async fn audit_verify(&self, head: Option<&str>) -> Result<AuditCheck> {
        let q = query(&AuditQuery {
            since: None,
            head: head.map(str::to_string),
        })?;
        self.get(&format!("/v1/audit/verify{q}")).await
    }

    /// The identity the client's token is, and its role.
    pub async fn whoami(&self) -> Result<Identity> {
        self.get("/v1/whoami").await
    }

    pub async fn tokens(&self) -> Result<Vec<TokenView>> {
        self.get("/v1/tokens").await
    }

    pub async fn create_token(&self, request: &NewToken) -> Result<CreatedToken> {
        self.post("/v1/tokens", request).await
    }

    pub async fn revoke_token(&self, name: &str) -> Result<TokenView> {
        self.request(
            Method::DELETE,
            &format!("/v1/tokens/{}", segment(name)),
            None::<&()>,
        )
        .await
    }

    pub async fn flags(&self, service: &str) -> Result<Vec<crate::api::FlagView>> {
        self.get(&self.of(service, "flags")).await
    }

    pub async fn flag(&self, service: &str, name: &str) -> Result<crate::api::FlagView> {
        self.get(&format!("{}/{}", self.of(service, "flags"), segment(name)))
            .await
    }

    pub async fn set_flag(
        &self,
        service: &str,
        name: &str,
        request: &crate::api::SetFlag,
    ) -> Result<crate::api::FlagView> {
        self.request(
            Method::PUT,
            &format!("{}/{}", self.of(service, "flags"), segment(name)),
            Some(request),
        )
        .await
    }

    pub async fn flag_off(
        &self,
        service: &str,
        name: &str,
        reason: Option<&str>,
    ) -> Result<crate::api::FlagView> {
        let path = format!("{}/{}/off", self.of(service, "flags"), segment(name));
        self.post(
            &path,
            &crate::api::MaybeReason {
                reason: reason.map(str::to_string),
            },
        )
        .await
    }

    pub async fn flag_rollout(
        &self,
        service: &str,
        name: &str,
        request: &crate::api::FlagRolloutRequest,
    ) -> Result<DeploymentView> {
        self.post(
            &format!("{}/{}/rollout", self.of(service, "flags"), segment(name)),
            request,
        )
        .await
    }

    /// A service's secrets: names and versions, never values.
    pub async fn secrets(&self, service: &str) -> Result<Vec<crate::api::SecretView>> {
        self.get(&self.of(service, "secrets")).await
    }

    /// Sets a secret: the value travels in the body only.
    pub async fn set_secret(
        &self,
        service: &str,
        name: &str,
        value: String,
    ) -> Result<crate::api::SecretSet> {
        self.request(
            Method::PUT,
            &format!("{}/{}", self.of(service, "secrets"), segment(name)),
            Some(&crate::api::SetSecret { value }),
        )
        .await
    }

    pub async fn unset_secret(&self, service: &str, name: &str) -> Result<Message> {
        self.request(
            Method::DELETE,
            &format!("{}/{}", self.of(service, "secrets"), segment(name)),
            None::<&()>,
        )
        .await
    }

    pub async fn restore(&self, service: &str, request: &RestoreRequest) -> Result<DeploymentView> {
        self.post(&self.of(service, "restore"), request).await
    }

    pub async fn backups(&self, service: &str) -> Result<Vec<BackupRow>> {
        self.get(&self.of(service, "backups")).await
    }

    pub async fn maintenance(&self, service: &str, request: &ModeRequest) -> Result<Message> {
        self.post(&self.of(service, "maintenance"), request).await
    }

    pub async fn read_only(&self, service: &str, request: &ModeRequest) -> Result<Message> {
        self.post(&self.of(service, "read-only"), request).await
    }

    pub async fn rollback(
        &self,
        service: &str,
        request: &RollbackRequest,
    ) -> Result<DeploymentView> {
        self.post(&self.of(service, "rollback"), request).await
    }

    pub async fn scale(&self, service: &str, request: &ScaleRequest) -> Result<DeploymentView> {
        self.post(&self.of(service, "scale"), request).await
    }

    pub async fn nodes(&self, service: &str) -> Result<Vec<ReplicaView>> {
        self.get(&self.of(service, "nodes")).await
    }

    pub async fn node_action(
        &self,
        service: &str,
        node: &str,
        action: NodeAction,
    ) -> Result<Message> {
        let path = format!("nodes/{}/{}", segment(node), action.as_path());
        self.post(&self.of(service, &path), &serde_json::json!({}))
            .await
    }

    pub async fn logs(&self, service: &str, q: &LogsQuery) -> Result<LogsResponse> {
        self.get(&format!("{}{}", self.of(service, "logs"), query(q)?))
            .await
    }

    /// Sends `command` to the service's running canary or blue-green rollout.
    pub async fn canary(&self, service: &str, command: CanaryCommand) -> Result<Message> {
        let path = format!("canary/{}", command.as_path());
        self.post(&self.of(service, &path), &serde_json::json!({}))
            .await
    }

    /// Measures the serving release over `q.window` seconds and stores it as a baseline.
    pub async fn capture_baseline(&self, service: &str, q: &BaselineQuery) -> Result<Baseline> {
        let path = format!("{}{}", self.of(service, "baselines"), query(q)?);
        self.post(&path, &serde_json::json!({})).await
    }

    /// Measures now and compares with baseline `q.id` (default: the newest).
    pub async fn compare_baseline(&self, service: &str, q: &BaselineQuery) -> Result<Comparison> {
        let path = format!("{}{}", self.of(service, "baselines/compare"), query(q)?);
        self.get(&path).await
    }

    /// The service's scheduled checklist runs, newest first.
    pub async fn check_history(&self, service: &str, limit: u32) -> Result<Vec<CheckRun>> {
        let q = query(&HistoryQuery {
            service: None,
            limit: Some(limit),
        })?;
        self.get(&format!("{}{q}", self.of(service, "checks/history")))
            .await
    }

    /// `/v1/services/{service}/{rest}` (`rest` is runway's own, never a user's string).
    fn of(&self, service: &str, rest: &str) -> String {
        format!("/v1/services/{}/{rest}", segment(service))
    }

    /// GETs `path` as `T`: for the routes of a newer server than this client knows.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.request(Method::GET, path, None::<&()>).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.request(Method::POST, path, Some(body)).await
    }

    async fn request<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let bytes = body_of(self.send(method, path, body).await?).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Other(format!("unexpected answer from the server: {e}")))
    }

    /// Sends a request; a successful answer's head, with its body still to read.
    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        let server = (self.locate)()?;
        let other = |e: &dyn std::fmt::Display| ClientError::Other(e.to_string());
        let body = match body {
            Some(b) => Bytes::from(serde_json::to_vec(b).map_err(|e| other(&e))?),
            None => Bytes::new(),
        };
        let scheme = if server.pinned_cert.is_some() {
            "https"
        } else {
            "http"
        };
        let req = Request::builder()
            .method(method)
            .uri(format!("{scheme}://{}{path}", server.api))
            .header("authorization", format!("Bearer {}", server.token))
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(|e| other(&e))?;
        let sent = match &server.pinned_cert {
            Some(cert) => self.https_for(cert).request(req).await,
            None => self.http.request(req).await,
        };
        let resp = sent.map_err(|e| {
            if e.is_connect() && !is_tls_refusal(&e) {
                (self.no_server)(&format!("nothing answers on {}", server.api))
            } else {
                ClientError::Other(format!(
                    "talking to the runway server at {}: {}",
                    server.api,
                    with_causes(&e)
                ))
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(api_error(status, &body_of(resp).await?));
        }
        Ok(resp)
    }
}

/// The whole body of an answer.
async fn body_of(resp: hyper::Response<hyper::body::Incoming>) -> Result<Bytes> {
    Ok(resp
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Other(format!("reading the server's answer: {e}")))?
        .to_bytes())
}

/// A deployment's event stream ([`Client::deployment_stream`]).
pub type DeploymentStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<StreamItem>> + Send>>;

/// One item of a deployment's event stream.
#[derive(Debug)]
pub enum StreamItem {
    Journal(crate::record::JournalEntry),
    Deployment(Box<DeploymentView>),
    /// An event a newer server sends that this client does not know.
    Other(String),
}

/// An error with what caused it, innermost last (`client error (Connect): invalid peer
/// certificate: ...`).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// A connection that reached the server but whose TLS handshake failed (a certificate that
/// is not the pinned one): an error to show, not "no server".
fn is_tls_refusal(e: &hyper_util::client::legacy::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.to_string().contains("certificate") || s.is::<rustls::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The error an answer that is not a success carries.
fn api_error(status: StatusCode, bytes: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => ClientError::Api {
            status,
            code: body.code,
            message: body.message,
            hint: body.hint,
        },
        // An older server's `{"error": ...}`, or not runway's answer at all (something else
        // listens there, or a proxy in between): the code from the status.
        Err(_) => {
            let code = ErrorCode::from_http_status(status.as_u16());
            #[derive(serde::Deserialize)]
            struct OlderError {
                error: String,
            }
            let message = match serde_json::from_slice::<OlderError>(bytes) {
                Ok(older) => older.error,
                Err(_) => String::from_utf8_lossy(bytes).trim().to_string(),
            };
            ClientError::Api {
                status,
                code,
                message,
                hint: code.default_hint().to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_string_never_adds_a_path_segment_or_a_query() {
        assert_eq!(segment("web-1.a_b~"), "web-1.a_b~");
        assert_eq!(segment("../x?y=1#z"), "..%2Fx%3Fy%3D1%23z");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn queries_leave_out_what_is_unset_and_encode_the_rest() {
        assert_eq!(query(&HistoryQuery::default()).unwrap(), "");
        let q = LogsQuery {
            n: Some(5),
            node: Some("web 1&x".into()),
            ..LogsQuery::default()
        };
        assert_eq!(query(&q).unwrap(), "?n=5&node=web+1%26x");
    }

    #[test]
    fn an_error_answer_keeps_its_code_and_an_older_one_gets_one_from_its_status() {
        let body = br#"{"code":"busy","status":409,"message":"busy with #2","hint":"wait","error":"busy with #2"}"#;
        let e = api_error(StatusCode::CONFLICT, body);
        assert_eq!(e.code(), Some(ErrorCode::Busy));
        assert_eq!(e.to_string(), "busy with #2");
        let older = api_error(StatusCode::NOT_FOUND, br#"{"error":"no deployment #9"}"#);
        assert_eq!(older.code(), Some(ErrorCode::NotFound));
        assert_eq!(older.to_string(), "no deployment #9");
        let html = api_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!(html.to_string(), "<html>bad gateway</html>");
    }
}
