//! A real `runway server` in a temporary state dir, the real CLI, the real demo app.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use runway_cli::{connect, Client};

pub const RUNWAY: &str = env!("CARGO_BIN_EXE_runway");

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub listen: SocketAddr,
    /// Variables the server starts with, on top of the test's (set before `start_server`).
    pub server_env: Vec<(String, String)>,
    /// Flags the server starts with after `--state-dir` (set before `start_server`).
    pub server_args: Vec<String>,
    /// The open-file limit (soft and hard) the server starts with, when set.
    pub server_open_files: Option<(u64, u64)>,
    /// Listening sockets the test holds and passes to every server it starts, as systemd's
    /// socket activation does (`LISTEN_FDS`, names in `LISTEN_FDNAMES`).
    pub server_sockets: Vec<(String, std::net::TcpListener)>,
    server: Option<Child>,
}

/// How the demo app of a release behaves; becomes runway.toml.
#[derive(Clone)]
pub struct App {
    pub replicas: u32,
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub deadline: &'static str,
    pub max_surge: u32,
    pub max_unavailable: u32,
    pub drain_timeout: &'static str,
    /// Replace the whole command (e.g. with one that does not exist).
    pub command: Option<Vec<String>>,
    /// Replaces the [strategy] section (and may add [analysis]): raw TOML.
    pub strategy: Option<String>,
}

impl Default for App {
    fn default() -> Self {
        App {
            replicas: 3,
            extra_args: Vec::new(),
            env: vec![("APP_ENV".into(), "test".into())],
            deadline: "15s",
            max_surge: 1,
            max_unavailable: 0,
            drain_timeout: "10s",
            command: None,
            strategy: None,
        }
    }
}

impl App {
    pub fn strategy(mut self, toml: &str) -> App {
        self.strategy = Some(toml.to_string());
        self
    }

    pub fn args(mut self, args: &[&str]) -> App {
        self.extra_args.extend(args.iter().map(|s| s.to_string()));
        self
    }
}

/// A free loopback address for a service's `listen` (or a test's own server), chosen below
/// the ports a server hands its replicas (the 8,192 just below the kernel's ephemeral range,
/// `runway_platform_process::process::replica_port_range`) and below that ephemeral range,
/// so neither a replica started by a parallel test nor an outgoing connection can take the
/// address between this choice and the server binding it.
pub fn free_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (from, to) = (10_000u32, low.saturating_sub(8192).clamp(10_001, 32768));
    let span = to - from;
    // Test binaries of one run start at different offsets; each call moves on.
    let seed = std::process::id().wrapping_mul(2654435761) % span;
    for _ in 0..span {
        let port = from + (seed + NEXT.fetch_add(7919, Ordering::Relaxed)) % span;
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
            return listener.local_addr().unwrap();
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Harness {
    pub async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mut h = Harness {
            listen: free_addr(),
            state,
            dir,
            server_env: Vec::new(),
            server_args: Vec::new(),
            server_open_files: None,
            server_sockets: Vec::new(),
            server: None,
        };
        h.start_server().await;
        h
    }

    /// A harness whose server starts with `env` on top of the test's environment.
    pub async fn start_with_env(env: Vec<(String, String)>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mut h = Harness {
            listen: free_addr(),
            state,
            dir,
            server_env: env,
            server_args: Vec::new(),
            server_open_files: None,
            server_sockets: Vec::new(),
            server: None,
        };
        h.start_server().await;
        h
    }

    /// A harness whose server starts with `args` (after `--state-dir`); `prepare` gets the
    /// test dir first (to write the files the flags name).
    pub async fn start_with_args(prepare: impl FnOnce(&Path) -> Vec<String>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let server_args = prepare(dir.path());
        let mut h = Harness {
            listen: free_addr(),
            state,
            dir,
            server_env: Vec::new(),
            server_args,
            server_open_files: None,
            server_sockets: Vec::new(),
            server: None,
        };
        h.start_server().await;
        h
    }

    /// A harness whose state dir `prepare` fills (with the test dir and the service's listen
    /// address) before the server first starts: a state dir left by another runway.
    pub async fn start_with_state(prepare: impl FnOnce(&Path, &Path, SocketAddr)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let listen = free_addr();
        prepare(dir.path(), &state, listen);
        let mut h = Harness {
            listen,
            state,
            dir,
            server_env: Vec::new(),
            server_args: Vec::new(),
            server_open_files: None,
            server_sockets: Vec::new(),
            server: None,
        };
        h.start_server().await;
        h
    }

    /// A harness whose servers are socket-activated: the test binds the API's address and
    /// the service's and holds them, as systemd's `runway.socket` does, so that they stay
    /// open while no server runs.
    pub async fn start_socket_activated() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let listen = free_addr();
        let service = std::net::TcpListener::bind(listen).unwrap();
        let api = std::net::TcpListener::bind(free_addr()).unwrap();
        let mut h = Harness {
            listen,
            state,
            dir,
            server_env: Vec::new(),
            server_args: Vec::new(),
            server_open_files: None,
            server_sockets: vec![("api".into(), api), ("web".into(), service)],
            server: None,
        };
        h.start_server().await;
        h
    }

    /// The server's command line (`runway server --state-dir ...`, its flags, its
    /// environment, its sockets and limits), for a first start or a successor.
    fn server_command(&self) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let mut command = if self.server_sockets.is_empty() {
            Command::new(RUNWAY)
        } else {
            // systemd sets LISTEN_PID to the started process's pid: a shell that execs
            // runway keeps its own.
            let names: Vec<&str> = self
                .server_sockets
                .iter()
                .map(|(n, _)| n.as_str())
                .collect();
            let mut sh = Command::new("/bin/sh");
            sh.args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\"", RUNWAY])
                .env("LISTEN_FDS", self.server_sockets.len().to_string())
                .env("LISTEN_FDNAMES", names.join(":"));
            let fds: Vec<i32> = self
                .server_sockets
                .iter()
                .map(|(_, l)| std::os::fd::AsRawFd::as_raw_fd(l))
                .collect();
            use std::os::unix::process::CommandExt;
            // SAFETY: only dup2 and fcntl between fork and exec.
            unsafe {
                sh.pre_exec(move || {
                    // Out of the way first, so that one socket's number is not another's
                    // place.
                    let moved: Vec<i32> = fds
                        .iter()
                        .map(|fd| {
                            nix::fcntl::fcntl(*fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(100))
                        })
                        .collect::<Result<_, _>>()?;
                    for (i, fd) in moved.into_iter().enumerate() {
                        nix::unistd::dup2(fd, 3 + i as i32)?;
                    }
                    Ok(())
                });
            }
            sh
        };
        command
            .args(["server", "--state-dir"])
            .arg(&self.state)
            .args(&self.server_args)
            .envs(self.server_env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some((soft, hard)) = self.server_open_files {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    nix::sys::resource::setrlimit(
                        nix::sys::resource::Resource::RLIMIT_NOFILE,
                        soft,
                        hard,
                    )
                    .map_err(std::io::Error::from)
                });
            }
        }
        command
    }

    pub async fn start_server(&mut self) {
        let child = self.server_command().spawn().unwrap();
        let pid = child.id();
        self.server = Some(child);
        self.wait_until_serving(pid, Instant::now() + Duration::from_secs(20))
            .await;
    }

    /// Waits until the server with `pid` answers the API (the client reads server.json
    /// anew each time: a successor writes its own).
    async fn wait_until_serving(&self, pid: u32, deadline: Instant) {
        loop {
            if let Ok(info) = self
                .client()
                .get::<runway_wire::api::ServerInfo>("/v1/info")
                .await
            {
                if info.pid == pid {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server {pid} did not start:\n{}",
                self.server_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts a second server on the state dir, which takes the listeners over from the
    /// running one; returns once the new one serves and the old one has exited (with
    /// success). How long the old one took to go.
    pub async fn take_over_server(&mut self) -> Duration {
        let mut old = self.server.take().expect("a running server");
        let new = self.server_command().arg("--take-over").spawn().unwrap();
        let pid = new.id();
        self.server = Some(new);
        let started = Instant::now();
        let status = loop {
            if let Some(status) = old.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the old server did not exit:\n{}",
                self.server_log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let gone = started.elapsed();
        assert!(
            status.success(),
            "the old server exited with {status}:\n{}",
            self.server_log()
        );
        self.wait_until_serving(pid, started + Duration::from_secs(30))
            .await;
        gone
    }

    pub fn kill9_server(&mut self) {
        let mut child = self.server.take().unwrap();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }

    /// SIGTERM and wait: the server drains and stops its replicas.
    pub fn stop_server(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not stop within 20s of SIGTERM");
        }
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn client(&self) -> Client {
        connect(&self.state)
    }

    pub fn config(&self, app: &App) -> String {
        let command = app.command.clone().unwrap_or_else(|| {
            let mut c: Vec<String> = [
                RUNWAY,
                "demo-app",
                "--port",
                "{port}",
                "--version",
                "{version}",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            c.extend(app.extra_args.iter().cloned());
            c
        });
        let env = app
            .env
            .iter()
            .map(|(k, v)| format!("{k} = {v:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let strategy = app.strategy.clone().unwrap_or_else(|| {
            format!(
                "[strategy]\nkind = \"rolling\"\nmax_surge = {}\nmax_unavailable = {}\n",
                app.max_surge, app.max_unavailable
            )
        });
        format!(
            r#"[service]
name = "web"
listen = "{listen}"

[run]
command = {command:?}
replicas = {replicas}
env = {{ {env} }}
stop_timeout = "5s"
drain_timeout = "{drain}"

[health]
path = "/health/ready"
interval = "500ms"
timeout = "2s"
deadline = "{deadline}"

{strategy}"#,
            listen = self.listen,
            replicas = app.replicas,
            drain = app.drain_timeout,
            deadline = app.deadline,
        )
    }

    /// Writes a config file named `name` in the test dir and returns its path.
    pub fn write(&self, name: &str, app: &App) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, self.config(app)).unwrap();
        path
    }

    /// Runs the CLI to completion (in a blocking thread, so load keeps flowing meanwhile).
    pub async fn runway(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(RUNWAY);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("RUNWAY_STATE_DIR", &self.state);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    /// Runs the CLI with `input` on its stdin (not a terminal).
    pub async fn runway_with_input(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut cmd = Command::new(RUNWAY);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("RUNWAY_STATE_DIR", &self.state)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let input = input.to_string();
        tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }

    /// Deploys `version` with `app` and returns the CLI's output.
    pub async fn deploy(&self, version: &str, app: &App) -> Output {
        let file = self.write(&format!("runway-{}.toml", sanitize(version)), app);
        self.runway(&["-f", file.to_str().unwrap(), "deploy", version])
            .await
    }

    /// Starts `runway -f FILE deploy VERSION` in the background; returns its eventual output.
    pub fn deploy_in_background(
        &self,
        file: &Path,
        version: &str,
    ) -> tokio::task::JoinHandle<Output> {
        let mut cmd = Command::new(RUNWAY);
        cmd.args(["-f", file.to_str().unwrap(), "deploy", version])
            .current_dir(self.dir.path())
            .env("RUNWAY_STATE_DIR", &self.state);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    }

    pub async fn status(&self) -> serde_json::Value {
        let out = self.runway(&["status", "--json"]).await;
        assert!(out.status.success(), "status failed: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Polls `runway status --json` until `pred` holds for it, and returns it; fails after
    /// `timeout`, naming `what` and the last status.
    pub async fn status_until(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let status = self.status().await;
            if pred(&status) {
                return status;
            }
            assert!(
                started.elapsed() < timeout,
                "timed out waiting for {what}; last: {status}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn history(&self) -> Vec<serde_json::Value> {
        let out = self.runway(&["history", "--json"]).await;
        assert!(out.status.success(), "history failed: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// GET through the service's proxy.
    pub async fn get(&self, path: &str) -> (u16, String, String) {
        http_get(self.listen, path).await
    }

    /// The server's server.json: its API and metrics addresses, token and pid.
    pub fn server_file(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.state.join("server.json")).unwrap())
            .unwrap()
    }

    pub fn state_path(&self) -> &Path {
        &self.state
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- server log\n{}", self.server_log());
        }
        if self.server.is_some() && !std::thread::panicking() {
            self.stop_server();
        } else if let Some(child) = self.server.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The kinds of a deployment's journal entries (`runway history ID --json`'s `journal`),
/// oldest first.
pub fn events(detail: &serde_json::Value) -> Vec<String> {
    detail["journal"]
        .as_array()
        .expect("a deployment's detail has a journal")
        .iter()
        .map(|e| {
            e["event"]
                .as_str()
                .expect("an entry has a kind")
                .to_string()
        })
        .collect()
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A plain GET: status, x-version header, body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    use http_body_util::BodyExt;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        client.get(format!("http://{addr}{path}").parse().unwrap()),
    )
    .await
    .expect("GET timed out")
    .expect("GET failed");
    let status = resp.status().as_u16();
    let version = resp
        .headers()
        .get("x-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, version, String::from_utf8_lossy(&body).into_owned())
}

/// A GET with extra request headers: the status and the response headers.
pub async fn get_with_headers(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, hyper::HeaderMap) {
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let mut req = hyper::Request::get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(req.body(http_body_util::Empty::new()).unwrap()),
    )
    .await
    .expect("GET timed out")
    .expect("GET failed");
    (resp.status().as_u16(), resp.headers().clone())
}

/// A GET that may fail: the status, or None when nothing answered.
pub async fn http_get_opt(addr: SocketAddr, path: &str) -> Option<u16> {
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let resp = tokio::time::timeout(
        Duration::from_secs(5),
        client.get(format!("http://{addr}{path}").parse().ok()?),
    )
    .await
    .ok()?
    .ok()?;
    Some(resp.status().as_u16())
}

/// The environment of a live process, from /proc.
pub fn environ(pid: i64) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|b| {
            b.split(|&c| c == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn pid_alive(pid: i64) -> bool {
    runway_platform_process::process::start_time(pid as i32).is_some()
}

/// A request to the runway API: the status and the JSON answer (`null` when the body is not
/// JSON). `token` None sends no Authorization header.
pub async fn api_request(
    api: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    api_request_with(api, method, path, body, &headers).await
}

/// A request to the API with these headers (a session's cookie and CSRF token, say).
pub async fn api_request_with(
    api: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let (status, _, answer) = api_exchange(api, method, path, body, headers).await;
    (status, answer)
}

/// [`api_request_with`], with the answer's headers too (a session's `Set-Cookie`, say).
pub async fn api_exchange(
    api: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, hyper::HeaderMap, serde_json::Value) {
    use http_body_util::BodyExt;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{api}{path}"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .expect("API request timed out")
        .expect("API request failed");
    let status = resp.status().as_u16();
    let answer_headers = resp.headers().clone();
    // An event stream does not end: its head is the answer.
    if answer_headers
        .get("content-type")
        .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"))
    {
        return (status, answer_headers, serde_json::Value::Null);
    }
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        answer_headers,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}
