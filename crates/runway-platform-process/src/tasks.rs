//! One-off tasks (hooks) as local processes ([`ProcessTasks`]): each in its own process group,
//! SIGTERM then SIGKILL to the whole group at the timeout, stdout and stderr interleaved as
//! they arrived, the last [`OUTPUT_CAP`] bytes kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};

use runway_engine::router::BoxFuture;
use runway_engine::tasks::{Outcome, Task, TaskRunner, OUTPUT_CAP};

use crate::process::describe_exit;

/// How long a task gets between SIGTERM and SIGKILL when its timeout passes.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Tasks as local processes.
pub struct ProcessTasks;

impl TaskRunner for ProcessTasks {
    fn run<'a>(&'a self, task: Task<'a>) -> BoxFuture<'a, (Outcome, String, String)> {
        Box::pin(execute(task.argv, task.env, task.dir, task.timeout))
    }
}

/// Runs `argv` to its end or its timeout; returns how it ended, a one-line detail and its
/// output (stdout and stderr interleaved as they arrived).
async fn execute(
    argv: &[String],
    env: &BTreeMap<String, String>,
    dir: &Path,
    timeout: Duration,
) -> (Outcome, String, String) {
    let Some((program, args)) = argv.split_first() else {
        return (
            Outcome::Failed,
            "has an empty command".into(),
            String::new(),
        );
    };
    // "./scripts/x.sh" is relative to the working directory, not to the server's.
    let program_path = if program.contains('/') && Path::new(program).is_relative() {
        dir.join(program)
    } else {
        PathBuf::from(program)
    };
    let mut command = tokio::process::Command::new(&program_path);
    crate::open_files::apply(&mut command);
    let spawned = command
        .args(args)
        .envs(env)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return (
                Outcome::Failed,
                format!("could not start in {}: {e}", dir.display()),
                String::new(),
            )
        }
    };
    let pid = child.id().map(|p| Pid::from_raw(p as i32));
    let output = Arc::new(Mutex::new(Capped::default()));
    let readers = [
        child.stdout.take().map(|s| spawn_reader(s, output.clone())),
        child.stderr.take().map(|s| spawn_reader(s, output.clone())),
    ];
    let (outcome, detail) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => (Outcome::Ok, describe_exit(status)),
        Ok(Ok(status)) => (Outcome::Failed, describe_exit(status)),
        Ok(Err(e)) => (Outcome::Failed, format!("lost track of the process: {e}")),
        Err(_) => {
            if let Some(pid) = pid {
                let _ = killpg(pid, Signal::SIGTERM);
                if tokio::time::timeout(KILL_GRACE, child.wait())
                    .await
                    .is_err()
                {
                    let _ = killpg(pid, Signal::SIGKILL);
                    let _ = child.wait().await;
                }
            }
            (
                Outcome::TimedOut,
                format!("timed out after {}", humantime_secs(timeout)),
            )
        }
    };
    // Whatever the hook left running in its group would hold the pipes open forever.
    if let Some(pid) = pid {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    for reader in readers.into_iter().flatten() {
        // A process that left the group (setsid) may hold the pipe open: stop reading it.
        let abort = reader.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), reader)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    let text = output.lock().unwrap_or_else(|e| e.into_inner()).text();
    (outcome, detail, text)
}

fn humantime_secs(d: Duration) -> String {
    runway_spec::Dur(d).to_string()
}

fn spawn_reader(
    mut stream: impl AsyncRead + Unpin + Send + 'static,
    output: Arc<Mutex<Capped>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 8192];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            output
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(&buf[..n]);
        }
    })
}

/// The last [`OUTPUT_CAP`] bytes of a stream, and how many were dropped before them.
#[derive(Default)]
struct Capped {
    bytes: std::collections::VecDeque<u8>,
    dropped: u64,
}

impl Capped {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(OUTPUT_CAP);
        if excess > 0 {
            self.bytes.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let mut raw = Vec::with_capacity(a.len() + b.len());
        raw.extend_from_slice(a);
        raw.extend_from_slice(b);
        let body = String::from_utf8_lossy(&raw).into_owned();
        if self.dropped > 0 {
            format!("[{} earlier bytes not kept]\n{body}", self.dropped)
        } else {
            body
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[tokio::test]
    async fn output_exit_and_environment() {
        let env = BTreeMap::from([("GREETING".to_string(), "hi".to_string())]);
        let dir = std::env::temp_dir();
        let (outcome, detail, output) = execute(
            &argv(&["sh", "-c", "echo out $GREETING; echo err >&2; exit 3"]),
            &env,
            &dir,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(outcome, Outcome::Failed);
        assert_eq!(detail, "exited with status 3");
        assert!(output.contains("out hi"), "{output}");
        assert!(output.contains("err"), "{output}");
    }

    #[tokio::test]
    async fn a_hook_past_its_timeout_is_killed_with_its_children() {
        let started = std::time::Instant::now();
        let (outcome, detail, _) = execute(
            &argv(&["sh", "-c", "sleep 30 & sleep 30"]),
            &BTreeMap::new(),
            &std::env::temp_dir(),
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(outcome, Outcome::TimedOut);
        assert!(detail.starts_with("timed out after"), "{detail}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[tokio::test]
    async fn a_missing_program_says_so() {
        let (outcome, detail, _) = execute(
            &argv(&["/nonexistent/tool"]),
            &BTreeMap::new(),
            &std::env::temp_dir(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(outcome, Outcome::Failed);
        assert!(detail.contains("No such file"), "{detail}");
    }

    #[test]
    fn output_keeps_the_end() {
        let mut c = Capped::default();
        c.push(&vec![b'a'; OUTPUT_CAP]);
        c.push(b"tail");
        let text = c.text();
        assert!(text.starts_with("[4 earlier bytes not kept]"));
        assert!(text.ends_with("tail"));
    }
}
