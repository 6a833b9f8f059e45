//! A full disk in the middle of a deployment: the state dir on a small tmpfs that the test
//! fills while a canary waits at 10% under load. The server notices the refused write, takes
//! the canary back without failing a request, says so (`status`, the deployment's outcome,
//! the CLI that followed it, which exits instead of hanging), refuses new deployments, and once
//! the filler is deleted writes what it held by itself.
//!
//! Mounting a tmpfs needs root (CAP_SYS_ADMIN), as the test machines and CI have; without it
//! this test fails and says why rather than passing without having run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runway_demo_app::load::Load;

use crate::harness::{text, App, Harness};

/// A tmpfs mounted on the state dir for the test's life (unmounted lazily when dropped, after
/// the server has let go of it or not).
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir)
            .output()
            .expect("mount(8) runs");
        assert!(
            out.status.success(),
            "this test puts the state dir on a small tmpfs, which needs root \
             (CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the filesystem of `dir` with one file until it refuses more; returns the file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = file.flush();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_canary_safely_and_the_server_recovers_by_itself() {
    let h = Harness::start_with_state(|_, state, _| SmallDisk::mount(state, "48m")).await;
    let _disk = SmallDisk(h.state_path().to_path_buf());
    assert!(h.deploy("v1", &App::default()).await.status.success());
    let load = Load::start(h.listen, "/", 2, 100);

    let canary = App::default().strategy(
        "[strategy]\nkind = \"canary\"\nsteps = [{ weight = 10, pause = \"manual\" }, { weight = 100 }]\n\n\
         [analysis]\ninterval = \"500ms\"\nmin_requests = 10\n",
    );
    let file = h.write("canary.toml", &canary);
    let cli = h.deploy_in_background(&file, "v2");
    h.status_until("a canary at 10%", Duration::from_secs(30), |status| {
        status["services"][0]["deployment"]["canary"]["weight"] == 10
    })
    .await;

    let filler = fill(h.state_path());
    let full_at = Instant::now();

    // The CLI that follows the deployment ends, and says why.
    let out = tokio::time::timeout(Duration::from_secs(60), cli)
        .await
        .expect("the CLI following the deployment ended")
        .unwrap();
    eprintln!("CLI ended {:?} after the disk filled", full_at.elapsed());
    let said = text(&out);
    eprintln!("{said}");
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("state store refused a write"), "{said}");

    // status says so; v1 alone serves; the outcome shown is the held one.
    let status = h.status().await;
    let fault = &status["store_fault"];
    assert!(
        fault["error"].as_str().unwrap().contains("full"),
        "{status}"
    );
    assert!(fault["held_writes"].as_u64().unwrap() >= 1, "{status}");
    let shapes = crate::json_docs::documented();
    crate::json_docs::assert_shape(&shapes, "StatusView", &status, &[]);
    crate::json_docs::assert_shape(&shapes, "StoreFault", fault, &[]);
    assert_eq!(status["services"][0]["serving"][0]["version"], "v1");
    assert_eq!(
        status["services"][0]["last_failure"]["status"], "rolled_back",
        "{status}"
    );
    let status = h
        .status_until(
            "the canary's replicas gone",
            Duration::from_secs(30),
            |status| {
                status["services"][0]["replicas"]
                    .as_array()
                    .is_some_and(|replicas| replicas.iter().all(|r| r["version"] == "v1"))
            },
        )
        .await;
    assert_eq!(
        status["services"][0]["last_failure"]["status"], "rolled_back",
        "{status}"
    );
    let out = h.runway(&["status"]).await;
    assert!(
        text(&out).contains("state store: refusing writes since"),
        "{}",
        text(&out)
    );

    // Nothing new starts: it could not be recorded.
    let out = h.deploy("v3", &App::default()).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("refuses writes"), "{}", text(&out));

    // Space returns: the server writes what it held by itself.
    std::fs::remove_file(&filler).unwrap();
    let freed_at = Instant::now();
    h.status_until("the fault's end", Duration::from_secs(15), |status| {
        status.get("store_fault").is_none()
    })
    .await;
    eprintln!(
        "held writes written {:?} after space returned",
        freed_at.elapsed()
    );
    let history = h.history().await;
    let v2 = history.iter().find(|d| d["version"] == "v2").unwrap();
    assert_eq!(v2["status"], "rolled_back", "{v2}");
    assert!(
        v2["reason"]
            .as_str()
            .unwrap()
            .starts_with("the state store refused a write"),
        "{v2}"
    );
    let detail: serde_json::Value = h
        .client()
        .get(&format!("/v1/deployments/{}", v2["id"]))
        .await
        .unwrap();
    let events: Vec<&str> = detail["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    eprintln!("{events:?}");
    assert!(
        events.ends_with(&["rolling_back", "reverting", "reverted"]),
        "{events:?}"
    );

    // Not one request failed, and the next deployment runs as ever.
    let seen = load.stop().await;
    eprintln!("load: {} answered, {} failed", seen.ok, seen.failed);
    assert_eq!(seen.failed, 0);
    assert!(seen.ok > 0);
    let out = h.deploy("v3", &App::default()).await;
    assert!(out.status.success(), "{}", text(&out));
}
