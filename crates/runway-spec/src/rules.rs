//! The semantic rules of a spec, written once.
//!
//! A spec reaches runway two ways: as `runway.toml` text (checked by the reader, which
//! knows where each value came from) and as JSON from the state store or the API
//! (checked by [`Spec::validate`](crate::Spec::validate), which has no positions). Both
//! call these functions, so the two paths cannot drift apart; each returns a
//! [`Problem`] that the caller attaches a location or a field path to.

use crate::duration::Dur;

/// A rule violation: what is wrong and, when useful, what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

type Rule = Result<(), Problem>;

/// Longest accepted service name (it ends up in process titles, paths and DNS-ish names).
pub(crate) const MAX_NAME_LEN: usize = 63;

/// Strategy kinds this version can run.
pub(crate) const SUPPORTED_KINDS: &[&str] = &["rolling"];

/// Strategy kinds that are planned but not implemented yet; naming them gets a clearer
/// error than an unknown word does.
pub(crate) const PLANNED_KINDS: &[&str] = &["canary", "blue-green", "recreate"];

/// `service.name`: `[a-z0-9][a-z0-9-_.]*`, at most [`MAX_NAME_LEN`] characters.
pub(crate) fn service_name(name: &str) -> Rule {
    const ALLOWED: &str = "lowercase letters, digits, '-', '_' and '.'";
    if name.is_empty() {
        return Err(Problem::new(
            "the service name must not be empty",
            format!("use {ALLOWED}, e.g. name = \"web\""),
        ));
    }
    let len = name.chars().count();
    if len > MAX_NAME_LEN {
        return Err(Problem::new(
            format!("the service name is {len} characters long; the maximum is {MAX_NAME_LEN}"),
            "choose a shorter name",
        ));
    }
    let valid_start = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid_rest = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if valid_start && valid_rest {
        return Ok(());
    }
    let hint = match suggest_name(name) {
        Some(fixed) => {
            format!("use {ALLOWED}, starting with a letter or digit, e.g. name = \"{fixed}\"")
        }
        None => format!("use {ALLOWED}, starting with a letter or digit"),
    };
    Err(Problem::new(format!("invalid service name {name:?}"), hint))
}

/// A valid name close to `name` (lowercased, other characters turned into `-`).
fn suggest_name(name: &str) -> Option<String> {
    let mapped: String = name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let fixed = mapped.trim_start_matches(['-', '_', '.']);
    let fixed: String = fixed.chars().take(MAX_NAME_LEN).collect();
    (!fixed.is_empty()).then_some(fixed)
}

/// `run.command` must name a program.
pub(crate) fn command_not_empty(argv_len: usize) -> Rule {
    if argv_len == 0 {
        return Err(Problem::new(
            "the command must not be empty",
            "give the program and its arguments, e.g. command = [\"./server\", \"--port\", \"{port}\"]",
        ));
    }
    Ok(())
}

/// `run.command[0]`, the program, must not be an empty string.
pub(crate) fn program(program: &str) -> Rule {
    if program.trim().is_empty() {
        return Err(Problem::new(
            "the program (first element of the command) must not be empty",
            "put the executable first, e.g. command = [\"python3\", \"app.py\"]",
        ));
    }
    Ok(())
}

/// `run.replicas` must be at least 1.
pub(crate) fn replicas(replicas: u32) -> Rule {
    if replicas == 0 {
        return Err(Problem::new(
            "replicas must be at least 1",
            "set replicas = 1 or more",
        ));
    }
    Ok(())
}

/// Keys of `run.env` must be portable environment variable names.
pub(crate) fn env_name(name: &str) -> Rule {
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(Problem::new(
            format!("{name:?} is not a valid environment variable name"),
            "use letters, digits and '_', not starting with a digit, e.g. APP_ENV",
        ));
    }
    Ok(())
}

/// `run.dir`, when given, must not be empty.
pub(crate) fn dir(dir: &str) -> Rule {
    if dir.is_empty() {
        return Err(Problem::new(
            "`dir` must not be empty",
            "remove `dir` to run in the directory that contains runway.toml",
        ));
    }
    Ok(())
}

/// `health.path` is a URL path.
pub(crate) fn health_path(path: &str) -> Rule {
    if !path.starts_with('/') {
        let hint = if path.is_empty() || path.contains("://") {
            "give only the path of the URL, e.g. path = \"/health/ready\"".to_owned()
        } else {
            format!("did you mean path = \"/{path}\"?")
        };
        return Err(Problem::new(
            "the health check path must start with '/'",
            hint,
        ));
    }
    Ok(())
}

/// Health check timings must be greater than zero (a zero interval would spin).
pub(crate) fn positive(key: &str, value: Dur, example: &str) -> Rule {
    if value.is_zero() {
        return Err(Problem::new(
            format!("`{key}` must be greater than 0"),
            format!("for example: {key} = \"{example}\""),
        ));
    }
    Ok(())
}

/// A rolling update must be able to either add or remove a replica at each step.
pub(crate) fn rolling(max_surge: u32, max_unavailable: u32) -> Rule {
    if max_surge == 0 && max_unavailable == 0 {
        return Err(Problem::new(
            "max_surge and max_unavailable cannot both be 0",
            "with both 0 the rollout could never replace a replica; set max_surge = 1 to \
             start each new replica before stopping an old one",
        ));
    }
    Ok(())
}

/// The hint for a strategy kind this version cannot run.
pub(crate) fn kinds_hint() -> String {
    let supported: Vec<String> = SUPPORTED_KINDS.iter().map(|k| format!("\"{k}\"")).collect();
    format!(
        "supported kinds: {} ({} are not supported yet)",
        supported.join(", "),
        PLANNED_KINDS.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names() {
        for ok in ["web", "a", "0", "api-v2", "my_app.prod", &"a".repeat(63)] {
            assert_eq!(service_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Web",
            "-web",
            "_web",
            ".web",
            "my app",
            "wéb",
            &"a".repeat(64),
        ] {
            assert!(service_name(bad).is_err(), "{bad}");
        }
        let hint = service_name("My App").unwrap_err().hint.unwrap();
        assert!(hint.contains("name = \"my-app\""), "{hint}");
    }

    #[test]
    fn env_names() {
        for ok in ["APP_ENV", "_x", "a1", "PATH"] {
            assert_eq!(env_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "É"] {
            assert!(env_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn health_paths() {
        assert_eq!(health_path("/"), Ok(()));
        let hint = health_path("health").unwrap_err().hint.unwrap();
        assert_eq!(hint, "did you mean path = \"/health\"?");
        assert!(health_path("http://x/health").is_err());
    }

    #[test]
    fn rolling_needs_some_slack() {
        assert_eq!(rolling(1, 0), Ok(()));
        assert_eq!(rolling(0, 1), Ok(()));
        assert!(rolling(0, 0).is_err());
    }
}
