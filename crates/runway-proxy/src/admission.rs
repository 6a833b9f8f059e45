//! The limit on open client connections, across every proxy of the process.
//!
//! Every client connection holds a file descriptor, and a proxied request one more for its
//! upstream connection. When the process runs out of descriptors, `accept` fails for every
//! listener at once: the proxies and the control API (`runway status`, `runway rollback`)
//! all stop. So the proxies together take at most [`connection_limit`] connections, which
//! the server sets below its open-file limit, leaving a reserve for the API, the state
//! database, replicas' pipes and upstream connections ([`limit_for_open_files`]).
//!
//! A connection over the limit is still accepted (it is the only way to tell its client
//! anything), answered `503 Service Unavailable` with `Retry-After: 1` and
//! `Connection: close`, and closed; what it sent is not read. At most
//! [`MAX_REFUSING`] such answers are in progress at once; beyond that a connection is
//! closed at once, so that refusing cannot itself use up the reserve.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The answer to a connection over the limit.
const OVER_LIMIT_ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 36\r\n\
\r\n\
too many open connections, try again";

/// Refusals in progress at most (each holds its socket for up to [`REFUSAL_TIME`]).
pub(crate) const MAX_REFUSING: usize = 64;
/// How long a refusal may take to be written and read.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// File descriptors kept out of the proxies' reach: the API, the database, the replicas'
/// pipes, the platform's clients. A quarter of the limit, at least this many.
pub const RESERVED_FILES: u64 = 128;

static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
static OPEN: AtomicUsize = AtomicUsize::new(0);
static REFUSING: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Sets the most client connections all proxies of this process hold at once.
pub fn set_connection_limit(limit: usize) {
    LIMIT.store(limit.max(1), Ordering::Relaxed);
}

/// The most client connections all proxies of this process hold at once.
pub fn connection_limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// Client connections open now, across every proxy of the process.
pub fn open_connections() -> usize {
    OPEN.load(Ordering::Relaxed)
}

/// Connections refused for the limit since the process started.
pub fn refused_connections() -> u64 {
    REFUSED.load(Ordering::Relaxed)
}

/// The connection limit for a process that may open `open_files` files: what is left after
/// the reserve (a quarter, at least [`RESERVED_FILES`]), halved, because each proxied
/// request needs a second descriptor for its upstream connection.
pub fn limit_for_open_files(open_files: u64) -> usize {
    let reserve = (open_files / 4).max(RESERVED_FILES);
    (open_files.saturating_sub(reserve) / 2).max(1) as usize
}

/// A client connection counted against the limit; uncounted when dropped.
pub(crate) struct Admitted(());

impl Drop for Admitted {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a newly accepted connection, or says it is over the limit.
pub(crate) fn admit() -> Option<Admitted> {
    let limit = LIMIT.load(Ordering::Relaxed);
    let mut open = OPEN.load(Ordering::Relaxed);
    loop {
        if open >= limit {
            return None;
        }
        match OPEN.compare_exchange_weak(open, open + 1, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some(Admitted(())),
            Err(now) => open = now,
        }
    }
}

/// Answers a connection over the limit (see the module docs) and closes it.
pub(crate) fn refuse(stream: TcpStream) {
    REFUSED.fetch_add(1, Ordering::Relaxed);
    if REFUSING.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
        REFUSING.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    tokio::spawn(async move {
        let mut stream = stream;
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            stream.write_all(OVER_LIMIT_ANSWER).await?;
            stream.shutdown().await?;
            // Read until the client closes, so that what it sent does not turn the close
            // into a reset that destroys the answer.
            let mut discard = [0u8; 1024];
            loop {
                if tokio::io::AsyncReadExt::read(&mut stream, &mut discard).await? == 0 {
                    return Ok::<(), std::io::Error>(());
                }
            }
        })
        .await;
        REFUSING.fetch_sub(1, Ordering::Relaxed);
    });
}

/// The status of a fixed answer the proxy writes itself, checking that its
/// `content-length` is exactly the body that follows its head.
#[cfg(test)]
pub(crate) fn status_of_a_whole_answer(answer: &[u8]) -> u16 {
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(answer).unwrap() else {
        panic!("incomplete")
    };
    let length = response
        .headers
        .iter()
        .find(|h| h.name == "content-length")
        .unwrap();
    assert_eq!(
        std::str::from_utf8(length.value).unwrap(),
        (answer.len() - head).to_string()
    );
    response.code.unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_503_says_its_own_length() {
        assert_eq!(status_of_a_whole_answer(OVER_LIMIT_ANSWER), 503);
    }

    #[test]
    fn the_limit_leaves_a_reserve_and_room_for_upstream_connections() {
        assert_eq!(limit_for_open_files(1024), 384);
        assert_eq!(limit_for_open_files(65_536), 24_576);
        assert_eq!(limit_for_open_files(200), 36);
        assert_eq!(limit_for_open_files(10), 1);
    }
}
