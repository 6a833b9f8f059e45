//! Redis checks against real redis-server processes: one unlimited, one with
//! `maxmemory 10mb` and a password.

mod common;

use std::time::Duration;

use common::*;
use runway_checks::*;

fn redis(url: &str, share: Option<f64>) -> CheckKind {
    CheckKind::Redis {
        url: url.into(),
        max_memory_share: share,
    }
}

async fn one(kind: CheckKind, ctx: &Context) -> CheckResult {
    let spec = CheckSpec {
        timeout: Duration::from_secs(3),
        ..CheckSpec::new("cache", kind)
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
async fn redis_checks() {
    const PASSWORD: &str = "redis-s3cret-Pw-77";
    let open = Redis::start(&[]);
    let limited = Redis::start(&["--maxmemory", "10mb", "--requirepass", PASSWORD]);
    let ctx = Context {
        env: env(&[(
            "REDIS_URL",
            &format!("redis://:{PASSWORD}@127.0.0.1:{}/0", limited.port),
        )]),
        ..common::ctx()
    };
    let open_url = format!("redis://127.0.0.1:{}", open.port);
    let mut details = Vec::new();

    let r = one(redis(&open_url, None), &ctx).await;
    assert_eq!(r.status, CheckStatus::Pass, "{r:?}");
    assert_eq!(r.detail, "PING answered PONG");

    // maxmemory 0: passes with a note.
    let r = one(redis(&open_url, Some(0.5)), &ctx).await;
    assert_eq!(r.status, CheckStatus::Pass, "{r:?}");
    assert!(r.detail.contains("maxmemory 0 (unlimited)"), "{}", r.detail);

    // maxmemory 10mb: an empty server uses ~1 MB.
    let r = one(redis("env:REDIS_URL", Some(0.9)), &ctx).await;
    assert_eq!(r.status, CheckStatus::Pass, "{r:?}");
    assert!(
        r.detail.contains("used of maxmemory 10.5 MB"),
        "{}",
        r.detail
    );
    details.push(r.detail);
    let r = one(redis("env:REDIS_URL", Some(0.01)), &ctx).await;
    assert_eq!(r.status, CheckStatus::Fail, "{r:?}");
    assert!(
        r.detail.contains("at or above max_memory_share 1%"),
        "{}",
        r.detail
    );
    details.push(r.detail);

    // Authentication: missing and wrong passwords fail without showing any password.
    let no_auth = format!("redis://127.0.0.1:{}", limited.port);
    let r = one(redis(&no_auth, None), &ctx).await;
    assert_eq!(r.status, CheckStatus::Fail, "{r:?}");
    details.push(r.detail);
    let wrong = format!("redis://:Wr0ng-redis-44@127.0.0.1:{}", limited.port);
    let r = one(redis(&wrong, None), &ctx).await;
    assert_eq!(r.status, CheckStatus::Fail, "{r:?}");
    assert!(!r.detail.contains("Wr0ng-redis-44"), "{}", r.detail);
    details.push(r.detail);

    // Refused and hanging.
    let port = free_port();
    let r = one(redis(&format!("redis://127.0.0.1:{port}"), None), &ctx).await;
    assert_eq!(r.status, CheckStatus::Fail);
    assert!(
        r.detail.contains(&format!(
            "cannot connect to Redis at 127.0.0.1:{port}: connection refused"
        )),
        "{}",
        r.detail
    );
    assert!(r.detail.to_lowercase().contains("refused"), "{}", r.detail);
    let hang = hanging_server().await;
    let spec = CheckSpec {
        timeout: Duration::from_secs(1),
        ..CheckSpec::new("cache", redis(&format!("redis://{hang}"), None))
    };
    let r = run_check(&spec, &ctx).await.remove(0);
    assert_eq!(r.detail, "timed out after 1s");

    for d in &details {
        assert!(!d.contains(PASSWORD), "password leaked: {d}");
    }
}
