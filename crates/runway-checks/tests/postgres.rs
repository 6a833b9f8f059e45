//! PostgreSQL checks against a real server (initdb + pg_ctl in a temp dir, password
//! auth). One server for all cases: starting one takes seconds.

mod common;

use std::time::Duration;

use common::*;
use runway_checks::*;

fn pg(url: &str) -> CheckKind {
    CheckKind::Postgres {
        url: url.into(),
        query: None,
        expect: None,
        max_connections_share: None,
    }
}

async fn one(kind: CheckKind, ctx: &Context) -> CheckResult {
    let spec = CheckSpec {
        timeout: Duration::from_secs(5),
        ..CheckSpec::new("db", kind)
    };
    let mut results = run_check(&spec, ctx).await;
    for r in &results {
        eprintln!("{} [{}] {}", r.status, r.attempts, r.detail);
    }
    assert_eq!(results.len(), 1);
    let r = results.remove(0);
    assert!(!r.detail.contains('\n'), "{r:?}");
    r
}

#[tokio::test]
async fn postgres_checks() {
    const PASSWORD: &str = "pg-Pa55-secret-913";
    let server = Postgres::start(PASSWORD);
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("db_url"), server.url(PASSWORD) + "\n").unwrap();
    let ctx = Context {
        env: env(&[("DATABASE_URL", &server.url(PASSWORD))]),
        secrets: Some(std::sync::Arc::new(runway_checks::run::SecretsDir(
            secrets.path().into(),
        ))),
        ..common::ctx()
    };
    let mut details = Vec::new();

    // Accepting queries, through either kind of reference and a plain URL.
    for url in ["secret:db_url", "env:DATABASE_URL", &server.url(PASSWORD)] {
        let r = one(pg(url), &ctx).await;
        assert_eq!(r.status, CheckStatus::Pass, "{url}: {r:?}");
        assert_eq!(r.detail, r#""SELECT 1" returned "1""#);
        details.push(r.detail);
    }

    // Query with an expected first value.
    let with_query = |query: &str, expect: &str| CheckKind::Postgres {
        url: "secret:db_url".into(),
        query: Some(query.into()),
        expect: Some(expect.into()),
        max_connections_share: None,
    };
    let r = one(with_query("SELECT current_user", "runway"), &ctx).await;
    assert_eq!(r.status, CheckStatus::Pass, "{r:?}");
    let r = one(
        with_query(
            "SELECT count(*) FROM pg_database WHERE datname = 'app'",
            "1",
        ),
        &ctx,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Fail, "{r:?}");
    assert!(
        r.detail.contains(r#"returned "0" (expected "1")"#),
        "{}",
        r.detail
    );
    details.push(r.detail);
    let r = one(with_query("SELEC 1", "1"), &ctx).await;
    assert_eq!(r.status, CheckStatus::Fail);
    assert!(r.detail.contains("ERROR: syntax error"), "{}", r.detail);
    details.push(r.detail);

    // Connection headroom (max_connections = 20 in the test server).
    let share = |s: f64| CheckKind::Postgres {
        url: "secret:db_url".into(),
        query: None,
        expect: None,
        max_connections_share: Some(s),
    };
    let r = one(share(0.9), &ctx).await;
    assert_eq!(r.status, CheckStatus::Pass, "{r:?}");
    assert!(r.detail.contains("/20 connections in use"), "{}", r.detail);
    let r = one(share(0.01), &ctx).await;
    assert_eq!(r.status, CheckStatus::Fail, "{r:?}");
    assert!(
        r.detail.contains("at or above max_connections_share 1%"),
        "{}",
        r.detail
    );
    details.push(r.detail);

    // A wrong password: the server's reason, never the password.
    let wrong = server.url("Wr0ng-pass-5521");
    let r = one(pg(&wrong), &ctx).await;
    assert_eq!(r.status, CheckStatus::Fail);
    assert!(
        r.detail.contains("password authentication failed"),
        "{}",
        r.detail
    );
    assert!(!r.detail.contains("Wr0ng-pass-5521"), "{}", r.detail);
    details.push(r.detail);

    // Refused, unresolvable, hanging, missing reference.
    let port = free_port();
    let r = one(
        pg(&format!(
            "postgres://runway:{PASSWORD}@127.0.0.1:{port}/postgres"
        )),
        &ctx,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Fail);
    assert!(
        r.detail.contains(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{port}: connection refused"
        )),
        "{}",
        r.detail
    );
    assert!(r.detail.to_lowercase().contains("refused"), "{}", r.detail);
    details.push(r.detail);
    let r = one(
        pg(&format!(
            "postgres://runway:{PASSWORD}@nonexistent.invalid/postgres"
        )),
        &ctx,
    )
    .await;
    assert_eq!(r.status, CheckStatus::Fail);
    details.push(r.detail);
    let hang = hanging_server().await;
    let spec = CheckSpec {
        timeout: Duration::from_secs(1),
        ..CheckSpec::new(
            "db",
            pg(&format!("postgres://runway:{PASSWORD}@{hang}/postgres")),
        )
    };
    let r = run_check(&spec, &ctx).await.remove(0);
    assert_eq!(r.detail, "timed out after 1s");
    let r = one(pg("env:NOT_SET"), &ctx).await;
    assert_eq!(r.detail, "env:NOT_SET is not set");
    assert_eq!(r.attempts, 0);

    for d in &details {
        assert!(!d.contains(PASSWORD), "password leaked: {d}");
    }
}
