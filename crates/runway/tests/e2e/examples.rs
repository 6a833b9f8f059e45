//! The shipped examples run as written (addresses aside) against real servers.

use runway_testkit::{Postgres, Redis};

use crate::harness::{text, Harness, RUNWAY};

/// examples/checklists: runbook 004's pre-deployment checklist and 003's morning checklist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checklists_example_gates_a_deploy_and_runs_the_morning_checklist() {
    let h = Harness::start().await;
    let pg = Postgres::start("s3cret-pg");
    let redis = Redis::start(&["--maxmemory", "100mb"]);
    let prometheus = crate::prometheus::start_prometheus(
        h.dir.path(),
        h.server_file()["metrics"].as_str().unwrap(),
    )
    .await;

    // A certificate valid for 90 days, where the example expects it.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(90);
    std::fs::create_dir_all(h.dir.path().join("certs")).unwrap();
    std::fs::write(
        h.dir.path().join("certs/service.crt"),
        params.self_signed(&key).unwrap().pem(),
    )
    .unwrap();

    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/checklists/runway.toml"
    ))
    .unwrap();
    let config = example
        .replace("listen = \"127.0.0.1:8000\"", &format!("listen = \"{}\"", h.listen))
        .replace("command = [\"runway\",", &format!("command = [{RUNWAY:?},"))
        .replace("http://127.0.0.1:9090", &prometheus.url)
        // The CI machine's free disk varies; the threshold is the example's business, not the test's.
        .replace("min_free = \"10GB\"", "min_free = \"1MB\"")
        // Secrets through the service's env here; in production they come from the environment.
        .replace(
            "env = { APP_ENV = \"production\" }",
            &format!(
                "env = {{ APP_ENV = \"production\", DATABASE_URL = \"{}\", REDIS_URL = \"redis://127.0.0.1:{}\", JWT_SECRET = \"jwt-s3cret\" }}",
                pg.url("s3cret-pg"),
                redis.port
            ),
        );
    assert_ne!(config, example);
    std::fs::write(h.dir.path().join("runway.toml"), &config).unwrap();

    // 004's checklist gates the deploy, and passes.
    let out = h.runway(&["deploy", "v1"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let detail: serde_json::Value = h.client().get("/v1/deployments/1").await.unwrap();
    let preflight = detail["journal"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "checks")
        .unwrap()
        .clone();
    assert_eq!(preflight["detail"]["phase"], "preflight");
    assert_eq!(preflight["detail"]["results"].as_array().unwrap().len(), 7);

    // 003's morning checklist: every item passes against the running service.
    let out = h.runway(&["check", "--phase", "morning", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        results.iter().all(|r| r["status"] == "pass"),
        "{results:#?}"
    );
    assert_eq!(
        results.iter().filter(|r| r["name"] == "live").count(),
        2,
        "one per replica"
    );
    let all = String::from_utf8_lossy(&out.stdout);
    for secret in ["s3cret-pg", "jwt-s3cret"] {
        assert!(!all.contains(secret), "a secret was printed");
    }

    // Maintenance mode is on: 004's checklist stops the next deploy before anything changes.
    std::fs::write(h.dir.path().join("maintenance.flag"), "on").unwrap();
    let out = h.runway(&["deploy", "v2"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no maintenance flag"),
        "{}",
        text(&out)
    );
    assert_eq!(h.get("/").await.1, "v1");
}

/// Copies examples/<name> and examples/tools into the test dir and returns the example's
/// runway.toml, rewritten for the test: its address, the runway binary, DATABASE_URL.
fn install_example(h: &Harness, name: &str, database_url: &str) -> std::path::PathBuf {
    let examples = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"));
    let target = h.dir.path().join("examples");
    for dir in [name, "tools", &format!("{name}/migrations")] {
        std::fs::create_dir_all(target.join(dir)).unwrap();
        for entry in std::fs::read_dir(examples.join(dir)).unwrap().flatten() {
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), target.join(dir).join(entry.file_name())).unwrap();
            }
        }
    }
    let path = target.join(name).join("runway.toml");
    let example = std::fs::read_to_string(&path).unwrap();
    let config = example
        .replace(
            "listen = \"127.0.0.1:8000\"",
            &format!("listen = \"{}\"", h.listen),
        )
        .replace("command = [\"runway\",", &format!("command = [{RUNWAY:?},"))
        .replace(
            "env = { APP_ENV = \"production\" }",
            &format!("env = {{ APP_ENV = \"production\", DATABASE_URL = \"{database_url}\" }}"),
        );
    assert_ne!(config, example);
    std::fs::write(&path, config).unwrap();
    path
}

fn psql(url: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// examples/alembic-rolling: runbook 000. v1 applies 0001; v2 (its checkout adds 0002) is
/// backed up, migrated and rolled out under load with no failed request; the rollback gives v1
/// its traffic back and then runs the down migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alembic_rolling_example_migrates_rolls_out_and_downgrades_on_rollback() {
    let h = Harness::start().await;
    let pg = Postgres::start("s3cret-pg");
    let url = pg.url("s3cret-pg");
    let config = install_example(&h, "alembic-rolling", &url);
    let migrations = config.parent().unwrap().join("migrations");
    // v1's checkout: 0002 does not exist yet.
    let aside = h.dir.path().join("aside");
    std::fs::create_dir_all(&aside).unwrap();
    for f in ["0002_add_orders.up.sql", "0002_add_orders.down.sql"] {
        std::fs::rename(migrations.join(f), aside.join(f)).unwrap();
    }
    let file = config.to_str().unwrap();
    // The plan names the database steps around the rollout and the way back.
    let plan = text(&h.runway(&["-f", file, "plan", "v1"]).await);
    for expected in [
        "migrate `../tools/migrate.sh upgrade head` once",
        "`../tools/migrate.sh downgrade -1` runs after the old release has all traffic back",
        "1 post-deploy hook",
        "nothing was changed",
    ] {
        assert!(plan.contains(expected), "{expected} in {plan}");
    }
    let out = h.runway(&["-f", file, "deploy", "v1"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        psql(&url, "SELECT version_num FROM alembic_version"),
        "0001_create_users"
    );

    // v2's checkout brings 0002.
    for f in ["0002_add_orders.up.sql", "0002_add_orders.down.sql"] {
        std::fs::rename(aside.join(f), migrations.join(f)).unwrap();
    }
    let load = runway_demo_app::load::Load::start(h.listen, "/", 8, 400);
    let out = h.runway(&["-f", file, "deploy", "v2"]).await;
    let seen = load.stop().await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(seen.failed, 0, "failed requests during the rolling update");
    assert!(seen.ok > 0);
    assert_eq!(
        psql(&url, "SELECT version_num FROM alembic_version"),
        "0002_add_orders"
    );
    let v2 = h.history().await[0]["id"].to_string();
    let logs = text(&h.runway(&["logs", "--deployment", &v2]).await);
    assert!(
        logs.contains("Running upgrade 0001_create_users -> 0002_add_orders"),
        "{logs}"
    );
    assert!(
        logs.contains("DEPLOYMENT COMPLETE: atom v2 serves all traffic"),
        "{logs}"
    );
    assert!(!logs.contains("s3cret-pg"), "{logs}");

    let out = h.runway(&["-f", file, "rollback"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(h.get("/").await.1, "v1");
    assert_eq!(
        psql(&url, "SELECT version_num FROM alembic_version"),
        "0001_create_users"
    );
    assert_eq!(
        psql(&url, "SELECT to_regclass('public.orders') IS NULL"),
        "t"
    );
}

/// examples/recreate-maintenance: runbook 004. The recreate deploys v2 behind the page with a
/// gzip backup and an irreversible column rename, telling the team at each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recreate_example_runs_runbook_004s_procedure() {
    let h = Harness::start().await;
    let pg = Postgres::start("s3cret-pg");
    let url = pg.url("s3cret-pg");
    let config = install_example(&h, "recreate-maintenance", &url);
    let migrations = config.parent().unwrap().join("migrations");
    let aside = h.dir.path().join("0002.up.sql");
    std::fs::rename(migrations.join("0002_rename_column.up.sql"), &aside).unwrap();
    let file = config.to_str().unwrap();
    let out = h.runway(&["-f", file, "deploy", "v1"]).await;
    assert!(out.status.success(), "{}", text(&out));
    psql(&url, "INSERT INTO users (email) VALUES ('a@example.com')");

    std::fs::rename(&aside, migrations.join("0002_rename_column.up.sql")).unwrap();
    let out = h.runway(&["-f", file, "deploy", "v2"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(psql(&url, "SELECT login FROM users"), "a@example.com");
    let v2 = h.history().await[0]["id"].to_string();
    let logs = text(&h.runway(&["logs", "--deployment", &v2]).await);
    for expected in [
        "DEPLOYMENT STARTED: deia v1 -> v2",
        "Running upgrade 0001_create_users -> 0002_rename_column",
        "DEPLOYMENT COMPLETE: deia v2 serves all traffic",
    ] {
        assert!(logs.contains(expected), "{expected} in {logs}");
    }
    let detail: serde_json::Value = h
        .client()
        .get(&format!("/v1/deployments/{v2}"))
        .await
        .unwrap();
    let events: Vec<&str> = detail["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    let order = [
        "maintenance_on",
        "recreate_stopping_old",
        "backup",
        "recreate_starting_new",
        "maintenance_off",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|o| {
            events
                .iter()
                .position(|e| e == o)
                .unwrap_or_else(|| panic!("{o} in {events:?}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{events:?}");
    let backups: Vec<serde_json::Value> =
        serde_json::from_slice(&h.runway(&["backups", "--json"]).await.stdout).unwrap();
    assert_eq!(backups[0]["state"], "ok");
    assert!(std::path::Path::new(backups[0]["dir"].as_str().unwrap())
        .join("db.sql.gz")
        .exists());
    assert_eq!(h.get("/").await.1, "v2");
}
