//! A client's own failures are not the release's: the scenario end to end. Clients that
//! send an invalid chunk size or abort their upload, about one bad POST for every ten GETs,
//! once rolled an identical canary back (their 502s counted as its errors). Now they get 400
//! (or nothing, being gone), `runway status` counts them apart, and the canary is promoted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runway_demo_app::load::Load;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{text, App, Harness};

const WORKERS: u64 = 6;
/// GETs per second; the bad POSTs come at a tenth of that.
const RPS: u64 = 300;
const MIB: usize = 1024 * 1024;
/// Bounds of the bad traffic, whatever happens to the deployment.
const MAX_BAD_POSTS: u64 = 900;
const MAX_ABORTS: u64 = 60;
const MAX_BAD_TIME: Duration = Duration::from_secs(30);

/// How the proxy answered one bad request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// A response head with this status; `closes`: it said `Connection: close`.
    Status { code: u16, closes: bool },
    /// The connection ended (FIN or reset) without a response.
    Closed,
    /// Nothing within 5 s.
    Hung,
}

impl Answer {
    fn is_400_or_closed(&self) -> bool {
        matches!(self, Answer::Status { code: 400, .. } | Answer::Closed)
    }
}

/// Reads what the proxy answers until it closes the connection (its own answers to a failed
/// body end the connection), 5 s at most.
async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let finished = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    let head = String::from_utf8_lossy(&seen).to_ascii_lowercase();
    match head
        .strip_prefix("http/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
    {
        Some(code) => Answer::Status {
            code,
            closes: head.contains("\r\nconnection: close\r\n"),
        },
        None if finished => Answer::Closed,
        None => Answer::Hung,
    }
}

/// A chunked POST whose second chunk size is not hex.
async fn bad_chunked_post(addr: SocketAddr) -> Answer {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return Answer::Closed;
    };
    let request = "POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n\
                   5\r\nhello\r\nzz\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return Answer::Closed;
    }
    read_answer(&mut stream).await
}

/// A POST announcing 1 MiB that sends 64 KiB and stops: half-closed (`wait`: and reads the
/// answer) or gone entirely (nothing to read).
async fn aborted_upload(addr: SocketAddr, wait: bool) -> Answer {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return Answer::Closed;
    };
    let head = format!("POST / HTTP/1.1\r\nHost: web\r\nContent-Length: {MIB}\r\n\r\n");
    if stream.write_all(head.as_bytes()).await.is_err()
        || stream.write_all(&vec![b'x'; 64 * 1024]).await.is_err()
    {
        return Answer::Closed;
    }
    if !wait {
        drop(stream);
        return Answer::Closed;
    }
    if stream.shutdown().await.is_err() {
        return Answer::Closed;
    }
    read_answer(&mut stream).await
}

#[derive(Debug, Default)]
struct BadTraffic {
    posts: Vec<Answer>,
    /// (waited for the answer, the answer)
    aborts: Vec<(bool, Answer)>,
}

impl BadTraffic {
    fn posts_with(&self, code: u16) -> u64 {
        self.posts
            .iter()
            .filter(|a| matches!(a, Answer::Status { code: c, .. } if *c == code))
            .count() as u64
    }
}

/// About one bad chunked POST for every ten GETs of the load, and an aborted upload for every
/// tenth of those, until `stop` (or the bounds).
fn bad_traffic(addr: SocketAddr, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<BadTraffic> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut seen = BadTraffic::default();
        let mut tick = tokio::time::interval(Duration::from_micros(10_000_000 / RPS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::Relaxed)
            && (seen.posts.len() as u64) < MAX_BAD_POSTS
            && started.elapsed() < MAX_BAD_TIME
        {
            tick.tick().await;
            seen.posts.push(bad_chunked_post(addr).await);
            if seen.posts.len() % 10 == 0 && (seen.aborts.len() as u64) < MAX_ABORTS {
                let wait = seen.aborts.len() % 2 == 0;
                seen.aborts.push((wait, aborted_upload(addr, wait).await));
            }
        }
        seen
    })
}

async fn client_errors(h: &Harness) -> (u64, u64) {
    let status = h.status().await;
    let c = &status["services"][0]["client_errors"];
    (
        c["bad_request_body"].as_u64().unwrap(),
        c["client_aborted"].as_u64().unwrap(),
    )
}

/// Requests the releases counted, summed over every release in `runway status --json`.
async fn release_requests(h: &Harness) -> u64 {
    h.status().await["services"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["requests"].as_u64().unwrap())
        .sum()
}

async fn wait_for<F, Fut>(what: &str, within: Duration, mut ok: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_posts_and_aborted_uploads_are_client_errors_and_an_identical_canary_is_promoted() {
    let test_started = Instant::now();
    let h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    assert_eq!(client_errors(&h).await, (0, 0));
    let plain = h.runway(&["status"]).await;
    assert!(
        !String::from_utf8_lossy(&plain.stdout).contains("client errors"),
        "{}",
        text(&plain)
    );

    let load = Load::start(h.listen, "/", WORKERS, RPS);
    let stop = Arc::new(AtomicBool::new(false));
    let bad = bad_traffic(h.listen, stop.clone());

    // The default policy (error rate and p99, no [[analysis.metrics]]).
    let analysis =
        "interval = \"500ms\"\nfailure_limit = 2\nmin_requests = 50\nmax_intervals = 120\n";
    let identical = App::default().strategy(&format!(
        "[strategy]\nkind = \"canary\"\nsteps = [{{ weight = 50 }}, {{ weight = 100 }}]\n\n\
         [analysis]\n{analysis}"
    ));
    let deploy_started = Instant::now();
    let out = h.deploy("v2", &identical).await;
    let deploy_took = deploy_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let bad = bad.await.unwrap();
    let seen = load.stop().await;

    // Promoted: not rolled back, never paused.
    assert!(out.status.success(), "{}", text(&out));
    let history = h.history().await;
    assert_eq!(history[0]["status"], "succeeded", "{}", history[0]);
    let detail: serde_json::Value = h.client().get("/v1/deployments/2").await.unwrap();
    let events: Vec<&str> = detail["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        !events
            .iter()
            .any(|e| matches!(*e, "paused" | "rolling_back" | "failed")),
        "{events:?}"
    );
    assert!(events.contains(&"analysis"), "{events:?}");

    // The GETs all succeeded; every bad request got a 400 or a closed connection, no 502.
    assert_eq!(seen.failed, 0, "{:?}", seen.errors);
    let gets = seen.ok;
    let posts = bad.posts.len() as u64;
    let posts_400 = bad.posts_with(400);
    let odd: Vec<&Answer> = bad.posts.iter().filter(|a| !a.is_400_or_closed()).collect();
    assert!(odd.is_empty(), "bad POSTs not answered 400: {odd:?}");
    assert!(
        bad.posts
            .iter()
            .all(|a| !matches!(a, Answer::Status { closes: false, .. })),
        "a 400 without Connection: close"
    );
    let odd: Vec<&(bool, Answer)> = bad
        .aborts
        .iter()
        .filter(|(_, a)| !a.is_400_or_closed())
        .collect();
    assert!(odd.is_empty(), "aborted uploads not answered 400: {odd:?}");
    let aborts = bad.aborts.len() as u64;
    let aborts_400 = bad
        .aborts
        .iter()
        .filter(|(_, a)| matches!(a, Answer::Status { code: 400, .. }))
        .count() as u64;
    // About one bad POST in every ten GETs, enough of them to have mattered.
    assert!(posts >= 100, "only {posts} bad POSTs");
    assert!(
        posts * 10 >= gets / 2 && posts * 10 <= gets * 2,
        "{posts} bad POSTs for {gets} GETs"
    );
    assert!(
        posts_400 * 10 >= posts * 9,
        "{posts_400} of {posts} got 400"
    );

    // Counted as the client's, exactly, in status --json (the proxy counts a dropped upload
    // when it notices).
    wait_for(
        "the client errors to be counted",
        Duration::from_secs(10),
        || async { client_errors(&h).await == (posts, aborts) },
    )
    .await;
    let (bad_request_body, client_aborted) = client_errors(&h).await;
    assert!(bad_request_body >= posts_400 && client_aborted >= aborts_400);

    // In no release's numbers: the releases counted exactly the GETs, with no error.
    wait_for(
        "the releases to have counted every GET",
        Duration::from_secs(10),
        || async { release_requests(&h).await == gets },
    )
    .await;
    let status = h.status().await;
    let svc = &status["services"][0];
    for m in svc["metrics"].as_array().unwrap() {
        assert_eq!(m["error_rate"].as_f64(), Some(0.0), "{m}");
        assert_eq!(
            (m["failed"].as_u64(), m["status_5xx"].as_u64()),
            (Some(0), Some(0)),
            "{m}"
        );
    }
    assert!(svc["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["version"] == "v2"));

    // The plain status says it in a line, and Prometheus has the same numbers.
    let plain = h.runway(&["status"]).await;
    let stdout = String::from_utf8_lossy(&plain.stdout);
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("client errors:"))
        .unwrap_or_else(|| panic!("no client errors line: {}", text(&plain)));
    assert!(
        line.contains(&format!("{posts} malformed request bodies"))
            && line.contains(&format!("{aborts} uploads aborted")),
        "{line}"
    );
    let metrics: SocketAddr = h.server_file()["metrics"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (code, _, body) = crate::harness::http_get(metrics, "/metrics").await;
    assert_eq!(code, 200);
    for (reason, n) in [("bad_request_body", posts), ("client_aborted", aborts)] {
        let series =
            format!("runway_client_errors_total{{service=\"web\",reason=\"{reason}\"}} {n}");
        assert!(
            body.lines().any(|l| l == series),
            "no `{series}` in:\n{body}"
        );
    }

    eprintln!(
        "client errors e2e: {gets} GETs ({}), {posts} bad chunked POSTs ({posts_400} got 400, \
         {} closed), {aborts} aborted uploads ({aborts_400} got 400); status client_errors: \
         bad_request_body {bad_request_body}, client_aborted {client_aborted}; canary \
         deployed in {:.1}s, test {:.1}s; plain: {line:?}",
        seen.by_version(),
        bad.posts.iter().filter(|a| **a == Answer::Closed).count(),
        deploy_took.as_secs_f64(),
        test_started.elapsed().as_secs_f64()
    );
}
