//! The database work and traffic control around a deployment, against a real PostgreSQL
//! started by the test (runway-testkit): migrations and their undo, backups with verify and
//! retention, restore, irreversible migrations under each `on_failure` policy, maintenance and
//! read-only modes across a server restart, and the recreate strategy under load.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use runway_testkit::Postgres;

use crate::harness::{get_with_headers, http_get, text, App, Harness};

const PASSWORD: &str = "s3cret-pw";

/// Runs SQL with psql and returns its unaligned output.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .output()
        .expect("psql (Debian package postgresql-client, installed by scripts/test)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn table_exists(url: &str, table: &str) -> bool {
    psql(
        url,
        &format!("SELECT to_regclass('public.{table}') IS NOT NULL"),
    ) == "t"
}

/// A SQL statement as a hook command (the config asks for a shell explicitly, for $DATABASE_URL).
fn sql_hook(sql: &str) -> String {
    format!("[\"sh\", \"-c\", 'psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -c \"{sql}\"']")
}

const BACKUP: &str = r#"[hooks.backup]
command = ["sh", "-c", 'pg_dump --clean --if-exists "$DATABASE_URL" > "$RUNWAY_BACKUP_DIR/db.sql"']
verify = ["sh", "-c", 'test -s "$RUNWAY_BACKUP_DIR/db.sql"']
restore = ["sh", "-c", 'psql "$DATABASE_URL" -q -c "DROP SCHEMA public CASCADE; CREATE SCHEMA public;" && psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 -f "$RUNWAY_BACKUP_DIR/db.sql"']
"#;

/// The demo app with DATABASE_URL in its env and `extra` TOML (hooks, strategy) appended.
fn app(pg_url: &str, extra: &str) -> App {
    let mut app = App {
        replicas: 2,
        deadline: "8s",
        ..App::default()
    };
    app.env.push(("DATABASE_URL".into(), pg_url.into()));
    let strategy = if extra.contains("[strategy]") {
        String::new()
    } else {
        "[strategy]\nkind = \"rolling\"\n".to_string()
    };
    app.strategy(&format!("{strategy}\n{extra}"))
}

async fn serving_version(h: &Harness) -> String {
    h.status().await["services"][0]["serving"][0]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn versions_running(status: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = status["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

fn newest_id(history: &[serde_json::Value]) -> i64 {
    history[0]["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_backups_undo_retention_and_restore() {
    let pg = Postgres::start(PASSWORD);
    let url = pg.url(PASSWORD);
    let h = Harness::start().await;
    let env_file = h.dir.path().join("post-deploy.env");
    let keep2 = BACKUP.replace("[hooks.backup]\n", "[hooks.backup]\nkeep = 2\n");

    // v1 creates `users`.
    let v1 = app(
        &url,
        &format!(
            "{keep2}\n[hooks.migrate]\ncommand = {}\n",
            sql_hook("CREATE TABLE users (id int)")
        ),
    );
    let out = h.deploy("v1", &v1).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(table_exists(&url, "users"));
    psql(&url, "INSERT INTO users VALUES (1)");

    // v2 adds `orders`, with an undo, and a post-deploy hook that records its environment.
    let v2 = app(
        &url,
        &format!(
            "{keep2}\n[hooks.migrate]\ncommand = {}\nundo = {}\n\n[[hooks.run]]\nat = \"post-deploy\"\ncommand = [\"sh\", \"-c\", 'env | grep -E \"^(RUNWAY_|APP_ENV)\" | sort > {}']\n",
            sql_hook("CREATE TABLE orders (id int)"),
            sql_hook("DROP TABLE orders"),
            env_file.display()
        ),
    );
    let out = h.deploy("v2", &v2).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(table_exists(&url, "orders"));
    let v2_id = newest_id(&h.history().await);
    let env = std::fs::read_to_string(&env_file).unwrap();
    for expected in [
        "RUNWAY_SERVICE=web".to_string(),
        "RUNWAY_VERSION=v2".to_string(),
        "RUNWAY_PREVIOUS_VERSION=v1".to_string(),
        format!("RUNWAY_DEPLOYMENT_ID={v2_id}"),
        "RUNWAY_PHASE=post-deploy".to_string(),
        "APP_ENV=test".to_string(),
    ] {
        assert!(env.lines().any(|l| l == expected), "{expected} in\n{env}");
    }
    // The migration's output is stored with the deployment, and the password is not in it.
    let logs = h
        .runway(&["logs", "--deployment", &v2_id.to_string()])
        .await;
    let logs_text = text(&logs);
    assert!(logs.status.success(), "{logs_text}");
    assert!(logs_text.contains("== migrate hook"), "{logs_text}");
    assert!(logs_text.contains("CREATE TABLE"), "{logs_text}");
    assert!(logs_text.contains("== backup hook"), "{logs_text}");
    assert!(!logs_text.contains(PASSWORD), "{logs_text}");

    // Rollback: v1 takes all traffic back, then the undo drops `orders`; `users` keeps its row.
    let out = h.runway(&["rollback"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(serving_version(&h).await, "v1");
    assert!(!table_exists(&url, "orders"), "undo did not run");
    assert_eq!(psql(&url, "SELECT count(*) FROM users"), "1");
    let rollback_id = newest_id(&h.history().await);
    let rollback_logs = text(
        &h.runway(&["logs", "--deployment", &rollback_id.to_string()])
            .await,
    );
    assert!(rollback_logs.contains("== undo hook"), "{rollback_logs}");

    // v3's migration fails: the deployment fails with nothing switched.
    let v3 = app(
        &url,
        &format!(
            "{keep2}\n[hooks.migrate]\ncommand = [\"sh\", \"-c\", \"echo 'ERROR: relation boom does not exist' >&2; exit 3\"]\n"
        ),
    );
    let before = h.status().await;
    let out = h.deploy("v3", &v3).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("migration failed"), "{}", text(&out));
    let after = h.status().await;
    assert_eq!(versions_running(&after), vec!["v1".to_string()]);
    assert_eq!(
        before["services"][0]["replicas"], after["services"][0]["replicas"],
        "a failed migration must not touch the replicas"
    );
    let history = h.history().await;
    assert_eq!(history[0]["status"], "failed");
    let v3_logs = text(
        &h.runway(&["logs", "--deployment", &history[0]["id"].to_string()])
            .await,
    );
    assert!(v3_logs.contains("relation boom"), "{v3_logs}");

    // Three backups taken (v1, v2, v3), keep = 2: the oldest is pruned and its files gone.
    let out = h.runway(&["backups", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let backups: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<&str> = backups
        .iter()
        .map(|b| b["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["ok", "ok", "pruned"], "{backups:?}");
    assert!(!std::path::Path::new(backups[2]["dir"].as_str().unwrap()).exists());
    assert!(std::path::Path::new(backups[0]["dir"].as_str().unwrap())
        .join("db.sql")
        .exists());

    // Restore v2's backup (taken before `orders`, with one user): behind the page, the data
    // comes back and so does v1, the release that served when it was taken.
    psql(&url, "INSERT INTO users VALUES (2)");
    let v2_backup = backups
        .iter()
        .find(|b| b["deployment_id"].as_i64() == Some(v2_id))
        .unwrap();
    let out = h.runway(&["restore", &v2_backup["id"].to_string()]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(psql(&url, "SELECT count(*) FROM users"), "1");
    assert_eq!(serving_version(&h).await, "v1");
    let status = h.status().await;
    assert!(status["services"][0]["maintenance"].is_null(), "{status}");
    assert_eq!(h.get("/").await.0, 200);
    assert_eq!(h.history().await[0]["kind"], "restore");
}

/// A release that passes verification on its replicas before traffic and fails it once it
/// has all traffic: the deployment fails after its migration ran, with the new release whole.
fn fails_after_traffic(h: &Harness, pg_url: &str, migrate: &str, extra: &str) -> App {
    let marker = h.dir.path().join(format!("verified-{}", rand_suffix()));
    let mut app = app(
        pg_url,
        &format!(
            "{migrate}\n{extra}\n[[checks]]\nname = \"once\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"test ! -e {m} && touch {m}\"]\nphases = [\"verify\"]\n",
            m = marker.display()
        ),
    );
    app.replicas = 1;
    app
}

fn rand_suffix() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irreversible_migrations_follow_their_on_failure_policy() {
    let pg = Postgres::start(PASSWORD);
    let url = pg.url(PASSWORD);
    let h = Harness::start().await;
    let mut v1 = app(
        &url,
        &format!(
            "{BACKUP}\n[hooks.migrate]\ncommand = {}\n",
            sql_hook("CREATE TABLE users (id int)")
        ),
    );
    v1.replicas = 1;
    assert!(h.deploy("v1", &v1).await.status.success());
    psql(&url, "INSERT INTO users VALUES (1)");

    // on_failure = "rollback": the old release comes back on the new schema.
    let v2 = fails_after_traffic(
        &h,
        &url,
        &format!(
            "[hooks.migrate]\ncommand = {}\nirreversible = true\non_failure = \"rollback\"\n",
            sql_hook("CREATE TABLE t_rollback (id int)")
        ),
        "",
    );
    let out = h.deploy("v2", &v2).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(serving_version(&h).await, "v1");
    assert_eq!(versions_running(&h.status().await), vec!["v1".to_string()]);
    assert!(table_exists(&url, "t_rollback"), "the schema must stay");

    // on_failure = "restore": page up, backup restored, old release back, page down.
    let v3 = fails_after_traffic(
        &h,
        &url,
        &format!(
            "{BACKUP}\n[hooks.migrate]\ncommand = {}\nirreversible = true\non_failure = \"restore\"\n",
            sql_hook("CREATE TABLE t_restore (id int); INSERT INTO users VALUES (99)")
        ),
        "",
    );
    let out = h.deploy("v3", &v3).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(serving_version(&h).await, "v1");
    assert!(
        !table_exists(&url, "t_restore"),
        "the backup was not restored"
    );
    assert_eq!(psql(&url, "SELECT count(*) FROM users WHERE id = 99"), "0");
    let v3_id = newest_id(&h.history().await);
    let logs = text(
        &h.runway(&["logs", "--deployment", &v3_id.to_string()])
            .await,
    );
    assert!(logs.contains("== restore hook"), "{logs}");
    let status = h.status().await;
    assert!(status["services"][0]["maintenance"].is_null(), "{status}");
    assert_eq!(h.get("/").await.0, 200);

    // on_failure = "freeze": nothing more changes, the new release keeps its traffic, an
    // on-failure hook alerts, and a plain rollback is refused until a human chooses.
    let alert = h.dir.path().join("alert");
    let v4 = fails_after_traffic(
        &h,
        &url,
        &format!(
            "[hooks.migrate]\ncommand = {}\nirreversible = true\non_failure = \"freeze\"\n",
            sql_hook("CREATE TABLE t_freeze (id int)")
        ),
        &format!(
            "[[hooks.run]]\nat = \"on-failure\"\ncommand = [\"sh\", \"-c\", 'echo \"$RUNWAY_VERSION failed\" > {}']\n",
            alert.display()
        ),
    );
    let out = h.deploy("v4", &v4).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("frozen"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&alert).unwrap().trim(), "v4 failed");
    let status = h.status().await;
    assert!(!status["services"][0]["frozen"].is_null(), "{status}");
    assert!(
        versions_running(&status).contains(&"v4".to_string()),
        "{status}"
    );
    let (code, version, _) = h.get("/").await;
    assert_eq!(code, 200);
    assert_eq!(version, "v4", "the new release keeps its traffic");
    assert!(table_exists(&url, "t_freeze"));

    let out = h.runway(&["rollback"]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("--keep-schema"), "{}", text(&out));
    let out = h.runway(&["scale", "--count", "2"]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("frozen"), "{}", text(&out));
    let out = h.runway(&["rollback", "--keep-schema"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let status = h.status().await;
    assert_eq!(versions_running(&status), vec!["v1".to_string()]);
    assert!(status["services"][0]["frozen"].is_null(), "{status}");
    assert!(table_exists(&url, "t_freeze"), "--keep-schema keeps it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_and_read_only_survive_a_server_restart() {
    let mut h = Harness::start().await;
    let v1 = App::default().strategy(
        "[strategy]\nkind = \"rolling\"\n\n[maintenance]\nretry_after = \"45s\"\nallow = [\"/version\"]\n",
    );
    assert!(h.deploy("v1", &v1).await.status.success());

    let out = h
        .runway(&[
            "maintenance",
            "on",
            "--message",
            "Upgrading <db> & back soon",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let check_page = |h: &Harness| {
        let listen = h.listen;
        async move {
            let (code, _, body) = http_get(listen, "/").await;
            assert_eq!(code, 503, "{body}");
            assert!(
                body.contains("Upgrading &lt;db&gt; &amp; back soon"),
                "{body}"
            );
            let (_, headers) =
                get_with_headers(listen, "/", &[("accept", "application/json")]).await;
            assert_eq!(headers["retry-after"], "45");
            // The health path and the allowed path still reach the replicas.
            assert_eq!(http_get(listen, "/health/ready").await.0, 200);
            assert_eq!(http_get(listen, "/version").await.0, 200);
        }
    };
    check_page(&h).await;
    let status = h.status().await;
    assert_eq!(
        status["services"][0]["maintenance"]["by"], "bootstrap-admin",
        "the identity that put the page up"
    );
    let plain = text(&h.runway(&["status"]).await);
    assert!(plain.contains("MAINTENANCE since"), "{plain}");

    // kill -9 and restart: the page is back before the first request is served.
    h.kill9_server();
    h.start_server().await;
    check_page(&h).await;
    assert!(!h.status().await["services"][0]["maintenance"].is_null());
    assert!(h.runway(&["maintenance", "off"]).await.status.success());
    assert_eq!(h.get("/").await.0, 200);

    // Read-only: reads pass, writes get 503; it survives a clean restart too.
    assert!(h.runway(&["traffic", "read-only"]).await.status.success());
    let post = |listen: SocketAddr| async move { raw_request(listen, "POST", "/").await };
    assert_eq!(h.get("/").await.0, 200);
    assert_eq!(post(h.listen).await, 503);
    h.stop_server();
    h.start_server().await;
    // The clean stop stopped the replicas; wait until the release serves again.
    wait_for(|| async { h.get("/").await.0 == 200 }).await;
    assert_eq!(post(h.listen).await, 503);
    assert!(!h.status().await["services"][0]["read_only"].is_null());
    assert!(h.runway(&["traffic", "normal"]).await.status.success());
    assert_ne!(post(h.listen).await, 503);
}

/// Deploys `app` as v2 (deployment #2) without following it, waits until its hook of `phase`
/// has started, then kills the server with SIGKILL and starts it again.
async fn kill9_during_hook(h: &mut Harness, app: &App, phase: &str) {
    let file = h.write("runway-v2.toml", app);
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "deploy", "v2", "--detach"])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let client = h.client();
    wait_for(|| async {
        let detail: serde_json::Value = client.get("/v1/deployments/2").await.unwrap();
        detail["journal"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "hook_started" && e["detail"]["phase"] == phase)
    })
    .await;
    h.kill9_server();
    h.start_server().await;
}

async fn wait_for<F, Fut>(mut ok: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ok().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One request on a fresh connection; the status, or 0 when the connection failed.
async fn raw_request(addr: SocketAddr, method: &str, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return 0;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Counts of responses seen by a steady load during a recreate.
#[derive(Default)]
struct Tally {
    served: AtomicU64,
    maintenance: AtomicU64,
    other: AtomicU64,
    refused: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_answers_every_request_and_reverts_with_undo() {
    let pg = Postgres::start(PASSWORD);
    let url = pg.url(PASSWORD);
    let h = Harness::start().await;
    let recreate = |migrate: &str, undo: &str| {
        app(
            &url,
            &format!(
                "[strategy]\nkind = \"recreate\"\n\n{BACKUP}\n[hooks.migrate]\ncommand = {migrate}\nundo = {undo}\n"
            ),
        )
    };
    let v1 = recreate(
        &sql_hook("CREATE TABLE users (id int)"),
        &sql_hook("DROP TABLE users"),
    );
    assert!(h.deploy("v1", &v1).await.status.success());

    // Steady load on fresh connections while v2 is recreated (its migration takes a second).
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (tally, stop, listen) = (tally.clone(), stop.clone(), h.listen);
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let code = raw_request(listen, "GET", "/").await;
                let counter = match code {
                    200 => &tally.served,
                    503 => &tally.maintenance,
                    0 => &tally.refused,
                    _ => &tally.other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v2 = recreate(
        "[\"sh\", \"-c\", 'sleep 1 && psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -c \"CREATE TABLE orders (id int)\"']",
        &sql_hook("DROP TABLE orders"),
    );
    let out = h.deploy("v2", &v2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert!(out.status.success(), "{}", text(&out));
    let (served, maintenance, other, refused) = (
        tally.served.load(Ordering::Relaxed),
        tally.maintenance.load(Ordering::Relaxed),
        tally.other.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
    );
    eprintln!("recreate under load: {served} served, {maintenance} maintenance, {other} other, {refused} connection errors");
    assert_eq!(refused, 0, "a client got a connection error");
    assert_eq!(other, 0, "a client got something else than 200 or the page");
    assert!(maintenance > 0, "the page was never seen");
    assert!(served > 0);
    assert!(table_exists(&url, "orders"));
    let status = h.status().await;
    assert_eq!(versions_running(&status), vec!["v2".to_string()]);
    assert!(status["services"][0]["maintenance"].is_null(), "{status}");
    assert!(
        status["services"][0]["refused"]["maintenance"]
            .as_u64()
            .unwrap()
            >= maintenance
    );

    // v3 migrates and then cannot start: everything stops, the undo runs before v2 starts
    // again (the releases never run side by side), and the page comes down once v2 serves.
    let mut v3 = recreate(
        &sql_hook("CREATE TABLE broken (id int)"),
        &sql_hook("DROP TABLE broken"),
    )
    .args(&["--fail-start"]);
    v3.deadline = "3s";
    let out = h.deploy("v3", &v3).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!table_exists(&url, "broken"), "undo did not run");
    let status = h.status().await;
    assert_eq!(serving_version(&h).await, "v2");
    assert_eq!(versions_running(&status), vec!["v2".to_string()]);
    assert!(status["services"][0]["maintenance"].is_null(), "{status}");
    let (code, version, _) = h.get("/").await;
    assert_eq!(code, 200);
    assert_eq!(version, "v2");
}

/// A first deployment's backup predates its own migration, and there is no earlier release to
/// bring back: restoring it restores the data and applies that release's migration again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_a_first_deployments_backup_migrates_the_restored_data_again() {
    let pg = Postgres::start(PASSWORD);
    let url = pg.url(PASSWORD);
    let h = Harness::start().await;
    psql(
        &url,
        "CREATE TABLE accounts (id int); INSERT INTO accounts VALUES (1)",
    );
    let v1 = app(
        &url,
        &format!(
            "{BACKUP}\n[hooks.migrate]\ncommand = {}\n",
            sql_hook("CREATE TABLE users (id int)")
        ),
    );
    assert!(h.deploy("v1", &v1).await.status.success());
    psql(
        &url,
        "INSERT INTO accounts VALUES (2); INSERT INTO users VALUES (7)",
    );

    let out = h.runway(&["restore", "1"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        psql(&url, "SELECT count(*) FROM accounts"),
        "1",
        "data restored"
    );
    assert!(table_exists(&url, "users"), "v1's migration applied again");
    assert_eq!(psql(&url, "SELECT count(*) FROM users"), "0");
    assert_eq!(serving_version(&h).await, "v1");
    assert_eq!(h.get("/").await.0, 200);
}

/// kill -9 of the server while a recreate migrates: the page is back from the first request
/// after the restart, the deployment resumes (the backup is not taken twice, the idempotent
/// migration runs again) and finishes, and the page comes down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreate_interrupted_by_kill_9_resumes_behind_the_page() {
    let pg = Postgres::start(PASSWORD);
    let url = pg.url(PASSWORD);
    let mut h = Harness::start().await;
    let v1 = app(&url, "");
    assert!(h.deploy("v1", &v1).await.status.success());
    let v2 = app(
        &url,
        &format!(
            "[strategy]\nkind = \"recreate\"\n\n{BACKUP}\n[hooks.migrate]\ncommand = [\"sh\", \"-c\", 'sleep 2 && psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -c \"CREATE TABLE IF NOT EXISTS orders (id int)\"']\n"
        ),
    );
    kill9_during_hook(&mut h, &v2, "migrate").await;
    // The page answers at once: the old release is stopped and the new one not started yet.
    assert_eq!(h.get("/").await.0, 503);

    wait_for(|| async { h.history().await[0]["status"] != "running" }).await;
    let history = h.history().await;
    assert_eq!(history[0]["status"], "succeeded", "{:?}", history[0]);
    assert!(table_exists(&url, "orders"));
    assert_eq!(serving_version(&h).await, "v2");
    assert_eq!(h.get("/").await.0, 200);
    let runs: Vec<serde_json::Value> = h.client().get("/v1/deployments/2/hooks").await.unwrap();
    let phases: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| (r["phase"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        phases,
        vec![
            ("backup", "ok"),
            ("verify-backup", "ok"),
            ("migrate", "interrupted"),
            ("migrate", "ok"),
        ]
    );
}

/// kill -9 while a failed deployment is on its way back: the restarted server finishes the way
/// back; it does not run the deployment forward again (which here would succeed, since the
/// verify check fails only once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_interrupted_on_its_way_back_is_not_run_forward_again() {
    let mut h = Harness::start().await;
    let v1 = App {
        replicas: 1,
        ..App::default()
    };
    assert!(h.deploy("v1", &v1).await.status.success());
    let counter = h.dir.path().join("verify-count");
    let mut v2 = App::default().strategy(&format!(
        "[strategy]\nkind = \"rolling\"\n\n[[hooks.run]]\nat = \"pre-rollback\"\ncommand = [\"sleep\", \"3\"]\n\n\
         [[checks]]\nname = \"second call fails\"\nkind = \"command\"\n\
         command = [\"sh\", \"-c\", \"n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; [ $n -ne 2 ]\"]\n\
         phases = [\"verify\"]\n",
        c = counter.display()
    ));
    v2.replicas = 1;
    kill9_during_hook(&mut h, &v2, "pre-rollback").await;
    wait_for(|| async { h.history().await[0]["status"] != "running" }).await;
    let history = h.history().await;
    assert_eq!(history[0]["status"], "rolled_back", "{:?}", history[0]);
    assert_eq!(serving_version(&h).await, "v1");
    assert_eq!(versions_running(&h.status().await), vec!["v1".to_string()]);
    assert_eq!(h.get("/").await.1, "v1");
}

/// Going back past a version records the rollback on all its releases, a scale change of it
/// too, so a second `rollback` does not bring it back; their own outcome stays `succeeded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_past_a_scaled_release_does_not_flip_back_to_it() {
    let h = Harness::start().await;
    let one = App {
        replicas: 1,
        ..App::default()
    };
    assert!(h.deploy("v1", &one).await.status.success());
    assert!(h.deploy("v2", &one).await.status.success());
    let out = h.runway(&["scale", "--count", "2"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = h.runway(&["rollback"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(serving_version(&h).await, "v1");
    let history = h.history().await;
    let v2_rows: Vec<(&str, &serde_json::Value)> = history
        .iter()
        .filter(|d| d["version"] == "v2")
        .map(|d| (d["status"].as_str().unwrap(), &d["rolled_back_by"]))
        .collect();
    let by = &history[0]["id"];
    assert_eq!(history[0]["kind"], "rollback");
    assert_eq!(
        v2_rows,
        vec![("succeeded", by), ("succeeded", by)],
        "{history:?}"
    );
    let out = h.runway(&["history"]).await;
    assert!(
        text(&out).contains(&format!("succeeded, rolled back by #{by}")),
        "{}",
        text(&out)
    );
    let out = h.runway(&["rollback"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no earlier release"), "{}", text(&out));
    assert_eq!(serving_version(&h).await, "v1");
}
