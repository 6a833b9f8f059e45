//! runway is never the outage: faults of the host around a running server.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::harness::{text, App, Harness};

/// server.json deleted (or overwritten) under a running server would lock the CLI out: the
/// server writes it again within a second or two, and the CLI works on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_server_file_is_written_again_and_the_cli_works_on() {
    let h = Harness::start().await;
    let out = h
        .deploy(
            "v1",
            &App {
                replicas: 1,
                ..App::default()
            },
        )
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let before = h.server_file();
    let file = h.state_path().join("server.json");

    std::fs::remove_file(&file).unwrap();
    let started = Instant::now();
    while !file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "server.json was not written again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("server.json back after {:?}", started.elapsed());
    let after = h.server_file();
    assert_eq!(before, after, "the same server, the same token");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let status = h.status().await;
    assert_eq!(
        status["services"][0]["serving"][0]["version"], "v1",
        "{status}"
    );

    // Overwritten with something else (a stale copy from another server): set right too.
    std::fs::write(
        &file,
        r#"{"api":"127.0.0.1:1","metrics":"127.0.0.1:1","token":"stale","pid":1}"#,
    )
    .unwrap();
    let started = Instant::now();
    while h.server_file() != before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a stale server.json was left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = h.runway(&["history"]).await;
    assert!(out.status.success(), "{}", text(&out));
}

/// The issue's host: a 1,024 open-file limit, and a client that opens 1,100 connections and
/// says nothing. The proxies stop at their limit (384 with 1,024 files: a quarter kept back,
/// half of the rest for upstream connections), every connection over it is answered 503 or
/// closed at once, the control API keeps answering throughout, and once the silent
/// connections have met their header timeout the service serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_silent_connections_leave_the_api_working_and_the_proxy_recovers() {
    use tokio::io::AsyncReadExt;

    // This test holds 1,100 sockets itself.
    let (soft, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    if soft < 4096 {
        nix::sys::resource::setrlimit(
            nix::sys::resource::Resource::RLIMIT_NOFILE,
            hard.min(8192),
            hard,
        )
        .expect("this test needs 1,200 open files: raise the hard limit");
    }

    let mut h = Harness::start().await;
    h.stop_server();
    h.server_open_files = Some((1024, 1024));
    h.start_server().await;
    let app = App {
        replicas: 1,
        strategy: Some(
            "[strategy]\nkind = \"rolling\"\nmax_surge = 1\nmax_unavailable = 0\n\n\
             [proxy]\nheader_timeout = \"10s\"\n"
                .into(),
        ),
        ..App::default()
    };
    let out = h.deploy("v1", &app).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(h.get("/").await.0, 200);

    let mut held = Vec::new();
    for _ in 0..1100 {
        held.push(tokio::net::TcpStream::connect(h.listen).await.unwrap());
    }
    // Each connection over the limit hears 503 at once, or is closed at once when too
    // many refusals are under way; the admitted ones hear nothing yet.
    let mut refused_503 = 0;
    let mut closed = 0;
    let mut waiting = 0;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for stream in &mut held {
        let mut buf = [0u8; 256];
        match stream.try_read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => waiting += 1,
            Ok(0) | Err(_) => closed += 1,
            Ok(n) => {
                let answer = String::from_utf8_lossy(&buf[..n]);
                assert!(
                    answer.starts_with("HTTP/1.1 503 Service Unavailable"),
                    "{answer}"
                );
                assert!(answer.contains("retry-after: 1"), "{answer}");
                refused_503 += 1;
            }
        }
    }
    eprintln!(
        "1,100 silent connections: {waiting} admitted, {refused_503} answered 503, {closed} closed"
    );
    assert!(waiting <= 384, "{waiting} connections admitted");
    assert!(refused_503 > 0);
    assert_eq!(waiting + refused_503 + closed, 1100);

    // The control API has its reserve.
    let started = Instant::now();
    let status = h.status().await;
    assert_eq!(status["services"][0]["serving"][0]["version"], "v1");
    eprintln!(
        "runway status under 1,100 connections: {:?}",
        started.elapsed()
    );
    let out = h.runway(&["history"]).await;
    assert!(out.status.success(), "{}", text(&out));
    // A new client of the service is told to come back, not left hanging.
    let mut extra = tokio::net::TcpStream::connect(h.listen).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut extra, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut answer)).await;
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 503"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // The silent ones meet their header timeout (10 s here): 408, and the proxy serves again.
    let started = Instant::now();
    loop {
        let status = raw_get(h.listen).await;
        if status
            .as_deref()
            .is_some_and(|s| s.starts_with("HTTP/1.1 200"))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the proxy did not recover: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("served again {:?} after the check", started.elapsed());
    let log = h.server_log();
    assert!(!log.contains("Too many open files"), "{log}");
    drop(held);
}

/// The soft open-file limit in `/proc/PID/limits`.
fn soft_open_files(pid: i64) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// The server raises its own open-file limit for its connections; its replicas and its
/// command checks start with the limit the server started with, as they would from a shell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_start_with_the_open_file_limit_the_server_started_with() {
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    assert!(
        hard >= 2048,
        "this test needs a hard open-file limit of 2,048: {hard}"
    );
    let mut h = Harness::start().await;
    h.stop_server();
    h.server_open_files = Some((1000, hard));
    h.start_server().await;
    // A blocking check before the rollout: the deployment fails unless its program sees 1000.
    let app = App::default().strategy(
        "[[checks]]\nname = \"open files\"\nkind = \"command\"\n\
         command = [\"sh\", \"-c\", \"ulimit -n\"]\nexpect_stdout = \"^1000$\"\n\
         phases = [\"preflight\"]\n",
    );
    let out = h.deploy("v1", &app).await;
    assert!(out.status.success(), "{}", text(&out));

    let server = h.server_file()["pid"].as_i64().unwrap();
    assert_eq!(soft_open_files(server), hard, "the server raised its own");
    let pids = replica_pids(&h.status().await);
    assert_eq!(pids.len(), 3);
    for pid in pids {
        assert_eq!(soft_open_files(pid), 1000, "replica {pid}");
    }
}

/// A GET on a new connection: the answer's status line, `None` when the connection ended
/// without one.
async fn raw_get(addr: std::net::SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .ok()?
        .ok()?;
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().map(str::to_owned)
}

fn replica_pids(status: &serde_json::Value) -> Vec<i64> {
    let mut pids: Vec<i64> = status["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pid"].as_i64().unwrap_or(0))
        .collect();
    pids.sort();
    pids
}

/// An upgrade: a second `runway server` on the state dir takes the listeners over from the
/// running one, which finishes its requests and exits. Under steady load nothing fails, the
/// history is intact, and the replicas are the same processes, adopted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_the_server_under_load_costs_no_request() {
    let mut h = Harness::start().await;
    let out = h.deploy("v1", &App::default()).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = h.deploy("v2", &App::default()).await;
    assert!(out.status.success(), "{}", text(&out));
    let history = h.history().await;
    let pids = replica_pids(&h.status().await);
    assert_eq!(pids.len(), 3);

    let load = runway_demo_app::load::Load::start_recording(h.listen, "/", 4, 200, true);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let old_pid = h.server_file()["pid"].as_i64().unwrap();
    let took = h.take_over_server().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = load.stop().await;
    // The longest gap between answers: how long requests waited in the backlog.
    let mut times: Vec<f64> = seen.timeline.iter().map(|(at, _, _)| *at).collect();
    times.sort_by(f64::total_cmp);
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    eprintln!(
        "upgrade under load: {} answered, {} failed; the old server was gone {took:?} after the \
         new one started; longest gap between answers {gap:.3}s",
        seen.ok, seen.failed
    );
    assert_eq!(seen.failed, 0, "{:?}", seen.errors);
    assert!(seen.ok > 300, "too little load: {}", seen.ok);
    assert_eq!(seen.versions.keys().collect::<Vec<_>>(), vec!["v2"]);

    let new_pid = h.server_file()["pid"].as_i64().unwrap();
    assert_ne!(new_pid, old_pid);
    let log = h.server_log();
    assert!(log.contains("runway server handed over"), "{log}");
    assert!(log.contains("runway server taking over"), "{log}");
    // The same records, the same replicas.
    assert_eq!(h.history().await, history);
    let status = h.status().await;
    assert_eq!(replica_pids(&status), pids, "{status}");
    assert_eq!(status["services"][0]["serving"][0]["version"], "v2");
    // The new server drives: a deployment after the upgrade.
    let out = h.deploy("v3", &App::default()).await;
    assert!(out.status.success(), "{}", text(&out));
}

/// Counts of a raw load: a new connection per request, so that every request tests
/// whether a connection can be made at all.
#[derive(Debug, Default)]
struct ConnectLoad {
    ok: u64,
    refused: u64,
    /// Requests whose connection was made but that got no answer (in flight in the server
    /// that was killed).
    cut: u64,
}

async fn connect_load(
    addr: std::net::SocketAddr,
    until: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> ConnectLoad {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut seen = ConnectLoad::default();
    while !until.load(std::sync::atomic::Ordering::Relaxed) {
        let mut stream = match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                seen.refused += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(e) => panic!("connect: {e}"),
        };
        let exchange = async {
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
                .await?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        match tokio::time::timeout(Duration::from_secs(30), exchange).await {
            Ok(Ok(answer)) if answer.starts_with(b"HTTP/1.1 200") => seen.ok += 1,
            _ => seen.cut += 1,
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    seen
}

/// systemd's socket activation, with the test as systemd: it holds the service's and the
/// API's sockets. `kill -9` of the server under load, and a restart by SIGTERM with
/// `--keep-replicas` (the unit's), refuse no connection: they wait in the backlog until the
/// restarted server accepts them, and the replicas are the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_under_socket_activation_refuses_no_connection() {
    let mut h = Harness::start_socket_activated().await;
    // As the shipped unit runs it: a stop (a `systemctl restart`) leaves the replicas.
    h.server_args = vec!["--keep-replicas".into()];
    h.stop_server();
    h.start_server().await;
    let api = h.server_file()["api"].as_str().unwrap().to_owned();
    let out = h.deploy("v1", &App::default()).await;
    assert!(out.status.success(), "{}", text(&out));
    let pids = replica_pids(&h.status().await);

    let until = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(connect_load(h.listen, until.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    h.kill9_server();
    // Down for a moment, as a crashed service is before systemd restarts it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted = Instant::now();
    h.start_server().await;
    eprintln!("restarted and serving in {:?}", restarted.elapsed());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // A restart by SIGTERM (systemctl restart, an upgrade with the unit): the same.
    h.stop_server();
    h.start_server().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    until.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = ConnectLoad::default();
    for worker in workers {
        let seen = worker.await.unwrap();
        total.ok += seen.ok;
        total.refused += seen.refused;
        total.cut += seen.cut;
    }
    eprintln!("kill -9, then SIGTERM, under socket activation: {total:?}");
    assert_eq!(total.refused, 0, "{total:?}");
    assert!(total.ok > 50, "{total:?}");
    // Only requests in flight in the killed process can be lost.
    assert!(total.cut <= 4, "{total:?}");
    // The same API address, the same replicas.
    assert_eq!(h.server_file()["api"].as_str().unwrap(), api);
    assert_eq!(replica_pids(&h.status().await), pids);
}

/// The shipped units (deploy/systemd) pass `systemd-analyze verify` (with ExecStart
/// pointed at this build's binary), and the socket unit names what runway looks for.
#[test]
fn the_systemd_units_verify() {
    let units = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd");
    let dir = tempfile::tempdir().unwrap();
    let service = std::fs::read_to_string(units.join("runway.service")).unwrap();
    assert!(
        service.contains("ExecStart=/usr/local/bin/runway server --keep-replicas"),
        "{service}"
    );
    assert!(service.contains("KillMode=process"), "{service}");
    std::fs::write(
        dir.path().join("runway.service"),
        service.replace("/usr/local/bin/runway", crate::harness::RUNWAY),
    )
    .unwrap();
    let socket = std::fs::read_to_string(units.join("runway.socket")).unwrap();
    assert!(socket.contains("FileDescriptorName=api"), "{socket}");
    assert!(socket.contains("FileDescriptorName=metrics"), "{socket}");
    std::fs::write(dir.path().join("runway.socket"), socket).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no", "./runway.socket", "./runway.service"])
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze (Debian: systemd)");
    assert!(out.status.success(), "{}", text(&out));
    // Unknown keys are only warned about: none may be.
    assert!(out.stderr.is_empty(), "{}", text(&out));

    // The flags in ExecStart are the server's.
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let mut args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    args.push("--help");
    let out = std::process::Command::new(crate::harness::RUNWAY)
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// systemd's own implementation of socket activation (`systemd-socket-activate`, which
/// binds, waits for a first connection, sets LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID and execs)
/// starts a server that serves the API and a service on the sockets it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemds_socket_activation_hands_runway_its_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let api = crate::harness::free_addr();
    let listen = crate::harness::free_addr();
    let mut server = std::process::Command::new("systemd-socket-activate")
        .arg(format!("--listen={api}"))
        .arg("--fdname=api")
        .arg(format!("--listen={listen}"))
        .arg("--fdname=web")
        .arg(crate::harness::RUNWAY)
        .args(["server", "--state-dir"])
        .arg(&state)
        .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
        .spawn()
        .expect("systemd-socket-activate (Debian: systemd)");
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.0.wait();
        }
    }
    let _kill = Kill(&mut server);
    // Like systemd, it starts the program at the first connection (which then waits in the
    // backlog for the server to accept it).
    let started = Instant::now();
    let _first = loop {
        if let Ok(stream) = tokio::net::TcpStream::connect(api).await {
            break stream;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nothing listens on {api}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let info = loop {
        if let Ok(text) = std::fs::read_to_string(state.join("server.json")) {
            if let Ok(info) = serde_json::from_str::<serde_json::Value>(&text) {
                break info;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no server.json: {}",
            std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(info["api"].as_str().unwrap(), api.to_string());

    let config = format!(
        "[service]\nname = \"web\"\nlisten = \"{listen}\"\n\n[run]\ncommand = [{:?}, \"demo-app\", \
         \"--port\", \"{{port}}\", \"--version\", \"{{version}}\"]\nreplicas = 1\n\n[health]\npath = \
         \"/health/ready\"\ninterval = \"300ms\"\n",
        crate::harness::RUNWAY
    );
    std::fs::write(dir.path().join("runway.toml"), config).unwrap();
    let out = std::process::Command::new(crate::harness::RUNWAY)
        .args(["deploy", "v1"])
        .current_dir(dir.path())
        .env("RUNWAY_STATE_DIR", &state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let (status, version, _) = crate::harness::http_get(listen, "/").await;
    assert_eq!((status, version.as_str()), (200, "v1"));
}
