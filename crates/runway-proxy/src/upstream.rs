//! The upstream HTTP/1.1 client of the fast path.
//!
//! Almost every proxied request is a plain exchange: a request whose body is
//! buffered (see `forward`), one response. For those the proxy speaks
//! HTTP/1.1 to the replica itself instead of going through hyper's pooled
//! client, and it does so *inside the task of the client connection*: the
//! request is written and the response head read by the request's own
//! future, and the response body is read from the replica's socket by the
//! body handed to the client connection ([`FastBody`]), which puts the
//! connection back into the backend's idle pool once the body is complete.
//! Compared with hyper's client this saves, per request, the hand-offs
//! between the request future and a separate connection task (channels,
//! wake-ups, a second task poll per step), the pool's checkout machinery, and
//! an allocation or two. Everything that is not a plain exchange (protocol
//! upgrades, streamed request bodies, `CONNECT`) still goes through hyper's
//! client.
//!
//! What the client implements of RFC 9112: request framing by
//! `Content-Length`; response framing by `Transfer-Encoding: chunked`
//! (trailers are read and dropped), `Content-Length` or connection close; no
//! body for `HEAD`, 204 and 304; interim 1xx responses are skipped;
//! keep-alive unless the replica says `Connection: close`, answers with
//! HTTP/1.0 or delimits the body by closing.
//!
//! Idle connections live in a per-backend pool, one stack per proxy worker
//! thread (see `worker`) so that a connection is used on the thread whose
//! reactor it is registered with, and closed after [`POOL_IDLE_TIMEOUT`]
//! unused. A pooled connection the replica closed meanwhile is noticed when
//! it is taken (its socket is readable) and dropped; if the replica closes
//! it just as a request is written, an idempotent request is sent again on a
//! fresh connection to the same replica, as is any request when nothing of
//! it could be written.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST};
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, Method, StatusCode};
use hyper::body::SizeHint;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use crate::worker;

/// Response heads larger than this are refused (hyper's client allows about
/// as much by default).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Headers per response head at most.
const MAX_HEADERS: usize = 100;

/// Trailer section (after the last chunk) size limit.
const MAX_TRAILER_BYTES: usize = 64 * 1024;

/// Read buffer growth step; also the largest body frame read at once.
const READ_CHUNK: usize = 16 * 1024;

/// Bodies up to this size are copied behind the head and written with it.
const INLINE_BODY: usize = 16 * 1024;

/// Idle connections kept per backend and worker thread.
const MAX_IDLE_PER_SLOT: usize = 1024;

/// Connections idle for longer are closed (checked as connections are given
/// back, so the pool shrinks back after a burst).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// One keep-alive connection to a replica, boxed once when connected so that
/// handing it between pool, request and response body moves a pointer.
pub(crate) type Conn = Box<Connection>;

/// The state of a [`Conn`].
pub(crate) struct Connection {
    stream: TcpStream,
    /// Bytes read from the replica and not consumed yet.
    read_buf: BytesMut,
    /// The request being written; kept to reuse its allocation.
    write_buf: Vec<u8>,
    /// Header positions while parsing a response head (allocation reused).
    scratch: Vec<[usize; 4]>,
    /// An empty header map for the next response head: the client's request
    /// headers of the previous exchange, recycled (see `recycle_headers`).
    spare_headers: HeaderMap,
    /// The header names this replica sent before.
    names: NameCache,
}

/// The most header names a connection remembers.
const NAME_CACHE: usize = 16;

/// The header names a replica sent before on one connection: a replica answers with the
/// same few every time, spelt the same way. A field name found here, byte for byte, is
/// cloned (for a custom name such as `x-version`, a reference count) instead of being
/// checked, lower-cased and, when custom, allocated again for every response
/// (`HeaderName::from_bytes` showed in instruction counts of the proxy,
/// bench/proxy_instructions.sh).
#[derive(Default)]
pub(crate) struct NameCache {
    /// Each name as the replica wrote it, and as parsed.
    names: Vec<(Box<[u8]>, HeaderName)>,
}

impl NameCache {
    fn name(&mut self, raw: &[u8]) -> Result<HeaderName, http::header::InvalidHeaderName> {
        if let Some((_, name)) = self.names.iter().find(|(sent, _)| **sent == *raw) {
            return Ok(name.clone());
        }
        let name = HeaderName::from_bytes(raw)?;
        if self.names.len() < NAME_CACHE {
            self.names.push((raw.into(), name.clone()));
        }
        Ok(name)
    }
}

impl Connection {
    fn new(stream: TcpStream) -> Connection {
        Connection {
            stream,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: Vec::with_capacity(1024),
            scratch: Vec::new(),
            spare_headers: HeaderMap::new(),
            names: NameCache::default(),
        }
    }

    /// Keeps `headers` (emptied) to hold the next response's headers, saving
    /// the allocation of a map per request.
    pub(crate) fn recycle_headers(&mut self, mut headers: HeaderMap) {
        headers.clear();
        self.spare_headers = headers;
    }

    /// Whether an idle connection can carry a request: an idle socket that
    /// is readable has either been closed by the replica or received bytes
    /// nobody asked for.
    fn is_reusable(&self) -> bool {
        if !self.read_buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readiness may be left over from the last response: ask the
            // socket itself.
            Poll::Ready(Ok(())) => matches!(
                self.stream.try_read(&mut [0u8; 1]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock
            ),
        }
    }

    /// Reads more bytes into `read_buf`; `Ok(0)` at end of stream.
    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
            self.read_buf.reserve(READ_CHUNK);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.read_buf)
    }

    async fn read_more(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read_more(cx)).await
    }

    /// Writes `write_buf` and then `body`; on failure also tells whether
    /// any byte left.
    async fn write_request(&mut self, body: &[u8]) -> Result<(), (io::Error, bool)> {
        let mut sent_any = false;
        for part in [&self.write_buf[..], body] {
            let mut written = 0;
            while written < part.len() {
                let result = std::future::poll_fn(|cx| {
                    Pin::new(&mut self.stream).poll_write(cx, &part[written..])
                })
                .await;
                match result {
                    Ok(0) => return Err((io::ErrorKind::WriteZero.into(), sent_any)),
                    Ok(n) => {
                        written += n;
                        sent_any = true;
                    }
                    Err(error) => return Err((error, sent_any)),
                }
            }
        }
        Ok(())
    }
}

/// Idle connections of one backend, one stack per worker thread (most
/// recently used on top), each with the time it was given back.
pub(crate) struct Pool {
    slots: Box<[Mutex<Idle>]>,
}

/// One worker's idle connections, oldest first.
type Idle = VecDeque<(Conn, Instant)>;

impl Pool {
    pub(crate) fn new() -> Pool {
        Pool {
            slots: (0..worker::slots()).map(|_| Mutex::default()).collect(),
        }
    }

    fn slot(&self) -> &Mutex<Idle> {
        &self.slots[worker::current_slot() % self.slots.len()]
    }

    fn take(&self) -> Option<Conn> {
        let slot = self.slot();
        loop {
            let (conn, _) = slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_back()?;
            if conn.is_reusable() {
                return Some(conn);
            }
        }
    }

    fn put(&self, conn: Conn, now: Instant) {
        let mut idle = self.slot().lock().unwrap_or_else(PoisonError::into_inner);
        while idle
            .front()
            .is_some_and(|&(_, since)| now.saturating_duration_since(since) > POOL_IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        if idle.len() < MAX_IDLE_PER_SLOT {
            idle.push_back((conn, now));
        }
    }
}

/// Why an exchange failed before a response head arrived.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// Connecting failed: the replica certainly did not see the request.
    Connect(io::Error),
    /// Connecting took longer than the connect timeout.
    ConnectTimeout,
    /// The connection failed after the request was (partly) sent.
    Io(io::Error),
    /// The replica's answer is not valid HTTP/1.x.
    Protocol(&'static str),
}

impl UpstreamError {
    pub(crate) fn is_connect(&self) -> bool {
        matches!(
            self,
            UpstreamError::Connect(_) | UpstreamError::ConnectTimeout
        )
    }

    pub(crate) fn is_timeout(&self) -> bool {
        matches!(self, UpstreamError::ConnectTimeout)
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Connect(error) => write!(f, "connect failed: {error}"),
            UpstreamError::ConnectTimeout => f.write_str("connect timed out"),
            UpstreamError::Io(error) => write!(f, "connection failed: {error}"),
            UpstreamError::Protocol(what) => write!(f, "invalid response: {what}"),
        }
    }
}

impl std::error::Error for UpstreamError {}

/// A request as the fast path sends it.
pub(crate) struct Exchange<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: &'a PathAndQuery,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a Bytes,
}

/// The head of a replica's response, and how its body is delimited.
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    Close,
}

/// Sends `request` to the replica at `addr` and reads the response head. On
/// success the connection is returned, positioned at the response body.
pub(crate) async fn exchange(
    pool: &Pool,
    addr: std::net::SocketAddr,
    authority: &Authority,
    connect_timeout: Duration,
    request: &Exchange<'_>,
) -> Result<(ResponseHead, Conn), UpstreamError> {
    let idempotent = crate::forward::is_idempotent(request.method);
    loop {
        let (mut conn, reused) = match pool.take() {
            Some(conn) => (conn, true),
            None => (connect(addr, connect_timeout).await?, false),
        };
        let body = request.body.as_ref();
        let inline = body.len() <= INLINE_BODY;
        encode_head(&mut conn.write_buf, request, authority, inline);
        let rest = if inline { &[][..] } else { body };
        if let Err((error, sent_any)) = conn.write_request(rest).await {
            if reused && (!sent_any || idempotent) {
                continue; // a stale keep-alive connection; the replica saw nothing usable
            }
            return Err(UpstreamError::Io(error));
        }
        match read_head(&mut conn, request.method == Method::HEAD).await {
            Ok(head) => return Ok((head, conn)),
            Err(HeadError::Closed(error)) if reused && idempotent => {
                tracing::trace!(%error, "pooled connection closed; sending again");
            }
            Err(HeadError::Closed(error)) => return Err(UpstreamError::Io(error)),
            Err(HeadError::Other(error)) => return Err(error),
        }
    }
}

async fn connect(
    addr: std::net::SocketAddr,
    connect_timeout: Duration,
) -> Result<Conn, UpstreamError> {
    let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(UpstreamError::ConnectTimeout),
        Ok(Err(error)) => return Err(UpstreamError::Connect(error)),
        Ok(Ok(stream)) => stream,
    };
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "set_nodelay failed");
    }
    Ok(Box::new(Connection::new(stream)))
}

/// Serialises the request head (and the body when `inline`) into `out`.
fn encode_head(out: &mut Vec<u8>, request: &Exchange<'_>, authority: &Authority, inline: bool) {
    out.clear();
    out.extend_from_slice(request.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(request.path.as_str().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !request.headers.contains_key(HOST) {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(authority.as_str().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in request.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let body = request.body;
    if !body.is_empty() && !request.headers.contains_key(CONTENT_LENGTH) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if inline {
        out.extend_from_slice(body);
    }
}

enum HeadError {
    /// The connection ended before any byte of a response arrived.
    Closed(io::Error),
    Other(UpstreamError),
}

impl From<UpstreamError> for HeadError {
    fn from(error: UpstreamError) -> HeadError {
        HeadError::Other(error)
    }
}

async fn read_head(conn: &mut Conn, head_request: bool) -> Result<ResponseHead, HeadError> {
    let mut received_any = false;
    loop {
        if !conn.read_buf.is_empty() {
            if let Some(head) = parse_head(
                &mut conn.read_buf,
                head_request,
                &mut conn.scratch,
                &mut conn.spare_headers,
                &mut conn.names,
            )? {
                return Ok(head);
            }
            if conn.read_buf.len() >= MAX_HEAD_BYTES {
                return Err(UpstreamError::Protocol("response head too large").into());
            }
        }
        match conn.read_more().await {
            Ok(0) if !received_any => {
                return Err(HeadError::Closed(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                )))
            }
            Ok(0) => {
                return Err(UpstreamError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed within the response head",
                ))
                .into())
            }
            Ok(_) => received_any = true,
            Err(error) if !received_any && is_closed(&error) => {
                return Err(HeadError::Closed(error))
            }
            Err(error) => return Err(UpstreamError::Io(error).into()),
        }
    }
}

fn is_closed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// Parses a complete final response head off the front of `buf` (skipping
/// interim 1xx responses); `None` when more bytes are needed. `scratch`
/// holds the positions of the header fields (kept by the connection so it is
/// allocated once); `map` is filled with the headers.
fn parse_head(
    buf: &mut BytesMut,
    head_request: bool,
    scratch: &mut Vec<[usize; 4]>,
    map: &mut HeaderMap,
    names: &mut NameCache,
) -> Result<Option<ResponseHead>, UpstreamError> {
    loop {
        let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut headers,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(UpstreamError::Protocol("too many headers"))
            }
            Err(_) => return Err(UpstreamError::Protocol("malformed response head")),
        };
        let code = response.code.unwrap_or(0);
        let status = StatusCode::from_u16(code)
            .map_err(|_| UpstreamError::Protocol("invalid status code"))?;
        if status.is_informational() {
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(UpstreamError::Protocol(
                    "unexpected 101 Switching Protocols",
                ));
            }
            buf.advance(len);
            continue;
        }
        let http11 = response.version == Some(1);

        // Offsets into the head, so the values can share one frozen buffer.
        let base = buf.as_ptr() as usize;
        scratch.clear();
        scratch.extend(response.headers.iter().map(|header| {
            let name = header.name.as_ptr() as usize - base;
            let value = header.value.as_ptr() as usize - base;
            [
                name,
                name + header.name.len(),
                value,
                value + header.value.len(),
            ]
        }));
        let head = buf.split_to(len).freeze();

        map.clear();
        map.reserve(scratch.len());
        let mut content_length: Option<u64> = None;
        let mut chunked = None;
        let mut close = !http11;
        for &[name_start, name_end, value_start, value_end] in scratch.iter() {
            let name = names
                .name(&head[name_start..name_end])
                .map_err(|_| UpstreamError::Protocol("invalid header name"))?;
            let raw = &head[value_start..value_end];
            if name == CONTENT_LENGTH {
                let length = parse_content_length(raw)
                    .ok_or(UpstreamError::Protocol("invalid content-length"))?;
                if content_length.is_some_and(|known| known != length) {
                    return Err(UpstreamError::Protocol("conflicting content-length"));
                }
                content_length = Some(length);
            } else if name == http::header::TRANSFER_ENCODING {
                // Only the last coding counts (chunked must be last).
                let last = raw.rsplit(|&b| b == b',').next().unwrap_or(raw);
                chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name == http::header::CONNECTION {
                for token in raw.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                        close = false;
                    }
                }
            }
            let value = HeaderValue::from_maybe_shared(head.slice(value_start..value_end))
                .map_err(|_| UpstreamError::Protocol("invalid header value"))?;
            map.append(name, value);
        }
        if chunked.is_some() {
            // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3), and
            // the client gets the body re-framed: a stale length must not
            // reach it.
            map.remove(CONTENT_LENGTH);
        }

        let framing = if head_request
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Framing::Empty
        } else {
            match (chunked, content_length) {
                (Some(true), _) => Framing::Chunked,
                (Some(false), _) => Framing::Close,
                (None, Some(0)) => Framing::Empty,
                (None, Some(length)) => Framing::Length(length),
                (None, None) => Framing::Close,
            }
        };
        return Ok(Some(ResponseHead {
            status,
            headers: std::mem::take(map),
            framing,
            keep_alive: !close && framing != Framing::Close,
        }));
    }
}

fn parse_content_length(raw: &[u8]) -> Option<u64> {
    let raw = raw.trim_ascii();
    if raw.is_empty() || raw.len() > 19 {
        return None;
    }
    raw.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// Errors while streaming a response body.
#[derive(Debug)]
pub(crate) enum BodyError {
    Io(io::Error),
    Eof,
    Chunked(&'static str),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Io(error) => write!(f, "reading the response body failed: {error}"),
            BodyError::Eof => f.write_str("connection closed within the response body"),
            BodyError::Chunked(what) => write!(f, "invalid chunked body: {what}"),
        }
    }
}

impl std::error::Error for BodyError {}

/// Where a body decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `n` bytes of body left (content-length framing).
    Length(u64),
    /// Until the connection closes.
    Close,
    /// Reading a chunk size line: value so far, digits so far.
    ChunkSize(u64, u8),
    /// Skipping a chunk extension (or whitespace) up to CR.
    ChunkExt(u64),
    /// Expecting the LF of a chunk size line.
    ChunkSizeLf(u64),
    /// Inside a chunk, `n` bytes left.
    ChunkData(u64),
    ChunkDataCr,
    ChunkDataLf,
    /// In the trailer section; `true` at the start of a line.
    Trailer(bool),
    TrailerLf(bool),
    Done,
}

/// Splits a response body off the bytes read from the connection.
struct Decoder {
    state: State,
    trailer_bytes: usize,
}

impl Decoder {
    /// A decoder for a body framed as `framing` says.
    fn for_framing(framing: Framing) -> Decoder {
        Decoder {
            state: match framing {
                Framing::Empty => State::Done,
                Framing::Length(n) => State::Length(n),
                Framing::Chunked => State::ChunkSize(0, 0),
                Framing::Close => State::Close,
            },
            trailer_bytes: 0,
        }
    }

    /// Takes the next piece of body out of `buf`, then consumes any framing
    /// bytes behind it (so the end is known as early as possible).
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, BodyError> {
        match self.state {
            State::Length(left) if !buf.is_empty() => {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                let left = left - take as u64;
                self.state = if left == 0 {
                    State::Done
                } else {
                    State::Length(left)
                };
                return Ok(Some(buf.split_to(take).freeze()));
            }
            State::Close if !buf.is_empty() => return Ok(Some(buf.split().freeze())),
            _ => {}
        }
        let mut data = None;
        loop {
            match self.state {
                State::Length(_) | State::Close | State::Done => return Ok(data),
                State::ChunkData(0) => self.state = State::ChunkDataCr,
                State::ChunkData(left) => {
                    if data.is_some() || buf.is_empty() {
                        return Ok(data);
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    self.state = State::ChunkData(left - take as u64);
                    data = Some(buf.split_to(take).freeze());
                }
                _ => {
                    let Some(&byte) = buf.first() else {
                        return Ok(data);
                    };
                    buf.advance(1);
                    self.step_chunked(byte)?;
                }
            }
        }
    }

    fn step_chunked(&mut self, byte: u8) -> Result<(), BodyError> {
        self.state = match (self.state, byte) {
            (State::ChunkSize(size, digits), _) if byte.is_ascii_hexdigit() => {
                if digits >= 15 {
                    return Err(BodyError::Chunked("chunk size too large"));
                }
                let digit = (byte as char).to_digit(16).unwrap_or(0);
                State::ChunkSize(size * 16 + u64::from(digit), digits + 1)
            }
            (State::ChunkSize(size, digits), b'\r') if digits > 0 => State::ChunkSizeLf(size),
            (State::ChunkSize(size, digits), b';' | b' ' | b'\t') if digits > 0 => {
                State::ChunkExt(size)
            }
            (State::ChunkExt(size), b'\r') => State::ChunkSizeLf(size),
            (State::ChunkExt(size), b) if b != b'\n' => State::ChunkExt(size),
            (State::ChunkSizeLf(0), b'\n') => State::Trailer(true),
            (State::ChunkSizeLf(size), b'\n') => State::ChunkData(size),
            (State::ChunkDataCr, b'\r') => State::ChunkDataLf,
            (State::ChunkDataLf, b'\n') => State::ChunkSize(0, 0),
            (State::Trailer(start), b'\r') => State::TrailerLf(start),
            (State::Trailer(_), b) if b != b'\n' => {
                self.trailer_bytes += 1;
                if self.trailer_bytes > MAX_TRAILER_BYTES {
                    return Err(BodyError::Chunked("trailers too large"));
                }
                State::Trailer(false)
            }
            (State::TrailerLf(true), b'\n') => State::Done,
            (State::TrailerLf(false), b'\n') => State::Trailer(true),
            _ => return Err(BodyError::Chunked("invalid framing")),
        };
        Ok(())
    }
}

/// The body of a replica's response, read straight from its connection.
pub(crate) struct FastBody {
    conn: Option<Conn>,
    decoder: Decoder,
    keep_alive: bool,
}

impl FastBody {
    pub(crate) fn new(head: &ResponseHead, conn: Conn) -> FastBody {
        FastBody {
            conn: Some(conn),
            decoder: Decoder::for_framing(head.framing),
            keep_alive: head.keep_alive,
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.decoder.state == State::Done
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.decoder.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }

    /// Ends the body: the connection when the body was read completely and
    /// the connection can carry another request, else `None` (dropping the
    /// connection closes it).
    pub(crate) fn take_reusable(&mut self) -> Option<Conn> {
        let conn = self.conn.take()?;
        (self.decoder.state == State::Done && self.keep_alive && conn.read_buf.is_empty())
            .then_some(conn)
    }

    /// The next data frame, `None` at the end. Once this returned `None`, an
    /// error, or a frame after which [`FastBody::is_end_stream`] holds, the
    /// body is over.
    pub(crate) fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, BodyError>>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            match self.decoder.decode(&mut conn.read_buf) {
                Err(error) => return Poll::Ready(Some(Err(error))),
                Ok(Some(data)) => return Poll::Ready(Some(Ok(data))),
                Ok(None) if self.decoder.state == State::Done => return Poll::Ready(None),
                Ok(None) => {}
            }
            match ready!(conn.poll_read_more(cx)) {
                Ok(0) if self.decoder.state == State::Close => {
                    self.decoder.state = State::Done;
                    self.keep_alive = false;
                    return Poll::Ready(None);
                }
                Ok(0) => return Poll::Ready(Some(Err(BodyError::Eof))),
                Ok(_) => {}
                Err(error) => return Poll::Ready(Some(Err(BodyError::Io(error)))),
            }
        }
    }
}

/// Returns a connection to its backend's pool (`now`: the time it became
/// idle).
pub(crate) fn release(pool: &Pool, conn: Conn, now: Instant) {
    pool.put(conn, now);
}

/// Runs a replica's response, as raw bytes, through the parser of the fast path the way a
/// connection meets it (see `crate::fuzzing`): the head is fed in two reads split at `split`,
/// then the body in reads of `step` bytes. Panics when the parser breaks an invariant: a
/// body longer than its framing allows or than the bytes given, or a decoder that stops
/// consuming bytes it has (a wedged connection).
pub(crate) fn exercise(bytes: &[u8], head_request: bool, split: usize, step: usize) {
    let split = split.min(bytes.len());
    let mut buf = BytesMut::from(&bytes[..split]);
    let mut scratch = Vec::new();
    let mut map = HeaderMap::new();
    let mut names = NameCache::default();
    let head = match parse_head(&mut buf, head_request, &mut scratch, &mut map, &mut names) {
        Ok(Some(head)) => {
            buf.extend_from_slice(&bytes[split..]);
            head
        }
        Ok(None) => {
            buf.extend_from_slice(&bytes[split..]);
            match parse_head(&mut buf, head_request, &mut scratch, &mut map, &mut names) {
                Ok(Some(head)) => head,
                Ok(None) | Err(_) => return,
            }
        }
        Err(_) => return,
    };
    if head.status.is_informational() {
        panic!("an interim response was taken for the final one");
    }
    if let Some(length) = head.headers.get(CONTENT_LENGTH) {
        assert!(
            head.framing != Framing::Chunked,
            "a chunked response kept its Content-Length: {length:?}"
        );
    }
    let mut decoder = Decoder::for_framing(head.framing);
    let body_bytes = buf.len();
    let rest = buf.split();
    let mut out = 0usize;
    let step = step.max(1);
    for piece in rest.chunks(step) {
        buf.extend_from_slice(piece);
        let mut rounds = 0usize;
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Some(data)) => out += data.len(),
                Ok(None) => break,
                Err(_) => return,
            }
            rounds += 1;
            assert!(
                buf.len() < before || rounds <= 2,
                "the body decoder returned data without consuming bytes"
            );
        }
        // What is left unread is only ever what a state cannot take yet.
        if !buf.is_empty() {
            assert!(
                matches!(decoder.state, State::Done),
                "the decoder left {} bytes unread in {:?}",
                buf.len(),
                decoder.state
            );
            break;
        }
    }
    assert!(
        out <= body_bytes,
        "more body ({out}) than bytes ({body_bytes})"
    );
    if let Framing::Length(n) = head.framing {
        assert!(out as u64 <= n, "more body ({out}) than Content-Length {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzzing_entry_point_takes_whole_responses() {
        exercise(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            false,
            7,
            3,
        );
        exercise(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
            false,
            100,
            1,
        );
        exercise(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            false,
            0,
            1,
        );
        exercise(b"garbage", false, 3, 1);
    }

    fn decode_all(state: State, input: &[u8]) -> Result<(Vec<u8>, State), BodyError> {
        let mut decoder = Decoder {
            state,
            trailer_bytes: 0,
        };
        let mut out = Vec::new();
        let mut buf = BytesMut::new();
        // Byte by byte, the worst case for a state machine.
        for &b in input {
            buf.extend_from_slice(&[b]);
            while let Some(data) = decoder.decode(&mut buf)? {
                out.extend_from_slice(&data);
            }
        }
        Ok((out, decoder.state))
    }

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let input = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
        let (out, state) = decode_all(State::ChunkSize(0, 0), input).unwrap();
        assert_eq!((out.as_slice(), state), (&b"hello world"[..], State::Done));

        let mut decoder = Decoder {
            state: State::ChunkSize(0, 0),
            trailer_bytes: 0,
        };
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\n"[..]);
        assert_eq!(&decoder.decode(&mut buf).unwrap().unwrap()[..], b"abc");
        // The end was consumed together with the last data.
        assert_eq!((decoder.state, buf.len()), (State::Done, 0));
    }

    #[test]
    fn malformed_chunked_bodies_are_errors() {
        assert!(decode_all(State::ChunkSize(0, 0), b"zz\r\n").is_err());
        assert!(decode_all(State::ChunkSize(0, 0), b"3\r\nabcX").is_err());
        assert!(decode_all(State::ChunkSize(0, 0), b"ffffffffffffffffff\r\n").is_err());
    }

    /// `parse_head` as a new connection meets its first response.
    fn parse_fresh(
        buf: &mut BytesMut,
        head_request: bool,
    ) -> Result<Option<ResponseHead>, UpstreamError> {
        parse_head(
            buf,
            head_request,
            &mut Vec::new(),
            &mut HeaderMap::new(),
            &mut NameCache::default(),
        )
    }

    #[test]
    fn heads_are_parsed_with_their_framing() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello"[..],
        );
        let head = parse_fresh(&mut buf, false).unwrap().unwrap();
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.headers["x-a"], "b");
        assert_eq!((head.framing, head.keep_alive), (Framing::Length(5), true));
        assert_eq!(&buf[..], b"hello");

        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"[..]);
        let head = parse_fresh(&mut buf, true).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Empty);

        let mut buf = BytesMut::from(&b"HTTP/1.0 200 OK\r\n\r\nbody"[..]);
        let head = parse_fresh(&mut buf, false).unwrap().unwrap();
        assert_eq!((head.framing, head.keep_alive), (Framing::Close, false));

        let mut buf = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n"[..],
        );
        let head = parse_fresh(&mut buf, false).unwrap().unwrap();
        assert_eq!((head.framing, head.keep_alive), (Framing::Chunked, false));

        let mut buf = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        );
        let head = parse_fresh(&mut buf, false).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        assert!(!head.headers.contains_key(CONTENT_LENGTH));

        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
        assert!(parse_fresh(&mut buf, false).unwrap().is_none());

        let mut buf = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
        );
        assert!(parse_fresh(&mut buf, false).is_err());
    }

    /// A remembered name is returned only for the very bytes it was sent as; another name of
    /// the same length, another spelling, or an invalid name goes through `from_bytes`
    /// (which refuses the invalid one, and nothing is remembered of it); at most
    /// `NAME_CACHE` names are kept.
    #[test]
    fn remembered_header_names_are_the_names_the_replica_sent() {
        let mut names = NameCache::default();
        let first = names.name(b"X-Version").unwrap();
        assert_eq!(first, "x-version");
        assert_eq!(names.names.len(), 1);
        assert_eq!(names.name(b"X-Version").unwrap(), first);
        assert_eq!(names.names.len(), 1, "found, not added again");
        assert_eq!(names.name(b"X-Versiom").unwrap(), "x-versiom");
        assert_eq!(names.name(b"x-version").unwrap(), "x-version");
        assert_eq!(names.names.len(), 3);
        assert!(names.name(b"X Version").is_err());
        assert!(names.name(b"").is_err());
        assert_eq!(names.names.len(), 3, "an invalid name is not remembered");
        for n in 0..40 {
            let name = format!("x-h{n}");
            assert_eq!(names.name(name.as_bytes()).unwrap(), name.as_str());
        }
        assert_eq!(names.names.len(), NAME_CACHE);

        // Through the parser: the same names, whichever spelling came first.
        let mut names = NameCache::default();
        let mut parse = |raw: &[u8]| {
            let mut buf = BytesMut::from(raw);
            parse_head(
                &mut buf,
                false,
                &mut Vec::new(),
                &mut HeaderMap::new(),
                &mut names,
            )
            .unwrap()
            .unwrap()
        };
        let one = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Version: v1\r\n\r\n");
        let two = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Version: v2\r\n\r\n");
        assert_eq!(
            one.headers.keys().collect::<Vec<_>>(),
            two.headers.keys().collect::<Vec<_>>()
        );
        assert_eq!(two.headers["x-version"], "v2");
    }
}
