//! The proxy's own answers and the client's keep-alive connection.
//!
//! Every answer the proxy gives by itself (maintenance and read-only `503`s,
//! `503 no healthy replica`, `400 bad request body`, `502`/`504`) must leave
//! an HTTP/1 keep-alive client able to send its next request on the same
//! connection, or tell it in that very answer that the connection ends. A
//! request body nobody read stands in the way: hyper cannot parse the next
//! request behind it and closes the connection after the answer, while the
//! client, told nothing, already reuses it (and the unread bytes turned the
//! close into a reset, see `linger`).
//!
//! So before such an answer the request body is read and thrown away
//! ([`drain`]), up to [`DRAIN_LIMIT`] bytes within [`DRAIN_TIME`]. When the
//! whole body was read the connection stays open as usual; otherwise (too
//! large, too slow, malformed, or the client asked `Expect: 100-continue`,
//! which the proxy does not acknowledge for an answer it has already made,
//! so the client need not send the body at all) the answer carries
//! `Connection: close` ([`close_unless`]) and the connection ends after it,
//! lingering until the client has stopped sending. HTTP/2 needs none of
//! this: an unread stream is reset on its own, the connection stays.

use std::time::Duration;

use http::header::{HeaderValue, CONNECTION, EXPECT};
use http::{HeaderMap, Response, Version};
use http_body_util::BodyExt;
use hyper::body::Body;

use crate::body::ProxyBody;

/// Most request body bytes read (and discarded) before an own answer.
pub(crate) const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;
/// Longest time spent reading a request body before an own answer.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Whether the request asks for `100 Continue` before sending its body.
pub(crate) fn expects_continue(headers: &HeaderMap) -> bool {
    headers.get_all(EXPECT).iter().any(is_100_continue)
}

/// Whether an `Expect` value asks for `100 Continue`.
pub(crate) fn is_100_continue(value: &HeaderValue) -> bool {
    value.as_bytes().eq_ignore_ascii_case(b"100-continue")
}

/// Reads and discards a request body the proxy answers without; `true`
/// when it was read to its end (the connection can stay open).
///
/// Does not poll a body whose client waits for `100 Continue`, nor one
/// declared larger than [`DRAIN_LIMIT`].
pub(crate) async fn drain<B>(mut body: B, expects_continue: bool) -> bool
where
    B: Body + Unpin,
{
    if body.is_end_stream() {
        return true;
    }
    if expects_continue || body.size_hint().lower() > DRAIN_LIMIT {
        return false;
    }
    let read = async move {
        let mut seen: u64 = 0;
        loop {
            match body.frame().await {
                None => return true,
                Some(Err(_)) => return false,
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        seen = seen.saturating_add(bytes::Buf::remaining(data) as u64);
                        if seen > DRAIN_LIMIT {
                            return false;
                        }
                    }
                    if body.is_end_stream() {
                        return true;
                    }
                }
            }
        }
    };
    tokio::time::timeout(DRAIN_TIME, read)
        .await
        .unwrap_or(false)
}

/// Marks an own answer to an HTTP/1 request as the connection's last
/// (`Connection: close`) unless its request body was read completely.
pub(crate) fn close_unless(
    response: &mut Response<ProxyBody>,
    version: Version,
    body_consumed: bool,
) {
    if !body_consumed {
        mark_last(response, version);
    }
}

/// Makes `response` its HTTP/1 connection's last: `Connection: close`, after which hyper
/// closes the connection. An HTTP/1.0 request's answer is also marked 1.0, so hyper ends
/// the connection without adding the `keep-alive` a 1.0 keep-alive client asked for (which
/// would contradict the `close`). HTTP/2 has no such header (its end is `GOAWAY`).
pub(crate) fn mark_last<B>(response: &mut Response<B>, version: Version) {
    if version >= Version::HTTP_2 {
        return;
    }
    if version == Version::HTTP_10 {
        *response.version_mut() = Version::HTTP_10;
    }
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
}

/// Drains `body` (see [`drain`]) and marks `response` accordingly.
pub(crate) async fn after_body<B>(
    mut response: Response<ProxyBody>,
    version: Version,
    expects_continue: bool,
    body: B,
) -> Response<ProxyBody>
where
    B: Body + Unpin,
{
    let consumed = version >= Version::HTTP_2 || drain(body, expects_continue).await;
    close_unless(&mut response, version, consumed);
    response
}
