//! Command checks: a program exits as expected and prints what is expected.
//!
//! The escape hatch for everything without a typed check (`pg_isready`, a vendor CLI,
//! a site script). The command is an argv, never a shell line, so no quoting or
//! injection surprises. `expect_stdout` is searched for anywhere in stdout with `^` and
//! `$` matching at line boundaries, as with grep. It runs in the workdir with the process environment, the
//! service environment of the [`Context`] and the check's own `env` on top; it is
//! killed when the attempt times out.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use super::{net, Context};
use crate::model::stdout_regex;

pub(super) struct Command<'a> {
    pub argv: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub expect_exit: i32,
    pub expect_stdout: Option<&'a str>,
}

pub(super) async fn run(cmd: &Command<'_>, ctx: &Context) -> Result<String, String> {
    let (program, args) = cmd
        .argv
        .split_first()
        .ok_or_else(|| "command is empty".to_string())?;
    let pattern = cmd.expect_stdout.map(stdout_regex).transpose()?;
    // A relative path with a slash ("./bin/check") is relative to the workdir, not to
    // wherever runway was started; a bare name is looked up in PATH.
    let program_path = if program.contains('/') && Path::new(program).is_relative() {
        ctx.workdir.join(program)
    } else {
        program.into()
    };
    let mut command = tokio::process::Command::new(&program_path);
    command
        .args(args)
        .envs(&ctx.env)
        .envs(cmd.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if !ctx.workdir.as_os_str().is_empty() {
        command.current_dir(&ctx.workdir);
    }
    if let Some((soft, hard)) = ctx.open_files {
        // SAFETY: the closure runs in the forked child before `exec`; it makes one system
        // call (setrlimit is async-signal-safe), allocates nothing and takes no lock. Should
        // it fail, the program keeps the inherited limit.
        unsafe {
            command.pre_exec(move || {
                let _ = nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_NOFILE,
                    soft,
                    hard,
                );
                Ok(())
            });
        }
    }
    let out = command
        .output()
        .await
        .map_err(|e| format!("cannot run {program}: {}", net::io_reason(&e)))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = match out.status.code() {
        Some(c) => c,
        None => {
            return Err(format!(
                "{program} was killed by a signal{}",
                last_line(&stderr).map_or(String::new(), |l| format!(": {l}"))
            ))
        }
    };
    if code != cmd.expect_exit {
        let said = last_line(&stderr).or_else(|| last_line(&stdout));
        return Err(format!(
            "{program} exited with {code} (expected {}){}",
            cmd.expect_exit,
            said.map_or(String::new(), |l| format!(": {l}"))
        ));
    }
    if let Some(re) = &pattern {
        if !re.is_match(&stdout) {
            let seen = last_line(&stdout).unwrap_or("(no output)");
            return Err(format!(
                "{program} exited with {code} but stdout does not match /{}/: {seen}",
                re.as_str()
            ));
        }
        return Ok(format!(
            "{program} exited with {code}; stdout matches /{}/",
            re.as_str()
        ));
    }
    Ok(format!("{program} exited with {code}"))
}

/// The last non-blank line, trimmed and capped (details are one line).
fn last_line(s: &str) -> Option<&str> {
    let line = s.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    Some(match line.char_indices().nth(160) {
        Some((i, _)) => &line[..i],
        None => line,
    })
}
