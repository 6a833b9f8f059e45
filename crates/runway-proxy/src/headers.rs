//! Header rewriting between client and backend.
//!
//! Hop-by-hop headers describe one connection and must not be forwarded
//! (RFC 9110 §7.6.1); the `X-Forwarded-*` headers tell the replica who the
//! real client was, since it only ever sees the proxy; `X-Request-Id` lets a
//! request be followed through proxy and replica logs.

use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::{Method, Request, Version};
use rand::Rng;

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

static HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");
/// The header that forces a release (see `crate::FORCE_HEADER`).
pub(crate) static FORCE: HeaderName = HeaderName::from_static(crate::FORCE_HEADER);

/// What a request's headers hold that the proxy acts on, found in one pass over them.
///
/// Each `HeaderMap` lookup hashes the name (the bytes of a custom one) and probes the table,
/// and a request used to be looked up a dozen times (Host three times, Upgrade, Expect, the request
/// id, X-Forwarded-For, the force header...); in instruction counts of the proxy
/// (bench/proxy_instructions.sh) header-map work was its largest share after `memcpy`. One
/// pass comparing names, by length first, tells which lookups are needed at all: for a
/// request without hop-by-hop headers, none but the inserts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Host values (up to 2: more than one is refused anyway).
    pub(crate) hosts: u8,
    pub(crate) upgrade: bool,
    pub(crate) expect: bool,
    pub(crate) request_id: bool,
    pub(crate) forwarded_for: bool,
    pub(crate) forwarded_host: bool,
    pub(crate) force: bool,
    /// A hop-by-hop header (Connection, Keep-Alive, TE, Upgrade, Proxy-*...).
    pub(crate) hop_by_hop: bool,
}

impl Seen {
    pub(crate) fn scan(headers: &HeaderMap) -> Seen {
        let mut seen = Seen::default();
        for (name, _) in headers {
            // By length first: most names are none of these, and are told so by one compare.
            let text = name.as_str();
            match text.len() {
                4 if *name == HOST => seen.hosts = seen.hosts.saturating_add(1).min(2),
                6 if *name == http::header::EXPECT => seen.expect = true,
                12 if *name == X_REQUEST_ID => seen.request_id = true,
                15 if *name == X_FORWARDED_FOR => seen.forwarded_for = true,
                16 if *name == X_FORWARDED_HOST => seen.forwarded_host = true,
                len if len == crate::FORCE_HEADER.len() && *name == FORCE => seen.force = true,
                2 | 7 | 10 | 17 if is_hop_by_hop(name) => {
                    seen.hop_by_hop = true;
                    seen.upgrade |= *name == UPGRADE;
                }
                _ if text.starts_with("proxy-") => seen.hop_by_hop = true,
                _ => {}
            }
        }
        seen
    }
}

/// Why an HTTP/1 request is refused with `400` before anything else.
/// Each is a way for a client to make the proxy and the replica disagree about what the
/// request is (request smuggling, cache and routing confusion):
///
/// * more than one `Host` header: which one names the site?
/// * HTTP/1.1 without `Host` (RFC 9112 §3.2: a server MUST answer 400);
/// * an absolute-form target (`GET http://other.example/ HTTP/1.1`): what a forward proxy
///   is sent, where the target's authority overrides `Host`; a replica behind runway would
///   see one site and the proxy's logs and routing another. RFC 9112 §3.2.2 asks servers to
///   accept it and nginx does (using the target's host); runway is only ever a reverse
///   proxy, whose clients send origin-form, so it refuses it as a smuggling vector.
///   (`CONNECT`'s authority-form is the one exception, and is forwarded as such.)
///
/// hyper itself refuses the framing attacks before a request reaches the proxy:
/// conflicting `Content-Length`s, a `Transfer-Encoding` that does not end in `chunked` or
/// in an HTTP/1.0 request, invalid chunk sizes, a space before a header's colon and
/// obsolete line folding are answered `400` and end the connection. A request with both
/// `Content-Length` and `Transfer-Encoding: chunked` is handled as RFC 9112 §6.3 requires
/// of an intermediary: the length is removed before the request goes on, the body is read
/// as chunked, and the connection ends after the answer, so whatever was hidden behind the
/// chunked body is never read as a request (nginx answers `400` instead; hyper parses the
/// head and keeps no trace of the removed length, so the proxy cannot).
pub(crate) fn malformed<B>(req: &Request<B>, seen: &Seen) -> Option<&'static str> {
    if req.version() >= Version::HTTP_2 {
        return None;
    }
    if seen.hosts > 1 {
        return Some("more than one Host header");
    }
    if seen.hosts == 0 && req.version() == Version::HTTP_11 {
        return Some("an HTTP/1.1 request needs a Host header");
    }
    if req.method() != Method::CONNECT
        && (req.uri().scheme().is_some() || req.uri().authority().is_some())
    {
        return Some("an absolute-form request target (send the path, and the host in Host)");
    }
    None
}

/// Whether `req` asks to switch to HTTP/2 in clear text (`Upgrade: h2c`).
pub(crate) fn upgrades_to_h2c<B>(req: &Request<B>) -> bool {
    // On the bytes: a value with obs-text in it must not hide its h2c.
    req.headers()
        .get_all(UPGRADE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .any(|protocol| protocol.trim_ascii().eq_ignore_ascii_case(b"h2c"))
}

/// Drops an `Upgrade: h2c` (and its `HTTP2-Settings`): the request goes on as plain
/// HTTP/1.1, as nginx serves it.
pub(crate) fn drop_h2c_upgrade<B>(req: &mut Request<B>) {
    let headers = req.headers_mut();
    headers.remove(UPGRADE);
    headers.remove(&HTTP2_SETTINGS);
}

/// Whether `req` asks for an HTTP/1.1 protocol upgrade (e.g. WebSocket).
pub(crate) fn is_upgrade_request<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(UPGRADE)
        && connection_has_token(req.headers(), "upgrade")
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

fn connection_has_token(headers: &HeaderMap, token: &str) -> bool {
    connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(token))
}

/// Whether `name` is hop-by-hop by itself (headers listed in `Connection`
/// are too, but only matter when `Connection` is present).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    *name == CONNECTION
        || *name == KEEP_ALIVE
        || *name == TE
        || *name == TRAILER
        || *name == TRANSFER_ENCODING
        || *name == UPGRADE
        || name.as_str().starts_with("proxy-")
}

/// Removes hop-by-hop headers. With `keep_upgrade`, `Upgrade` and a
/// `Connection: upgrade` survive so the upgrade handshake can pass through.
/// Returns whether `Connection` named other headers, which were removed too.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) -> bool {
    // Nearly all messages have none: one pass over the names instead of a
    // lookup per hop-by-hop name.
    if !headers.keys().any(is_hop_by_hop) {
        return false;
    }
    // Headers named in `Connection` are hop-by-hop too. Only allocate when
    // one that is not removed anyway is listed (rare).
    let is_known = |token: &str| {
        ["keep-alive", "close", "upgrade", "te", "trailer"]
            .iter()
            .any(|known| token.eq_ignore_ascii_case(known))
    };
    let lists_others = connection_tokens(headers).any(|token| !is_known(token));
    if lists_others {
        let listed: Vec<HeaderName> = connection_tokens(headers)
            .filter(|token| !is_known(token))
            .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }

    for name in [
        &KEEP_ALIVE,
        &TE,
        &TRAILER,
        &TRANSFER_ENCODING,
        &PROXY_CONNECTION,
        &PROXY_AUTHENTICATE,
        &PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    if headers
        .keys()
        .any(|name| name.as_str().starts_with("proxy-"))
    {
        let proxy: Vec<HeaderName> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("proxy-"))
            .cloned()
            .collect();
        for name in proxy {
            headers.remove(name);
        }
    }

    if keep_upgrade && headers.contains_key(UPGRADE) {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(CONNECTION);
        headers.remove(UPGRADE);
    }
    lists_others
}

/// Sets `X-Forwarded-For` (appending the client to an existing chain),
/// `X-Forwarded-Proto` and `X-Forwarded-Host` (from `Host`).
pub(crate) fn set_forwarded(headers: &mut HeaderMap, client_ip: &HeaderValue, seen: &Seen) {
    let forwarded_for = match seen
        .forwarded_for
        .then(|| headers.get(&X_FORWARDED_FOR))
        .flatten()
    {
        None => client_ip.clone(),
        Some(_) => {
            let mut chain = Vec::with_capacity(64);
            for value in headers.get_all(&X_FORWARDED_FOR) {
                chain.extend_from_slice(value.as_bytes());
                chain.extend_from_slice(b", ");
            }
            chain.extend_from_slice(client_ip.as_bytes());
            HeaderValue::from_bytes(&chain).unwrap_or_else(|_| client_ip.clone())
        }
    };
    headers.insert(&X_FORWARDED_FOR, forwarded_for);
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    match seen
        .hosts
        .gt(&0)
        .then(|| headers.get(HOST).cloned())
        .flatten()
    {
        Some(host) => {
            headers.insert(&X_FORWARDED_HOST, host);
        }
        None if seen.forwarded_host => {
            headers.remove(&X_FORWARDED_HOST);
        }
        None => {}
    }
}

/// Returns the request's `X-Request-Id`, generating a 128-bit hex id (and
/// adding it to `headers`) when there is none.
pub(crate) fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(id) = headers.get(&X_REQUEST_ID) {
        return id.clone();
    }
    insert_request_id(headers)
}

/// Gives a request that has no `X-Request-Id` (its [`Seen`] says so) a new one.
pub(crate) fn insert_request_id(headers: &mut HeaderMap) -> HeaderValue {
    let id = new_request_id();
    headers.insert(&X_REQUEST_ID, id.clone());
    id
}

/// A fast per-thread pseudo-random generator (wyrand) for request ids,
/// seeded from the OS: ids need to be unique and unguessable enough to not
/// collide across processes, not cryptographically strong, and the standard
/// generator costs more than the rest of the id.
fn next_random() -> u64 {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(rand::thread_rng().gen());
    }
    STATE.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    })
}

pub(crate) fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut value = (u128::from(next_random()) << 64) | u128::from(next_random());
    let mut text = [0u8; 32];
    for digit in text.iter_mut().rev() {
        *digit = HEX[(value & 0xf) as usize];
        value >>= 4;
    }
    HeaderValue::from_bytes(&text).expect("hex digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_sees_what_the_proxy_acts_on() {
        let mut headers = HeaderMap::new();
        assert_eq!(Seen::scan(&headers), Seen::default());
        headers.append(HOST, HeaderValue::from_static("a"));
        headers.append(HOST, HeaderValue::from_static("b"));
        headers.append(HOST, HeaderValue::from_static("c"));
        headers.insert(&X_REQUEST_ID, HeaderValue::from_static("id"));
        headers.insert(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        headers.insert(&FORCE, HeaderValue::from_static("v2"));
        headers.insert(
            http::header::EXPECT,
            HeaderValue::from_static("100-continue"),
        );
        headers.insert("x-other", HeaderValue::from_static("1"));
        let seen = Seen::scan(&headers);
        assert_eq!(
            seen,
            Seen {
                hosts: 2,
                expect: true,
                request_id: true,
                forwarded_for: true,
                force: true,
                ..Seen::default()
            }
        );
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        let seen = Seen::scan(&headers);
        assert!(seen.upgrade && seen.hop_by_hop);
        let mut headers = HeaderMap::new();
        headers.insert("proxy-authorization", HeaderValue::from_static("x"));
        assert!(Seen::scan(&headers).hop_by_hop);
    }

    /// The one pass says what the map lookups it replaced said, for names of every length it
    /// tells apart (a failed guard falls through to the next arm: `proxy-connection` is as
    /// long as `x-forwarded-host`, `proxy-foobar` as `x-request-id`).
    #[test]
    fn one_pass_says_what_the_lookups_said() {
        let names = [
            "host",
            "expect",
            "x-request-id",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-runway-release",
            "connection",
            "keep-alive",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "proxy-connection",
            "proxy-foobar",
            "proxy-authorization",
            "proxy-x",
            "accept",
            "user-agent",
            "x-other",
            "hosts",
            "x-request-ix",
            "x-forwarded-fox",
            "cookie",
            "content-length",
        ];
        for (i, a) in names.iter().enumerate() {
            for b in &names[i..] {
                let mut headers = HeaderMap::new();
                headers.append(*a, HeaderValue::from_static("1"));
                headers.append(*b, HeaderValue::from_static("2"));
                let looked_up = Seen {
                    hosts: headers.get_all(HOST).iter().count().min(2) as u8,
                    upgrade: headers.contains_key(UPGRADE),
                    expect: headers.contains_key(http::header::EXPECT),
                    request_id: headers.contains_key(&X_REQUEST_ID),
                    forwarded_for: headers.contains_key(&X_FORWARDED_FOR),
                    forwarded_host: headers.contains_key(&X_FORWARDED_HOST),
                    force: headers.contains_key(&FORCE),
                    hop_by_hop: headers.keys().any(is_hop_by_hop),
                };
                assert_eq!(Seen::scan(&headers), looked_up, "{a}, {b}");
            }
        }
    }

    /// A client's X-Forwarded-Host goes when the request has no Host to set it from.
    #[test]
    fn a_forwarded_host_without_host_is_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(&X_FORWARDED_HOST, HeaderValue::from_static("spoofed.test"));
        let seen = Seen::scan(&headers);
        set_forwarded(&mut headers, &HeaderValue::from_static("127.0.0.1"), &seen);
        assert!(!headers.contains_key(&X_FORWARDED_HOST));
        assert_eq!(headers[&X_FORWARDED_FOR], "127.0.0.1");
    }

    #[test]
    fn strips_hop_by_hop_and_listed_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, X-Secret"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        headers.insert("proxy-foo", HeaderValue::from_static("1"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers, false);
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn keeps_upgrade_handshake() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade, keep-alive"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut headers, true);
        assert_eq!(headers[CONNECTION], "upgrade");
        assert_eq!(headers[UPGRADE], "websocket");
    }

    #[test]
    fn forwarded_headers_append_and_set() {
        let mut headers = HeaderMap::new();
        headers.insert(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        headers.insert(HOST, HeaderValue::from_static("example.test"));
        let seen = Seen::scan(&headers);
        set_forwarded(&mut headers, &HeaderValue::from_static("127.0.0.1"), &seen);
        assert_eq!(headers[&X_FORWARDED_FOR], "10.0.0.1, 127.0.0.1");
        assert_eq!(headers[&X_FORWARDED_PROTO], "http");
        assert_eq!(headers[&X_FORWARDED_HOST], "example.test");
    }

    #[test]
    fn request_id_is_kept_or_generated() {
        let mut headers = HeaderMap::new();
        let id = ensure_request_id(&mut headers);
        assert_eq!(id.len(), 32);
        assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_eq!(ensure_request_id(&mut headers), id);
    }
}
