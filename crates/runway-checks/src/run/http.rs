//! HTTP checks: a health endpoint answers with the expected status, soon enough, and
//! with the expected values in its JSON body.
//!
//! Verification in runbooks is "curl the health endpoint and read the JSON":
//! `{"status":"healthy","checks":{"database":"healthy"}}`. `expect_json` turns that
//! reading into assertions on paths (`.status`, `.checks.database`, `.items.0.id`).
//!
//! Each attempt opens its own connection (no pooling: a check must see what a new
//! client sees) and drives it inside the attempt's future, so a timeout drops
//! everything. Bodies are capped at 1 MiB. `https` verifies the server against the
//! system's trust store. Redirects are not followed: a 3xx is what the endpoint
//! answered, and a health check that redirects (to a login page, say) is misconfigured.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use super::net;
use crate::model::format_duration;

/// Largest body read.
const MAX_BODY: usize = 1 << 20;

pub(super) struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a BTreeMap<String, String>,
    pub body: Option<&'a str>,
}

pub(super) struct Response {
    pub status: StatusCode,
    pub body: Bytes,
    /// From the start of the connection to the end of the body.
    pub latency: Duration,
}

pub(super) async fn run(
    req: &Request<'_>,
    expect_status: Option<u16>,
    expect_json: &BTreeMap<String, Value>,
    max_latency: Option<Duration>,
) -> Result<String, String> {
    let resp = fetch(req).await?;
    let status = resp.status.as_u16();
    let took = millis(resp.latency);
    let status_ok = match expect_status {
        Some(s) => status == s,
        None => resp.status.is_success(),
    };
    if !status_ok {
        let expected = expect_status.map_or("2xx".to_string(), |s| s.to_string());
        return Err(format!(
            "status {status} (expected {expected}) in {took}{}",
            body_excerpt(&resp.body)
        ));
    }
    if let Some(max) = max_latency {
        if resp.latency > max {
            return Err(format!(
                "status {status} but took {took} (max_latency {})",
                format_duration(max)
            ));
        }
    }
    if !expect_json.is_empty() {
        let doc: Value = serde_json::from_slice(&resp.body).map_err(|e| {
            format!(
                "status {status} but the body is not valid JSON ({e}){}",
                body_excerpt(&resp.body)
            )
        })?;
        let mismatches: Vec<String> = expect_json
            .iter()
            .filter_map(|(path, want)| match json_path(&doc, path) {
                None => Some(format!("{path} is missing (expected {want})")),
                Some(got) if !json_eq(got, want) => {
                    Some(format!("{path} is {got} (expected {want})"))
                }
                Some(_) => None,
            })
            .collect();
        if !mismatches.is_empty() {
            return Err(format!("status {status}: {}", mismatches.join("; ")));
        }
        return Ok(format!(
            "status {status} in {took}; {} JSON value{} as expected",
            expect_json.len(),
            if expect_json.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(format!("status {status} in {took}"))
}

/// A latency for people: `"<1ms"`, `"12ms"`, `"1s250ms"`.
pub(super) fn millis(d: Duration) -> String {
    match d.as_millis() {
        0 => "<1ms".into(),
        ms => format_duration(Duration::from_millis(ms as u64)),
    }
}

/// The value at a path such as `.status`, `.checks.database`, `.items.0.id` or
/// `.items[0].id`; `.` is the whole document. Array elements are addressed by index.
pub fn json_path<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('.')?;
    if rest.is_empty() {
        return Some(doc);
    }
    let normalized = rest.replace('[', ".").replace(']', "");
    normalized
        .split('.')
        .filter(|s| !s.is_empty())
        .try_fold(doc, |v, seg| match v {
            Value::Object(m) => m.get(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
}

/// Equality where numbers compare by value (`3` equals `3.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// `"; body: …"` with the start of a body, for failure details.
fn body_excerpt(body: &Bytes) -> String {
    if body.is_empty() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    format!("; body: {}", text.trim())
}

/// Sends one request on a new connection and reads the whole (capped) body.
pub(super) async fn fetch(req: &Request<'_>) -> Result<Response, String> {
    let started = Instant::now();
    let uri: Uri = req
        .url
        .parse()
        .map_err(|e| format!("invalid url {:?}: {e}", req.url))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        other => {
            return Err(format!(
                "unsupported url scheme {other:?}; use http or https"
            ))
        }
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("url {:?} has no host", req.url))?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    // Host header: the authority without any userinfo.
    let host_header = match authority.port() {
        Some(p) => format!("{}:{p}", authority.host()),
        None => authority.host().to_string(),
    };

    let method = Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("{:?} is not an HTTP method", req.method))?;
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(hyper::header::HOST, host_header)
        .header(hyper::header::USER_AGENT, "runway-checks");
    for (name, value) in req.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = Full::new(Bytes::from(req.body.unwrap_or("").to_string()));
    let request = builder
        .body(body)
        .map_err(|e| format!("invalid request: {e}"))?;

    let tcp = net::connect(host, port).await?;
    let (status, body) = if https {
        let config = https_config()?;
        let name = rustls_pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| format!("{host:?} is not a valid TLS server name"))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| {
                format!(
                    "TLS handshake with {host}:{port} failed: {}",
                    net::tls_reason(&e)
                )
            })?;
        exchange(tls, request).await?
    } else {
        exchange(tcp, request).await?
    };
    Ok(Response {
        status,
        body,
        latency: started.elapsed(),
    })
}

async fn exchange<S>(
    io: S,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake failed: {}", net::error_chain(&e)))?;
    let exchange = async move {
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request failed: {}", net::error_chain(&e)))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("status {status} but reading the body failed: {e}"))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::pin!(conn, exchange);
    // Drive the connection here rather than in a spawned task, so that dropping the
    // attempt (timeout) closes it. Once the connection ends the exchange resolves too.
    tokio::select! {
        biased;
        r = &mut exchange => r,
        _ = &mut conn => exchange.await,
    }
}

/// Client config for `https` checks: the system trust store, ring provider.
fn https_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err("no trusted CA certificates found in the system trust store (install ca-certificates)".into());
            }
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let doc = json!({"status":"healthy","checks":{"database":"healthy"},"count":3,
                         "items":[{"id":1},{"id":2}]});
        assert_eq!(json_path(&doc, ".status"), Some(&json!("healthy")));
        assert_eq!(json_path(&doc, ".checks.database"), Some(&json!("healthy")));
        assert_eq!(json_path(&doc, ".items.1.id"), Some(&json!(2)));
        assert_eq!(json_path(&doc, ".items[0].id"), Some(&json!(1)));
        assert_eq!(json_path(&doc, "."), Some(&doc));
        assert_eq!(json_path(&doc, ".checks.cache"), None);
        assert_eq!(json_path(&doc, ".status.x"), None);
        assert_eq!(json_path(&doc, "status"), None);
        assert!(json_eq(&json!(3), &json!(3.0)));
        assert!(!json_eq(&json!("3"), &json!(3)));
    }
}
