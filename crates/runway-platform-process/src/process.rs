//! Operating-system processes: start one in its own process group, recognise it again after a
//! server restart, and stop the whole group politely, then firmly.
//!
//! A process is identified by its pid *and* its start time (field 22 of /proc/PID/stat), so a
//! recycled pid is never mistaken for a replica we once started.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use runway_engine::secrets;

use crate::logfile;

/// What to run: argv is never passed through a shell. `env` values may be `env:NAME` /
/// `secret:NAME` references, resolved only when the process starts, so that the values are
/// never stored or shown (see `runway_engine::secrets`).
#[derive(Debug, Clone)]
pub struct Command {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub dir: std::path::PathBuf,
    /// Where `secret:NAME` references are read: the release's secret versions.
    pub secrets: secrets::Secrets,
}

/// A running process, started by this server (a child it can wait for) or adopted from a
/// previous server (which it can only poll).
pub enum Process {
    Child(tokio::process::Child),
    Adopted { pid: i32, start: u64 },
}

impl Process {
    pub fn spawn(cmd: &Command, log_path: &Path) -> Result<Process, String> {
        let program = cmd.argv.first().ok_or("the command is empty")?;
        let env = secrets::resolve_env(&cmd.env, &cmd.secrets)?;
        let log = logfile::open_for_append(log_path)
            .map_err(|e| format!("cannot open log file {}: {e}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot open log file {}: {e}", log_path.display()))?;
        let mut command = tokio::process::Command::new(program);
        crate::open_files::apply(&mut command);
        let child = command
            .args(&cmd.argv[1..])
            .envs(&env)
            .current_dir(&cmd.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: signals reach the app's children too, and a Ctrl-C in the
            // server's terminal does not hit the replicas.
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| format!("cannot start `{program}` in {}: {e}", cmd.dir.display()))?;
        Ok(Process::Child(child))
    }

    /// Re-adopts a process recorded before a restart, if it still runs and is the same process.
    pub fn adopt(pid: i32, start: u64) -> Option<Process> {
        (start_time(pid) == Some(start)).then_some(Process::Adopted { pid, start })
    }

    pub fn pid(&self) -> Option<i32> {
        match self {
            Process::Child(c) => c.id().map(|p| p as i32),
            Process::Adopted { pid, .. } => Some(*pid),
        }
    }

    /// Waits until the process has exited and says how.
    pub async fn wait(&mut self) -> String {
        match self {
            Process::Child(child) => match child.wait().await {
                Ok(status) => describe_exit(status),
                Err(e) => format!("lost track of the process: {e}"),
            },
            Process::Adopted { pid, start } => {
                while start_time(*pid) == Some(*start) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                "exited (adopted process; exit status unknown)".to_string()
            }
        }
    }

    /// SIGTERM to the process group, SIGKILL after `grace`, and wait for the exit.
    pub async fn terminate(&mut self, grace: Duration) {
        let Some(pid) = self.pid() else { return };
        let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        if tokio::time::timeout(grace, self.wait()).await.is_err() {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = tokio::time::timeout(Duration::from_secs(5), self.wait()).await;
        }
        // The leader is gone; make sure no stray member of its group survives it.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

pub(crate) fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!(
            "killed by signal {}",
            Signal::try_from(sig).map_or(sig.to_string(), |s| s.to_string())
        ),
        _ => "exited".to_string(),
    }
}

/// The start time of a live (non-zombie) process, in clock ticks since boot.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); starttime is field 22.
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

/// How many ports below the kernel's ephemeral range replicas are given.
pub const REPLICA_PORTS: u16 = 8192;

/// The ports replicas are given: the [`REPLICA_PORTS`] just below the kernel's ephemeral
/// range (`net.ipv4.ip_local_port_range`, 24576-32767 with Linux's default), or `None` when
/// that range starts too low to leave room.
///
/// Why not port 0: a port the kernel hands out for `bind(0)` is free when it is found, not
/// held, and until the replica binds it any outgoing connection on the host may take it as
/// its local port (connections pick from the same ephemeral range). Under load that
/// happened: a replica exited with "Address already in use". Below the ephemeral range only
/// a listener that names the port can take it.
pub fn replica_port_range() -> Option<std::ops::Range<u16>> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let from = low.checked_sub(REPLICA_PORTS)?;
    (from >= 1024).then_some(from..low)
}

/// A free loopback port, for a replica to listen on, from [`replica_port_range`]. The ports
/// handed out lately are remembered and skipped: a port is free when it is found, not held,
/// and two replicas of one rollout once got the same port.
pub fn free_port() -> std::io::Result<u16> {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Mutex, OnceLock};
    static RECENT: OnceLock<Mutex<VecDeque<u16>>> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let recent = RECENT.get_or_init(|| Mutex::new(VecDeque::new()));
    let remember = |port: u16| {
        let mut recent = recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.contains(&port) {
            return false;
        }
        if recent.len() >= 256 {
            recent.pop_front();
        }
        recent.push_back(port);
        true
    };
    if let Some(range) = replica_port_range() {
        let span = u32::from(range.end - range.start);
        // Servers on one host start at different places and walk by a prime, so two of them
        // rarely try the same port at the same moment.
        let seed = std::process::id().wrapping_mul(2_654_435_761) % span;
        for _ in 0..span.min(512) {
            let step = NEXT.fetch_add(7919, Ordering::Relaxed);
            let port = range.start + ((seed + step) % span) as u16;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() && remember(port) {
                return Ok(port);
            }
        }
    }
    for _ in 0..64 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        if remember(port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::other(
        "the kernel kept handing out ports given to replicas moments ago",
    ))
}

/// The last lines a replica wrote, to explain why it failed, with the secrets of its
/// environment masked: the reason is stored and shown.
pub fn last_words(log_path: &Path, cmd: &Command) -> String {
    match logfile::tail_lines(log_path, 3) {
        Ok(lines) if !lines.is_empty() => {
            // The values the process had: references resolved (their values are secrets).
            let env =
                secrets::resolve_env(&cmd.env, &cmd.secrets).unwrap_or_else(|_| cmd.env.clone());
            let redactor = secrets::redactor_for_resolved(&cmd.env, &env);
            format!("; last output: {}", redactor.redact(&lines.join(" | ")))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod free_port_tests {
    /// Ports handed out one after another are all different, though none is held.
    #[test]
    fn ports_handed_out_lately_are_not_handed_out_again() {
        let ports: Vec<u16> = (0..100).map(|_| super::free_port().unwrap()).collect();
        let mut unique = ports.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
    }

    /// Replicas listen below the ephemeral range, where no outgoing connection can take
    /// their port between its choice and their bind.
    #[test]
    fn replica_ports_are_below_the_ephemeral_range() {
        let range = super::replica_port_range().expect("Linux's default range leaves room");
        let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(range.end, ephemeral_low);
        assert_eq!(range.end - range.start, super::REPLICA_PORTS);
        for _ in 0..50 {
            let port = super::free_port().unwrap();
            assert!(range.contains(&port), "{port} not in {range:?}");
        }
    }
}
