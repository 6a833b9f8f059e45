//! Which values of an environment are secret, for everything runway shows of a process's
//! output: hook output, and the last words of a replica that failed (stored in the
//! deployment's reason, so in `history --json`).

use std::collections::BTreeMap;

use std::path::PathBuf;
use std::sync::Arc;

use runway_checks::redact::Redactor;
use runway_checks::run::{SecretSource, SecretsDir};

use crate::records::Records;

/// Where a release's `secret:NAME` references are read (see [`SecretsOf`]); the default
/// reads none. Cheap to clone; shows no value in `Debug`.
#[derive(Clone, Default)]
pub struct Secrets(Option<Arc<dyn SecretSource>>);

impl Secrets {
    /// Secrets read from files in `dir` (`DIR/NAME`): hooks and checks run outside a server.
    pub fn dir(dir: PathBuf) -> Secrets {
        Secrets(Some(Arc::new(SecretsDir(dir))))
    }

    pub fn source(&self) -> Option<&dyn SecretSource> {
        self.0.as_deref()
    }

    pub fn shared(&self) -> Option<Arc<dyn SecretSource>> {
        self.0.clone()
    }

    /// The value of secret `name`.
    pub fn read(&self, name: &str) -> Result<String, String> {
        match &self.0 {
            Some(source) => source.read(name),
            None => Err(format!(
                "secret:{name} cannot be read: no secrets are configured"
            )),
        }
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets")
    }
}

/// Makes each release's [`Secrets`]: a name the release has a version of is read from the
/// records, that version exactly (a rollback runs with the versions its release ran with);
/// any other name from a file in the state dir's `secrets/` (how secrets were given before
/// `runway secrets`, and still may be).
#[derive(Clone)]
pub struct SecretsOf {
    records: Arc<dyn Records>,
    files: PathBuf,
}

impl SecretsOf {
    pub fn new(records: Arc<dyn Records>, files: PathBuf) -> SecretsOf {
        SecretsOf { records, files }
    }

    /// The secrets of a release of `service` that runs with `versions`.
    pub fn of(&self, service: &str, versions: &BTreeMap<String, u64>) -> Secrets {
        Secrets(Some(Arc::new(Pinned {
            records: self.records.clone(),
            service: service.to_string(),
            versions: versions.clone(),
            files: self.files.clone(),
        })))
    }

    /// The secrets of `service` as they are now (its notifications' `secret:` URLs).
    pub fn current(&self, service: &str) -> Secrets {
        let versions = self
            .records
            .secrets(service)
            .map(|rows| rows.into_iter().map(|r| (r.name, r.version)).collect())
            .unwrap_or_default();
        self.of(service, &versions)
    }
}

struct Pinned {
    records: Arc<dyn Records>,
    service: String,
    versions: BTreeMap<String, u64>,
    files: PathBuf,
}

impl SecretSource for Pinned {
    fn read(&self, name: &str) -> Result<String, String> {
        let service = &self.service;
        if let Some(&version) = self.versions.get(name) {
            return match self.records.secret_value(service, name, version) {
                Ok(Some(value)) => Ok(value),
                Ok(None) => Err(format!(
                    "secret:{name} version {version} of `{service}` is not in the store"
                )),
                Err(e) => Err(format!("secret:{name} cannot be read: {e:#}")),
            };
        }
        if self.files.join(name).is_file() {
            return SecretsDir(self.files.clone()).read(name);
        }
        Err(format!(
            "secret:{name} is not set for `{service}`: set it with `runway secrets set {name} \
             --service {service}` (the value on stdin)"
        ))
    }
}

/// The secret names `spec` refers to (`secret:NAME` anywhere in it: env, checks, hooks,
/// notifications), in order.
pub fn referenced(spec: &runway_spec::Spec) -> std::collections::BTreeSet<String> {
    fn walk(value: &serde_json::Value, names: &mut std::collections::BTreeSet<String>) {
        match value {
            serde_json::Value::String(s) => {
                if let Some(name) = s.strip_prefix("secret:") {
                    names.insert(name.to_string());
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, names)),
            serde_json::Value::Object(map) => map.values().for_each(|v| walk(v, names)),
            _ => {}
        }
    }
    let mut names = std::collections::BTreeSet::new();
    if let Ok(value) = serde_json::to_value(spec) {
        walk(&value, &mut names);
    }
    names
}

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
/// `secret:NAME` references read from `secrets`: what a process gets at start. The error
/// names the variable and the reference, never a value.
pub fn resolve_env(
    env: &BTreeMap<String, String>,
    secrets: &Secrets,
) -> Result<BTreeMap<String, String>, String> {
    let process: BTreeMap<String, String> = std::env::vars().collect();
    env.iter()
        .map(|(name, value)| {
            let resolved = runway_checks::run::resolve_reference(value, &process, secrets.source())
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
