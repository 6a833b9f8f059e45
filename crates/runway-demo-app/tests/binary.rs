//! The built `runway-demo-app` binary: exit statuses of the simulated faults
//! and graceful shutdown on SIGTERM, as runway's supervisor sees them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_runway-demo-app");
const TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the binary on a kernel-chosen loopback port with piped output.
fn spawn(flags: &[&str]) -> Child {
    Command::new(BIN)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .args(flags)
        .env_remove("PORT")
        .env_remove("RUNWAY_VERSION")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runway-demo-app")
}

/// Waits for `child` to exit, killing it (and failing) after [`TIMEOUT`].
fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("runway-demo-app did not exit within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Forwards the child's stdout lines from a thread, so that a silent child
/// fails a test by `recv_timeout` instead of blocking it.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Sends SIGTERM to `child`.
fn terminate(child: &Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

#[test]
fn fail_start_exits_with_status_2() {
    let mut child = spawn(&["--version", "v5", "--fail-start"]);
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(2));
    let stderr = stderr_of(&mut child);
    assert!(
        stderr.contains("v5") && stderr.contains("--fail-start"),
        "{stderr}"
    );
}

#[test]
fn crash_after_exits_with_status_3() {
    let started = Instant::now();
    let mut child = spawn(&["--crash-after-ms", "200"]);
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(3));
    assert!(started.elapsed() >= Duration::from_millis(200));
    let stderr = stderr_of(&mut child);
    assert!(stderr.contains("simulated crash"), "{stderr}");
}

#[test]
fn sigterm_shuts_down_gracefully_with_status_0() {
    let mut child = spawn(&["--version", "v4"]);
    let lines = stdout_lines(&mut child);
    let first = lines.recv_timeout(TIMEOUT).expect("startup line");
    let expected_end = format!("pid {}", child.id());
    assert!(
        first.starts_with("demo-app v4 listening on 127.0.0.1:") && first.ends_with(&expected_end),
        "{first}"
    );

    terminate(&child);
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(0));
    let rest: Vec<String> = lines.iter().collect(); // ends: the child has exited
    assert!(
        rest.iter().any(|l| l.contains("received SIGTERM")),
        "{rest:?}"
    );
    assert_eq!(rest.last().map(String::as_str), Some("demo-app v4 stopped"));
}

#[test]
fn bad_flags_are_a_usage_error() {
    let mut child = spawn(&["--error-rate", "2"]);
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(2)); // clap's usage-error status
    assert!(stderr_of(&mut child).contains("--error-rate"));
}

#[test]
fn log_requests_prints_one_line_per_request() {
    let mut child = spawn(&["--log-requests"]);
    let lines = stdout_lines(&mut child);
    let first = lines.recv_timeout(TIMEOUT).expect("startup line");
    let addr = first
        .split_whitespace()
        .nth(4)
        .expect("address in the startup line");

    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
        .write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");

    let logged = lines.recv_timeout(TIMEOUT).expect("request line");
    assert!(logged.starts_with("GET /nope 404 "), "{logged}");
    terminate(&child);
    assert_eq!(wait(&mut child).code(), Some(0));
}
