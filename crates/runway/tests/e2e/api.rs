//! Issue 16: the server as a product. Loopback by default, TLS or an explicit flag anywhere
//! else; event streams of the journal that resume where they left off (the CLI's follow mode
//! reads them, over TLS too).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;

use super::harness::*;

/// One server-sent event.
#[derive(Debug, Clone)]
struct Sse {
    id: String,
    event: String,
    data: serde_json::Value,
}

/// GETs the event stream at `path` and reads events until `enough` says so or the stream
/// ends (at most 30 s). The answer's status comes first.
async fn read_stream(
    api: SocketAddr,
    path: &str,
    token: &str,
    last_event_id: Option<&str>,
    enough: impl Fn(&[Sse]) -> bool,
) -> (u16, Vec<Sse>) {
    use eventsource_stream::Eventsource;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let mut req = hyper::Request::get(format!("http://{api}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let resp = client
        .request(req.body(Default::default()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    if status != 200 {
        return (status, Vec::new());
    }
    let mut stream = http_body_util::BodyDataStream::new(resp.into_body()).eventsource();
    let mut events = Vec::new();
    let read = async {
        while let Some(event) = stream.next().await {
            let event = event.unwrap();
            events.push(Sse {
                id: event.id,
                event: event.event,
                data: serde_json::from_str(&event.data).unwrap(),
            });
            if enough(&events) {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap_or_else(|_| panic!("the stream {path} did not give what was awaited"));
    (status, events)
}

fn token_and_api(h: &Harness) -> (String, SocketAddr) {
    let file = h.server_file();
    (
        file["token"].as_str().unwrap().to_string(),
        file["api"].as_str().unwrap().parse().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_carry_every_entry_and_resume_where_they_left_off() {
    let h = Harness::start().await;
    let (token, api) = token_and_api(&h);
    let app = App {
        replicas: 2,
        ..App::default()
    };

    // The stream of everything, from the start, read while a deployment runs.
    let everything = tokio::spawn({
        let token = token.clone();
        async move {
            read_stream(api, "/v1/events/stream?after=0", &token, None, |events| {
                events.iter().any(|e| e.data["event"] == "succeeded")
            })
            .await
        }
    });
    let out = h.deploy("v1", &app).await;
    assert!(out.status.success(), "{}", text(&out));
    // The CLI followed the deployment on its stream.
    assert!(text(&out).contains("succeeded"), "{}", text(&out));
    let (status, events) = everything.await.unwrap();
    assert_eq!(status, 200);
    assert!(events.len() >= 5, "{events:?}");
    let mut last = 0;
    for e in &events {
        assert_eq!(e.event, "journal");
        assert_eq!(e.data["service"], "web", "{e:?}");
        assert_eq!(e.data["deployment"], 1, "{e:?}");
        let cursor: i64 = e.id.parse().unwrap();
        assert_eq!(e.data["cursor"], cursor);
        assert!(cursor > last, "cursors grow: {events:?}");
        last = cursor;
    }
    assert_eq!(events[0].data["event"], "started");

    // A client that reconnects with Last-Event-ID gets what came after, nothing twice.
    let (_, resumed) = read_stream(
        api,
        "/v1/events/stream",
        &token,
        Some(&events[2].id),
        |got| got.len() >= 2,
    )
    .await;
    assert_eq!(resumed[0].id, events[3].id);
    assert_eq!(resumed[1].id, events[4].id);
    // Another service's stream has none of it.
    let quiet = tokio::time::timeout(
        Duration::from_secs(2),
        read_stream(
            api,
            "/v1/events/stream?after=0&service=other",
            &token,
            None,
            |got| !got.is_empty(),
        ),
    )
    .await;
    assert!(quiet.is_err(), "{quiet:?}");

    // A deployment's stream: its whole journal, then its record, then the end.
    let (status, mine) =
        read_stream(api, "/v1/deployments/1/stream", &token, None, |_| false).await;
    assert_eq!(status, 200);
    let (journal, record): (Vec<_>, Vec<_>) = mine.iter().partition(|e| e.event == "journal");
    let detail = h.client().deployment(1.into()).await.unwrap();
    assert_eq!(journal.len(), detail.journal.len());
    for (streamed, stored) in journal.iter().zip(&detail.journal) {
        assert_eq!(streamed.id, stored.seq.to_string());
        assert_eq!(streamed.data["event"], stored.event.as_str());
    }
    assert_eq!(record.len(), 1, "{record:?}");
    assert_eq!(record[0].data["status"], "succeeded");
    assert_eq!(mine.last().unwrap().event, "deployment");
    // ... and from a point of it.
    let (_, tail) = read_stream(
        api,
        "/v1/deployments/1/stream?after=3",
        &token,
        None,
        |_| false,
    )
    .await;
    assert_eq!(tail[0].id, "4");

    // Refusals in the API's one error shape.
    let (status, answer) =
        api_request(api, "GET", "/v1/deployments/99/stream", "", Some(&token)).await;
    assert_eq!(status, 404);
    assert_eq!(answer["code"], "not_found", "{answer}");
    let (status, _) = read_stream(api, "/v1/events/stream", &token, Some("soon"), |_| true).await;
    assert_eq!(status, 400);
    let (status, answer) = api_request(api, "GET", "/v1/events/stream", "", None).await;
    assert_eq!(status, 401);
    assert_eq!(answer["code"], "unauthorized", "{answer}");
}

/// `runway server` with `args` in a fresh state dir under `dir`: its exit status and stderr.
fn server_refusal(dir: &Path, args: &[&str]) -> (bool, String) {
    let state = dir.join("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_runway"))
        .arg("server")
        .arg("--state-dir")
        .arg(&state)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A refusal is immediate; a server that started would still be running.
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("runway server {args:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        !state.exists(),
        "a refused start created {}",
        state.display()
    );
    (status.success(), stderr)
}

#[test]
fn an_api_off_loopback_without_tls_refuses_to_start_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let (ok, stderr) = server_refusal(dir.path(), &["--api-listen", addr]);
        assert!(!ok);
        assert!(
            stderr.contains(&format!("refusing to serve the API on {addr} without TLS")),
            "{stderr}"
        );
        assert!(
            stderr.contains("--tls-cert") && stderr.contains("--insecure-http"),
            "{stderr}"
        );
    }
    // TLS asked for, with files that are not there: the file is named.
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let (ok, stderr) = server_refusal(
        dir.path(),
        &[
            "--api-listen",
            "0.0.0.0:0",
            "--tls-cert",
            missing,
            "--tls-key",
            missing,
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains("reading the TLS certificate") && stderr.contains("missing.pem"),
        "{stderr}"
    );
    // A certificate without its key is a usage error.
    let (ok, stderr) = server_refusal(dir.path(), &["--tls-cert", missing]);
    assert!(!ok);
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_cli_trusts_the_servers_certificate_and_curl_its_ca() {
    let h = Harness::start_with_args(|dir| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        vec![
            "--tls-cert".into(),
            dir.join("cert.pem").display().to_string(),
            "--tls-key".into(),
            dir.join("key.pem").display().to_string(),
        ]
    })
    .await;
    let (token, api) = token_and_api(&h);
    assert!(h.server_file()["tls_cert"]
        .as_str()
        .unwrap()
        .ends_with("cert.pem"));
    assert!(
        h.server_log().contains(&format!("https://{api}/")),
        "{}",
        h.server_log()
    );

    // The CLI, deploying and following over TLS.
    let out = h.deploy("v1", &App::default()).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = h.runway(&["status"]).await;
    assert!(
        out.status.success() && text(&out).contains("v1"),
        "{}",
        text(&out)
    );

    // curl, trusting the certificate as a CA.
    let cert = h.dir.path().join("cert.pem");
    let curl = |scheme: &str| {
        Command::new("curl")
            .args(["-sS", "--max-time", "5", "--cacert"])
            .arg(&cert)
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .arg(format!("{scheme}://127.0.0.1:{}/v1/info", api.port()))
            .output()
            .unwrap()
    };
    let out = curl("https");
    assert!(out.status.success(), "{}", text(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(info["version"].is_string(), "{info}");
    // Plain HTTP to the TLS port gets no API answer.
    let out = curl("http");
    assert!(
        !out.status.success() || !String::from_utf8_lossy(&out.stdout).contains("version"),
        "{}",
        text(&out)
    );

    // A client that trusts nothing in particular is refused the handshake.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("https://127.0.0.1:{}/v1/info", api.port()))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
}
