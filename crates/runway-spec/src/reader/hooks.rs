//! Reading `[hooks]` (`[hooks.backup]`, `[hooks.migrate]`, `[[hooks.run]]`) and
//! `[maintenance]`: the database work around a deployment and the page shown while
//! it happens.
//!
//! Every hook command is an argv, like `[run] command`: no shell is involved unless the
//! command runs one, which is why a single string gets a hint that either splits it or
//! hands it to `sh -c`. The rules are `rules/hooks.rs`'s, shared with
//! [`Spec::validate`](crate::Spec::validate); the combination rules of
//! `[hooks.migrate]` run once all its keys are read, because each of them is reported
//! at the key to change, which may come before or after the others.

use toml_edit::{Item, Value};

use super::checks::strings;
use super::{header_span, keys_of, unknown_word, At, Section};
use crate::duration::Dur;
use crate::error::SpecError;
use crate::model::{
    BackupHook, HookPhase, HooksSpec, MaintenanceSpec, MigrateHook, OnFailure, PhaseHook,
};
use crate::rules::checks::not_blank;
use crate::rules::hooks::{self as rules, MigrateFacts, MigrateRule};
use crate::rules::{at_least_one, positive};
use crate::suggest;

/// The keys of `[hooks.backup]`.
const BACKUP_KEYS: &[&str] = &["command", "verify", "restore", "keep", "timeout", "image"];

/// The keys of `[hooks.migrate]`.
const MIGRATE_KEYS: &[&str] = &[
    "command",
    "undo",
    "timeout",
    "irreversible",
    "on_failure",
    "image",
];

/// The keys of one `[[hooks.run]]`.
const RUN_KEYS: &[&str] = &["at", "command", "timeout", "image"];

/// The tables of `[hooks]`: their key, how they are written, and their own keys.
const TABLES: &[(&str, &str, &[&str])] = &[
    ("backup", "[hooks.backup]", BACKUP_KEYS),
    ("migrate", "[hooks.migrate]", MIGRATE_KEYS),
    ("run", "[[hooks.run]]", RUN_KEYS),
];

/// A backup, for hints.
const BACKUP_EXAMPLE: &str = "[hooks.backup]\ncommand = [\"sh\", \"-c\", \"pg_dump \
                              \\\"$DATABASE_URL\\\" > \\\"$RUNWAY_BACKUP_DIR/db.sql\\\"\"]";

/// A migration, for hints.
const MIGRATE_EXAMPLE: &str = "[hooks.migrate]\ncommand = [\"alembic\", \"upgrade\", \"head\"]";

/// A phase hook, for hints.
const RUN_EXAMPLE: &str =
    "[[hooks.run]]\nat = \"post-deploy\"\ncommand = [\"./scripts/notify-team.sh\"]";

/// `[maintenance] allow`, for hints.
const ALLOW_EXAMPLE: &str = "allow = [\"/health\", \"/api/status/*\"]";

/// How the `[hooks]` table `key` is written (`[hooks.backup]`), if it is one: for a
/// top-level `[backup]` or `[migrate]`, the likeliest slip.
pub(super) fn header_of(key: &str) -> Option<&'static str> {
    TABLES
        .iter()
        .find(|&&(name, _, _)| name == key)
        .map(|&(_, header, _)| header)
}

/// `[hooks]` of the document `root`; empty when absent.
pub(super) fn read_hooks(root: &Section<'_>) -> Result<HooksSpec, SpecError> {
    let Some(sec) = root.section("hooks", "[hooks.migrate]")? else {
        return Ok(HooksSpec::default());
    };
    check_tables(&sec)?;
    let present = |name: &str| root.table.get(name).filter(|item| !item.is_none());
    let kubernetes = present("kubernetes");
    // A hook may name its own image only where hooks run in containers (or Jobs).
    let containers = present("docker").is_some() || kubernetes.is_some();
    let backup = match sec.section("backup", BACKUP_EXAMPLE)? {
        Some(table) => {
            let backup = read_backup(&table, containers)?;
            // A Job's own disk goes with its pod: a backup on a cluster needs a claim.
            if kubernetes.is_some_and(|k8s| k8s.get("backup_claim").is_none()) {
                return Err(table.src.error(
                    &table.span,
                    "a backup on Kubernetes is written by a Job, whose own disk is gone when \
                     it ends: it needs a PersistentVolumeClaim to keep the backup on",
                    Some(
                        "set backup_claim = \"<claim>\" in [kubernetes], a claim in the same \
                         namespace (ReadWriteMany, or ReadWriteOnce if the backup Jobs may share \
                         a node; deploy/kubernetes/backups.yaml is one)"
                            .into(),
                    ),
                ));
            }
            Some(backup)
        }
        None => None,
    };
    let migrate = match sec.section("migrate", MIGRATE_EXAMPLE)? {
        Some(table) => Some(read_migrate(&table, backup.as_ref(), containers)?),
        None => None,
    };
    let run = read_phase_hooks(&sec, containers)?;
    Ok(HooksSpec {
        backup,
        migrate,
        run,
    })
}

/// `[hooks]` holds only its tables. An unknown one is reported as the section it was
/// written as (`[hooks.bakup]`); a plain key as one that belongs in a table.
fn check_tables(sec: &Section<'_>) -> Result<(), SpecError> {
    let names: Vec<&str> = TABLES.iter().map(|&(name, _, _)| name).collect();
    let Some((key, item)) = sec
        .table
        .iter()
        .find(|(key, item)| !item.is_none() && !names.contains(key))
    else {
        return Ok(());
    };
    let headers: Vec<&str> = TABLES.iter().map(|&(_, header, _)| header).collect();
    let valid = format!("valid sections: {}", headers.join(", "));
    let span = sec.key_span(key);
    if item.is_table_like() || item.is_array_of_tables() {
        let hint = match suggest::closest(key, &names).and_then(header_of) {
            Some(close) => format!("did you mean {close}? {valid}"),
            None => valid,
        };
        return Err(sec
            .src
            .error(&span, format!("unknown section [hooks.{key}]"), Some(hint)));
    }
    let homes: Vec<&str> = TABLES
        .iter()
        .filter(|&&(_, _, keys)| keys.contains(&key))
        .map(|&(_, header, _)| header)
        .collect();
    let hint = if homes.is_empty() {
        format!("[hooks] holds only sections; {valid}")
    } else {
        format!(
            "`{key}` belongs in {}; [hooks] holds only sections: {}",
            homes.join(" or "),
            headers.join(", ")
        )
    };
    Err(sec
        .src
        .error(&span, format!("unknown key `{key}` in [hooks]"), Some(hint)))
}

/// Rejects keys not in `allowed`; a key of another hook table says whose it is (a
/// `restore` in `[hooks.migrate]` is a backup's, not a typo).
fn check_hook_keys(sec: &Section<'_>, allowed: &[&str]) -> Result<(), SpecError> {
    let misplaced = sec.table.iter().find_map(|(key, item)| {
        if item.is_none() || allowed.contains(&key) {
            return None;
        }
        let owners: Vec<&str> = TABLES
            .iter()
            .filter(|&&(_, _, keys)| keys.contains(&key))
            .map(|&(_, header, _)| header)
            .collect();
        (!owners.is_empty()).then(|| (key, owners.join(" or ")))
    });
    if let Some((key, owners)) = misplaced {
        return Err(sec.src.error(
            &sec.key_span(key),
            format!("unknown key `{key}` in {}", sec.title()),
            Some(format!(
                "`{key}` is a setting of {owners}; valid keys: {}",
                allowed.join(", ")
            )),
        ));
    }
    sec.check_keys(allowed)
}

fn read_backup(sec: &Section<'_>, containers: bool) -> Result<BackupHook, SpecError> {
    check_hook_keys(sec, BACKUP_KEYS)?;
    let command = read_argv(sec, "command", rules::BACKUP_COMMAND)?;
    let command = sec.required("command", rules::BACKUP_COMMAND, command)?;
    let verify = read_argv(sec, "verify", rules::BACKUP_VERIFY)?;
    let restore = read_argv(sec, "restore", rules::BACKUP_RESTORE)?;
    let keep = match sec.count("keep", "keep = 5")? {
        Some(n) => {
            sec.src.check(
                &n.span,
                at_least_one("keep", n.value, BackupHook::DEFAULT_KEEP),
            )?;
            n.value
        }
        None => BackupHook::DEFAULT_KEEP,
    };
    Ok(BackupHook {
        image: read_image(sec, containers)?,
        command: command.value,
        verify: verify.map(|v| v.value),
        restore: restore.map(|r| r.value),
        keep,
        timeout: read_timeout(sec, "30m", BackupHook::DEFAULT_TIMEOUT)?,
    })
}

/// `[hooks.migrate]`; `backup` is `[hooks.backup]`, which `on_failure = "restore"`
/// needs.
fn read_migrate(
    sec: &Section<'_>,
    backup: Option<&BackupHook>,
    containers: bool,
) -> Result<MigrateHook, SpecError> {
    check_hook_keys(sec, MIGRATE_KEYS)?;
    let command = read_argv(sec, "command", rules::MIGRATE_COMMAND)?;
    let command = sec.required("command", rules::MIGRATE_COMMAND, command)?;
    let undo = read_argv(sec, "undo", rules::MIGRATE_UNDO)?;
    let timeout = read_timeout(sec, "5m", MigrateHook::DEFAULT_TIMEOUT)?;
    let irreversible = sec.get(
        "irreversible",
        "a boolean",
        "irreversible = true",
        Value::as_bool,
    )?;
    let on_failure = read_on_failure(sec)?;

    let facts = MigrateFacts {
        has_undo: undo.is_some(),
        irreversible: irreversible.as_ref().is_some_and(|b| b.value),
        on_failure: on_failure.as_ref().map(|p| p.value),
        has_backup: backup.is_some(),
        has_restore: backup.is_some_and(|b| b.restore.is_some()),
    };
    if let Err(broken) = rules::migrate(&facts) {
        // Each rule fires only when its key was written; the header is a fallback.
        let (span, problem) = match broken {
            MigrateRule::Undo(p) => (undo.as_ref().map(|u| u.span.clone()), p),
            MigrateRule::OnFailure(p) => (on_failure.as_ref().map(|o| o.span.clone()), p),
            MigrateRule::Irreversible(p) => (irreversible.as_ref().map(|i| i.span.clone()), p),
        };
        let span = span.unwrap_or_else(|| sec.span.clone());
        return Err(sec.src.error(&span, problem.message, problem.hint));
    }

    Ok(MigrateHook {
        image: read_image(sec, containers)?,
        command: command.value,
        undo: undo.map(|u| u.value),
        timeout,
        irreversible: facts.irreversible,
        on_failure: facts.on_failure,
    })
}

fn read_on_failure(sec: &Section<'_>) -> Result<Option<At<OnFailure>>, SpecError> {
    let Some(text) = sec.string("on_failure", "on_failure = \"freeze\"")? else {
        return Ok(None);
    };
    let policy = text.value.parse::<OnFailure>().map_err(|()| {
        let names: Vec<&str> = OnFailure::ALL.iter().map(|p| p.as_str()).collect();
        unknown_word(
            sec,
            &text,
            "on_failure policy",
            &names,
            rules::policies_hint(),
        )
    })?;
    Ok(Some(At {
        value: policy,
        span: text.span,
    }))
}

/// The `[[hooks.run]]` entries of `sec` (`[hooks]`), in file order.
fn read_phase_hooks(sec: &Section<'_>, containers: bool) -> Result<Vec<PhaseHook>, SpecError> {
    // `[hooks.run]` makes one table, which cannot hold a second hook.
    if let Some((item @ Item::Table(_), span)) = sec.entry("run") {
        let at = if item.span().is_some() {
            header_span(sec.src.text, span)
        } else {
            sec.key_span("run")
        };
        return Err(sec.src.error(
            &at,
            "phase hooks are written [[hooks.run]], with double brackets, once above each hook",
            Some(format!(
                "each hook is a table of its own, e.g.:\n{RUN_EXAMPLE}"
            )),
        ));
    }
    let Some(tables) = sec.tables("run", "hook", RUN_EXAMPLE)? else {
        return Ok(Vec::new());
    };
    let mut hooks = Vec::with_capacity(tables.value.len());
    for (i, mut table) in tables.value.into_iter().enumerate() {
        table.label = format!("hook {} of [[hooks.run]]", i + 1);
        if let Some(hook) = sec.src.recover(read_phase_hook(&table, containers)) {
            hooks.push(hook);
        }
    }
    Ok(hooks)
}

fn read_phase_hook(sec: &Section<'_>, containers: bool) -> Result<PhaseHook, SpecError> {
    const AT: &str = "at = \"post-deploy\"";
    check_hook_keys(sec, RUN_KEYS)?;
    let text = sec.required("at", AT, sec.string("at", AT)?)?;
    let at = text.value.parse::<HookPhase>().map_err(|()| {
        let names: Vec<&str> = HookPhase::ALL.iter().map(|p| p.as_str()).collect();
        unknown_word(sec, &text, "hook phase", &names, rules::phases_hint())
    })?;
    let command = read_argv(sec, "command", rules::RUN_COMMAND)?;
    let command = sec.required("command", rules::RUN_COMMAND, command)?;
    Ok(PhaseHook {
        image: read_image(sec, containers)?,
        at,
        command: command.value,
        timeout: read_timeout(sec, "5m", PhaseHook::DEFAULT_TIMEOUT)?,
    })
}

/// A hook's own `image` (a `pg_dump` image for backups), for the hooks of a `[docker]`
/// service, which run in one-off containers, or of a `[kubernetes]` one, which run as Jobs;
/// `None`: the release's image.
fn read_image(sec: &Section<'_>, containers: bool) -> Result<Option<String>, SpecError> {
    let Some(image) = sec.string("image", "image = \"postgres:16\"")? else {
        return Ok(None);
    };
    if !containers {
        return Err(sec.src.error(
            &image.span,
            "`image` is for the hooks of a [docker] or [kubernetes] service: a [run] \
             service's hooks run as local processes",
            Some("remove `image`, or describe the service with [docker] or [kubernetes]".into()),
        ));
    }
    sec.src
        .check(&image.span, crate::rules::image(image.value))?;
    Ok(Some(image.value.to_owned()))
}

/// A hook command (`key` = an array of strings naming a program), if present, with the
/// span of the array. `example` is a whole `key = [...]` line.
fn read_argv(
    sec: &Section<'_>,
    key: &str,
    example: &str,
) -> Result<Option<At<Vec<String>>>, SpecError> {
    if let Some((Item::Value(Value::String(line)), span)) = sec.entry(key) {
        return Err(sec.src.error(
            &span,
            format!("`{key}` must be an array of strings, not a single string"),
            Some(argv_hint(key, line.value(), example)),
        ));
    }
    let Some(array) = strings(sec, key, example)? else {
        return Ok(None);
    };
    let args = &array.value;
    sec.src
        .require(&array.span, rules::argv_not_empty(key, args.len(), example))?;
    sec.src.check(
        &args[0].span,
        rules::argv_program(key, args[0].value, example),
    )?;
    Ok(Some(At {
        value: args.iter().map(|a| a.value.to_owned()).collect(),
        span: array.span,
    }))
}

/// How to write the command line `line` as an argv. No shell is involved, so a line
/// that relies on one (`$VAR`, `>`, quotes) is handed to `sh -c`: split into words,
/// its `$DATABASE_URL` would reach the program as it is.
fn argv_hint(key: &str, line: &str, example: &str) -> String {
    const SHELL: &[char] = &[
        '$', '>', '<', '|', '&', ';', '*', '?', '`', '"', '\'', '(', ')', '~', '\\',
    ];
    if line.trim().is_empty() {
        return format!("for example: {example}");
    }
    if line.contains(SHELL) {
        return format!(
            "no shell is involved; to use the shell's syntax, run one: {key} = [\"sh\", \"-c\", {line:?}]"
        );
    }
    let words: Vec<String> = line.split_whitespace().map(|w| format!("{w:?}")).collect();
    format!(
        "write the program and each argument as separate strings: {key} = [{}]",
        words.join(", ")
    )
}

/// `timeout`: a duration greater than 0 (`example` is a good one), or `default`.
fn read_timeout(sec: &Section<'_>, example: &str, default: Dur) -> Result<Dur, SpecError> {
    match sec.duration("timeout", example)? {
        Some(d) => {
            sec.src
                .check(&d.span, positive("timeout", d.value, example))?;
            Ok(d.value)
        }
        None => Ok(default),
    }
}

/// `[maintenance]` of the document `root`; the defaults when absent.
pub(super) fn read_maintenance(root: &Section<'_>) -> Result<MaintenanceSpec, SpecError> {
    let Some(sec) = root.section("maintenance", "[maintenance]")? else {
        return Ok(MaintenanceSpec::default());
    };
    sec.check_keys(keys_of("maintenance"))?;

    let message = match sec.string("message", rules::MAINTENANCE_MESSAGE)? {
        Some(text) => {
            sec.src.check(
                &text.span,
                not_blank("message", text.value, rules::MAINTENANCE_MESSAGE),
            )?;
            text.value.to_owned()
        }
        None => MaintenanceSpec::DEFAULT_MESSAGE.to_owned(),
    };
    let retry_after = match sec.duration("retry_after", "30s")? {
        Some(d) => {
            sec.src
                .check(&d.span, positive("retry_after", d.value, "30s"))?;
            d.value
        }
        None => MaintenanceSpec::DEFAULT_RETRY_AFTER,
    };
    let mut allow = Vec::new();
    if let Some(paths) = strings(&sec, "allow", ALLOW_EXAMPLE)? {
        for path in paths.value {
            sec.src.check(&path.span, rules::allow_path(path.value))?;
            allow.push(path.value.to_owned());
        }
    }
    Ok(MaintenanceSpec {
        message,
        retry_after,
        allow,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_hints() {
        assert_eq!(
            argv_hint("undo", "alembic downgrade -1", "x"),
            "write the program and each argument as separate strings: \
             undo = [\"alembic\", \"downgrade\", \"-1\"]"
        );
        assert_eq!(
            argv_hint("command", "pg_dump \"$DATABASE_URL\" > db.sql", "x"),
            "no shell is involved; to use the shell's syntax, run one: \
             command = [\"sh\", \"-c\", \"pg_dump \\\"$DATABASE_URL\\\" > db.sql\"]"
        );
        assert_eq!(argv_hint("verify", " ", "ex"), "for example: ex");
    }
}
