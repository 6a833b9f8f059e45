//! Issue 12: releases as Docker containers, against this machine's real Docker Engine.
//!
//! No registry is reachable here, so the test builds its own image: the runway binary (whose
//! `demo-app` is the app) and the shared libraries it links, imported as a root filesystem
//! (`docker import`) and tagged once per version. Without a daemon the test fails with the
//! command that starts one; it never skips in silence.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use runway_demo_app::load::Load;

use super::harness::*;

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI is installed (Debian: docker.io)")
}

fn require_docker() {
    let out = docker(&["version", "--format", "{{.Server.Version}}"]);
    assert!(
        out.status.success(),
        "the Docker tests need a running Docker Engine: start it with \
         `sudo systemctl start docker` (or `sudo dockerd &`)\n{}",
        text(&out)
    );
}

/// The demo app as an image `repo:version` for each of `versions`; removed when dropped.
/// Make it before the harness, so that it is dropped after it: the server stops (and
/// removes its containers) before the image goes.
struct DemoImage {
    repo: String,
    versions: Vec<String>,
    _dir: tempfile::TempDir,
}

impl DemoImage {
    fn build(versions: &[&str]) -> DemoImage {
        Self::build_at("runway", versions)
    }

    /// The same image with the binary at `/<path>` instead of `/runway`: another image, for a
    /// hook that names its own.
    fn build_at(path: &str, versions: &[&str]) -> DemoImage {
        Self::build_with(path, &[], versions)
    }

    /// With `extra` programs of this machine (and the libraries they link) at their own paths.
    fn build_with(path: &str, extra: &[&Path], versions: &[&str]) -> DemoImage {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // One repository per test: two tests of one run never remove each other's image.
        static BUILT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = BUILT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let repo = format!("runway-e2e-demo-{}-{n}", std::process::id());
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
        let binary = rootfs.join(path);
        std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
        std::fs::copy(RUNWAY, binary).unwrap();
        // Who runs what: psql looks its user up.
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/false\n").unwrap();
        for program in extra {
            let target = rootfs.join(program.strip_prefix("/").unwrap());
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(program, &target).unwrap();
        }
        // The libraries the binaries link, where the loader looks for them.
        let binaries = std::iter::once(Path::new(RUNWAY)).chain(extra.iter().copied());
        for binary in binaries {
            copy_linked_libraries(binary, &rootfs);
        }
        let tar = dir.join("rootfs.tar");
        pack(&rootfs, &tar);
        let first = format!("{repo}:{}", versions[0]);
        let out = docker(&["import", tar.to_str().unwrap(), &first]);
        assert!(out.status.success(), "docker import: {}", text(&out));
        for version in &versions[1..] {
            let out = docker(&["tag", &first, &format!("{repo}:{version}")]);
            assert!(out.status.success(), "docker tag: {}", text(&out));
        }
        DemoImage {
            repo,
            versions: versions.iter().map(|v| v.to_string()).collect(),
            _dir: tmp,
        }
    }
}

/// Copies the shared libraries `binary` links (as ldd finds them) into `rootfs`, at the
/// paths where the loader looks for them.
fn copy_linked_libraries(binary: &Path, rootfs: &Path) {
    let ldd = Command::new("ldd").arg(binary).output().unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|word| word.starts_with('/'))
            .map(Path::new);
        if let Some(path) = path {
            let target = rootfs.join(path.strip_prefix("/").unwrap());
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(path, &target).unwrap();
        }
    }
}

/// `rootfs` as the tar archive `tar`, for `docker import`.
fn pack(rootfs: &Path, tar: &Path) {
    let packed = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .arg("-cf")
        .arg(tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(packed.success());
}

impl Drop for DemoImage {
    fn drop(&mut self) {
        for version in &self.versions {
            let _ = docker(&["rmi", "-f", &format!("{}:{version}", self.repo)]);
        }
    }
}

/// The service's containers, running or not: (id, the release label), sorted.
fn containers(service: &str) -> Vec<(String, String)> {
    // `-a`: a stopped container left behind counts too.
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=runway.service={service}"),
        "--format",
        "{{.ID}} {{.Label \"runway.release\"}}",
    ]);
    assert!(out.status.success(), "docker ps: {}", text(&out));
    let mut list: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, release)| (id.to_string(), release.to_string()))
        .collect();
    list.sort();
    list
}

/// Waits until `service`'s containers are as `done` says (looking every 100 ms, at most
/// `within` seconds) and returns them; fails saying `what` and what they were.
async fn containers_until(
    service: &str,
    within: u64,
    what: &str,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let started = Instant::now();
    loop {
        let now = containers(service);
        if done(&now) {
            return now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(within),
            "{what}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config(service: &str, listen: std::net::SocketAddr, repo: &str) -> String {
    format!(
        r#"[service]
name = "{service}"
listen = "{listen}"

[docker]
image = "{repo}:{{version}}"
port = 8000
replicas = 2
pull = "never"
command = ["/runway", "demo-app", "--host", "0.0.0.0", "--port", "8000", "--version", "{{version}}"]
stop_timeout = "5s"
drain_timeout = "5s"

[health]
path = "/health/ready"
deadline = "30s"

[strategy]
kind = "rolling"
max_surge = 1
max_unavailable = 0
"#
    )
}

#[tokio::test]
async fn containers_deploy_roll_under_load_are_adopted_after_kill_9_and_removed_with_the_service() {
    require_docker();
    let image = DemoImage::build(&["v1", "v2"]);
    let mut h = Harness::start().await;
    let service = format!("dock{}", std::process::id());
    let file = h.dir.path().join("runway.toml");
    // Three containers, as the issue's rolling deploy under load has.
    const REPLICAS: usize = 3;
    std::fs::write(
        &file,
        config(&service, h.listen, &image.repo).replace("replicas = 2", "replicas = 3"),
    )
    .unwrap();
    let file = file.to_str().unwrap().to_string();

    let out = h.runway(&["-f", &file, "deploy", "v1"]).await;
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    assert!(
        text(&out).contains(&format!("image {}:v1 is sha256:", image.repo)),
        "the deployment says which image it runs: {}",
        text(&out)
    );
    let v1 = containers(&service);
    assert_eq!(v1.len(), REPLICAS, "{v1:?}");
    assert!(v1.iter().all(|(_, release)| release == "v1"), "{v1:?}");
    let (status, version, _) = h.get("/").await;
    assert_eq!((status, version.as_str()), (200, "v1"));
    // `status` names each replica's container.
    let status = h.status().await;
    let mut shown: Vec<String> = status["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["container"].as_str().unwrap_or("none").to_string())
        .collect();
    shown.sort();
    let ids: Vec<String> = v1.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(shown, ids, "{status}");
    let runs = image_of(&v1[0].0);
    for replica in status["services"][0]["replicas"].as_array().unwrap() {
        let shown = replica["image"].as_str().unwrap_or_default();
        assert!(
            shown.starts_with("sha256:") && runs.starts_with(shown),
            "status names the image id the container runs: {shown} vs {runs}"
        );
    }

    // A rolling update to v2 under steady load: no request fails.
    let load = Load::start(h.listen, "/", 4, 200);
    let out = h.runway(&["-f", &file, "deploy", "v2"]).await;
    let seen = load.stop().await;
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    assert_eq!(
        seen.failed, 0,
        "failed requests during the update: {seen:?}"
    );
    assert!(seen.ok > 0);
    let v2 = containers(&service);
    assert_eq!(v2.len(), REPLICAS, "{v2:?}");
    assert!(v2.iter().all(|(_, release)| release == "v2"), "{v2:?}");

    // An image that is not there fails the deployment before anything changes.
    let out = h.runway(&["-f", &file, "deploy", "v3"]).await;
    assert!(
        !out.status.success(),
        "deploy v3 without its image: {}",
        text(&out)
    );
    assert!(
        text(&out).contains("is not on this Docker Engine"),
        "the reason names the image: {}",
        text(&out)
    );
    assert_eq!(containers(&service), v2, "nothing changed");

    // A container that dies is started again, like a process.
    let (victim, _) = v2[0].clone();
    assert!(docker(&["kill", &victim]).status.success());
    containers_until(&service, 30, "not restarted", |now| {
        now.len() == REPLICAS && !now.iter().any(|(id, _)| id == &victim)
    })
    .await;
    let v2 = containers(&service);
    let (status, version, _) = h.get("/").await;
    assert_eq!((status, version.as_str()), (200, "v2"));

    // kill -9: the containers outlive the server and the next one adopts them.
    // What the server recorded of each replica: once its status names exactly the running
    // containers (a restart above is recorded).
    let ids: Vec<String> = v2.iter().map(|(id, _)| id.clone()).collect();
    let started = Instant::now();
    let replicas = loop {
        let replicas = h.status().await["services"][0]["replicas"].clone();
        let mut named: Vec<String> = replicas
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["container"].as_str().map(str::to_string))
            .collect();
        named.sort();
        if named == ids {
            break replicas;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "status names {named:?}, running {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    h.kill9_server();
    assert_eq!(containers(&service), v2, "the containers kept running");
    // One replica's container was replaced (a crash and a restart) just before the server
    // died, before it recorded the new id: the next server finds it by its labels.
    let replaced = &replicas[0];
    let (node, port) = (
        replaced["name"].as_str().unwrap(),
        replaced["port"].as_u64().unwrap(),
    );
    let old = replaced["container"].as_str().unwrap();
    assert!(docker(&["rm", "-f", old]).status.success());
    let unrecorded = docker(&[
        "run",
        "-d",
        "--name",
        &format!("runway-{node}"),
        "--label",
        &format!("runway.service={service}"),
        "--label",
        &format!("runway.replica={node}"),
        "--label",
        "runway.release=v2",
        "-p",
        &format!("127.0.0.1:{port}:8000"),
        &format!("{}:v2", image.repo),
        "/runway",
        "demo-app",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--version",
        "v2",
    ]);
    assert!(
        unrecorded.status.success(),
        "docker run: {}",
        text(&unrecorded)
    );
    let v2 = containers(&service);
    assert_eq!(v2.len(), REPLICAS, "{v2:?}");
    // A container of this service that no replica owns (left by a release that no longer
    // exists) is removed by the next server.
    let stray = docker(&[
        "run",
        "-d",
        "--label",
        &format!("runway.service={service}"),
        "--label",
        &format!("runway.replica={service}-999"),
        &format!("{}:v1", image.repo),
        "/runway",
        "demo-app",
        "--port",
        "8000",
    ]);
    assert!(stray.status.success(), "docker run: {}", text(&stray));
    h.start_server().await;
    let started = Instant::now();
    loop {
        let status = h.status().await;
        let replicas = status["services"][0]["replicas"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if replicas.len() == REPLICAS && replicas.iter().all(|r| r["health"] == "healthy") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not adopted: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    containers_until(
        &service,
        20,
        "adopted, not replaced, and the stray removed",
        |now| now == v2.as_slice(),
    )
    .await;
    let (status, version, _) = h.get("/").await;
    assert_eq!((status, version.as_str()), (200, "v2"));

    // `nodes list` shows each container and its image where a process shows a pid.
    let out = h.runway(&["-f", &file, "nodes", "list"]).await;
    assert!(out.status.success(), "nodes list: {}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed.contains("container") && listed.contains("image") && !listed.contains(" pid "),
        "{listed}"
    );
    for (id, _) in &v2 {
        assert!(listed.contains(id.as_str()), "{id} not listed: {listed}");
    }
    // `nodes stop` takes a container out and stops it; `nodes start` brings one back.
    let node = h.status().await["services"][0]["replicas"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let out = h.runway(&["-f", &file, "nodes", "stop", &node]).await;
    assert!(out.status.success(), "nodes stop: {}", text(&out));
    containers_until(
        &service,
        30,
        "the stopped node's container is still there",
        |now| now.len() == REPLICAS - 1,
    )
    .await;
    let (status, version, _) = h.get("/").await;
    assert_eq!((status, version.as_str()), (200, "v2"));
    let out = h.runway(&["-f", &file, "nodes", "start", &node]).await;
    assert!(out.status.success(), "nodes start: {}", text(&out));
    containers_until(&service, 30, "the node did not come back", |now| {
        now.len() == REPLICAS && now.iter().all(|(_, release)| release == "v2")
    })
    .await;

    // The logs come from the containers.
    let out = h.runway(&["-f", &file, "logs", "-n", "5"]).await;
    assert!(out.status.success(), "logs: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("demo-app v2"),
        "{}",
        text(&out)
    );

    // Removing the service stops and removes its containers.
    let out = h.runway(&["service", "remove", &service, "--force"]).await;
    assert!(out.status.success(), "remove: {}", text(&out));
    assert_eq!(containers(&service), Vec::<(String, String)>::new());
}

#[tokio::test]
async fn hooks_of_a_container_release_run_in_one_off_containers_of_its_image() {
    require_docker();
    let image = DemoImage::build(&["v1", "v2"]);
    let h = Harness::start().await;
    let service = format!("hook{}", std::process::id());
    let with_migration = |argv: &str| {
        format!(
            "{}\n[hooks.migrate]\ncommand = {argv}\ntimeout = \"30s\"\n",
            config(&service, h.listen, &image.repo)
        )
    };
    // `/runway` exists only inside the image: a migration that prints its version proves
    // where it ran.
    let file = h.dir.path().join("v1.toml");
    std::fs::write(&file, with_migration(r#"["/runway", "--version"]"#)).unwrap();
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "deploy", "v1"])
        .await;
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "logs", "--deployment", "1"])
        .await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("runway 0.1.0"),
        "the migration's output, from its container: {}",
        text(&out)
    );

    // A hook may name its own image: `/tools/runway` exists only in the tools image.
    let tools = DemoImage::build_at("tools/runway", &["latest"]);
    let file = h.dir.path().join("v1-tools.toml");
    std::fs::write(
        &file,
        format!(
            "{}\n[[hooks.run]]\nat = \"post-deploy\"\nimage = \"{}:latest\"\ncommand = [\"/tools/runway\", \"--version\"]\n",
            with_migration(r#"["/runway", "--version"]"#),
            tools.repo
        ),
    )
    .unwrap();
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "deploy", "v1"])
        .await;
    assert!(
        out.status.success(),
        "redeploy v1 with a tools hook: {}",
        text(&out)
    );
    let history = h.history().await;
    let id = history[0]["id"].as_i64().unwrap().to_string();
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "logs", "--deployment", &id])
        .await;
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        printed.matches("runway 0.1.0").count() >= 2,
        "the migration and the tools hook both ran: {}",
        text(&out)
    );

    // A migration that fails in its container fails the deployment with nothing switched.
    let file = h.dir.path().join("v2.toml");
    std::fs::write(
        &file,
        with_migration(r#"["/runway", "validate", "-f", "/nope.toml"]"#),
    )
    .unwrap();
    let before = containers(&service);
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "deploy", "v2"])
        .await;
    assert!(!out.status.success(), "deploy v2: {}", text(&out));
    assert!(text(&out).contains("migrate"), "{}", text(&out));
    assert_eq!(containers(&service), before, "v1 still serves, alone");
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "logs", "--deployment", "3"])
        .await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nope.toml"),
        "the failed migration's own words: {}",
        text(&out)
    );
    // No one-off container is left behind.
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=runway.service={service}"),
        "--filter",
        "label=runway.task=hook",
        "-q",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
}

#[tokio::test]
async fn a_bad_container_canary_is_rolled_back_by_the_judge() {
    require_docker();
    let image = DemoImage::build(&["v1", "v2"]);
    let h = Harness::start().await;
    let service = format!("canary{}", std::process::id());
    let with_flags = |flags: &str| {
        config(&service, h.listen, &image.repo)
            .replace(
                r#""--version", "{version}"]"#,
                &format!(r#""--version", "{{version}}"{flags}]"#),
            )
            .replace(
                "[strategy]\nkind = \"rolling\"\nmax_surge = 1\nmax_unavailable = 0\n",
                "[strategy]\nkind = \"canary\"\nsteps = [{ weight = 50, pause = \"30s\" }, { weight = 100 }]\n\n[analysis]\ninterval = \"1s\"\nfailure_limit = 2\nmin_requests = 20\n",
            )
    };
    let v1 = h.dir.path().join("v1.toml");
    std::fs::write(&v1, with_flags("")).unwrap();
    let out = h
        .runway(&["-f", v1.to_str().unwrap(), "deploy", "v1"])
        .await;
    assert!(out.status.success(), "deploy v1: {}", text(&out));

    // v2 answers 30% of its requests with a 500.
    let v2 = h.dir.path().join("v2.toml");
    std::fs::write(&v2, with_flags(r#", "--error-rate", "0.3""#)).unwrap();
    let load = Load::start(h.listen, "/", 4, 200);
    let out = h
        .runway(&["-f", v2.to_str().unwrap(), "deploy", "v2"])
        .await;
    let _ = load.stop().await;
    assert!(
        !out.status.success(),
        "a bad canary must not succeed: {}",
        text(&out)
    );
    let history = h.history().await;
    assert_eq!(history[0]["status"], "rolled_back", "{history:?}");
    let reason = history[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("error_rate"),
        "the number that decided: {reason}"
    );
    let left = containers(&service);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|(_, release)| release == "v1"), "{left:?}");
    // Its containers are gone; what they printed is not.
    let out = h
        .runway(&["-f", v2.to_str().unwrap(), "logs", "--version", "v2"])
        .await;
    assert!(out.status.success(), "logs --version v2: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("demo-app v2"),
        "the removed canary's output: {}",
        text(&out)
    );
}

#[tokio::test]
async fn kill_9_during_a_rolling_update_of_containers_resumes_and_leaves_exactly_the_replicas() {
    require_docker();
    let image = DemoImage::build(&["v1", "v2"]);
    let mut h = Harness::start().await;
    let service = format!("resume{}", std::process::id());
    let file = h.dir.path().join("runway.toml");
    // Each replica takes a second and a half to become ready: the update takes a while.
    let slow = config(&service, h.listen, &image.repo).replace(
        r#""--version", "{version}"]"#,
        r#""--version", "{version}", "--slow-start-ms", "1500"]"#,
    );
    std::fs::write(&file, slow).unwrap();
    let file = file.to_str().unwrap().to_string();
    let out = h.runway(&["-f", &file, "deploy", "v1"]).await;
    assert!(out.status.success(), "deploy v1: {}", text(&out));

    let out = h.runway(&["-f", &file, "deploy", "v2", "--detach"]).await;
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    // Once a v2 container runs, the server dies.
    containers_until(&service, 30, "no v2 container", |now| {
        now.iter().any(|(_, release)| release == "v2")
    })
    .await;
    h.kill9_server();
    h.start_server().await;

    let started = Instant::now();
    loop {
        let history = h.history().await;
        if history[0]["status"] != "running" {
            assert_eq!(history[0]["status"], "succeeded", "{history:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "did not finish: {history:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left = containers(&service);
    assert_eq!(left.len(), 2, "exactly the replicas: {left:?}");
    assert!(left.iter().all(|(_, release)| release == "v2"), "{left:?}");
}

#[tokio::test]
async fn blue_green_and_recreate_work_on_containers() {
    require_docker();
    let image = DemoImage::build(&["v1", "v2", "v3"]);
    let h = Harness::start().await;
    let service = format!("bg{}", std::process::id());
    let with_strategy = |strategy: &str| {
        config(&service, h.listen, &image.repo).replace(
            "[strategy]\nkind = \"rolling\"\nmax_surge = 1\nmax_unavailable = 0\n",
            strategy,
        )
    };
    let deploy = |version: &'static str, toml: String| {
        let file = h.dir.path().join(format!("{version}.toml"));
        std::fs::write(&file, toml).unwrap();
        let file = file.to_str().unwrap().to_string();
        let h = &h;
        async move { h.runway(&["-f", &file, "deploy", version]).await }
    };
    let blue_green = "[strategy]\nkind = \"blue-green\"\nscale_down_delay = \"2s\"\n";
    let out = deploy("v1", with_strategy(blue_green)).await;
    assert!(out.status.success(), "deploy v1: {}", text(&out));

    // Blue-green: v2 starts beside v1, all traffic switches at once, v1 goes after the delay.
    let out = deploy("v2", with_strategy(blue_green)).await;
    assert!(out.status.success(), "deploy v2: {}", text(&out));
    let (status, version, _) = h.get("/").await;
    assert_eq!((status, version.as_str()), (200, "v2"));
    containers_until(&service, 30, "v1 not scaled down", |now| {
        now.len() == 2 && now.iter().all(|(_, release)| release == "v2")
    })
    .await;

    // Recreate, under load: the old containers go before the new ones start, and meanwhile
    // every request gets the maintenance page (503), none a connection error.
    let load = Load::start_recording(h.listen, "/", 4, 200, true);
    let out = deploy("v3", with_strategy("[strategy]\nkind = \"recreate\"\n")).await;
    let seen = load.stop().await;
    assert!(out.status.success(), "deploy v3: {}", text(&out));
    let answers: std::collections::BTreeMap<u16, usize> =
        seen.timeline
            .iter()
            .fold(Default::default(), |mut counts, (_, _, status)| {
                *counts.entry(*status).or_default() += 1;
                counts
            });
    assert!(
        answers.keys().all(|status| [200, 503].contains(status)),
        "only answers and the page, no connection error (0): {answers:?}"
    );
    assert!(
        answers.get(&503).is_some_and(|n| *n > 0),
        "the page was never seen: {answers:?}"
    );
    let refused = h.status().await["services"][0]["refused"]["maintenance"]
        .as_u64()
        .unwrap_or_default();
    assert!(
        refused as usize >= answers[&503],
        "{refused} vs {answers:?}"
    );
    let now = containers(&service);
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(now.iter().all(|(_, release)| release == "v3"), "{now:?}");
    let (status, version, _) = h.get("/").await;
    assert_eq!((status, version.as_str()), (200, "v3"));
}

/// The image id a container runs.
fn image_of(container: &str) -> String {
    let out = docker(&["inspect", "--format", "{{.Image}}", container]);
    assert!(out.status.success(), "docker inspect: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn a_rollback_runs_the_image_a_release_ran_even_after_its_tag_moved() {
    require_docker();
    let image = DemoImage::build(&["v1", "v2"]);
    let other = DemoImage::build_at("elsewhere/runway", &["latest"]);
    let h = Harness::start().await;
    let service = format!("pin{}", std::process::id());
    let file = h.dir.path().join("runway.toml");
    std::fs::write(&file, config(&service, h.listen, &image.repo)).unwrap();
    let file = file.to_str().unwrap().to_string();
    let out = h.runway(&["-f", &file, "deploy", "v1"]).await;
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    let ran = image_of(&containers(&service)[0].0);
    let out = h.runway(&["-f", &file, "deploy", "v2"]).await;
    assert!(out.status.success(), "deploy v2: {}", text(&out));

    // The v1 tag now names another image (one without /runway: it would not even start).
    let moved = docker(&[
        "tag",
        &format!("{}:latest", other.repo),
        &format!("{}:v1", image.repo),
    ]);
    assert!(moved.status.success(), "docker tag: {}", text(&moved));

    let out = h.runway(&["rollback", "--service", &service]).await;
    assert!(out.status.success(), "rollback: {}", text(&out));
    let now = containers(&service);
    assert_eq!(now.len(), 2, "{now:?}");
    for (id, release) in &now {
        assert_eq!(release, "v1");
        assert_eq!(
            image_of(id),
            ran,
            "the image v1 ran, not what its tag names now"
        );
    }
}

/// A registry (Debian's docker-registry) on a free loopback port, with one user, in its own
/// directory; stopped when dropped. The Docker Engine trusts registries on 127.0.0.0/8 over
/// plain HTTP.
struct Registry {
    addr: std::net::SocketAddr,
    process: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start(user: &str, password: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd (Debian: apache2-utils)");
        assert!(htpasswd.status.success());
        std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).unwrap();
        let addr = free_addr();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: runway-test\n    path: {}\n",
            dir.path().join("data").display(),
            dir.path().join("htpasswd").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let process = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry (Debian: docker-registry)");
        let started = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            addr,
            process,
            _dir: dir,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// `docker login` into a config dir of its own: what a user's `~/.docker` would hold.
fn login(config_dir: &Path, registry: std::net::SocketAddr, user: &str, password: &str) {
    let out = Command::new("docker")
        .env("DOCKER_CONFIG", config_dir)
        .args([
            "login",
            &registry.to_string(),
            "-u",
            user,
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(password.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "docker login: {}", text(&out));
}

#[tokio::test]
async fn images_are_pulled_with_the_docker_logins_credentials_and_a_refused_one_changes_nothing() {
    require_docker();
    let image = DemoImage::build(&["v1"]);
    let registry = Registry::start("deployer", "s3cret-pw");
    let remote = format!("{}/runway-demo-{}", registry.addr, std::process::id());
    let good = tempfile::tempdir().unwrap();
    login(good.path(), registry.addr, "deployer", "s3cret-pw");
    // Pushed with the good login, then gone from the engine: a deploy must pull it.
    let pushed = format!("{remote}:v1");
    assert!(docker(&["tag", &format!("{}:v1", image.repo), &pushed])
        .status
        .success());
    let push = Command::new("docker")
        .env("DOCKER_CONFIG", good.path())
        .args(["push", &pushed])
        .output()
        .unwrap();
    assert!(push.status.success(), "docker push: {}", text(&push));
    assert!(docker(&["rmi", &pushed]).status.success());

    // A wrong password: the deployment fails before anything changes, in the registry's words.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(
        bad.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "ZGVwbG95ZXI6d3Jvbmc="}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let mut h = Harness::start().await;
    h.stop_server();
    h.server_env = vec![("DOCKER_CONFIG".into(), bad.path().display().to_string())];
    h.start_server().await;
    let service = format!("pull{}", std::process::id());
    let file = h.dir.path().join("runway.toml");
    std::fs::write(
        &file,
        config(&service, h.listen, &remote).replace("pull = \"never\"", "pull = \"missing\""),
    )
    .unwrap();
    let file = file.to_str().unwrap().to_string();
    let out = h.runway(&["-f", &file, "deploy", "v1"]).await;
    assert!(
        !out.status.success(),
        "a refused credential: {}",
        text(&out)
    );
    assert!(
        text(&out).contains("cannot pull image") && text(&out).contains(&pushed),
        "{}",
        text(&out)
    );
    // The registry's own words reach the user.
    assert!(
        text(&out).to_lowercase().contains("unauthorized")
            || text(&out).contains("no basic auth credentials"),
        "the registry's refusal: {}",
        text(&out)
    );
    assert!(containers(&service).is_empty(), "nothing started");

    // With `docker login`'s credentials, it is pulled and serves.
    h.stop_server();
    h.server_env = vec![("DOCKER_CONFIG".into(), good.path().display().to_string())];
    h.start_server().await;
    let out = h.runway(&["-f", &file, "deploy", "v1"]).await;
    assert!(
        out.status.success(),
        "deploy with credentials: {}",
        text(&out)
    );
    assert!(
        text(&out).contains(&format!("pulling {pushed}: "))
            && text(&out).contains(&format!("pulled {pushed} as sha256:")),
        "the pull's progress, as it goes: {}",
        text(&out)
    );
    assert_eq!(containers(&service).len(), 2);
    let (status, version, _) = h.get("/").await;
    assert_eq!((status, version.as_str()), (200, "v1"));
    let first = image_of(&containers(&service)[0].0);
    let first_deploy = h.history().await[0]["id"].as_i64().unwrap();
    assert!(
        text(&out).contains(&format!("({remote}@sha256:")),
        "the registry digest is recorded: {}",
        text(&out)
    );

    // A tag the registry does not have: the deployment fails before any change, in the
    // registry's words.
    let out = h.runway(&["-f", &file, "deploy", "v9"]).await;
    assert!(
        !out.status.success(),
        "deploy of a missing tag: {}",
        text(&out)
    );
    assert!(
        text(&out).contains(&format!("{remote}:v9"))
            && (text(&out).contains("manifest unknown") || text(&out).contains("not found")),
        "{}",
        text(&out)
    );
    assert_eq!(containers(&service).len(), 2, "nothing changed");
    let (status, version, _) = h.get("/").await;
    assert_eq!((status, version.as_str()), (200, "v1"));

    // The tag moves in the registry; with pull = "always" a redeploy follows it.
    let moved = DemoImage::build_at("opt/runway", &["v1"]);
    assert!(docker(&["tag", &format!("{}:v1", moved.repo), &pushed])
        .status
        .success());
    let push = Command::new("docker")
        .env("DOCKER_CONFIG", good.path())
        .args(["push", &pushed])
        .output()
        .unwrap();
    assert!(push.status.success(), "docker push: {}", text(&push));
    assert!(docker(&["rmi", &pushed]).status.success());
    let always = config(&service, h.listen, &remote)
        .replace("pull = \"never\"", "pull = \"always\"")
        .replace("\"/runway\", \"demo-app\"", "\"/opt/runway\", \"demo-app\"");
    std::fs::write(&file, always).unwrap();
    let out = h.runway(&["-f", &file, "deploy", "v1"]).await;
    assert!(
        out.status.success(),
        "redeploy with pull = always: {}",
        text(&out)
    );
    let now = containers(&service);
    assert_eq!(now.len(), 2, "{now:?}");
    for (id, _) in &now {
        assert_ne!(image_of(id), first, "the image the tag names now");
    }

    // The tag was re-pushed with other content, and the image the first deploy ran is gone
    // from this engine: a rollback to that release pulls it back by the digest recorded with
    // it and runs exactly it.
    let removed = docker(&["rmi", "-f", &first]);
    assert!(removed.status.success(), "docker rmi: {}", text(&removed));
    let out = h
        .runway(&[
            "rollback",
            "--service",
            &service,
            "--to-revision",
            &first_deploy.to_string(),
        ])
        .await;
    assert!(out.status.success(), "rollback: {}", text(&out));
    let now = containers(&service);
    assert_eq!(now.len(), 2, "{now:?}");
    for (id, _) in &now {
        assert_eq!(
            image_of(id),
            first,
            "the image the release ran, by its digest"
        );
    }
    let (status, version, _) = h.get("/").await;
    assert_eq!((status, version.as_str()), (200, "v1"));
    h.stop_server();
    // Every image pulled from the registry, the one the tag named first included.
    let pulled = docker(&["images", "-q", "--filter", &format!("reference={remote}")]);
    for id in String::from_utf8_lossy(&pulled.stdout).split_whitespace() {
        let _ = docker(&["rmi", "-f", id]);
    }
}

/// The Docker bridge's gateway: where a container on the default network reaches the host
/// (the subnet's first address, when the network does not name it).
fn bridge_gateway() -> std::net::Ipv4Addr {
    let out = docker(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}}{{end}}",
    ]);
    assert!(
        out.status.success(),
        "docker network inspect: {}",
        text(&out)
    );
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let mut words = printed.split_whitespace();
    let first = words.next().unwrap_or_default();
    if let Ok(gateway) = first.parse() {
        return gateway;
    }
    let subnet = if first.contains('/') {
        first
    } else {
        words.next().unwrap_or_default()
    };
    let network: std::net::Ipv4Addr = subnet
        .split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap_or_else(|_| panic!("the bridge network has no IPv4 subnet: {printed}"));
    let [a, b, c, _] = network.octets();
    std::net::Ipv4Addr::new(a, b, c, 1)
}

/// psql of this machine's PostgreSQL (Debian keeps the real one off PATH).
fn psql() -> std::path::PathBuf {
    std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL (Debian: postgresql)")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/psql"))
        .find(|p| p.exists())
        .expect("psql")
}

#[tokio::test]
async fn a_migration_runs_in_a_container_against_postgresql_and_its_undo_on_rollback() {
    require_docker();
    let gateway = bridge_gateway();
    let pg = runway_testkit::Postgres::start_on("mig-pw", &[gateway]);
    let psql = psql();
    let image = DemoImage::build_with("runway", &[&psql], &["v1", "v2"]);
    let h = Harness::start().await;
    let service = format!("mig{}", std::process::id());
    let table_exists = |table: &str| {
        let out = Command::new(&psql)
            .env("PGPASSWORD", "mig-pw")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "runway",
                "-d",
                "postgres",
            ])
            .args([
                "-tAc",
                &format!("SELECT to_regclass('{table}') IS NOT NULL"),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim() == "t"
    };
    let psql_in = psql.display().to_string();
    let release = |table: &str| {
        format!(
            "{}\n[hooks.migrate]\ncommand = [\"{psql_in}\", \"-v\", \"ON_ERROR_STOP=1\", \"-c\", \"CREATE TABLE {table} (id int)\"]\nundo = [\"{psql_in}\", \"-v\", \"ON_ERROR_STOP=1\", \"-c\", \"DROP TABLE {table}\"]\n",
            config(&service, h.listen, &image.repo).replace(
                "[docker]\n",
                &format!(
                    "[docker]\nenv = {{ PGHOST = \"{gateway}\", PGPORT = \"{}\", PGUSER = \"runway\", PGPASSWORD = \"secret:PGPASSWORD\", PGDATABASE = \"postgres\" }}\n",
                    pg.port
                ),
            )
        )
    };
    // The password is a secret of the service (`runway secrets set`), read by its containers
    // and by the hooks' one-off containers.
    let out = h
        .runway_with_input(
            &["secrets", "set", "PGPASSWORD", "--service", &service],
            "mig-pw",
        )
        .await;
    assert!(out.status.success(), "secrets set: {}", text(&out));
    for (version, table) in [("v1", "atoms"), ("v2", "agents")] {
        let file = h.dir.path().join(format!("{version}.toml"));
        std::fs::write(&file, release(table)).unwrap();
        let out = h
            .runway(&["-f", file.to_str().unwrap(), "deploy", version])
            .await;
        assert!(out.status.success(), "deploy {version}: {}", text(&out));
        assert!(
            table_exists(table),
            "{version}'s migration ran in its container"
        );
    }

    // The rollback gives v1 its traffic back, then v2's undo runs in a container of v2's image.
    let out = h.runway(&["rollback", "--service", &service]).await;
    assert!(out.status.success(), "rollback: {}", text(&out));
    assert!(!table_exists("agents"), "v2's migration was taken back");
    assert!(table_exists("atoms"), "v1's stays");
    let now = containers(&service);
    assert!(now.iter().all(|(_, release)| release == "v1"), "{now:?}");
}

#[tokio::test]
async fn containers_that_never_become_healthy_change_nothing_and_nodes_scale_and_switch_back_work()
{
    require_docker();
    let image = DemoImage::build(&["v1", "v2", "v3"]);
    let h = Harness::start().await;
    let service = format!("ops{}", std::process::id());
    let file = |name: &str, toml: String| {
        let path = h.dir.path().join(name);
        std::fs::write(&path, toml).unwrap();
        path.to_str().unwrap().to_string()
    };
    let base =
        config(&service, h.listen, &image.repo).replace("deadline = \"30s\"", "deadline = \"5s\"");
    let v1 = file("v1.toml", base.clone());
    let out = h.runway(&["-f", &v1, "deploy", "v1"]).await;
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    let before = containers(&service);

    // v2's health check never passes: the deployment fails, v1's containers are untouched and
    // v2's are gone.
    let never = file(
        "v2.toml",
        base.replace(
            r#""--version", "{version}"]"#,
            r#""--version", "{version}", "--fail-health"]"#,
        ),
    );
    let out = h.runway(&["-f", &never, "deploy", "v2"]).await;
    assert!(!out.status.success(), "deploy v2: {}", text(&out));
    assert!(
        text(&out).contains("not healthy within 5s"),
        "{}",
        text(&out)
    );
    assert_eq!(containers(&service), before, "v1's containers, only");

    // Scale to 3, then restart one node: each is a container.
    let out = h.runway(&["-f", &v1, "scale", "--count", "3"]).await;
    assert!(out.status.success(), "scale: {}", text(&out));
    let scaled = containers(&service);
    assert_eq!(scaled.len(), 3);
    assert!(
        before.iter().all(|c| scaled.contains(c)),
        "scaling kept the running containers: {before:?} -> {scaled:?}"
    );
    let node = h.status().await["services"][0]["replicas"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let out = h.runway(&["-f", &v1, "nodes", "restart", &node]).await;
    assert!(out.status.success(), "nodes restart: {}", text(&out));
    let after = containers(&service);
    assert_eq!(after.len(), 3, "{after:?}");
    let new = after.iter().filter(|c| !scaled.contains(c)).count();
    assert_eq!(
        new, 1,
        "one node restarted as a new container: {scaled:?} -> {after:?}"
    );

    // Blue-green, and abort within the scale-down delay: v1's containers serve again at once.
    let blue_green = base.replace(
        "[strategy]\nkind = \"rolling\"\nmax_surge = 1\nmax_unavailable = 0\n",
        "[strategy]\nkind = \"blue-green\"\nscale_down_delay = \"60s\"\n",
    );
    let v3 = file("v3.toml", blue_green);
    let v1_now = containers(&service);
    let out = h.runway(&["-f", &v3, "deploy", "v3"]).await;
    assert!(out.status.success(), "deploy v3: {}", text(&out));
    let (_, version, _) = h.get("/").await;
    assert_eq!(version, "v3");
    let out = h.runway(&["abort", "--service", &service]).await;
    assert!(out.status.success(), "abort: {}", text(&out));
    let started = Instant::now();
    loop {
        let (_, version, _) = h.get("/").await;
        if version == "v1" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not switched back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    containers_until(
        &service,
        30,
        "v1's containers, the same ones, and no v3",
        |now| now == v1_now.as_slice(),
    )
    .await;
}

#[tokio::test]
async fn a_container_that_crashes_under_load_is_restarted_and_the_proxy_retries_its_requests() {
    require_docker();
    let image = DemoImage::build(&["v1"]);
    let h = Harness::start().await;
    let service = format!("crash{}", std::process::id());
    let file = h.dir.path().join("runway.toml");
    std::fs::write(&file, config(&service, h.listen, &image.repo)).unwrap();
    let out = h
        .runway(&["-f", file.to_str().unwrap(), "deploy", "v1"])
        .await;
    assert!(out.status.success(), "deploy v1: {}", text(&out));
    let before = containers(&service);

    let load = Load::start(h.listen, "/", 4, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(docker(&["kill", &before[0].0]).status.success());
    containers_until(&service, 30, "not restarted", |now| {
        now.len() == 2 && !now.contains(&before[0])
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = load.stop().await;
    assert!(seen.ok > 100, "{seen:?}");
    assert_eq!(
        seen.failed, 0,
        "the proxy retried what the dead container could not answer: {seen:?}"
    );
}

/// `runway logs --follow` on containers: each line once, as it is written (the daemon's
/// `since` counts whole seconds; the follow goes on from the last line's timestamp).
#[tokio::test]
async fn logs_follow_a_container_and_show_each_line_once() {
    require_docker();
    let image = DemoImage::build(&["v1"]);
    let h = Harness::start().await;
    let service = format!("follow{}", std::process::id());
    let file = h.dir.path().join("runway.toml");
    std::fs::write(
        &file,
        config(&service, h.listen, &image.repo)
            .replace("replicas = 2", "replicas = 1")
            .replace(
                r#""--version", "{version}"]"#,
                r#""--version", "{version}", "--log-requests"]"#,
            ),
    )
    .unwrap();
    let file = file.to_str().unwrap().to_string();
    let out = h.runway(&["-f", &file, "deploy", "v1"]).await;
    assert!(out.status.success(), "deploy v1: {}", text(&out));

    let said = h.dir.path().join("follow.out");
    let mut follower = Command::new(RUNWAY)
        .args(["-f", &file, "logs", "--follow", "-n", "1"])
        .current_dir(h.dir.path())
        .env("RUNWAY_STATE_DIR", &h.state)
        .stdout(std::fs::File::create(&said).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The follow is under way once a first request's line shows.
    let started = Instant::now();
    loop {
        let (status, _, _) = h.get("/?line=ready").await;
        assert_eq!(status, 200);
        if std::fs::read_to_string(&said)
            .unwrap_or_default()
            .contains("/?line=ready ")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the follow shows nothing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Twelve requests, a quarter of a second apart: several in each second, so a follow that
    // asked the daemon again for the whole second would show some twice.
    for n in 0..12 {
        let path = format!("/?line={n}");
        let (status, _, _) = h.get(&path).await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let started = Instant::now();
    let shown = loop {
        let shown = std::fs::read_to_string(&said).unwrap_or_default();
        if shown.contains("/?line=11 ") || started.elapsed() > Duration::from_secs(10) {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = follower.kill();
    let _ = follower.wait();
    for n in 0..12 {
        let times = shown
            .lines()
            .filter(|l| l.contains(&format!("GET /?line={n} ")))
            .count();
        assert_eq!(times, 1, "line {n} shown {times} times:\n{shown}");
    }
}

/// runway's own container image (deploy/container/Dockerfile, built by
/// scripts/container-image from this binary on a base of the libraries it links): the
/// server starts in it as an unprivileged user with its state in the volume, the CLI in the
/// container drives it, a service deployed in it serves through a published port, and
/// `docker stop` ends it cleanly.
#[tokio::test]
async fn runway_runs_in_its_own_container_image() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let n = std::process::id();
    // The base: the C library and the other libraries runway links, and /tmp (no registry
    // here for debian:bookworm-slim, which is the Dockerfile's default).
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
    std::fs::set_permissions(
        rootfs.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/false\n").unwrap();
    copy_linked_libraries(Path::new(RUNWAY), &rootfs);
    let tar = dir.join("base.tar");
    pack(&rootfs, &tar);
    let base = format!("runway-e2e-base-{n}:1");
    let image = format!("runway-e2e-self-{n}:1");
    let name = format!("runway-e2e-self-{n}");
    let out = docker(&["import", tar.to_str().unwrap(), &base]);
    assert!(out.status.success(), "{}", text(&out));
    struct Cleanup(Vec<String>, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = docker(&["rm", "-f", &self.1]);
            for image in &self.0 {
                let _ = docker(&["rmi", "-f", image]);
            }
        }
    }
    let _cleanup = Cleanup(vec![image.clone(), base.clone()], name.clone());

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/container-image");
    let out = Command::new(&script)
        .arg(&image)
        .env("RUNWAY_BINARY", RUNWAY)
        .env("BASE_IMAGE", &base)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let out = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        "127.0.0.1::7070",
        "-p",
        "127.0.0.1::8080",
        &image,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let exec = |args: &[&str]| {
        let mut all = vec!["exec", "-w", "/var/lib/runway", name.as_str(), "runway"];
        all.extend_from_slice(args);
        docker(&all)
    };
    let started = Instant::now();
    loop {
        let out = exec(&["status"]);
        if out.status.success() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server in the container did not start: {}\n{}",
            text(&out),
            text(&docker(&["logs", &name]))
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Not root, in its volume.
    let out = docker(&[
        "inspect",
        "--format",
        "{{.Config.User}} {{json .Config.Volumes}}",
        &name,
    ]);
    let inspected = String::from_utf8_lossy(&out.stdout);
    assert!(inspected.starts_with("65532:65532"), "{inspected}");
    assert!(inspected.contains("/var/lib/runway"), "{inspected}");

    // A service in the container, published.
    let config = r#"[service]
name = "web"
listen = "0.0.0.0:8080"

[run]
command = ["/usr/local/bin/runway", "demo-app", "--port", "{port}", "--version", "{version}"]
replicas = 2

[health]
path = "/health/ready"
interval = "300ms"
deadline = "20s"
"#;
    let file = dir.join("runway.toml");
    std::fs::write(&file, config).unwrap();
    let out = docker(&[
        "cp",
        file.to_str().unwrap(),
        &format!("{name}:/var/lib/runway/runway.toml"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = exec(&["deploy", "v1"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out),
        text(&docker(&["logs", &name]))
    );
    let port = |inner: &str| -> std::net::SocketAddr {
        let out = docker(&["port", &name, inner]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no published port for {inner}: {}", text(&out)))
    };
    let (status, version, _) = http_get(port("8080/tcp"), "/").await;
    assert_eq!((status, version.as_str()), (200, "v1"));
    // The API on its published port: the document needs no token.
    let api = port("7070/tcp");
    let (status, _, body) = http_get(api, "/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"openapi\""));

    let stopped = Instant::now();
    let out = docker(&["stop", "-t", "30", &name]);
    assert!(out.status.success(), "{}", text(&out));
    let out = docker(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "{}",
        text(&docker(&["logs", &name]))
    );
    eprintln!(
        "runway's image: deployed in it, served through it, stopped in {:?}",
        stopped.elapsed()
    );
}
