//! Registry credentials as the docker CLI finds them in `config.json` of `$DOCKER_CONFIG`
//! (default `~/.docker`), written by `docker login`: the registry's credential helper
//! (`credHelpers`, else `credsStore`: the program `docker-credential-NAME get`, the registry on
//! its stdin, run directly, never through a shell), else its entry in `auths`. Nothing of them
//! is ever logged.

use std::path::PathBuf;

use base64::Engine as _;
use bollard::auth::DockerCredentials;

/// Docker Hub's key in `auths`.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// The registry an image reference names: its first path component when that looks like a
/// host (has a `.` or a `:`, or is `localhost`); Docker Hub otherwise.
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => DOCKER_HUB,
    }
}

fn config_dir() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")),
    }
}

/// The credentials `docker login` stored for `image`'s registry, if any.
pub fn for_image(image: &str) -> Option<DockerCredentials> {
    let text = std::fs::read_to_string(config_dir()?.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    from_config(&config, image)
}

fn from_config(config: &serde_json::Value, image: &str) -> Option<DockerCredentials> {
    let registry = registry_of(image);
    let helper = config
        .get("credHelpers")
        .and_then(|h| h.get(registry))
        .or_else(|| config.get("credsStore"))
        .and_then(|h| h.as_str())
        .filter(|name| !name.is_empty() && !name.contains(['/', '\\']));
    if let Some(found) = helper.and_then(|name| {
        from_helper(
            std::path::Path::new(&format!("docker-credential-{name}")),
            registry,
        )
    }) {
        return Some(found);
    }
    let auths = config.get("auths")?.as_object()?;
    let entry = auths
        .get(registry)
        .or_else(|| auths.get(&format!("https://{registry}")))?;
    let encoded = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some(DockerCredentials {
        username: Some(username.to_string()),
        password: Some(password.to_string()),
        serveraddress: Some(registry.to_string()),
        ..Default::default()
    })
}

/// How long a credential helper may take.
const HELPER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What credential helper `program` answers for `registry` (`{"Username", "Secret"}`; the
/// user `<token>` means the secret is an identity token); `None` when it has none or fails.
fn from_helper(program: &std::path::Path, registry: &str) -> Option<DockerCredentials> {
    use std::io::Write;
    let mut child = std::process::Command::new(program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(registry.as_bytes()).is_ok());
    if written != Some(true) {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    // A helper that waits for a prompt nobody answers is given up on, not waited for.
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < HELPER_TIMEOUT => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            _ => {
                tracing::warn!(%registry, helper = %program.display(), "the credential helper did not answer within {}s", HELPER_TIMEOUT.as_secs());
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        tracing::warn!(%registry, helper = %program.display(), "the credential helper has no credentials for this registry");
        return None;
    }
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let user = answer.get("Username")?.as_str()?.to_string();
    let secret = answer.get("Secret")?.as_str()?.to_string();
    let mut credentials = DockerCredentials {
        serveraddress: Some(registry.to_string()),
        ..Default::default()
    };
    if user == "<token>" {
        credentials.identitytoken = Some(secret);
    } else {
        credentials.username = Some(user);
        credentials.password = Some(secret);
    }
    Some(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_the_first_component_when_it_is_a_host() {
        assert_eq!(
            registry_of("registry.example.com/atom:1"),
            "registry.example.com"
        );
        assert_eq!(registry_of("127.0.0.1:5000/demo:v1"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/demo"), "localhost");
        assert_eq!(registry_of("library/postgres:16"), DOCKER_HUB);
        assert_eq!(registry_of("postgres:16"), DOCKER_HUB);
    }

    #[test]
    fn credentials_come_from_auths_by_registry() {
        // "user:s3cret"
        let config = serde_json::json!({"auths": {
            "127.0.0.1:5000": {"auth": "dXNlcjpzM2NyZXQ="},
            "https://index.docker.io/v1/": {"auth": "aHViOnB3"}
        }});
        let local = from_config(&config, "127.0.0.1:5000/demo:v1").expect("found");
        assert_eq!(local.username.as_deref(), Some("user"));
        assert_eq!(local.password.as_deref(), Some("s3cret"));
        let hub = from_config(&config, "postgres:16").expect("found");
        assert_eq!(hub.username.as_deref(), Some("hub"));
        assert!(from_config(&config, "registry.example.com/x").is_none());
    }

    #[test]
    fn a_credential_helper_answers_for_its_registry() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-fake");
        // Answers what registry it was asked for, as a real helper reads it from stdin.
        std::fs::write(
            &helper,
            "#!/bin/sh\nread registry\n[ \"$1\" = get ] || exit 2\n\
             [ \"$registry\" = 127.0.0.1:5000 ] || { echo 'credentials not found' >&2; exit 1; }\n\
             echo '{\"ServerURL\":\"127.0.0.1:5000\",\"Username\":\"ci\",\"Secret\":\"from-helper\"}'\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = from_helper(&helper, "127.0.0.1:5000").expect("answered");
        assert_eq!(found.username.as_deref(), Some("ci"));
        assert_eq!(found.password.as_deref(), Some("from-helper"));
        assert!(from_helper(&helper, "registry.example.com").is_none());
        assert!(from_helper(&dir.path().join("docker-credential-none"), "x").is_none());
    }
}
