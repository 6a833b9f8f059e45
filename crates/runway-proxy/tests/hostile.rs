//! A hostile or careless client: slow and silent connections, and requests the proxy and
//! a replica could read differently (request smuggling). Each is refused with the right
//! status, and none of it reaches a replica.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::raw::RawConn;
use common::{bounded, release, RunningProxy, TestBackend};
use runway_proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn quick_timeouts() -> ProxyConfig {
    ProxyConfig {
        header_timeout: Duration::from_millis(800),
        idle_timeout: Duration::from_millis(1500),
        body_timeout: Duration::from_millis(800),
        send_timeout: Duration::from_millis(800),
        ..ProxyConfig::default()
    }
}

async fn proxy_with(config: ProxyConfig) -> (RunningProxy, TestBackend) {
    let backend = TestBackend::start("a").await;
    let proxy = RunningProxy::start_with("svc", config).await;
    proxy
        .proxy
        .set_routes(vec![release("v1", 100, &[&backend])]);
    (proxy, backend)
}

#[tokio::test]
async fn a_slowloris_head_gets_408_at_the_header_timeout() {
    let (proxy, _backend) = proxy_with(quick_timeouts()).await;
    let stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    // A header line every 200 ms: never a whole head.
    let drip = tokio::spawn(async move {
        writer
            .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n")
            .await
            .unwrap();
        for i in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer
                .write_all(format!("X-Drip-{i}: x\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    bounded(reader.read_to_end(&mut answer)).await.unwrap();
    let took = started.elapsed();
    drip.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(
        took >= Duration::from_millis(750) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_silent_connection_is_told_408_and_closed() {
    let (proxy, _backend) = proxy_with(quick_timeouts()).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    let answer = bounded(conn.read_answer()).await.unwrap();
    assert_eq!(answer.status, 408);
    conn.expect_fin().await.unwrap();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_closes_quietly_and_a_busy_one_is_never_cut() {
    let (proxy, backend) = proxy_with(quick_timeouts()).await;
    // A request that takes longer than both timeouts is answered.
    let mut slow = RawConn::connect(proxy.addr).await;
    slow.write(b"GET /gate HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    backend.gate.add_permits(1);
    let answer = bounded(slow.read_answer()).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());

    // Requests closer together than the idle timeout keep the connection.
    let mut conn = RawConn::connect(proxy.addr).await;
    for i in 0..3 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        let answer = conn
            .exchange_bytes(b"GET /a HTTP/1.1\r\nHost: test\r\n\r\n".to_vec())
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
    }
    // Then idle: closed with FIN and no bytes (nothing to say to a client that sent nothing).
    let started = Instant::now();
    conn.expect_fin().await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

/// Sends all of `proxy`'s traffic to the replica at `backend`.
fn route_to(proxy: &RunningProxy, backend: SocketAddr) {
    proxy.proxy.set_routes(vec![runway_proxy::ReleaseRoute {
        release: "v1".into(),
        weight: 100,
        backends: vec![runway_proxy::Backend {
            id: "r1".into(),
            addr: backend,
        }],
    }]);
}

/// A replica that records every byte it is sent and answers each connection's first
/// request `200`.
async fn recording_backend() -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut answered = false;
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            record.lock().unwrap().extend_from_slice(&buf[..n]);
                            if !answered {
                                answered = true;
                                let _ = stream
                                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                                    .await;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// Sends `request` on a new connection; the answer's status, and whether the proxy ended
/// the connection after it.
async fn refused(proxy: SocketAddr, request: &[u8]) -> (u16, bool) {
    let mut conn = RawConn::connect(proxy).await;
    match conn.exchange_bytes(request.to_vec()).await {
        Ok(answer) => {
            let closes = answer.closes() && conn.expect_fin().await.is_ok();
            (answer.status, closes)
        }
        Err(error) => panic!(
            "no answer to {:?}: {error}",
            String::from_utf8_lossy(request)
        ),
    }
}

#[tokio::test]
async fn requests_a_replica_could_read_differently_are_refused_and_never_forwarded() {
    let (backend, seen) = recording_backend().await;
    let proxy = RunningProxy::start("svc").await;
    route_to(&proxy, backend);

    let cases: &[(&str, &[u8])] = &[
        (
            "two Host headers",
            b"GET /two-hosts HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        ),
        ("HTTP/1.1 without Host", b"GET /no-host HTTP/1.1\r\n\r\n"),
        (
            "absolute-form target",
            b"GET http://evil.example/absolute HTTP/1.1\r\nHost: test\r\n\r\n",
        ),
        (
            "two different Content-Lengths",
            b"POST /cl-cl HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd",
        ),
        (
            "Transfer-Encoding that does not end in chunked",
            b"POST /te-gzip HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        ),
        (
            "obsolete line folding",
            b"GET /folded HTTP/1.1\r\nHost: test\r\nX-Folded: a\r\n  b\r\n\r\n",
        ),
        (
            "a space before the colon",
            b"GET /space HTTP/1.1\r\nHost: test\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        ),
    ];
    for (what, request) in cases {
        let (status, closes) = bounded(refused(proxy.addr, request)).await;
        assert_eq!(status, 400, "{what}");
        assert!(closes, "{what}: the connection must end after the 400");
    }

    // Both Content-Length and Transfer-Encoding (RFC 9112 §6.3): the length is dropped, the
    // body read as chunked, and the connection ends after the answer, so the request hidden
    // behind the chunked body is never read, let alone forwarded.
    let mut conn = RawConn::connect(proxy.addr).await;
    let answer = bounded(conn.exchange_bytes(
        b"POST /cl-te HTTP/1.1\r\nHost: test\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n"
            .to_vec(),
    ))
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.closes(), "the connection must end after the answer");
    bounded(conn.expect_fin()).await.unwrap();
    {
        let seen = seen.lock().unwrap();
        let forwarded = String::from_utf8_lossy(&seen).to_ascii_lowercase();
        assert!(forwarded.contains("post /cl-te"), "{forwarded}");
        assert!(!forwarded.contains("content-length: 40"), "{forwarded}");
    }

    // An invalid chunk size: the client's body is broken before a byte of it could go on.
    let (status, _) = bounded(refused(
        proxy.addr,
        b"POST /bad-chunk HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    ))
    .await;
    assert_eq!(status, 400, "invalid chunk size");

    let forwarded = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    for path in [
        "/two-hosts",
        "/no-host",
        "/absolute",
        "/smuggled",
        "/bad-chunk",
        "/cl-cl",
        "/te-gzip",
        "/folded",
        "/space",
        "evil.example",
    ] {
        assert!(
            !forwarded.contains(path),
            "{path} reached the replica:\n{forwarded}"
        );
    }

    // HTTP/1.0 needs no Host, and a well-formed request still goes through.
    let (status, _) = bounded(refused(proxy.addr, b"GET /plain HTTP/1.0\r\n\r\n")).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&seen.lock().unwrap()).contains("GET /plain"));
}

#[tokio::test]
async fn an_h2c_upgrade_is_not_forwarded_unless_configured() {
    let (backend, seen) = recording_backend().await;
    let request = b"GET /h2c HTTP/1.1\r\nHost: test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";

    let proxy = RunningProxy::start("svc").await;
    route_to(&proxy, backend);
    let (status, _) = bounded(refused(proxy.addr, request)).await;
    assert_eq!(status, 200, "served as plain HTTP/1.1");
    let forwarded = String::from_utf8_lossy(&seen.lock().unwrap()).to_ascii_lowercase();
    assert!(forwarded.contains("get /h2c"), "{forwarded}");
    assert!(!forwarded.contains("upgrade"), "{forwarded}");
    assert!(!forwarded.contains("http2-settings"), "{forwarded}");

    seen.lock().unwrap().clear();
    let proxy = RunningProxy::start_with(
        "svc",
        ProxyConfig {
            h2c_upgrade: true,
            ..ProxyConfig::default()
        },
    )
    .await;
    route_to(&proxy, backend);
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.write(request).await.unwrap();
    // The replica is asked to upgrade (it answers 200, so nothing switches).
    common::eventually("the upgrade request reaches the replica", || {
        String::from_utf8_lossy(&seen.lock().unwrap())
            .to_ascii_lowercase()
            .contains("upgrade: h2c")
    })
    .await;
}

/// A replica that reads one request's body and says how its connection ended: after how
/// many body bytes, and whether with a clean end of stream or a reset.
async fn ending_backend() -> (
    SocketAddr,
    tokio::sync::mpsc::Receiver<(usize, &'static str)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                let ended = loop {
                    match stream.read(&mut buf).await {
                        Ok(0) => break "end of stream",
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break "reset",
                        Err(_) => break "error",
                    }
                };
                let head_end = seen
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(seen.len(), |p| p + 4);
                let _ = tx.send((seen.len() - head_end, ended)).await;
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn a_body_the_client_gives_up_on_reaches_the_replica_as_a_reset_never_as_an_end() {
    let (backend, mut ended) = ending_backend().await;
    let proxy = RunningProxy::start("svc").await;
    route_to(&proxy, backend);

    // 4 MB announced (streamed: too large to buffer), 1.5 MB sent, then the client is gone.
    let mut client = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    client
        .write_all(b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 4000000\r\n\r\n")
        .await
        .unwrap();
    client.write_all(&vec![b'x'; 1_500_000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(client);
    let (bytes, how) = bounded(ended.recv()).await.unwrap();
    eprintln!("content-length body cut at {bytes} bytes: the replica saw {how}");
    assert!(bytes < 4_000_000);
    assert_eq!(how, "reset", "after {bytes} bytes");

    // Chunked: a good chunk, then a broken one.
    let mut client = RawConn::connect(proxy.addr).await;
    let mut request =
        b"POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n"
            .to_vec();
    request.extend_from_slice(&vec![b'y'; 0x10000]);
    request.extend_from_slice(b"\r\nzz\r\n");
    let answer = bounded(conn_answer(&mut client, request)).await;
    assert_eq!(answer, 400);
    let (bytes, how) = bounded(ended.recv()).await.unwrap();
    eprintln!("chunked body broken after {bytes} bytes: the replica saw {how}");
    assert_eq!(how, "reset", "after {bytes} bytes");
}

async fn conn_answer(conn: &mut RawConn, request: Vec<u8>) -> u16 {
    conn.exchange_bytes(request).await.unwrap().status
}

/// A "slow POST": a client that stops sending its body (buffered or streamed) is answered
/// `408` at the body timeout and its connection ends, counted as the client's failure; one
/// whose bytes come slowly but keep coming is served.
#[tokio::test]
async fn a_stalled_request_body_gets_408_at_the_body_timeout() {
    let (proxy, _backend) = proxy_with(quick_timeouts()).await;
    let heads: [&[u8]; 2] = [
        // Buffered (a length up to 1 MiB): nothing reaches the replica yet.
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789",
        // Streamed (chunked): the replica has the first chunk and waits for the rest.
        b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n",
    ];
    for (i, head) in heads.into_iter().enumerate() {
        let mut conn = RawConn::connect(proxy.addr).await;
        conn.write(head).await.unwrap();
        let started = Instant::now();
        let answer = bounded(conn.read_answer()).await.unwrap();
        let took = started.elapsed();
        assert_eq!(answer.status, 408, "{}", answer.text());
        assert_eq!(answer.text(), "the request body did not arrive in time");
        assert!(answer.closes(), "{:?}", answer.headers);
        assert!(
            took >= Duration::from_millis(750) && took < Duration::from_secs(5),
            "{took:?}"
        );
        conn.expect_fin().await.unwrap();
        assert_eq!(proxy.proxy.client_errors().client_aborted, i as u64 + 1);
    }
    assert!(proxy.proxy.metrics().iter().all(|m| m.requests == 0));

    // Ten bytes, one every 300 ms: slower in all than the timeout, never silent that long.
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.write(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n")
        .await
        .unwrap();
    for byte in b"0123456789" {
        tokio::time::sleep(Duration::from_millis(300)).await;
        conn.write(&[*byte]).await.unwrap();
    }
    let answer = bounded(conn.read_answer()).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), "0123456789");
}

/// A replica slow to take a large upload is not the client's delay: the proxy does not ask
/// the client for bytes it cannot pass on, so the body timeout does not run.
#[tokio::test]
async fn a_replica_slow_to_take_the_body_does_not_run_the_body_timeout() {
    let (proxy, backend) = proxy_with(quick_timeouts()).await;
    // 4 MiB (streamed) to `/gate`, which reads nothing until it may answer.
    let size = 4 * 1024 * 1024;
    let stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!("POST /gate HTTP/1.1\r\nHost: test\r\nContent-Length: {size}\r\n\r\n");
    let upload = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        writer.write_all(&vec![b'u'; size]).await?;
        Ok::<_, std::io::Error>(writer)
    });
    // Three body timeouts with the replica not reading, then it answers.
    tokio::time::sleep(Duration::from_millis(2400)).await;
    backend.gate.add_permits(1);
    let mut answer = vec![0u8; 12];
    bounded(reader.read_exact(&mut answer)).await.unwrap();
    assert_eq!(
        &answer,
        b"HTTP/1.1 200",
        "{}",
        String::from_utf8_lossy(&answer)
    );
    upload.abort();
    assert_eq!(proxy.proxy.client_errors().client_aborted, 0);
}

/// A client that takes no byte of its answer is cut at the send timeout; one that reads
/// slowly, but reads, gets all of it.
#[tokio::test]
async fn a_client_that_takes_no_answer_byte_is_cut_at_the_send_timeout() {
    // Longer than the others: a slow reader's pause on a loaded machine must stay below it.
    let send_timeout = Duration::from_millis(1500);
    let (proxy, _backend) = proxy_with(ProxyConfig {
        send_timeout,
        ..quick_timeouts()
    })
    .await;
    const SIZE: usize = 32 * 1024 * 1024;
    let request = format!("GET /bytes/{SIZE} HTTP/1.1\r\nHost: test\r\n\r\n");
    // A small receive buffer, so that the answer fills it soon.
    let connect = || async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        socket.connect(proxy.addr).await.unwrap()
    };

    let mut reader = connect().await;
    reader.write_all(request.as_bytes()).await.unwrap();
    // Read 64 KiB every 200 ms for 4 s (slower than the answer comes, so the proxy's writes
    // wait longer than the send timeout for room in its send buffer), then the rest.
    let mut received = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let slow_until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < slow_until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let n = bounded(reader.read(&mut buf)).await.unwrap();
        assert!(n > 0, "the connection ended after {received} bytes");
        received += n;
    }
    let mut rest = Vec::new();
    bounded(reader.read_to_end(&mut rest)).await.unwrap();
    received += rest.len();
    let head = 100; // status line and headers, about
    assert!(
        received > SIZE && received < SIZE + head + 100,
        "{received}"
    );

    let mut silent = connect().await;
    silent.write_all(request.as_bytes()).await.unwrap();
    // Three send timeouts without reading, then whatever the buffers held and the end.
    tokio::time::sleep(send_timeout * 3).await;
    let mut got = Vec::new();
    let _ = bounded(silent.read_to_end(&mut got)).await;
    assert!(got.len() < SIZE, "{} bytes: not cut", got.len());
    assert!(
        got.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{:?}",
        String::from_utf8_lossy(&got[..got.len().min(80)])
    );
}
