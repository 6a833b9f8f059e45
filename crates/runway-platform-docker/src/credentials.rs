//! Registry credentials as the docker CLI keeps them: `auths` in `config.json` of
//! `$DOCKER_CONFIG` (default `~/.docker`), written by `docker login`. Credential helpers
//! (`credsStore`) are not run: runway never runs a program it was not configured to.

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
}
