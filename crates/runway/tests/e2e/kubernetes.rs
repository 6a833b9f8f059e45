//! Issue 13: the same runbook on Kubernetes, against the stateful fake API server of
//! runway-testkit (no API server can run on these machines; see its documentation for what it
//! simulates and what it does not), with kubectl pointed at the same fake to check that runway
//! and kubectl say the same thing.
//!
//! The real `runway server` and CLI run as everywhere else; the server finds the cluster the
//! way kubectl does, through `KUBECONFIG`.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use runway_testkit::kube::FakeKube;
use serde_json::Value;

use super::harness::*;

/// A cluster (the fake), a runway server that reaches it, and kubectl for it.
struct Cluster {
    kube: FakeKube,
    kubeconfig: PathBuf,
    h: Harness,
}

impl Cluster {
    async fn start() -> Cluster {
        Cluster::start_with(Vec::new()).await
    }

    /// With `env` for the server on top of `KUBECONFIG`.
    async fn start_with(mut env: Vec<(String, String)>) -> Cluster {
        let kube = FakeKube::start();
        let dir = tempfile::tempdir().unwrap().keep();
        let kubeconfig = kube.kubeconfig(&dir);
        env.push((
            "KUBECONFIG".into(),
            kubeconfig.to_string_lossy().into_owned(),
        ));
        let h = Harness::start_with_env(env).await;
        Cluster {
            kube,
            kubeconfig,
            h,
        }
    }

    /// runway.toml for `api` in namespace `production`, with `more` in [kubernetes].
    fn config(&self, more: &str) -> PathBuf {
        let path = self.h.dir.path().join("runway.toml");
        std::fs::write(
            &path,
            format!(
                "[service]\nname = \"api\"\n\n[kubernetes]\nnamespace = \"production\"\nimage = \
                 \"registry.example.com/api:{{version}}\"\nreplicas = 3\nport = 8000\n\
                 progress_deadline = \"3s\"\nenv = {{ APP_ENV = \"test\" }}\n{more}\n"
            ),
        )
        .unwrap();
        path
    }

    async fn deploy(&self, version: &str) -> Output {
        let config = self.config("");
        self.h
            .runway(&["-f", config.to_str().unwrap(), "deploy", version])
            .await
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--namespace", "production"])
            .args(args)
            .output()
            .expect("kubectl is installed (Debian: kubernetes-client; scripts/test installs it)");
        assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl rollout history`'s revisions and change causes.
    fn kubectl_history(&self) -> Vec<(u64, String)> {
        self.kubectl(&["rollout", "history", "deployment/api"])
            .lines()
            .filter_map(|line| {
                let (revision, cause) = line.trim().split_once(char::is_whitespace)?;
                Some((revision.parse().ok()?, cause.trim().to_string()))
            })
            .collect()
    }

    fn deployment(&self) -> Value {
        self.kube
            .get("deployments", "production", "api")
            .expect("the Deployment exists")
    }

    fn image(&self) -> String {
        self.deployment()["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn last_deployment(history: &[Value]) -> &Value {
    history.first().expect("a deployment in history")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_rolls_through_the_deployment_and_kubectl_agrees() {
    let c = Cluster::start().await;

    let out = c.deploy("v1").await;
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    assert_eq!(c.image(), "registry.example.com/api:v1");
    let d = c.deployment();
    assert_eq!(d["status"]["availableReplicas"], 3);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"],
        serde_json::json!([{"name": "APP_ENV", "value": "test"}])
    );
    let said = text(&out);
    assert!(
        said.contains("deployment \"api\" successfully rolled out (revision 1)"),
        "{said}"
    );
    assert_eq!(
        c.kubectl(&["rollout", "status", "deployment/api", "--timeout=10s"])
            .trim(),
        "deployment \"api\" successfully rolled out"
    );

    // validate and plan speak of the cluster, not of a proxy or local processes.
    let config = c.config("");
    let file = config.to_str().unwrap();
    let said = text(&c.h.runway(&["-f", file, "validate"]).await);
    assert!(
        said.contains("on Kubernetes (Deployment production/api)"),
        "{said}"
    );
    let said = text(&c.h.runway(&["-f", file, "plan", "v2"]).await);
    assert!(
        said.contains("now serving: v1")
            && said.contains("write v2 into Deployment production/api (image, env, 3 replicas)")
            && !said.contains("loopback"),
        "{said}"
    );

    let out = c.deploy("v2").await;
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    assert_eq!(c.image(), "registry.example.com/api:v2");
    assert_eq!(
        c.kubectl_history(),
        [
            (1, "runway: v1 (deployment #1)".to_string()),
            (2, "runway: v2 (deployment #2)".to_string())
        ]
    );
    // kubectl reads the same Deployment runway wrote.
    let json: Value =
        serde_json::from_str(&c.kubectl(&["get", "deployment", "api", "-o", "json"])).unwrap();
    assert_eq!(
        json["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(json["status"]["updatedReplicas"], 3);

    // `runway status` shows the pods as the cluster has them.
    let status = c.h.status().await;
    let pods = status["services"][0]["pods"]
        .as_array()
        .expect("pods")
        .clone();
    assert_eq!(pods.len(), 3, "{status:#}");
    for pod in &pods {
        assert_eq!(pod["version"], "v2", "{pod}");
        assert_eq!(pod["ready"], true, "{pod}");
        assert!(pod["node"].as_str().unwrap().starts_with("node-"), "{pod}");
    }
    assert_pod_view_is_documented(&pods[0]);
    let table = text(&c.h.runway(&["status"]).await);
    assert!(table.contains("pod") && table.contains("node-"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_past_its_progress_deadline_is_undone_to_the_previous_revision() {
    let c = Cluster::start().await;
    assert!(c.deploy("v1").await.status.success());
    assert!(c.deploy("v2").await.status.success());

    // v3's pods never become ready: the Deployment passes its 3 s progress deadline.
    c.kube.break_image("api:v3");
    let started = Instant::now();
    let out = c.deploy("v3").await;
    assert!(!out.status.success(), "v3 must fail: {}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(30));
    let history = c.h.history().await;
    let v3 = last_deployment(&history);
    assert_eq!(v3["version"], "v3");
    assert_eq!(v3["status"], "failed");
    assert!(
        v3["reason"]
            .as_str()
            .unwrap()
            .contains("deployment \"api\" exceeded its progress deadline"),
        "{v3}"
    );
    // Undone as `kubectl rollout undo` does: v2's ReplicaSet is the newest revision again,
    // with every pod of v2 ready and none of v3's left.
    assert_eq!(c.image(), "registry.example.com/api:v2");
    let d = c.deployment();
    assert_eq!(d["status"]["availableReplicas"], 3);
    assert_eq!(d["status"]["replicas"], 3);
    assert_eq!(
        c.kubectl_history(),
        [
            (1, "runway: v1 (deployment #1)".to_string()),
            (3, "runway: v3 (deployment #3)".to_string()),
            (4, "runway: v2 (deployment #2)".to_string())
        ]
    );
    assert_eq!(
        c.kubectl(&["rollout", "status", "deployment/api", "--timeout=10s"])
            .trim(),
        "deployment \"api\" successfully rolled out"
    );

    // `--to-revision` names the Deployment's revisions: 1 is v1.
    let out =
        c.h.runway(&["rollback", "--service", "api", "--to-revision", "1"])
            .await;
    assert!(out.status.success(), "rollback: {}", text(&out));
    assert_eq!(c.image(), "registry.example.com/api:v1");
    let history = c.kubectl_history();
    assert_eq!(
        history.last().unwrap(),
        &(5, "runway: v1 (deployment #1)".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_and_expired_watches_do_not_stop_a_rollout() {
    let c = Cluster::start().await;
    assert!(c.deploy("v1").await.status.success());
    // Another writer gets in before each of runway's next two writes; the next two watches
    // find their version compacted away.
    c.kube.conflict_next_writes(2);
    c.kube.expire_next_watches(2);
    let out = c.deploy("v2").await;
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    assert_eq!(c.image(), "registry.example.com/api:v2");
    let (gone, conflicts) = c.kube.faults();
    assert_eq!(conflicts, 2, "runway met the conflicts");
    assert_eq!(gone, 2, "runway met the expired watches");
    // The other writer's change is kept: runway wrote over the newest version.
    assert!(c.deployment()["metadata"]["labels"]["fake.example/touched"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_rollout_resumes_following_it() {
    let mut c = Cluster::start().await;
    assert!(c.deploy("v1").await.status.success());
    c.kube.ready_after(Duration::from_secs(2));
    let config = c.config("");
    let out =
        c.h.runway(&["-f", config.to_str().unwrap(), "deploy", "v2", "--detach"])
            .await;
    assert!(out.status.success(), "{}", text(&out));
    // Wait until the cluster has the new template, then kill -9 the server.
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.image() != "registry.example.com/api:v2" {
        assert!(Instant::now() < deadline, "v2 never reached the Deployment");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let generation = c.deployment()["metadata"]["generation"].clone();
    c.h.kill9_server();
    c.h.start_server().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let history = c.h.history().await;
        let v2 = last_deployment(&history);
        if v2["status"] != "running" {
            assert_eq!(v2["status"], "succeeded", "{v2}");
            break;
        }
        assert!(Instant::now() < deadline, "v2 never finished: {v2}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        c.deployment()["metadata"]["generation"],
        generation,
        "the resumed deployment followed the rollout; it did not write the Deployment again"
    );
    assert_eq!(c.deployment()["status"]["availableReplicas"], 3);

    // A server that starts again with nothing under way writes nothing to the cluster: its
    // pods never stopped, and its owners may have changed the Deployment meanwhile (here, as
    // `kubectl set image` would), which runway must not undo behind their back.
    let writes = |kube: &FakeKube| {
        kube.requests()
            .iter()
            .filter(|r| !r.starts_with("GET"))
            .count()
    };
    c.h.stop_server();
    c.kube.edit("deployments", "production", "api", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] =
            serde_json::json!("registry.example.com/api:hotfix");
    });
    let before = writes(&c.kube);
    c.h.start_server().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        writes(&c.kube),
        before,
        "{:#?}",
        &c.kube.requests()[before..]
    );
    assert_eq!(c.image(), "registry.example.com/api:hotfix");
}

/// docs/json.md's PodView table lists exactly the fields `status --json` prints for a pod.
fn assert_pod_view_is_documented(pod: &Value) {
    let doc = include_str!("../../../../docs/json.md");
    let table = doc
        .split("### PodView")
        .nth(1)
        .expect("docs/json.md has ### PodView")
        .split("\n### ")
        .next()
        .unwrap();
    let documented: std::collections::BTreeSet<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split_once('`').map(|(f, _)| f))
        .collect();
    let printed: std::collections::BTreeSet<&str> = pod
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(documented, printed, "docs/json.md's PodView against {pod}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_as_jobs_of_the_release_and_leave_no_job_behind() {
    let c = Cluster::start().await;
    let config = c.config(
        "\n[hooks.migrate]\ncommand = [\"migrate\", \"up\"]\nundo = [\"migrate\", \"down\"]\ntimeout = \"20s\"\n",
    );
    let out =
        c.h.runway(&["-f", config.to_str().unwrap(), "deploy", "v1"])
            .await;
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    let out =
        c.h.runway(&["-f", config.to_str().unwrap(), "logs", "--deployment", "1"])
            .await;
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        printed.contains("ran: migrate up") && printed.contains("RUNWAY_VERSION=v1"),
        "the migration's output, from its Job's pod: {}",
        text(&out)
    );
    // The Job ran the release's image, and is gone with its pod.
    let jobs = c.kube.requests();
    assert!(
        jobs.iter()
            .any(|r| r.starts_with("POST /apis/batch/v1/namespaces/production/jobs")),
        "{jobs:#?}"
    );
    assert!(c.kube.list("jobs", "production").is_empty());
    assert!(c
        .kube
        .list("pods", "production")
        .iter()
        .all(|p| p["metadata"]["labels"]["job-name"].is_null()));

    // A failing migration fails the deployment before the Deployment changes.
    c.kube
        .script_job("migrate", 3, "error: relation \"agents\" already exists\n");
    let out =
        c.h.runway(&["-f", config.to_str().unwrap(), "deploy", "v2"])
            .await;
    assert!(!out.status.success(), "deploy v2: {}", text(&out));
    assert_eq!(c.image(), "registry.example.com/api:v1", "v1 still runs");
    let history = c.h.history().await;
    let v2 = last_deployment(&history);
    assert!(
        v2["reason"]
            .as_str()
            .unwrap()
            .contains("exited with status 3"),
        "{v2}"
    );
    let out =
        c.h.runway(&["-f", config.to_str().unwrap(), "logs", "--deployment", "2"])
            .await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("relation \"agents\" already exists"),
        "{}",
        text(&out)
    );

    // A hook past its timeout has its Job deleted.
    let slow = c.config(
        "\n[hooks.migrate]\ncommand = [\"sleep\", \"3600\"]\nundo = [\"migrate\", \"down\"]\ntimeout = \"2s\"\n",
    );
    let out =
        c.h.runway(&["-f", slow.to_str().unwrap(), "deploy", "v3"])
            .await;
    assert!(!out.status.success(), "deploy v3: {}", text(&out));
    let history = c.h.history().await;
    assert!(
        last_deployment(&history)["reason"]
            .as_str()
            .unwrap()
            .contains("timed out after 2s"),
        "{history:#?}"
    );
    assert!(
        c.kube.list("jobs", "production").is_empty(),
        "the Job was deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_stops_every_pod_before_the_migration_job_runs() {
    let c = Cluster::start().await;
    let config = c.config(
        "\n[strategy]\nkind = \"recreate\"\n\n[hooks.migrate]\ncommand = [\"migrate\", \"up\"]\nundo = [\"migrate\", \"down\"]\ntimeout = \"20s\"\n",
    );
    let deploy = |version: &'static str| {
        let config = config.clone();
        let h = &c.h;
        async move {
            h.runway(&["-f", config.to_str().unwrap(), "deploy", version])
                .await
        }
    };
    assert!(deploy("v1").await.status.success());
    let before = c.kube.requests().len();
    let out = deploy("v2").await;
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    let requests = c.kube.requests()[before..].to_vec();
    let at = |what: &str| {
        requests
            .iter()
            .position(|r| r.starts_with(what))
            .unwrap_or_else(|| panic!("no {what} in {requests:#?}"))
    };
    let scaled_down = at("PUT /apis/apps/v1/namespaces/production/deployments/api");
    let job = at("POST /apis/batch/v1/namespaces/production/jobs");
    let rolled = requests
        .iter()
        .rposition(|r| r.starts_with("PUT /apis/apps/v1/namespaces/production/deployments/api"))
        .unwrap();
    assert!(scaled_down < job && job < rolled, "{requests:#?}");
    assert!(
        text(&out).contains("to scale to 0"),
        "the journal follows the scale-down: {}",
        text(&out)
    );
    assert_eq!(c.image(), "registry.example.com/api:v2");
    assert_eq!(c.deployment()["status"]["availableReplicas"], 3);
    assert_eq!(c.deployment()["spec"]["replicas"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_the_nodes_logs_come_from_the_pod_log_api_and_scale_sets_replicas() {
    let c = Cluster::start().await;
    let config = c.config("");
    let file = config.to_str().unwrap();
    assert!(c.deploy("v1").await.status.success());
    let pods = c.h.status().await["services"][0]["pods"].clone();
    let first = pods[0]["name"].as_str().unwrap().to_string();

    // logs: every pod's, from the cluster, named by pod.
    let out = c.h.runway(&["-f", file, "logs", "-n", "5"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        printed.contains(&format!("{first} | {first} serving on :8000")),
        "{printed}"
    );
    assert_eq!(
        printed.lines().filter(|l| l.contains("serving on")).count(),
        3,
        "{printed}"
    );
    let out =
        c.h.runway(&["-f", file, "logs", "--node", &first, "--json"])
            .await;
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !lines.is_empty()
            && lines
                .iter()
                .all(|l| l["replica"] == first.as_str() && l["version"] == "v1")
    );

    let out = c.h.runway(&["-f", file, "nodes", "list"]).await;
    assert!(
        text(&out).contains(&first),
        "nodes list shows the pods: {}",
        text(&out)
    );

    // nodes restart deletes the pod; the ReplicaSet replaces it.
    let out = c.h.runway(&["-f", file, "nodes", "restart", &first]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("deleted"), "{}", text(&out));
    assert!(c.kube.get("pods", "production", &first).is_none());
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.deployment()["status"]["availableReplicas"] != 3 {
        assert!(
            Instant::now() < deadline,
            "never replaced: {}",
            c.deployment()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = c.h.runway(&["-f", file, "nodes", "stop", &first]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("runway scale"), "{}", text(&out));

    // scale: the Deployment's replicas, the same template.
    let generation = c.deployment()["metadata"]["generation"].as_i64().unwrap();
    let out = c.h.runway(&["-f", file, "scale", "--count", "5"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let d = c.deployment();
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(d["status"]["availableReplicas"], 5);
    assert_eq!(
        d["metadata"]["generation"].as_i64().unwrap(),
        generation + 1
    );
    assert_eq!(
        c.kubectl_history().len(),
        1,
        "scaling is no new revision: {:?}",
        c.kubectl_history()
    );
}

/// `runway server --leader-lease`: a second server waits while the first holds the Lease,
/// and takes over (resuming what was under way) once the first is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_never_drive_at_once_the_standby_takes_over_the_lease() {
    let kube = FakeKube::start();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path());
    let state = dir.path().join("state");
    let spawn = |name: &str| {
        let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
        Command::new(RUNWAY)
            .args(["server", "--state-dir"])
            .arg(&state)
            .args([
                "--leader-lease",
                "ops/runway",
                "--leader-lease-duration",
                "2s",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env("POD_NAME", name)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    let log = |name: &str| {
        std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap_or_default()
    };
    let wait_for = |name: &str, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !log(name).contains(what) {
            assert!(
                Instant::now() < deadline,
                "{name} never said {what:?}:\n{}",
                log(name)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let holder = || {
        kube.get("leases", "ops", "runway")
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
            .unwrap_or_default()
    };

    let mut a = spawn("runway-a");
    wait_for("runway-a", "runway server ready");
    assert!(holder().starts_with("runway-a-"), "{}", holder());
    let mut b = spawn("runway-b");
    wait_for(
        "runway-b",
        "runway server waiting: the Lease ops/runway is held by runway-a-",
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !log("runway-b").contains("runway server ready"),
        "the standby must not start while the leader renews:\n{}",
        log("runway-b")
    );

    // The leader dies without a word; within the Lease's 2 s the standby leads.
    a.kill().unwrap();
    a.wait().unwrap();
    let died = Instant::now();
    wait_for("runway-b", "runway server ready");
    assert!(
        died.elapsed() < Duration::from_secs(10),
        "took over after {:?}",
        died.elapsed()
    );
    assert!(holder().starts_with("runway-b-"), "{}", holder());
    let lease = kube.get("leases", "ops", "runway").unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1, "{lease}");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(b.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = b.wait();
}

/// deploy/kubernetes/runway.yaml's Role grants exactly what runway uses: every request runway
/// makes through a whole runbook (leader election, a deployment with a migration Job, a failed
/// rollout and its undo, status, logs, a pod restart, a rollback to a revision, a scale, a
/// recreate, a Gateway API canary aborted, and two blue-green switches) is allowed by one of its
/// rules, and every verb it grants was used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_role_grants_exactly_the_verbs_runway_uses() {
    let c = Cluster::start_with(vec![(
        "RUNWAY_LEADER_LEASE".into(),
        "production/runway".into(),
    )])
    .await;
    let with_hook = c.config(&format!(
        "{BACKUP}\n[hooks.migrate]\ncommand = [\"migrate\", \"up\"]\nundo = [\"migrate\", \"down\"]\ntimeout = \"20s\"\n",
    ));
    c.kube.create(
        "persistentvolumeclaims",
        "production",
        serde_json::json!({"metadata": {"name": "api-backups"}}),
    );
    let file = with_hook.to_str().unwrap().to_string();
    let run = |args: Vec<String>| {
        let h = &c.h;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            h.runway(&args).await
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(run(args(&["-f", &file, "deploy", "v1"]))
        .await
        .status
        .success());
    c.kube.break_image("api:v2");
    assert!(!run(args(&["-f", &file, "deploy", "v2"]))
        .await
        .status
        .success());
    assert!(run(args(&["-f", &file, "deploy", "v3"]))
        .await
        .status
        .success());
    assert!(run(args(&["-f", &file, "status"])).await.status.success());
    assert!(run(args(&["-f", &file, "logs"])).await.status.success());
    let pod = c.h.status().await["services"][0]["pods"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(run(args(&["-f", &file, "nodes", "restart", &pod]))
        .await
        .status
        .success());
    // v1's revision: 3 since v2's failed rollout was undone to it.
    let (v1, _) = c
        .kubectl_history()
        .into_iter()
        .find(|(_, cause)| cause.contains("v1"))
        .unwrap();
    let out = run(args(&[
        "rollback",
        "--service",
        "api",
        "--to-revision",
        &v1.to_string(),
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(run(args(&["-f", &file, "scale", "--count", "2"]))
        .await
        .status
        .success());
    let recreate = c.config("\n[strategy]\nkind = \"recreate\"\n");
    assert!(
        run(args(&["-f", recreate.to_str().unwrap(), "deploy", "v4"]))
            .await
            .status
            .success()
    );
    // A Gateway API canary (no Prometheus answers: it waits), aborted.
    c.kube.create(
        "httproutes",
        "production",
        serde_json::json!({"metadata": {"name": "api"},
            "spec": {"rules": [{"backendRefs": [{"name": "api", "port": 8000}]}]}}),
    );
    let gateway = c.config(
        "prometheus = \"http://127.0.0.1:9\"\ntraffic = \"gateway-api\"\nroute = \"api\"\n\n[strategy]\nkind = \"canary\"\nsteps = [{ weight = 20 }, { weight = 100 }]\n\n[analysis]\ninterval = \"1s\"\nrequests = 'sum(x{version=\"{version}\"})'\n\n[[analysis.metrics]]\nname = \"e\"\nsource = \"prometheus\"\nquery = 'sum(e{version=\"{version}\"})'\nfail_if = \"> 0.05\"\n",
    );
    let out = run(args(&[
        "-f",
        gateway.to_str().unwrap(),
        "deploy",
        "v5",
        "--detach",
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c
        .kube
        .get("httproutes", "production", "api")
        .is_some_and(|r| r["spec"]["rules"][0]["backendRefs"][1]["weight"] == 20)
    {
        assert!(
            Instant::now() < deadline,
            "the route never got the canary's weight"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = run(args(&["abort", "--service", "api"])).await;
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.h.history().await[0]["status"] == "running" {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let blue_green = c.config("\n[strategy]\nkind = \"blue-green\"\nscale_down_delay = \"1s\"\n");
    for version in ["v6", "v7"] {
        let out = run(args(&[
            "-f",
            blue_green.to_str().unwrap(),
            "deploy",
            version,
        ]))
        .await;
        assert!(out.status.success(), "{}", text(&out));
        // The CLI returns at the switch; the scale-down follows.
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.h.history().await[0]["status"] == "running" {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // What runway asked for, as (API group, resource, verb).
    let used: std::collections::BTreeSet<(String, String, String)> = c
        .kube
        .requests()
        .iter()
        .filter_map(|r| rbac_of(r))
        .collect();
    let granted = granted_by_the_shipped_role();
    let missing: Vec<_> = used.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "runway needs, and the Role does not grant: {missing:?}"
    );
    let unused: Vec<_> = granted.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "the Role grants, and runway never used: {unused:?}"
    );
}

/// The (group, resource, verb) a request of the API needs, as RBAC sees it.
fn rbac_of(request: &str) -> Option<(String, String, String)> {
    let (method, target) = request.split_once(' ')?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", "namespaces", _, rest @ ..] => ("", rest),
        ["apis", group, _, "namespaces", _, rest @ ..] => (*group, rest),
        _ => return None, // discovery
    };
    let watch = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let (resource, verb) = match (method, rest) {
        ("GET", [resource]) if watch => (resource.to_string(), "watch"),
        ("GET", [resource]) => (resource.to_string(), "list"),
        ("POST", [resource]) => (resource.to_string(), "create"),
        ("GET", [resource, _]) => (resource.to_string(), "get"),
        ("PUT", [resource, _]) => (resource.to_string(), "update"),
        ("PATCH", [resource, _]) => (resource.to_string(), "patch"),
        ("DELETE", [resource, _]) => (resource.to_string(), "delete"),
        ("GET", [resource, _, sub]) => (format!("{resource}/{sub}"), "get"),
        _ => return None,
    };
    Some((group.to_string(), resource, verb.to_string()))
}

fn granted_by_the_shipped_role() -> std::collections::BTreeSet<(String, String, String)> {
    #[derive(serde::Deserialize)]
    struct Doc {
        kind: String,
        #[serde(default)]
        rules: Vec<Rule>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Rule {
        api_groups: Vec<String>,
        resources: Vec<String>,
        verbs: Vec<String>,
    }
    let text = include_str!("../../../../deploy/kubernetes/runway.yaml");
    let mut granted = std::collections::BTreeSet::new();
    for doc in text.split("\n---\n") {
        let doc: Doc = serde_saphyr::from_str(doc).expect("a YAML document");
        if doc.kind != "Role" {
            continue;
        }
        for rule in doc.rules {
            for group in &rule.api_groups {
                for resource in &rule.resources {
                    for verb in &rule.verbs {
                        granted.insert((group.clone(), resource.clone(), verb.clone()));
                    }
                }
            }
        }
    }
    assert!(!granted.is_empty(), "the manifest has a Role with rules");
    granted
}

/// The pods Service `name`'s selector picks, as (version, ready).
fn selected_pods(c: &Cluster, name: &str) -> Vec<(String, bool)> {
    let service = c
        .kube
        .get("services", "production", name)
        .expect("the Service");
    let selector = service["spec"]["selector"].as_object().unwrap().clone();
    let mut pods: Vec<(String, bool)> = c
        .kube
        .list("pods", "production")
        .into_iter()
        .filter(|p| {
            selector
                .iter()
                .all(|(k, v)| &p["metadata"]["labels"][k.as_str()] == v)
        })
        .map(|p| {
            (
                p["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                p["status"]["conditions"][0]["status"] == "True",
            )
        })
        .collect();
    pods.sort();
    pods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switches_the_service_selector_between_slot_deployments() {
    let c = Cluster::start().await;
    let config = c.config("\n[strategy]\nkind = \"blue-green\"\nscale_down_delay = \"1s\"\n");
    let file = config.to_str().unwrap();
    assert!(c
        .h
        .runway(&["-f", file, "deploy", "v1"])
        .await
        .status
        .success());
    let out = c.h.runway(&["-f", file, "deploy", "v2"]).await;
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("Service production/api-preview (slot blue)"),
        "{said}"
    );
    let v2 = ("registry.example.com/api:v2".to_string(), true);
    assert_eq!(
        selected_pods(&c, "api"),
        vec![v2.clone(); 3],
        "the Service selects v2's slot"
    );
    assert_eq!(selected_pods(&c, "api-preview"), vec![v2.clone(); 3]);
    // v1's Deployment is scaled to zero after the delay (the CLI returns at the switch);
    // kubectl sees the same selector.
    let scaled_down = |name: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let d = c.kube.get("deployments", "production", name).unwrap();
            if d["spec"]["replicas"] == 0 && d["status"]["replicas"] == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "{name} never scaled down: {d}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    scaled_down("api");
    // The operation ends once the pods are gone too.
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.h.history().await[0]["status"] == "running" {
        assert!(Instant::now() < deadline, "deployment #2 never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let service: Value =
        serde_json::from_str(&c.kubectl(&["get", "service", "api", "-o", "json"])).unwrap();
    assert_eq!(service["spec"]["selector"]["runway.dev/slot"], "blue");

    let out = c.h.runway(&["-f", file, "deploy", "v3"]).await;
    assert!(out.status.success(), "deploy v3: {}", text(&out));
    assert_eq!(
        selected_pods(&c, "api"),
        vec![("registry.example.com/api:v3".to_string(), true); 3]
    );
    scaled_down("api-blue");
    assert_eq!(
        c.kubectl(&["rollout", "status", "deployment/api-green", "--timeout=10s"])
            .trim(),
        "deployment \"api-green\" successfully rolled out"
    );
}

/// What the releases' pods would export, served for Prometheus to scrape: per version, 50
/// requests a second since the test started, and the version's share of them as errors.
fn serve_release_metrics(error_rates: &'static [(&'static str, f64)]) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let started = Instant::now();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let seconds = started.elapsed().as_secs_f64();
            let mut body = String::from(
                "# TYPE app_requests_total counter\n# TYPE app_errors_total counter\n",
            );
            for (version, errors) in error_rates {
                let requests = (50.0 * seconds).floor();
                body += &format!("app_requests_total{{version=\"{version}\"}} {requests}\n");
                body += &format!(
                    "app_errors_total{{version=\"{version}\"}} {}\n",
                    (requests * errors).floor()
                );
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_is_judged_on_a_real_prometheus_by_replica_ratio() {
    let c = Cluster::start().await;
    let metrics = serve_release_metrics(&[("v1", 0.0), ("v2", 0.0), ("v3", 0.3)]);
    let prom = super::prometheus::start_prometheus(c.h.dir.path(), &metrics.to_string()).await;
    let config = c.config(&format!(
        r#"prometheus = "{}"

[strategy]
kind = "canary"
steps = [{{ weight = 34, pause = "3s" }}, {{ weight = 100 }}]

[analysis]
interval = "1s"
failure_limit = 2
min_requests = 10
inconclusive_limit = 30
requests = 'sum(increase(app_requests_total{{version="{{version}}"}}[5s]))'

[[analysis.metrics]]
name = "app-errors"
source = "prometheus"
query = 'sum(rate(app_errors_total{{version="{{version}}"}}[5s])) / sum(rate(app_requests_total{{version="{{version}}"}}[5s]))'
fail_if = "> 0.05"
"#,
        prom.url
    ));
    let file = config.to_str().unwrap();
    assert!(c
        .h
        .runway(&["-f", file, "deploy", "v1"])
        .await
        .status
        .success());

    // A good canary: one pod of three beside two stable ones, judged, promoted.
    let out = c.h.runway(&["-f", file, "deploy", "v2"]).await;
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("replica ratio: 1 of 3 pods run v2: about 33%"),
        "{said}"
    );
    assert_eq!(
        c.image(),
        "registry.example.com/api:v2",
        "the stable Deployment promoted"
    );
    assert_eq!(c.deployment()["spec"]["replicas"], 3);
    let canary = c
        .kube
        .get("deployments", "production", "api-canary")
        .unwrap();
    assert_eq!(
        canary["spec"]["replicas"], 0,
        "the canary Deployment scaled down"
    );

    // A canary with 30% errors: rolled back by the judge, with the number that decided.
    let out = c.h.runway(&["-f", file, "deploy", "v3"]).await;
    assert!(!out.status.success(), "deploy v3: {}", text(&out));
    let history = c.h.history().await;
    let v3 = last_deployment(&history);
    assert_eq!(v3["status"], "rolled_back", "{v3}");
    let reason = v3["reason"].as_str().unwrap();
    assert!(
        reason.contains("app-errors") && reason.contains("> 0.05"),
        "{reason}"
    );
    // The value that decided: about the 30% the pods fail (Prometheus computes it from
    // counters sampled once a second, so it is near 0.3, not exactly).
    let decided: f64 = reason
        .rsplit("app-errors ")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in: {reason}"));
    assert!(
        (0.25..=0.35).contains(&decided),
        "the value that decided: {reason}"
    );
    assert_eq!(c.image(), "registry.example.com/api:v2", "stable untouched");
    let canary = c
        .kube
        .get("deployments", "production", "api-canary")
        .unwrap();
    assert_eq!(canary["spec"]["replicas"], 0);
    assert_eq!(c.deployment()["status"]["availableReplicas"], 3);
}

/// The same runbook against a real cluster (see the README, "Kubernetes"): ignored, because no
/// cluster runs on runway's CI machines. Run with `-- --ignored` and the cluster in
/// `RUNWAY_E2E_KUBECONFIG`; it fails (never passes in silence) when that is not set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kubernetes cluster: RUNWAY_E2E_KUBECONFIG, RUNWAY_E2E_NAMESPACE, RUNWAY_E2E_IMAGE, RUNWAY_E2E_VERSIONS (see the README)"]
async fn real_cluster_runs_the_runbook() {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: the real-cluster suite needs a cluster (see the README, \"Kubernetes\")")
        })
    };
    let kubeconfig = var("RUNWAY_E2E_KUBECONFIG");
    let namespace = var("RUNWAY_E2E_NAMESPACE");
    let image = var("RUNWAY_E2E_IMAGE");
    let versions: Vec<String> = var("RUNWAY_E2E_VERSIONS")
        .split(',')
        .map(str::to_string)
        .collect();
    assert!(
        versions.len() >= 2,
        "RUNWAY_E2E_VERSIONS needs two tags, e.g. 2.39,2.40"
    );
    let port: u16 = std::env::var("RUNWAY_E2E_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let service = format!("runway-e2e-{}", std::process::id());
    let h = Harness::start_with_env(vec![("KUBECONFIG".into(), kubeconfig.clone())]).await;
    let kubectl = |args: &[&str]| {
        let out = Command::new("kubectl")
            .env("KUBECONFIG", &kubeconfig)
            .args(["--namespace", &namespace])
            .args(args)
            .output()
            .expect("kubectl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let config = |strategy: &str, deadline: &str| {
        let path = h.dir.path().join("runway.toml");
        std::fs::write(
            &path,
            format!(
                "[service]\nname = \"{service}\"\n\n[kubernetes]\nnamespace = \"{namespace}\"\nimage = \"{image}\"\nreplicas = 2\nport = {port}\nprogress_deadline = \"{deadline}\"\n\n[strategy]\nkind = \"{strategy}\"\nscale_down_delay = \"5s\"\n"
            ),
        )
        .unwrap();
        path.to_string_lossy().into_owned()
    };
    let deploy = |file: String, version: String| {
        let h = &h;
        async move { h.runway(&["-f", &file, "deploy", &version]).await }
    };
    let image_of = |name: &str| {
        kubectl(&[
            "get",
            "deployment",
            name,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
    };
    // Whatever happens, the test's objects go (a guard: it runs on a failed assertion too).
    struct Cleanup(Box<dyn Fn()>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let _cleanup = {
        let (kubeconfig, namespace, service) =
            (kubeconfig.clone(), namespace.clone(), service.clone());
        Cleanup(Box::new(move || {
            let _ = Command::new("kubectl")
                .env("KUBECONFIG", &kubeconfig)
                .args(["--namespace", &namespace, "delete", "deployment,service"])
                .args([
                    "-l",
                    &format!("runway.dev/service={service}"),
                    "--wait=false",
                ])
                .output();
        }))
    };
    {
        let rolling = config("rolling", "120s");
        for v in &versions[..2] {
            let out = deploy(rolling.clone(), v.clone()).await;
            assert!(out.status.success(), "deploy {v}: {}", text(&out));
            assert_eq!(image_of(&service), image.replace("{version}", v));
        }
        assert!(kubectl(&[
            "rollout",
            "status",
            &format!("deployment/{service}"),
            "--timeout=60s"
        ])
        .contains("successfully rolled out"));
        // A tag that does not exist never becomes ready: the rollout passes its deadline and
        // is undone to the previous revision.
        let failing = config("rolling", "30s");
        let out = deploy(failing, "0.0.0-does-not-exist".into()).await;
        assert!(!out.status.success(), "{}", text(&out));
        assert_eq!(image_of(&service), image.replace("{version}", &versions[1]));
        let history = kubectl(&["rollout", "history", &format!("deployment/{service}")]);
        let first = history
            .lines()
            .find(|l| l.contains(&format!("runway: {} ", versions[0])))
            .and_then(|l| l.split_whitespace().next())
            .expect("the first release's revision")
            .to_string();
        let out = h
            .runway(&["rollback", "--service", &service, "--to-revision", &first])
            .await;
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(image_of(&service), image.replace("{version}", &versions[0]));
        // Blue-green: the Service's selector picks the new slot.
        let blue_green = config("blue-green", "120s");
        let out = deploy(blue_green, versions[1].clone()).await;
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            kubectl(&[
                "get",
                "service",
                &service,
                "-o",
                "jsonpath={.spec.selector.runway\\.dev/slot}"
            ]),
            "blue"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_api_canary_shifts_the_httproute_weights_step_by_step() {
    let c = Cluster::start().await;
    // The route the team's Gateway serves the service by.
    c.kube.create(
        "httproutes",
        "production",
        serde_json::json!({"metadata": {"name": "api"},
            "spec": {"parentRefs": [{"name": "public"}], "hostnames": ["api.example.com"],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": [{"name": "api", "port": 8000}]}]}}),
    );
    let metrics = serve_release_metrics(&[("v1", 0.0), ("v2", 0.0)]);
    let prom = super::prometheus::start_prometheus(c.h.dir.path(), &metrics.to_string()).await;
    let config = c.config(&format!(
        r#"prometheus = "{}"
traffic = "gateway-api"
route = "api"

[strategy]
kind = "canary"
steps = [{{ weight = 20, pause = "3s" }}, {{ weight = 100 }}]

[analysis]
interval = "1s"
min_requests = 10
inconclusive_limit = 30
requests = 'sum(increase(app_requests_total{{version="{{version}}"}}[5s]))'

[[analysis.metrics]]
name = "app-errors"
source = "prometheus"
query = 'sum(rate(app_errors_total{{version="{{version}}"}}[5s])) / sum(rate(app_requests_total{{version="{{version}}"}}[5s]))'
fail_if = "> 0.05"
"#,
        prom.url
    ));
    let file = config.to_str().unwrap().to_string();
    assert!(c
        .h
        .runway(&["-f", &file, "deploy", "v1"])
        .await
        .status
        .success());
    let weights = || {
        let route = c.kube.get("httproutes", "production", "api").unwrap();
        let refs = route["spec"]["rules"][0]["backendRefs"].clone();
        (
            refs[0]["weight"].as_u64(),
            refs[1]["weight"].as_u64(),
            route,
        )
    };
    let deploy = {
        let mut cmd = Command::new(RUNWAY);
        cmd.args(["-f", &file, "deploy", "v2"])
            .current_dir(c.h.dir.path())
            .env("RUNWAY_STATE_DIR", c.h.state_path());
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    // During the 20% step the route gives the canary's Service exactly 20.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (stable, canary, route) = weights();
        if (stable, canary) == (Some(80), Some(20)) {
            assert_eq!(
                route["spec"]["rules"][0]["backendRefs"][1]["name"],
                "api-canary"
            );
            assert_eq!(
                route["spec"]["hostnames"][0], "api.example.com",
                "the rest is kept"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never at 20%: {route}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = deploy.await.unwrap();
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    assert_eq!(
        weights().0,
        Some(100),
        "promoted: all to the stable Service, which runs v2"
    );
    assert_eq!(c.image(), "registry.example.com/api:v2");
    let stable = c.kube.get("services", "production", "api-stable").unwrap();
    assert_eq!(stable["spec"]["selector"]["runway.dev/slot"], "main");
    let canary = c.kube.get("services", "production", "api-canary").unwrap();
    assert_eq!(canary["spec"]["selector"]["runway.dev/slot"], "canary");
    assert_eq!(
        c.kube
            .get("deployments", "production", "api-canary")
            .unwrap()["spec"]["replicas"],
        0
    );
}

/// `[hooks.backup]` for `api` on claim `api-backups`: `pg_dump` writes `dump.sql` into the
/// backup, `pg_verify` checks it is there, `pg_restore` reads it back (into `restored`).
fn script_database_jobs(c: &Cluster, restored: std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    c.kube.script_job_with("pg_dump", |run| {
        let Some(dir) = run.host_path(&run.env["RUNWAY_BACKUP_DIR"]) else {
            return (
                1,
                "pg_dump: the backup directory is not on a claim\n".into(),
            );
        };
        let dump = format!("-- database under {}\n", run.env["RUNWAY_PREVIOUS_VERSION"]);
        std::fs::write(dir.join("dump.sql"), dump.repeat(100)).unwrap();
        (0, format!("pg_dump: wrote {}\n", dir.display()))
    });
    c.kube.script_job_with("pg_verify", |run| {
        match run
            .host_path(&run.env["RUNWAY_BACKUP_DIR"])
            .map(|dir| dir.join("dump.sql"))
            .filter(|dump| dump.exists())
        {
            Some(_) => (0, "dump.sql is whole\n".into()),
            None => (1, "pg_verify: no dump.sql\n".into()),
        }
    });
    c.kube.script_job_with("pg_restore", move |run| {
        let dump = run
            .host_path(&run.env["RUNWAY_BACKUP_DIR"])
            .and_then(|dir| std::fs::read_to_string(dir.join("dump.sql")).ok());
        match dump {
            Some(dump) => {
                restored
                    .lock()
                    .unwrap()
                    .push(dump.lines().next().unwrap_or("").to_string());
                (0, "restored\n".into())
            }
            None => (1, "pg_restore: no dump.sql\n".into()),
        }
    });
}

const BACKUP: &str = "backup_claim = \"api-backups\"\n\n[hooks.backup]\ncommand = \
                      [\"pg_dump\"]\nverify = [\"pg_verify\"]\nrestore = [\"pg_restore\"]\nkeep = \
                      2\ntimeout = \"20s\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_live_on_a_claim_and_are_verified_pruned_and_restored_by_jobs() {
    let c = Cluster::start().await;
    let restored = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    script_database_jobs(&c, restored.clone());
    let config = c.config(BACKUP);
    let file = config.to_str().unwrap();

    // Without the claim, nothing changes and the error says what to create.
    let out = c.h.runway(&["-f", file, "deploy", "v1"]).await;
    assert!(!out.status.success(), "deploy v1: {}", text(&out));
    assert!(
        text(&out)
            .contains("PersistentVolumeClaim production/api-backups (backup_claim) does not exist"),
        "{}",
        text(&out)
    );
    assert!(c.kube.get("deployments", "production", "api").is_none());

    c.kube.create(
        "persistentvolumeclaims",
        "production",
        serde_json::json!({"metadata": {"name": "api-backups"},
            "spec": {"accessModes": ["ReadWriteMany"],
                     "resources": {"requests": {"storage": "10Gi"}}}}),
    );
    // A crash left half a backup where deployment 3's goes: it starts clean.
    let claim = c.kube.claim_dir("production", "api-backups");
    std::fs::create_dir_all(claim.join("api/deployment-3")).unwrap();
    std::fs::write(claim.join("api/deployment-3/half.sql"), "-- cut").unwrap();
    for version in ["v1", "v2", "v3"] {
        let out = c.h.runway(&["-f", file, "deploy", version]).await;
        assert!(out.status.success(), "deploy {version}: {}", text(&out));
    }
    let out = c.h.runway(&["backups", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let backups: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<&str> = backups.iter().filter_map(|b| b["state"].as_str()).collect();
    // The failed first attempt's backup never started (the claim check comes first).
    assert_eq!(states, vec!["ok", "ok", "pruned"], "{backups:#?}");
    assert_eq!(
        backups[0]["dir"], "pvc://api-backups/api/deployment-4",
        "{backups:#?}"
    );
    // 100 lines of 21 bytes: 2,100 bytes, 3 KiB as du counts it.
    assert_eq!(backups[0]["size_bytes"], 3 * 1024, "{backups:#?}");
    assert_eq!(backups[2]["size_bytes"], 0, "pruned: {backups:#?}");
    let mut on_claim: Vec<String> = std::fs::read_dir(claim.join("api"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_claim.sort();
    assert_eq!(
        on_claim,
        vec!["deployment-3", "deployment-4"],
        "the pruned backup's files are gone"
    );
    let mut files: Vec<String> = std::fs::read_dir(claim.join("api/deployment-3"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, vec!["dump.sql"], "the half backup was cleared first");

    // The backup deployment 4 took (v2 serving) brings the data and v2 back, by a Job that
    // mounts that backup's directory.
    let id = backups[0]["id"].to_string();
    let before = c.kube.requests().len();
    let out = c.h.runway(&["restore", &id]).await;
    assert!(out.status.success(), "restore: {}", text(&out));
    assert_eq!(
        *restored.lock().unwrap(),
        vec!["-- database under v2".to_string()]
    );
    assert_eq!(c.image(), "registry.example.com/api:v2");
    let job_posts = c.kube.requests()[before..]
        .iter()
        .filter(|r| r.starts_with("POST /apis/batch/v1/namespaces/production/jobs"))
        .count();
    assert_eq!(job_posts, 1, "one restore Job");
    assert!(
        c.kube.list("jobs", "production").is_empty(),
        "no Job is left"
    );
    let out = c.h.runway(&["logs", "--deployment", "5"]).await;
    let logs = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        logs.contains("== restore hook") && logs.contains("restored"),
        "{logs}"
    );

    // A backup that fails its verification stops the deployment before anything changes.
    c.kube
        .script_job("pg_verify", 1, "pg_verify: truncated dump\n");
    let out = c.h.runway(&["-f", file, "deploy", "v4"]).await;
    assert!(!out.status.success(), "deploy v4: {}", text(&out));
    assert!(text(&out).contains("truncated dump"), "{}", text(&out));
    assert_eq!(c.image(), "registry.example.com/api:v2");
    let out = c.h.runway(&["backups", "--json"]).await;
    let backups: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(backups[0]["state"], "failed", "{backups:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_on_a_cluster_without_a_claim_is_refused_where_it_is_written() {
    let c = Cluster::start().await;
    let config = c.config("\n[hooks.backup]\ncommand = [\"pg_dump\"]\n");
    let out =
        c.h.runway(&["-f", config.to_str().unwrap(), "deploy", "v1"])
            .await;
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("runway.toml:") && said.contains("needs a PersistentVolumeClaim"),
        "{said}"
    );
    assert!(said.contains("backup_claim"), "{said}");
    assert!(c.kube.requests().is_empty(), "nothing reached the cluster");
}
