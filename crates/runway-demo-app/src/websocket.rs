//! `GET /ws`: a WebSocket handshake followed by a raw byte echo.
//!
//! The point of this endpoint is to check that runway's proxy passes HTTP
//! upgrades through (101 response, then an opaque bidirectional stream). So
//! the handshake is done properly per RFC 6455 — clients such as browsers and
//! `websocat` verify `Sec-WebSocket-Accept` — but frames are not parsed: every
//! byte received after the upgrade is written back unchanged. A client's
//! masked frames therefore come back masked, which a pass-through test can
//! compare byte for byte.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};
use tokio::sync::watch;

use crate::app::Body;

/// The GUID that RFC 6455 §1.3 appends to the client's key.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`:
/// base64(SHA-1(key + GUID)), per RFC 6455 §4.2.2.
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// Whether the comma-separated header `name` lists `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: hyper::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Why a `/ws` request was not upgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a `GET` with `Connection: upgrade` and `Upgrade: websocket`.
    NotAnUpgrade,
    /// A handshake without `Sec-WebSocket-Key`.
    MissingKey,
}

impl Refusal {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Refusal::NotAnUpgrade => StatusCode::UPGRADE_REQUIRED,
            Refusal::MissingKey => StatusCode::BAD_REQUEST,
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::NotAnUpgrade => "expected a WebSocket upgrade\n",
            Refusal::MissingKey => "missing Sec-WebSocket-Key\n",
        }
    }
}

/// Accepts a WebSocket handshake on `/ws`: spawns the echo session, which
/// starts once hyper hands over the connection, and returns the 101 response
/// (without the `x-version` header, which the caller adds). The echo ends when
/// the client closes or `stopping` turns true (server shutdown).
pub(crate) fn upgrade(
    mut req: Request<Incoming>,
    mut stopping: watch::Receiver<bool>,
) -> Result<Response<Body>, Refusal> {
    let headers = req.headers();
    let is_upgrade = req.method() == Method::GET
        && has_token(headers, CONNECTION, "upgrade")
        && has_token(headers, UPGRADE, "websocket");
    if !is_upgrade {
        return Err(Refusal::NotAnUpgrade);
    }
    let key = headers.get(SEC_WEBSOCKET_KEY).ok_or(Refusal::MissingKey)?;
    let accept =
        HeaderValue::try_from(accept_key(key.as_bytes())).expect("base64 is a valid header value");

    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        // Fails only if the client went away before the upgrade completed.
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
        tokio::select! {
            _ = tokio::io::copy(&mut reader, &mut writer) => {}
            _ = stopping.wait_for(|stop| *stop) => {}
        }
    });

    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn token_lists_are_matched_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(has_token(&headers, CONNECTION, "upgrade"));
        assert!(!has_token(&headers, UPGRADE, "websocket"));
    }
}
