//! Real servers for runway's tests: PostgreSQL and Redis processes in temporary directories on
//! free loopback ports, stopped when dropped. Shared by the checks crate's tests and the
//! end-to-end tests of the examples, so both exercise the same real servers.
//!
//! A missing server binary fails the test with the install command: a check that was never
//! exercised must not look like one that passed. `scripts/test` installs them.

pub mod kube;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `program` as user `postgres` when we are root (initdb refuses root), else as
/// ourselves.
fn as_postgres(program: &Path) -> Command {
    if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn postgres_bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    // Highest major version last ("9.6" < "15" needs numeric order).
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.split('.').next())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; \
             install them with `apt-get install -y postgresql`"
        )
    })
}

/// A PostgreSQL server in a temp dir on a free loopback port, with password auth for
/// user `runway`; stopped on drop.
pub struct Postgres {
    pub port: u16,
    pub password: String,
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Postgres {
    pub fn start(password: &str) -> Postgres {
        Self::start_on(password, &[])
    }

    /// Also listening on `also` (the Docker bridge's gateway, so that a container reaches
    /// it), with password logins allowed from `also`'s /16.
    pub fn start_on(password: &str, also: &[std::net::Ipv4Addr]) -> Postgres {
        let bin = postgres_bin_dir();
        let dir = tempfile::Builder::new().prefix("rwpg").tempdir().unwrap();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, password).unwrap();
        if nix::unistd::geteuid().is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "running as root: cannot hand the test dir to user `postgres` \
                 (it comes with `apt-get install -y postgresql`)"
            );
        }
        let out = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "runway",
                "--auth=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb (as root through `runuser -u postgres`, from util-linux)");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for addr in also {
            let [a, b, ..] = addr.octets();
            let line = format!("host all all {a}.{b}.0.0/16 scram-sha-256\n");
            let hba = data.join("pg_hba.conf");
            let mut text = std::fs::read_to_string(&hba).unwrap_or_default();
            text.push_str(&line);
            // initdb ran as `postgres`: the file keeps its owner when rewritten in place.
            std::fs::write(&hba, text).unwrap();
        }
        let port = free_port();
        let listen: Vec<String> = std::iter::once("127.0.0.1".to_string())
            .chain(also.iter().map(|a| a.to_string()))
            .collect();
        let opts = format!(
            "-k {} -p {port} -c listen_addresses={} -c fsync=off -c max_connections=20",
            dir.path().display(),
            listen.join(",")
        );
        let out = as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-w", "-t", "30", "-o", &opts, "start"])
            .stdout(Stdio::null())
            .output()
            .expect("run pg_ctl");
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{log}",
            String::from_utf8_lossy(&out.stderr)
        );
        Postgres {
            port,
            password: password.to_string(),
            bin,
            data,
            _dir: dir,
        }
    }

    pub fn url(&self, password: &str) -> String {
        format!(
            "postgres://runway:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A redis-server on a free loopback port with a temp dir; killed on drop.
pub struct Redis {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start(extra: &[&str]) -> Redis {
        let dir = tempfile::Builder::new()
            .prefix("rwredis")
            .tempdir()
            .unwrap();
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); install it with `apt-get install -y redis-server`")
            });
        let mut redis = Redis {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = redis.child.try_wait() {
                panic!("redis-server exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start in 10s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
