//! Running checks: bounded attempts, retries, one-line redacted results.
//!
//! The contract every check kind follows:
//!
//! * **Failure is information.** An unreachable host, a refused connection, a DNS
//!   failure, a TLS error, malformed JSON or a panic inside a library all become a
//!   failed [`CheckResult`] whose `detail` says why in one line.
//! * **Bounded.** Each attempt runs under `tokio::time::timeout(spec.timeout)`; a server
//!   that accepts and never answers fails with "timed out after 5s". Work that can block
//!   a thread (statvfs, file reads) runs on the blocking pool so the timeout still fires.
//! * **Retries** re-run a failed attempt `retries` times, sleeping `backoff`, then twice
//!   that, and so on; `attempts` in the result says how many ran.
//! * **No secrets.** `env:NAME` / `secret:NAME` references are resolved once, before the
//!   first attempt, and every resolved value (and every URL password) is registered with
//!   a [`Redactor`] that every detail passes through.
//!
//! Each kind lives in its own module with a single `run` function returning
//! `Ok(detail)` for a pass and `Err(detail)` for a failure.

// Without `run`, only the types and reference resolution are used; the rest is the runner.
#![cfg_attr(not(feature = "run"), allow(dead_code))]

#[cfg(feature = "run")]
mod command;
#[cfg(feature = "run")]
mod disk;
mod env;
mod file;
#[cfg(feature = "run")]
mod http;
mod net;
#[cfg(feature = "run")]
mod postgres;
#[cfg(feature = "run")]
mod prometheus;
#[cfg(feature = "run")]
mod redis;
#[cfg(feature = "run")]
mod tcp;
#[cfg(feature = "run")]
mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
#[cfg(feature = "run")]
use std::time::Instant;

#[cfg(feature = "run")]
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};

use crate::model::{duration_str, Severity};
#[cfg(feature = "run")]
use crate::model::{format_duration, CheckKind, CheckSpec};
use crate::redact::Redactor;

#[cfg(feature = "run")]
pub use http::json_path;

/// What a check result is: passed or failed. Whether a failure blocks a deploy is the
/// result's [`Severity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
        })
    }
}

/// The outcome of one check (or of one replica of a `{replica}` check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    /// The kind tag, e.g. `"http"`.
    pub kind: String,
    pub severity: Severity,
    pub status: CheckStatus,
    /// Wall time of all attempts and the pauses between them, to the millisecond.
    #[serde(with = "duration_str")]
    pub duration: Duration,
    /// One line, no secrets: what was seen, or why it failed.
    pub detail: String,
    /// Attempts made; 0 when the check could not start (e.g. a missing secret).
    pub attempts: u32,
    /// The replica address for `{replica}` checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl CheckResult {
    pub fn passed(&self) -> bool {
        self.status == CheckStatus::Pass
    }

    /// Failed with severity blocker.
    pub fn is_blocking(&self) -> bool {
        self.status == CheckStatus::Fail && self.severity == Severity::Blocker
    }
}

/// Where checks run: the environment and secrets references resolve against, the
/// replicas `{replica}` expands to, and the directory relative paths start from.
#[derive(Clone, Default)]
pub struct Context {
    /// Resolves `env:NAME` and backs `env` checks: the service's env over the process env.
    pub env: BTreeMap<String, String>,
    /// Where `secret:NAME` is read: the release's secret versions, or a directory of files.
    pub secrets: Option<Arc<dyn SecretSource>>,
    /// Addresses (`host:port`) that `{replica}` expands to.
    pub replica_addrs: Vec<String>,
    /// Base of relative paths (disk, file, tls file, command program and cwd).
    pub workdir: PathBuf,
    /// The open-file limits (soft, hard) a command check's program starts with: the
    /// server's own before it raised them for its proxies' connections, so that a check
    /// behaves as it does from a shell. `None`: the program inherits this process's.
    pub open_files: Option<(u64, u64)>,
}

impl fmt::Debug for Context {
    /// Names only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.is_some())
            .field("replica_addrs", &self.replica_addrs)
            .field("workdir", &self.workdir)
            .field("open_files", &self.open_files)
            .finish()
    }
}

impl Context {
    /// A context with the process environment, no secrets dir and no replicas.
    pub fn from_process_env(workdir: impl Into<PathBuf>) -> Self {
        Context {
            env: std::env::vars().collect(),
            workdir: workdir.into(),
            ..Context::default()
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.workdir.join(p)
        }
    }

    /// Resolves `env:NAME` / `secret:NAME` (registering the value with `redactor`);
    /// other values are returned as they are.
    fn resolve(&self, value: &str, redactor: &mut Redactor) -> Result<String, String> {
        match resolve_reference(value, &self.env, self.secrets.as_deref())? {
            Some(resolved) => {
                redactor.add(&resolved);
                Ok(resolved)
            }
            None => {
                // Not a reference: only a password written into it is secret.
                redactor.add_url(value);
                Ok(value.to_string())
            }
        }
    }
}

/// Where `secret:NAME` references are read. The server's is the store, pinned to the
/// versions a release runs with; [`SecretsDir`] reads files.
pub trait SecretSource: Send + Sync {
    /// The value of secret `name`; the error says why it cannot be had, never a value.
    fn read(&self, name: &str) -> Result<String, String>;
}

/// Secrets as files, one per name (`DIR/NAME`, one trailing newline dropped).
pub struct SecretsDir(pub PathBuf);

impl SecretSource for SecretsDir {
    fn read(&self, name: &str) -> Result<String, String> {
        let dir = &self.0;
        let mut v = std::fs::read_to_string(dir.join(name)).map_err(|e| {
            format!(
                "secret:{name} cannot be read from {}: {}",
                dir.display(),
                net::io_reason(&e)
            )
        })?;
        if v.ends_with('\n') {
            v.pop();
            if v.ends_with('\r') {
                v.pop();
            }
        }
        Ok(v)
    }
}

/// Whether `name` can name a secret: 1 to 128 letters, digits, `_`, `-` or `.`, not starting
/// with a dot (a name is also a file name and an environment variable's).
pub fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The value of an `env:NAME` (from `env`) or `secret:NAME` (from `secrets`) reference;
/// `None` when `value` is not a reference. Shared by the checks, hooks, notifications and
/// `[run] env`, so that a secret is referenced the same way everywhere.
pub fn resolve_reference(
    value: &str,
    env: &BTreeMap<String, String>,
    secrets: Option<&dyn SecretSource>,
) -> Result<Option<String>, String> {
    if let Some(name) = value.strip_prefix("env:") {
        return match env.get(name) {
            Some(v) if !v.is_empty() => Ok(Some(v.clone())),
            Some(_) => Err(format!("env:{name} is empty")),
            None => Err(format!("env:{name} is not set")),
        };
    }
    let Some(name) = value.strip_prefix("secret:") else {
        return Ok(None);
    };
    if !valid_secret_name(name) {
        return Err(format!("secret:{name} is not a valid secret name"));
    }
    let secrets = secrets
        .ok_or_else(|| format!("secret:{name} cannot be read: no secrets are configured"))?;
    let v = secrets.read(name)?;
    if v.is_empty() {
        return Err(format!("secret:{name} is empty"));
    }
    Ok(Some(v))
}

/// Failures that block: failed results with severity blocker.
pub fn blocking_failures(results: &[CheckResult]) -> Vec<&CheckResult> {
    results.iter().filter(|r| r.is_blocking()).collect()
}

#[cfg(feature = "run")]
/// Runs checks concurrently; results come back in spec order (a `{replica}` check
/// contributes one result per replica, in replica order).
pub async fn run_checks(specs: &[CheckSpec], ctx: &Context) -> Vec<CheckResult> {
    futures_util::future::join_all(specs.iter().map(|s| run_check(s, ctx)))
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(feature = "run")]
/// Runs one check: one result, or one per replica when it mentions `{replica}`.
pub async fn run_check(spec: &CheckSpec, ctx: &Context) -> Vec<CheckResult> {
    let started = Instant::now();
    let mut redactor = Redactor::new();
    let kind = match resolve_kind(&spec.kind, ctx, &mut redactor) {
        Ok(kind) => kind,
        Err(e) => return vec![result(spec, &redactor, started, Err(e), 0, None)],
    };
    let Some(template) = replica_template(&kind) else {
        let (outcome, attempts) = run_attempts(spec, &kind, ctx).await;
        return vec![result(spec, &redactor, started, outcome, attempts, None)];
    };
    if ctx.replica_addrs.is_empty() {
        let e = format!("{template:?} mentions {{replica}} but there are no replicas to check");
        return vec![result(spec, &redactor, started, Err(e), 0, None)];
    }
    let runs = ctx.replica_addrs.iter().map(|addr| {
        let kind = with_replica(&kind, addr);
        async move {
            let started = Instant::now();
            let (outcome, attempts) = run_attempts(spec, &kind, ctx).await;
            (started, outcome, attempts, addr)
        }
    });
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .map(|(started, outcome, n, addr)| {
            result(spec, &redactor, started, outcome, n, Some(addr.clone()))
        })
        .collect()
}

type Outcome = Result<String, String>;

#[cfg(feature = "run")]
/// Runs attempts until one passes or retries are exhausted: (last outcome, attempts).
async fn run_attempts(spec: &CheckSpec, kind: &CheckKind, ctx: &Context) -> (Outcome, u32) {
    let mut backoff = spec.backoff;
    let mut n = 0;
    loop {
        n += 1;
        let outcome = attempt(kind, spec.timeout, ctx).await;
        if outcome.is_ok() || n > spec.retries {
            return (outcome, n);
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
}

#[cfg(feature = "run")]
/// One attempt, bounded by `timeout`, with panics turned into failures.
async fn attempt(kind: &CheckKind, timeout: Duration, ctx: &Context) -> Outcome {
    let run = std::panic::AssertUnwindSafe(dispatch(kind, ctx)).catch_unwind();
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(panic)) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(format!("internal error: the check panicked: {msg}"))
        }
        Err(_) => Err(format!("timed out after {}", format_duration(timeout))),
    }
}

#[cfg(feature = "run")]
async fn dispatch(kind: &CheckKind, ctx: &Context) -> Outcome {
    match kind {
        CheckKind::Http {
            method,
            url,
            headers,
            body,
            expect_status,
            expect_json,
            max_latency,
        } => {
            let req = http::Request {
                method,
                url,
                headers,
                body: body.as_deref(),
            };
            http::run(&req, *expect_status, expect_json, *max_latency).await
        }
        CheckKind::Tcp { address } => tcp::run(address).await,
        CheckKind::Postgres {
            url,
            query,
            expect,
            max_connections_share,
        } => {
            postgres::run(
                url,
                query.as_deref(),
                expect.as_deref(),
                *max_connections_share,
            )
            .await
        }
        CheckKind::Redis {
            url,
            max_memory_share,
        } => redis::run(url, *max_memory_share).await,
        CheckKind::Disk { path, min_free } => disk::run(ctx.path(path), *min_free).await,
        CheckKind::Tls {
            file,
            address,
            server_name,
            min_days,
        } => match (file, address) {
            (Some(f), _) => tls::run_file(ctx.path(f), *min_days).await,
            (None, Some(a)) => tls::run_address(a, server_name.as_deref(), *min_days).await,
            (None, None) => Err("give file or address".into()),
        },
        CheckKind::Env { vars } => env::run(vars, &ctx.env),
        CheckKind::Command {
            command,
            expect_exit,
            expect_stdout,
            env,
        } => {
            let cmd = command::Command {
                argv: command,
                env,
                expect_exit: *expect_exit,
                expect_stdout: expect_stdout.as_deref(),
            };
            command::run(&cmd, ctx).await
        }
        CheckKind::Prometheus {
            url,
            query,
            condition,
        } => prometheus::run(url, query, condition).await,
        CheckKind::File { path, exists } => file::run(ctx.path(path), *exists).await,
    }
}

#[cfg(feature = "run")]
/// A copy of `kind` with references resolved and every secret registered.
fn resolve_kind(
    kind: &CheckKind,
    ctx: &Context,
    redactor: &mut Redactor,
) -> Result<CheckKind, String> {
    let mut kind = kind.clone();
    match &mut kind {
        CheckKind::Http { url, headers, .. } => {
            redactor.add_url(url);
            for value in headers.values_mut() {
                *value = ctx.resolve(value, redactor)?;
            }
        }
        CheckKind::Postgres { url, .. } | CheckKind::Redis { url, .. } => {
            redactor.add_url(url);
            *url = ctx.resolve(url, redactor)?;
        }
        CheckKind::Command { env, .. } => {
            for value in env.values_mut() {
                *value = ctx.resolve(value, redactor)?;
            }
        }
        CheckKind::Prometheus { url, .. } => redactor.add_url(url),
        _ => {}
    }
    Ok(kind)
}

#[cfg(feature = "run")]
fn replica_template(kind: &CheckKind) -> Option<&str> {
    match kind {
        CheckKind::Http { url: s, .. } | CheckKind::Tcp { address: s } => {
            s.contains("{replica}").then_some(s.as_str())
        }
        _ => None,
    }
}

#[cfg(feature = "run")]
fn with_replica(kind: &CheckKind, addr: &str) -> CheckKind {
    let mut kind = kind.clone();
    if let CheckKind::Http { url: s, .. } | CheckKind::Tcp { address: s } = &mut kind {
        *s = s.replace("{replica}", addr);
    }
    kind
}

#[cfg(feature = "run")]
fn result(
    spec: &CheckSpec,
    redactor: &Redactor,
    started: Instant,
    outcome: Outcome,
    attempts: u32,
    target: Option<String>,
) -> CheckResult {
    let (status, detail) = match outcome {
        Ok(d) => (CheckStatus::Pass, d),
        Err(d) => (CheckStatus::Fail, d),
    };
    let elapsed = started.elapsed();
    CheckResult {
        name: spec.name.clone(),
        kind: spec.kind.name().to_string(),
        severity: spec.severity,
        status,
        duration: Duration::from_millis(elapsed.as_millis().min(u64::MAX as u128) as u64),
        detail: one_line(&redactor.redact(&detail)),
        attempts,
        target,
    }
}

/// Longest detail kept, in characters.
const MAX_DETAIL: usize = 300;

#[cfg(feature = "run")]
/// Collapses whitespace and control characters to single spaces and caps the length.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_DETAIL + 3));
    let mut chars = 0;
    for word in s.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if chars > 0 {
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= MAX_DETAIL {
                out.push('…');
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}

#[cfg(feature = "run")]
/// Sizes for people: `12.3 GB`, `512 MB`, `900 B` (decimal units, like `parse_bytes`).
pub(crate) fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else if v >= 100.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(all(test, feature = "run"))]
mod tests {
    use super::*;

    #[test]
    fn one_line_collapses_and_caps() {
        assert_eq!(one_line("a\nb\r\n\tc  d"), "a b c d");
        let long = "x".repeat(1000);
        let l = one_line(&long);
        assert_eq!(l.chars().count(), MAX_DETAIL + 1);
        assert!(l.ends_with('…'));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(900), "900 B");
        assert_eq!(human_bytes(12_345_678_901), "12.3 GB");
        assert_eq!(human_bytes(512_000_000), "512 MB");
    }

    #[test]
    fn references_resolve_and_register_secrets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), "s3cret-value\n").unwrap();
        let ctx = Context {
            env: BTreeMap::from([
                ("TOKEN".into(), "tok-123".into()),
                ("E".into(), String::new()),
            ]),
            secrets: Some(Arc::new(SecretsDir(dir.path().into()))),
            ..Context::default()
        };
        let mut r = Redactor::new();
        assert_eq!(ctx.resolve("env:TOKEN", &mut r).unwrap(), "tok-123");
        assert_eq!(ctx.resolve("secret:db", &mut r).unwrap(), "s3cret-value");
        assert_eq!(ctx.resolve("plain", &mut r).unwrap(), "plain");
        assert_eq!(r.redact("tok-123 s3cret-value plain"), "*** *** plain");
        assert!(ctx
            .resolve("env:NOPE", &mut r)
            .unwrap_err()
            .contains("not set"));
        assert!(ctx.resolve("env:E", &mut r).unwrap_err().contains("empty"));
        assert!(ctx
            .resolve("secret:../etc/passwd", &mut r)
            .unwrap_err()
            .contains("not a valid"));
        assert!(ctx
            .resolve("secret:missing", &mut r)
            .unwrap_err()
            .contains("cannot be read"));
        assert!(!format!("{ctx:?}").contains("tok-123"));
    }
}
