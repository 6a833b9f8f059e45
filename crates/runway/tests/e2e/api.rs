//! Issue 16: the server as a product. Loopback by default, TLS or an explicit flag anywhere
//! else; event streams of the journal that resume where they left off (the CLI's follow mode
//! reads them, over TLS too).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

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
    // It opens with where it starts.
    assert_eq!(events[0].event, "ready");
    assert_eq!(events[0].id, "0");
    assert_eq!(events[0].data["after"], 0);
    let events = events[1..].to_vec();
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
        |got| got.len() >= 3,
    )
    .await;
    assert_eq!(resumed[0].event, "ready");
    assert_eq!(resumed[0].id, events[2].id);
    assert_eq!(resumed[1].id, events[3].id);
    assert_eq!(resumed[2].id, events[4].id);
    // Another service's stream has none of it.
    let quiet = tokio::time::timeout(
        Duration::from_secs(2),
        read_stream(
            api,
            "/v1/events/stream?after=0&service=other",
            &token,
            None,
            |got| got.len() > 1,
        ),
    )
    .await;
    assert!(quiet.is_err(), "{quiet:?}");
    // "From now": the stream starts after the newest entry, and says where that is.
    let (_, now) = read_stream(api, "/v1/events/stream", &token, None, |got| {
        !got.is_empty()
    })
    .await;
    assert_eq!(now[0].event, "ready");
    let entries = h.client().deployment(1.into()).await.unwrap().journal.len();
    assert_eq!(
        now[0].id,
        entries.to_string(),
        "one deployment: cursors 1..={entries}"
    );

    // A deployment's stream: its whole journal, then its record, then the end.
    let (status, mine) =
        read_stream(api, "/v1/deployments/1/stream", &token, None, |_| false).await;
    assert_eq!(status, 200);
    assert_eq!(mine[0].event, "ready");
    let mine = mine[1..].to_vec();
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
    assert_eq!(tail[0].id, "3");
    assert_eq!(tail[1].id, "4");

    // History narrowed by status and kind, on the server; a status that is none is refused.
    let (status, found) = api_request(
        api,
        "GET",
        "/v1/deployments?status=succeeded&kind=deploy",
        "",
        Some(&token),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    let (_, none) = api_request(
        api,
        "GET",
        "/v1/deployments?status=failed",
        "",
        Some(&token),
    )
    .await;
    assert_eq!(none, serde_json::json!([]));
    let (status, refused) = api_request(
        api,
        "GET",
        "/v1/deployments?status=sideways",
        "",
        Some(&token),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["code"], "invalid_request", "{refused}");

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

    // The CLI trusts only the certificate the server loaded: another hash in server.json (a
    // server that is not the one the state dir says) is refused, and said so.
    let file = h.state_path().join("server.json");
    let original = std::fs::read_to_string(&file).unwrap();
    let mut forged: serde_json::Value = serde_json::from_str(&original).unwrap();
    forged["tls_cert_sha256"] = json!("00".repeat(32));
    std::fs::write(&file, forged.to_string()).unwrap();
    let out = h.runway(&["status"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("not the one its state dir names"),
        "{}",
        text(&out)
    );
    std::fs::write(&file, original).unwrap();
    let out = h.runway(&["status"]).await;
    assert!(out.status.success(), "{}", text(&out));

    // A client that trusts nothing in particular is refused the handshake.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("https://127.0.0.1:{}/v1/info", api.port()))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
}

/// schemathesis (PyPI): scripts/test installs it and names it in RUNWAY_SCHEMATHESIS.
fn schemathesis() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("RUNWAY_SCHEMATHESIS") {
        return path.into();
    }
    let venv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/schemathesis");
    assert!(
        venv.exists(),
        "schemathesis is not installed: scripts/test installs it (into target/test-venv)"
    );
    venv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_every_answer_as_documented() {
    let h = Harness::start().await;
    let (token, api) = token_and_api(&h);
    // A service that serves, so that the generated requests reach past "no such service".
    let out = h
        .deploy(
            "v1",
            &App {
                replicas: 2,
                ..App::default()
            },
        )
        .await;
    assert!(out.status.success(), "{}", text(&out));

    let config = h.dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            r#"
headers = {{ Authorization = "Bearer {token}" }}
workers = 2
request-timeout = 30.0
# The event streams: a few events are enough to check them.
max-stream-events = 3
# The stream of everything waits for news: its first event, `ready`, is checked.
[[operations]]
include-path = "/v1/events/stream"
max-stream-events = 1
[generation]
max-examples = 6
[parameters]
service = "web"
id = 1
node = "web-1"
# A baseline measures for this many seconds.
window = 1
"#
        ),
    )
    .unwrap();
    let mut cmd = Command::new(schemathesis());
    cmd.arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("http://{api}/v1/openapi.json"))
        // Every check but "a request the schema allows is accepted": the document gives
        // the shapes, not every rule (a token name's characters, a spec's meaning).
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--phases", "examples,coverage,fuzzing", "--seed", "16"])
        .env("NO_COLOR", "1")
        .current_dir(h.dir.path());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let report = text(&out);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}\n--- server log ---\n{}",
        h.server_log()
    );
    // It ran every operation, and generated requests.
    // (schemathesis leaves out the document's own URL, GET /v1/openapi.json.)
    let operations = runway_server::api::ROUTES.len() - 1;
    assert!(
        report.contains(&format!("Tested: {operations}")),
        "not every operation was tested:\n{report}"
    );
    // What it did, for the log (`cargo test -- --nocapture`).
    for line in report
        .lines()
        .filter(|l| l.contains("generated") || l.contains("Tested:"))
    {
        eprintln!("schemathesis: {}", line.trim());
    }
    // The server is still up and well.
    let (status, _) = api_request(api, "GET", "/v1/status", "", Some(&token)).await;
    assert_eq!(status, 200);
}

/// A request with extra headers: status, headers and body (the harness's, arguments in the
/// order these tests read best).
async fn raw(
    api: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, hyper::HeaderMap, serde_json::Value) {
    api_exchange(api, method, path, body, headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_signs_in_with_a_token_needs_its_csrf_token_to_change_and_ends_with_it() {
    let h = Harness::start().await;
    let (_, api) = token_and_api(&h);
    let out = h
        .runway(&["tokens", "create", "dee", "--role", "deployer"])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let dee = String::from_utf8_lossy(&out.stdout).trim().to_string();

    // The document is open to anyone; everything else needs a token or a session.
    let (status, _, doc) = raw(api, "GET", "/v1/openapi.json", &[], "").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    let (status, _, _) = raw(api, "GET", "/v1/status", &[], "").await;
    assert_eq!(status, 401);

    // A wrong token opens nothing.
    let (status, headers, answer) =
        raw(api, "POST", "/v1/session", &[], r#"{"token": "rwy_nope"}"#).await;
    assert_eq!(status, 401, "{answer}");
    assert!(headers.get("set-cookie").is_none());

    let (status, headers, session) = raw(
        api,
        "POST",
        "/v1/session",
        &[],
        &format!(r#"{{"token": "{dee}"}}"#),
    )
    .await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["name"], "dee");
    assert_eq!(session["role"], "deployer");
    let csrf = session["csrf"].as_str().unwrap().to_string();
    let set_cookie = headers["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP on loopback: {set_cookie}"
    );
    assert!(!set_cookie.contains(&dee), "the cookie is not the token");
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    // Reading with the cookie; the session tells its CSRF token again (a reloaded page).
    let (status, _, whoami) = raw(api, "GET", "/v1/whoami", &[("cookie", &cookie)], "").await;
    assert_eq!(status, 200);
    assert_eq!(whoami["name"], "dee");
    let (_, _, again) = raw(api, "GET", "/v1/session", &[("cookie", &cookie)], "").await;
    assert_eq!(again["csrf"], csrf.as_str());

    // A change without the CSRF token is refused (another site's form could send the cookie
    // if SameSite failed); with it, it reaches the handler and the role check.
    let lock = "/v1/services/ghost/lock";
    let body = r#"{"reason": "test"}"#;
    let (status, _, refused) = raw(api, "POST", lock, &[("cookie", &cookie)], body).await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("CSRF"),
        "{refused}"
    );
    let (status, _, _) = raw(
        api,
        "POST",
        lock,
        &[("cookie", &cookie), ("x-csrf-token", "wrong")],
        body,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, answer) = raw(
        api,
        "POST",
        lock,
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        body,
    )
    .await;
    assert_eq!(status, 404, "past the checks to the handler: {answer}");
    // A deployer's session may not do an admin's work.
    let (status, _, answer) = raw(
        api,
        "POST",
        "/v1/tokens",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        r#"{"name": "x", "role": "viewer"}"#,
    )
    .await;
    assert_eq!(status, 403, "{answer}");

    // The audit trail names the sign-in, never the token.
    let out = h.runway(&["audit", "--json"]).await;
    let trail = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(trail.contains("POST /v1/session"), "{trail}");
    assert!(!trail.contains(&dee), "the token is in the audit trail");

    // An open stream is a request that lasts: revoking its token ends it.
    let out = h
        .runway(&["tokens", "create", "sam", "--role", "viewer"])
        .await;
    let sam = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let listening =
        tokio::spawn(
            async move { read_stream(api, "/v1/events/stream", &sam, None, |_| false).await },
        );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = h.runway(&["tokens", "revoke", "sam"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let (status, heard) = tokio::time::timeout(Duration::from_secs(10), listening)
        .await
        .expect("the stream of a revoked token ends")
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(heard[0].event, "ready");

    // Revoking the token ends its sessions at once.
    let out = h.runway(&["tokens", "revoke", "dee"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let (status, _, _) = raw(api, "GET", "/v1/whoami", &[("cookie", &cookie)], "").await;
    assert_eq!(status, 401);

    // Signing out ends a session.
    let bootstrap = h.server_file()["token"].as_str().unwrap().to_string();
    let (_, headers, session) = raw(
        api,
        "POST",
        "/v1/session",
        &[],
        &format!(r#"{{"token": "{bootstrap}"}}"#),
    )
    .await;
    let cookie = headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = session["csrf"].as_str().unwrap();
    let (status, headers, _) = raw(
        api,
        "DELETE",
        "/v1/session",
        &[("cookie", &cookie), ("x-csrf-token", csrf)],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (status, _, _) = raw(api, "GET", "/v1/whoami", &[("cookie", &cookie)], "").await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_canarys_stream_sends_live_metrics_and_the_time_left_in_its_pause() {
    let h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let (token, api) = token_and_api(&h);
    let load = runway_demo_app::load::Load::start(h.listen, "/", 2, 100);
    let app = App::default().strategy(
        "[strategy]\nkind = \"canary\"\nsteps = [{ weight = 50, pause = \"60s\" }, { weight = 100 }]\n\n\
         [analysis]\ninterval = \"500ms\"\nmin_requests = 5\n",
    );
    let file = h.write("canary.toml", &app);
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "deploy", "v2", "--detach"])
        .await;
    assert!(out.status.success(), "{}", text(&out));

    // Every second: each release's counters, and where the canary stands.
    let (status, events) = read_stream(
        api,
        "/v1/deployments/2/stream?metrics=true",
        &token,
        None,
        |got| {
            got.iter().any(|e| {
                e.event == "metrics"
                    && e.data["canary"]["weight"] == 50
                    && e.data["canary"]["pause_left_seconds"]
                        .as_f64()
                        .is_some_and(|left| left > 0.0 && left <= 60.0)
                    && e.data["releases"].as_array().is_some_and(|releases| {
                        releases
                            .iter()
                            .any(|m| m["release"] == "v2" && m["requests"].as_u64() > Some(0))
                    })
            })
        },
    )
    .await;
    assert_eq!(status, 200);
    let samples: Vec<&Sse> = events.iter().filter(|e| e.event == "metrics").collect();
    assert!(!samples.is_empty());
    for sample in &samples {
        assert!(sample.data["at"].is_string(), "{sample:?}");
    }
    // Without asking, no metrics (the CLI's stream): only entries and the record.
    let quiet = tokio::time::timeout(
        Duration::from_secs(3),
        read_stream(api, "/v1/deployments/2/stream", &token, None, |got| {
            got.iter().any(|e| e.event == "metrics")
        }),
    )
    .await;
    assert!(quiet.is_err(), "metrics without metrics=true: {quiet:?}");

    // Aborted, the deployment ends, and so does its stream (with its final record).
    let out = h.runway(&["abort"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let (_, rest) = read_stream(
        api,
        "/v1/deployments/2/stream?after=1000",
        &token,
        None,
        |_| false,
    )
    .await;
    let last = rest.last().unwrap();
    assert_eq!(last.event, "deployment", "{rest:?}");
    assert_ne!(last.data["status"], "running", "{last:?}");
    load.stop().await;
}
