//! Test servers: real PostgreSQL and Redis processes in temp dirs on free loopback
//! ports, and small in-process HTTP, TLS and TCP servers whose misbehaviour the tests
//! choose (slow, hanging, malformed, flaky, Prometheus-like).
//!
//! A missing server binary fails the test with the install command: a check that was
//! never exercised must not look like one that passed.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use runway_checks::{CheckKind, CheckSpec, Context};
use tokio::net::TcpListener;

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A check with a short timeout, so failing tests fail fast.
pub fn spec(name: &str, kind: CheckKind) -> CheckSpec {
    CheckSpec {
        timeout: Duration::from_secs(3),
        ..CheckSpec::new(name, kind)
    }
}

pub fn ctx() -> Context {
    Context {
        workdir: std::env::temp_dir(),
        ..Context::default()
    }
}

pub fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// HTTP

/// An HTTP/1.1 server on a free loopback port, answering from `handler`.
pub async fn http_server<F>(handler: F) -> SocketAddr
where
    F: Fn(Request<hyper::body::Incoming>) -> (u16, String) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let handler = handler.clone();
                    async move {
                        let delay = req
                            .uri()
                            .query()
                            .and_then(|q| q.strip_prefix("delay_ms="))
                            .and_then(|v| v.parse().ok());
                        if let Some(ms) = delay {
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                        }
                        let (status, body) = handler(req);
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The application under test: a health endpoint and friends.
pub async fn app_server() -> SocketAddr {
    let flaky = Arc::new(AtomicU32::new(0));
    http_server(move |req| {
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        match req.uri().path() {
            "/health" => (
                200,
                r#"{"status":"healthy","checks":{"database":"healthy","cache":"degraded"},
                    "count":3,"ratio":0.5,"items":[{"id":1},{"id":2}]}"#
                    .into(),
            ),
            "/down" => (503, r#"{"status":"unhealthy"}"#.into()),
            "/malformed" => (200, r#"{"status": "healthy""#.into()),
            "/flaky" => {
                if flaky.fetch_add(1, Ordering::SeqCst) < 2 {
                    (500, r#"{"status":"starting"}"#.into())
                } else {
                    (200, r#"{"status":"healthy"}"#.into())
                }
            }
            "/auth" if auth == "Bearer tok-abc123" => (200, "{}".into()),
            "/auth" => (401, format!(r#"{{"error":"bad token","got":"{auth}"}}"#)),
            "/echo-method" => (200, format!(r#"{{"method":"{}"}}"#, req.method())),
            _ => (404, r#"{"error":"not found"}"#.into()),
        }
    })
    .await
}

/// Imitates Prometheus's `/api/v1/query` for a few fixed queries.
pub async fn prometheus_server() -> SocketAddr {
    http_server(|req| {
        let query = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("query="))
            .unwrap_or("")
            .to_string();
        let vector = |samples: &[(&str, &str)]| {
            let result: Vec<String> = samples
                .iter()
                .map(|(labels, v)| {
                    format!(r#"{{"metric":{{{labels}}},"value":[1700000000.123,"{v}"]}}"#)
                })
                .collect();
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
                result.join(",")
            )
        };
        match query.as_str() {
            "up" => (
                200,
                vector(&[(r#""job":"api""#, "1"), (r#""job":"db""#, "1")]),
            ),
            "mixed_up" => (
                200,
                vector(&[(r#""job":"api""#, "1"), (r#""job":"db""#, "0")]),
            ),
            "error_rate" => (200, vector(&[("", "0.05")])),
            "absent" => (200, vector(&[])),
            "scalar%281%29" => (
                200,
                r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}"#
                    .into(),
            ),
            _ => (
                400,
                r#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#
                    .into(),
            ),
        }
    })
    .await
}

/// Accepts connections and never answers (held open until the test ends).
pub async fn hanging_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------
// TLS

pub struct TestCert {
    pub pem: String,
    pub der: rustls_pki_types::CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

/// A self-signed certificate for `localhost` valid from yesterday for `days` days.
pub fn cert_valid_for(days: i64) -> TestCert {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days) + time::Duration::hours(1);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "runway test");
    let cert = params.self_signed(&key).unwrap();
    TestCert {
        pem: cert.pem(),
        der: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}

/// A TLS server presenting `cert`; it completes handshakes and closes.
pub async fn tls_server(cert: &TestCert) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der.clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(s).await;
            });
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------
// Real servers

/// Runs `program` as user `postgres` when we are root (initdb refuses root), else as
/// ourselves.
fn as_postgres(program: &Path) -> Command {
    if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn postgres_bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    // Highest major version last ("9.6" < "15" needs numeric order).
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.split('.').next())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; \
             install them with `apt-get install -y postgresql`"
        )
    })
}

/// A PostgreSQL server in a temp dir on a free loopback port, with password auth for
/// user `runway`; stopped on drop.
pub struct Postgres {
    pub port: u16,
    pub password: String,
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Postgres {
    pub fn start(password: &str) -> Postgres {
        let bin = postgres_bin_dir();
        let dir = tempfile::Builder::new().prefix("rwpg").tempdir().unwrap();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, password).unwrap();
        if nix::unistd::geteuid().is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "running as root: cannot hand the test dir to user `postgres` \
                 (it comes with `apt-get install -y postgresql`)"
            );
        }
        let out = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "runway",
                "--auth=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb (as root through `runuser -u postgres`, from util-linux)");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let opts = format!(
            "-k {} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=20",
            dir.path().display()
        );
        let out = as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-w", "-t", "30", "-o", &opts, "start"])
            .stdout(Stdio::null())
            .output()
            .expect("run pg_ctl");
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{log}",
            String::from_utf8_lossy(&out.stderr)
        );
        Postgres {
            port,
            password: password.to_string(),
            bin,
            data,
            _dir: dir,
        }
    }

    pub fn url(&self, password: &str) -> String {
        format!(
            "postgres://runway:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A redis-server on a free loopback port with a temp dir; killed on drop.
pub struct Redis {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start(extra: &[&str]) -> Redis {
        let dir = tempfile::Builder::new()
            .prefix("rwredis")
            .tempdir()
            .unwrap();
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); install it with `apt-get install -y redis-server`")
            });
        let mut redis = Redis {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = redis.child.try_wait() {
                panic!("redis-server exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start in 10s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
