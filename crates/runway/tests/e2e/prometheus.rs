//! The `prometheus` analysis source against a real Prometheus (Debian package, installed by
//! scripts/test) started by the test on a free loopback port, scraping runway's /metrics.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runway_demo_app::load::Load;
use runway_prometheus::query_prometheus;

use crate::harness::{free_addr, text, App, Harness};

pub struct Prometheus {
    child: Child,
    pub url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_prometheus(dir: &Path, target: &str) -> Prometheus {
    assert!(
        Command::new("prometheus").arg("--version").output().is_ok(),
        "prometheus is not installed: run scripts/test, which installs it (Debian package `prometheus`)"
    );
    let addr = free_addr();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: runway\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .unwrap();
    let url = format!("http://{addr}");
    let p = Prometheus { child, url };
    let started = Instant::now();
    while crate::harness::http_get_opt(addr, "/-/ready").await != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "prometheus did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    p
}

fn metrics_addr(h: &Harness) -> String {
    h.server_file()["metrics"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prometheus_source_reads_what_prometheus_scraped_from_runway() {
    let h = Harness::start().await;
    assert!(h
        .deploy(
            "v1",
            &App {
                replicas: 1,
                ..App::default()
            }
        )
        .await
        .status
        .success());
    for _ in 0..20 {
        assert_eq!(h.get("/").await.0, 200);
    }
    let prom = start_prometheus(h.dir.path(), &metrics_addr(&h)).await;
    let query = r#"sum(runway_requests_total{service="web",release="v1"})"#;
    let started = Instant::now();
    let value = loop {
        if let Ok(Some(v)) = query_prometheus(&prom.url, query).await {
            break v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "prometheus never scraped runway"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(value, 20.0);
    // No series: no data, not zero.
    assert_eq!(
        query_prometheus(&prom.url, r#"sum(runway_requests_total{release="nope"})"#)
            .await
            .unwrap(),
        None
    );
    // A bad query and an unreachable Prometheus are errors, never values.
    let err = query_prometheus(&prom.url, "sum(").await.unwrap_err();
    assert!(err.contains("query failed"), "{err}");
    let err = query_prometheus(&format!("http://{}", free_addr()), "up")
        .await
        .unwrap_err();
    assert!(err.contains("Prometheus at"), "{err}");

    // The `prometheus` check kind against the same real Prometheus: a pass and a fail.
    let check = |condition: &str| {
        runway_checks::CheckSpec::new(
            "requests",
            runway_checks::CheckKind::Prometheus {
                url: prom.url.clone(),
                query: query.to_string(),
                condition: condition.to_string(),
            },
        )
    };
    let ctx = runway_checks::Context::from_process_env(h.dir.path().to_path_buf());
    let pass = runway_checks::run_check(&check(">= 20"), &ctx).await;
    assert!(pass[0].passed(), "{:?}", pass[0]);
    let fail = runway_checks::run_check(&check("> 1000"), &ctx).await;
    assert!(
        !fail[0].passed() && fail[0].detail.contains("20"),
        "{:?}",
        fail[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_judged_by_a_promql_query_is_rolled_back() {
    let h = Harness::start().await;
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let prom = start_prometheus(h.dir.path(), &metrics_addr(&h)).await;
    let load = Load::start(h.listen, "/", 6, 300);
    let query = r#"sum(rate(runway_requests_total{service="{service}",release="{version}",class="5xx"}[5s])) / sum(rate(runway_requests_total{service="{service}",release="{version}"}[5s]))"#;
    let app = App::default().args(&["--error-rate", "0.3"]).strategy(&format!(
        "[strategy]\nkind = \"canary\"\nsteps = [{{ weight = 50, pause = \"60s\" }}, {{ weight = 100 }}]\n\n\
         [analysis]\ninterval = \"1s\"\nfailure_limit = 2\nmin_requests = 10\ninconclusive_limit = 30\nprometheus = \"{}\"\n\n\
         [[analysis.metrics]]\nname = \"prom-errors\"\nsource = \"prometheus\"\nquery = '{query}'\nfail_if = \"> 0.05\"\n",
        prom.url
    ));
    let out = h.deploy("v2", &app).await;
    load.stop().await;
    assert!(!out.status.success(), "{}", text(&out));
    let history = h.history().await;
    assert_eq!(history[0]["status"], "rolled_back");
    let reason = history[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("prom-errors") && reason.contains("> 0.05"),
        "{reason}"
    );
}
