//! Which values of an environment are secret, for everything runway shows of a process's
//! output: hook output, and the last words of a replica that failed (stored in the
//! deployment's reason, so in `history --json`).

use std::collections::BTreeMap;

use runway_checks::redact::Redactor;

/// Secrets a process's output and argv must not show: values of variables whose names say they
/// are secret, and passwords in URLs (a DATABASE_URL echoed by a failing pg_dump). The server's
/// own environment counts too: the process inherits it (a PGPASSWORD set there).
pub fn redactor_for(env: &BTreeMap<String, String>) -> Redactor {
    let mut redactor = Redactor::new();
    let inherited: Vec<(String, String)> = std::env::vars().collect();
    for (name, value) in env.iter().chain(inherited.iter().map(|(k, v)| (k, v))) {
        let upper = name.to_ascii_uppercase();
        let secret = ["PASSWORD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "PASS"]
            .iter()
            .any(|w| upper.contains(w));
        if secret && value.len() >= 4 {
            redactor.add(value);
        } else {
            redactor.add_url(value);
        }
    }
    redactor
}

/// `env` with its `env:NAME` references resolved against the server's environment and its
/// `secret:NAME` references read from `secrets_dir`: what a process gets at start. The error
/// names the variable and the reference, never a value.
pub fn resolve_env(
    env: &BTreeMap<String, String>,
    secrets_dir: Option<&std::path::Path>,
) -> Result<BTreeMap<String, String>, String> {
    let process: BTreeMap<String, String> = std::env::vars().collect();
    env.iter()
        .map(|(name, value)| {
            let resolved = runway_checks::run::resolve_reference(value, &process, secrets_dir)
                .map_err(|e| format!("[run] env {name}: {e}"))?;
            Ok((name.clone(), resolved.unwrap_or_else(|| value.clone())))
        })
        .collect()
}

/// [`redactor_for`] the environment a process got (`resolved`), plus the value of every
/// variable `declared` as an `env:` / `secret:` reference, whatever its name: a reference
/// says its value is a secret.
pub fn redactor_for_resolved(
    declared: &BTreeMap<String, String>,
    resolved: &BTreeMap<String, String>,
) -> Redactor {
    let mut redactor = redactor_for(resolved);
    for (name, value) in declared {
        if runway_checks::is_reference(value) {
            if let Some(value) = resolved.get(name) {
                redactor.add(value);
            }
        }
    }
    redactor
}
