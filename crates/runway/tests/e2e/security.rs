//! Another local user against the state dir (issue 10): a state dir someone else created, and a
//! planted server.json. Both attacks through the real binary.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{text, App, Harness, RUNWAY};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `runway server --state-dir STATE` on free loopback ports.
fn server_command(state: &std::path::Path) -> Command {
    let mut command = Command::new(RUNWAY);
    command.args(["server", "--state-dir"]).arg(state).args([
        "--api-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    command
}

/// `runway server` on `state`, which must refuse to start: its exit and stderr.
fn server_refuses(state: &std::path::Path) -> String {
    let out = server_command(state)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the server started on {}",
        state.display()
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A `runway server` on `state` (its stderr to `stderr`), once it has written server.json;
/// stop it with [`stop`].
fn running_server(
    state: &std::path::Path,
    env: &[(&str, &str)],
    stderr: Stdio,
) -> std::process::Child {
    let child = server_command(state)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !state.join("server.json").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no server.json"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// SIGTERM, and wait for the server to stop.
fn stop(mut child: std::process::Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap();
}

#[test]
fn a_state_dir_that_others_could_plant_is_refused_and_left_untouched() {
    let root = tempfile::tempdir().unwrap();
    // Writable by everyone, as a directory created by another user under /tmp may be.
    let open = root.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(open.join("state.db"), b"a planted database").unwrap();
    let err = server_refuses(&open);
    assert!(err.contains("writable by others"), "{err}");
    assert_eq!(
        std::fs::read(open.join("state.db")).unwrap(),
        b"a planted database"
    );
    assert!(!open.join("server.json").exists());

    // Owned by another user, even if private: only root can set that up here.
    if is_root() {
        let theirs = root.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(theirs.join("state.db"), b"a planted database").unwrap();
        nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let err = server_refuses(&theirs);
        assert!(err.contains("belongs to uid 65534"), "{err}");
        assert_eq!(
            std::fs::read(theirs.join("state.db")).unwrap(),
            b"a planted database"
        );
    }
}

#[test]
fn a_new_state_dir_is_private() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("fresh/state");
    let child = running_server(&state, &[], Stdio::null());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("state.db")), 0o600);
    assert_eq!(mode(&state.join("server.json")), 0o600);
    stop(child);
}

/// A planted server.json pointing at the attacker's listener: the CLI refuses it before it
/// connects, so the listener never sees the token or the spec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_server_json_gets_neither_the_token_nor_the_spec() {
    let h = Harness::start().await;
    let spec = h.write(
        "runway.toml",
        &App {
            env: vec![("DB_PASSWORD".into(), "hunter2".into())],
            ..App::default()
        },
    );
    let attacker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let planted = tempfile::tempdir().unwrap();
    let state = planted.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = state.join("server.json");
    let server_json = serde_json::json!({
        "api": attacker.local_addr().unwrap().to_string(),
        "metrics": "127.0.0.1:1",
        "token": "0".repeat(64),
        "pid": 1,
    });
    std::fs::write(&file, server_json.to_string()).unwrap();

    let mut cases = vec![("mode is 0644", 0o644, false)];
    if is_root() {
        cases.push(("belongs to uid 65534", 0o600, true));
    }
    for (expected, mode, give_away) in cases {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        if give_away {
            nix::unistd::chown(&file, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        }
        let mut cmd = Command::new(RUNWAY);
        cmd.args(["-f", spec.to_str().unwrap(), "deploy", "v1"])
            .env("RUNWAY_STATE_DIR", &state);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert!(!out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("refusing") && stderr.contains(expected),
            "{stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
        // Nothing connected to the attacker's listener.
        let accepted = tokio::time::timeout(Duration::from_millis(300), attacker.accept()).await;
        assert!(
            accepted.is_err(),
            "the CLI connected to the planted address"
        );
    }
}

/// A replica that prints a password from its environment and dies: the deployment's reason
/// quotes its last words with the password masked (it is stored, and shown by `history`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_replicas_last_words_keep_its_secrets() {
    let h = Harness::start().await;
    let app = App {
        command: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo cannot connect with password $DB_PASSWORD to postgres://app:$DB_PASSWORD@db/x; exit 3"
                .into(),
        ]),
        env: vec![("DB_PASSWORD".into(), "hunter2".into())],
        deadline: "5s",
        ..App::default()
    };
    let out = h.deploy("v1", &app).await;
    assert!(!out.status.success(), "{}", text(&out));
    let history = h.runway(&["history", "--json"]).await;
    let json = String::from_utf8_lossy(&history.stdout);
    assert!(json.contains("cannot connect with password ***"), "{json}");
    assert!(!json.contains("hunter2"), "{json}");
    assert!(!text(&out).contains("hunter2"), "{}", text(&out));
}

/// Issue 10: `[run] env` values can be `secret:NAME` (a file in `<state dir>/secrets`) or
/// `env:NAME` references, resolved when a replica starts: the replica gets the value, and the
/// state database, status and history only ever hold the reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_env_references_reach_the_replica_and_are_never_stored() {
    let h = Harness::start().await;
    let secrets = h.state.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("app_secret"), "s3cr3t-value\n").unwrap();
    let app = App {
        replicas: 1,
        env: vec![
            ("APP_SECRET".into(), "secret:app_secret".into()),
            ("FROM_SERVER".into(), "env:PATH".into()),
        ],
        ..App::default()
    };
    let out = h.deploy("v1", &app).await;
    assert!(out.status.success(), "{}", text(&out));
    let status = h.status().await;
    let pid = status["services"][0]["replicas"][0]["pid"]
        .as_i64()
        .unwrap();
    let env = crate::harness::environ(pid);
    assert!(
        env.iter().any(|e| e == "APP_SECRET=s3cr3t-value"),
        "{env:?}"
    );
    assert!(
        env.iter()
            .any(|e| e.starts_with("FROM_SERVER=") && !e.contains("env:")),
        "{env:?}"
    );
    let history = h.runway(&["history", "--json"]).await;
    for shown in [status.to_string(), text(&history)] {
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
    }
    let db = std::fs::read(h.state.join("state.db")).unwrap();
    let wal = std::fs::read(h.state.join("state.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(12).any(|w| w == b"s3cr3t-value"),
            "the secret's value is in the state database"
        );
    }

    // A reference that cannot be resolved fails the deploy and says which, without a value.
    let broken = App {
        env: vec![("APP_SECRET".into(), "secret:missing".into())],
        ..app.clone()
    };
    let out = h.deploy("v2", &broken).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("[run] env APP_SECRET: secret:missing is not set for `web`"),
        "{}",
        text(&out)
    );
}

/// `RUNWAY_LOG_FORMAT=json`: the server logs one JSON object per line, for log collectors.
#[test]
fn the_server_can_log_json() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let log = root.path().join("server.log");
    let child = running_server(
        &state,
        &[("RUNWAY_LOG_FORMAT", "json")],
        std::fs::File::create(&log).unwrap().into(),
    );
    stop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    let json_lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        json_lines
            .iter()
            .any(|l| l["fields"]["message"] == "runway server ready"),
        "{text}"
    );
}
