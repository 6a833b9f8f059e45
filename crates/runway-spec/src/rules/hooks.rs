//! The rules of `[hooks]` and `[maintenance]`, shared by the TOML reader and
//! [`Spec::validate`](crate::Spec::validate) like the rest of `rules.rs`.
//!
//! Most of them are about `[hooks.migrate]`: its keys only make sense in certain
//! combinations (`undo`, `irreversible`, `on_failure`), and a wrong combination is a
//! rollback that does something nobody intended, found out during an incident. Both
//! callers check the combinations in the same order (see [`MigrateRule`]), so that a
//! file and its JSON form get the same first error.

use super::{Problem, Rule};
use crate::model::{HookPhase, OnFailure};

/// `[hooks.backup] command`, for hints.
pub(crate) const BACKUP_COMMAND: &str =
    r#"command = ["sh", "-c", "pg_dump \"$DATABASE_URL\" > \"$RUNWAY_BACKUP_DIR/db.sql\""]"#;
/// `[hooks.backup] verify`, for hints.
pub(crate) const BACKUP_VERIFY: &str =
    r#"verify = ["sh", "-c", "test -s \"$RUNWAY_BACKUP_DIR/db.sql\""]"#;
/// `[hooks.backup] restore`, for hints.
pub(crate) const BACKUP_RESTORE: &str =
    r#"restore = ["sh", "-c", "psql \"$DATABASE_URL\" < \"$RUNWAY_BACKUP_DIR/db.sql\""]"#;
/// `[hooks.migrate] command`, for hints.
pub(crate) const MIGRATE_COMMAND: &str = r#"command = ["alembic", "upgrade", "head"]"#;
/// `[hooks.migrate] undo`, for hints.
pub(crate) const MIGRATE_UNDO: &str = r#"undo = ["alembic", "downgrade", "-1"]"#;
/// `[[hooks.run]] command`, for hints.
pub(crate) const RUN_COMMAND: &str = r#"command = ["./scripts/notify-team.sh"]"#;
/// `[maintenance] message`, for hints.
pub(crate) const MAINTENANCE_MESSAGE: &str =
    r#"message = "We are upgrading the database; back in a few minutes.""#;

/// The hint listing the phases of `[[hooks.run]] at`.
pub(crate) fn phases_hint() -> String {
    let all: Vec<String> = HookPhase::ALL
        .iter()
        .map(|p| format!("\"{}\"", p.as_str()))
        .collect();
    format!("phases: {}", all.join(", "))
}

/// The hint explaining the `on_failure` policies.
pub(crate) fn policies_hint() -> String {
    "on_failure = \"freeze\" (keep the new release and wait for a human), \"rollback\" \
     (old code on the new schema) or \"restore\" (restore the backup)"
        .to_owned()
}

/// A hook command (`key` is `command`, `verify`, `restore` or `undo`) is an argv: it
/// must name a program. `example` is a whole `key = [...]` line.
pub(crate) fn argv_not_empty(key: &str, len: usize, example: &str) -> Rule {
    if len == 0 {
        return Err(Problem::new(
            format!("`{key}` must not be empty"),
            format!("give the program and its arguments (no shell is involved), e.g. {example}"),
        ));
    }
    Ok(())
}

/// The first element of a hook command, the program, must not be blank.
pub(crate) fn argv_program(key: &str, program: &str, example: &str) -> Rule {
    if program.trim().is_empty() {
        return Err(Problem::new(
            format!("the program (first element of `{key}`) must not be empty"),
            format!("put the executable first, e.g. {example}"),
        ));
    }
    Ok(())
}

/// A rule about the combination of `[hooks.migrate]`'s keys, and the key it is
/// reported at (the one to change).
pub(crate) enum MigrateRule {
    /// At `undo`.
    Undo(Problem),
    /// At `on_failure`.
    OnFailure(Problem),
    /// At `irreversible`.
    Irreversible(Problem),
}

/// What [`migrate`] needs to know about `[hooks.migrate]` and `[hooks.backup]`.
pub(crate) struct MigrateFacts {
    pub has_undo: bool,
    pub irreversible: bool,
    pub on_failure: Option<OnFailure>,
    /// Whether there is a `[hooks.backup]` at all.
    pub has_backup: bool,
    /// Whether `[hooks.backup]` has a `restore` command.
    pub has_restore: bool,
}

/// The combination rules of `[hooks.migrate]`, in the order they are reported: the
/// contradiction first (`undo` of an irreversible migration), then a policy that can
/// never apply, then a missing policy, then a policy that cannot be carried out.
pub(crate) fn migrate(facts: &MigrateFacts) -> Result<(), MigrateRule> {
    if facts.has_undo && facts.irreversible {
        return Err(MigrateRule::Undo(Problem::new(
            "`undo` contradicts irreversible = true",
            "a migration with an `undo` command can be reverted: remove irreversible = true, \
             or remove `undo` and choose an on_failure policy",
        )));
    }
    if facts.has_undo && facts.on_failure.is_some() {
        return Err(MigrateRule::OnFailure(Problem::new(
            "`on_failure` only applies to a migration without `undo`",
            "a rollback runs `undo` to revert the migration: remove on_failure, or remove \
             `undo` if the migration cannot be reverted",
        )));
    }
    if facts.irreversible && facts.on_failure.is_none() {
        return Err(MigrateRule::Irreversible(Problem::new(
            "an irreversible migration needs an explicit rollback policy",
            policies_hint(),
        )));
    }
    if facts.on_failure == Some(OnFailure::Restore) && !facts.has_restore {
        let hint = if facts.has_backup {
            format!("add to [hooks.backup]: {BACKUP_RESTORE}")
        } else {
            format!("add a [hooks.backup] section with {BACKUP_COMMAND} and {BACKUP_RESTORE}")
        };
        return Err(MigrateRule::OnFailure(Problem::new(
            "on_failure = \"restore\" needs [hooks.backup] with a `restore` command",
            hint,
        )));
    }
    Ok(())
}

/// `[maintenance] allow`: a path the replicas still answer in maintenance. It starts
/// with `/`, and a `*` may only end it (a prefix): the proxy matches nothing else, so
/// a `*` in the middle would silently never match.
pub(crate) fn allow_path(path: &str) -> Rule {
    if !path.starts_with('/') {
        let hint = if path.is_empty() || path.contains("://") {
            "give only the path of the URL, e.g. allow = [\"/health\", \"/api/status/*\"]"
                .to_owned()
        } else {
            format!("did you mean \"/{path}\"?")
        };
        return Err(Problem::new(
            format!("the allowed path {path:?} must start with '/'"),
            hint,
        ));
    }
    if path.find('*').is_some_and(|i| i != path.len() - 1) {
        return Err(Problem::new(
            format!("a `*` may only end an allowed path, found {path:?}"),
            "write an exact path (\"/health\") or a prefix with one trailing `*` \
             (\"/api/status/*\"); there are no wildcards inside a path",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(has_undo: bool, irreversible: bool, on_failure: Option<OnFailure>) -> MigrateFacts {
        MigrateFacts {
            has_undo,
            irreversible,
            on_failure,
            has_backup: false,
            has_restore: false,
        }
    }

    #[test]
    fn migrate_combinations() {
        use OnFailure::*;
        let at = |f: MigrateFacts| match migrate(&f) {
            Ok(()) => "ok",
            Err(MigrateRule::Undo(_)) => "undo",
            Err(MigrateRule::OnFailure(_)) => "on_failure",
            Err(MigrateRule::Irreversible(_)) => "irreversible",
        };
        assert_eq!(at(facts(false, false, None)), "ok");
        assert_eq!(at(facts(true, false, None)), "ok");
        assert_eq!(at(facts(false, false, Some(Freeze))), "ok");
        assert_eq!(at(facts(false, true, Some(Rollback))), "ok");
        assert_eq!(at(facts(true, true, None)), "undo");
        assert_eq!(at(facts(true, true, Some(Freeze))), "undo");
        assert_eq!(at(facts(true, false, Some(Freeze))), "on_failure");
        assert_eq!(at(facts(false, true, None)), "irreversible");
        assert_eq!(at(facts(false, true, Some(Restore))), "on_failure");
        let restorable = MigrateFacts {
            has_backup: true,
            has_restore: true,
            ..facts(false, true, Some(Restore))
        };
        assert_eq!(at(restorable), "ok");
    }

    #[test]
    fn allow_paths() {
        for ok in ["/", "/health", "/api/*", "/*", "/static*"] {
            assert_eq!(allow_path(ok), Ok(()), "{ok}");
        }
        for bad in ["", "health", "*", "/a/*/b", "/**", "http://x/health"] {
            assert!(allow_path(bad).is_err(), "{bad}");
        }
        let hint = allow_path("health").unwrap_err().hint.unwrap();
        assert_eq!(hint, "did you mean \"/health\"?");
    }
}
