//! `[hooks]`, `[maintenance]` and `kind = "recreate"`: the database work around a
//! deployment. Valid files first (the issue's file, defaults, other spellings), then
//! their JSON form and `Spec::validate`, then every rule with the position, message
//! and hint of its error.

mod common;

use common::{assert_error, error_of, parse};
use runway_spec::{
    BackupHook, Dur, HookPhase, HooksSpec, MaintenanceSpec, MigrateHook, OnFailure, PhaseHook,
    RecreateSpec, Spec, StrategySpec, INIT_TEMPLATE,
};

/// The sections every sample starts with (lines 1-6; what follows starts on line 8).
const BASE: &str = r#"[service]
name = "web"
listen = "127.0.0.1:8080"

[run]
command = ["python3", "app.py", "--port", "{port}"]
"#;

/// The hooks of the issue, exactly as written there (lines 8-21 once appended to BASE
/// with a blank line).
const ISSUE: &str = r#"[hooks.backup]
command = ["sh", "-c", "pg_dump \"$DATABASE_URL\" > \"$RUNWAY_BACKUP_DIR/db.sql\""]
verify = ["sh", "-c", "test -s \"$RUNWAY_BACKUP_DIR/db.sql\""]
keep = 5

[hooks.migrate]
command = ["alembic", "upgrade", "head"]
undo = ["alembic", "downgrade", "-1"]
timeout = "5m"
irreversible = false

[[hooks.run]]
at = "post-deploy"
command = ["./scripts/notify-team.sh"]
"#;

/// Every key of [hooks] and [maintenance], an irreversible migration restored from its
/// backup, and the recreate strategy.
const FULL: &str = r#"[strategy]
kind = "recreate"

[maintenance]
message = "Upgrading the database, back at 10:30 UTC."
retry_after = "2m"
allow = ["/status", "/api/public/*"]

[hooks.backup]
command = ["sh", "-c", "pg_dump -Fc \"$DATABASE_URL\" > \"$RUNWAY_BACKUP_DIR/db.dump\""]
verify = ["pg_restore", "--list", "db.dump"]
restore = ["sh", "-c", "pg_restore --clean -d \"$DATABASE_URL\" \"$RUNWAY_BACKUP_DIR/db.dump\""]
keep = 10
timeout = "1h"

[hooks.migrate]
command = ["./manage.py", "migrate"]
timeout = "20m"
irreversible = true
on_failure = "restore"

[[hooks.run]]
at = "pre-deploy"
command = ["./scripts/announce.sh", "starting"]
timeout = "10s"

[[hooks.run]]
at = "on-failure"
command = ["./scripts/page-oncall.sh"]

[[hooks.run]]
at = "post-deploy"
command = ["./scripts/notify-team.sh"]
"#;

/// BASE followed by `rest` (which starts on line 8).
fn with(rest: &str) -> String {
    format!("{BASE}\n{rest}")
}

/// `top` (top-level keys, from line 1 on) followed by BASE.
fn before(top: &str) -> String {
    format!("{top}{BASE}")
}

/// The issue's file.
fn issue() -> String {
    with(ISSUE)
}

/// The issue's file with the first `from` replaced by `to` (which must exist).
fn edit(from: &str, to: &str) -> String {
    assert!(ISSUE.contains(from), "ISSUE has no {from:?}");
    with(&ISSUE.replacen(from, to, 1))
}

/// A `[hooks.migrate]` (line 8) with `rest` as its keys from line 10 on.
fn migrate(rest: &str) -> String {
    with(&format!(
        "[hooks.migrate]\ncommand = [\"alembic\", \"upgrade\", \"head\"]\n{rest}"
    ))
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[test]
fn accepts_the_issue_file_exactly() {
    let spec = parse(&issue());
    let want = HooksSpec {
        backup: Some(BackupHook {
            image: None,
            command: argv(&[
                "sh",
                "-c",
                "pg_dump \"$DATABASE_URL\" > \"$RUNWAY_BACKUP_DIR/db.sql\"",
            ]),
            verify: Some(argv(&["sh", "-c", "test -s \"$RUNWAY_BACKUP_DIR/db.sql\""])),
            restore: None,
            keep: 5,
            timeout: Dur::from_secs(30 * 60),
        }),
        migrate: Some(MigrateHook {
            image: None,
            command: argv(&["alembic", "upgrade", "head"]),
            undo: Some(argv(&["alembic", "downgrade", "-1"])),
            timeout: Dur::from_secs(5 * 60),
            irreversible: false,
            on_failure: None,
        }),
        run: vec![PhaseHook {
            image: None,
            at: HookPhase::PostDeploy,
            command: argv(&["./scripts/notify-team.sh"]),
            timeout: Dur::from_secs(5 * 60),
        }],
    };
    assert_eq!(spec.hooks, want);
    assert_eq!(spec.maintenance, MaintenanceSpec::default());
    assert_eq!(spec.strategy.kind(), "rolling");
    // With `undo`, a rollback reverts the migration: no policy applies.
    assert_eq!(spec.hooks.migrate.as_ref().unwrap().policy(), None);
    assert_eq!(spec.validate(), Ok(()));
}

#[test]
fn defaults() {
    let spec = parse(BASE);
    assert!(spec.hooks.is_empty());
    assert_eq!(
        spec.maintenance,
        MaintenanceSpec {
            message: "The service is undergoing maintenance and will be back shortly.".into(),
            retry_after: Dur::from_secs(30),
            allow: Vec::new(),
        }
    );

    let spec = parse(&with(
        "[hooks.backup]\ncommand = [\"./backup\"]\n\
         [hooks.migrate]\ncommand = [\"./migrate\"]\n\
         [[hooks.run]]\nat = \"pre-rollback\"\ncommand = [\"./x\"]\n\
         [maintenance]\n",
    ));
    let backup = spec.hooks.backup.unwrap();
    assert_eq!((backup.verify, backup.restore), (None, None));
    assert_eq!(backup.keep, BackupHook::DEFAULT_KEEP);
    assert_eq!(backup.timeout, BackupHook::DEFAULT_TIMEOUT);
    let migrate = spec.hooks.migrate.unwrap();
    assert_eq!(migrate.undo, None);
    assert_eq!(migrate.timeout, MigrateHook::DEFAULT_TIMEOUT);
    assert!(!migrate.irreversible);
    assert_eq!(migrate.on_failure, None);
    // Without `undo` or a policy, a rollback runs the old release on the new schema.
    assert_eq!(migrate.policy(), Some(OnFailure::Rollback));
    assert_eq!(spec.hooks.run[0].at, HookPhase::PreRollback);
    assert_eq!(spec.hooks.run[0].timeout, PhaseHook::DEFAULT_TIMEOUT);
    assert_eq!(spec.maintenance, MaintenanceSpec::default());
}

#[test]
fn accepts_every_key_and_the_recreate_strategy() {
    let spec = parse(&with(FULL));
    assert_eq!(spec.strategy, StrategySpec::Recreate(RecreateSpec {}));
    assert_eq!(spec.strategy.kind(), "recreate");
    assert_eq!(
        spec.maintenance,
        MaintenanceSpec {
            message: "Upgrading the database, back at 10:30 UTC.".into(),
            retry_after: Dur::from_secs(120),
            allow: argv(&["/status", "/api/public/*"]),
        }
    );
    let backup = spec.hooks.backup.as_ref().unwrap();
    assert_eq!(
        backup.verify,
        Some(argv(&["pg_restore", "--list", "db.dump"]))
    );
    assert_eq!(backup.restore.as_ref().map(Vec::len), Some(3));
    assert_eq!((backup.keep, backup.timeout), (10, Dur::from_secs(3600)));
    let migrate = spec.hooks.migrate.as_ref().unwrap();
    assert_eq!(
        migrate,
        &MigrateHook {
            image: None,
            command: argv(&["./manage.py", "migrate"]),
            undo: None,
            timeout: Dur::from_secs(20 * 60),
            irreversible: true,
            on_failure: Some(OnFailure::Restore),
        }
    );
    assert_eq!(migrate.policy(), Some(OnFailure::Restore));
    let phases: Vec<HookPhase> = spec.hooks.run.iter().map(|h| h.at).collect();
    assert_eq!(
        phases,
        [
            HookPhase::PreDeploy,
            HookPhase::OnFailure,
            HookPhase::PostDeploy
        ]
    );
    assert_eq!(spec.hooks.run[0].timeout, Dur::from_secs(10));
    assert_eq!(spec.hooks.at(HookPhase::OnFailure).count(), 1);
    assert_eq!(spec.hooks.at(HookPhase::PostRollback).count(), 0);
    assert_eq!(spec.validate(), Ok(()));
}

#[test]
fn every_phase_and_policy() {
    for phase in HookPhase::ALL {
        let text = with(&format!(
            "[[hooks.run]]\nat = \"{}\"\ncommand = [\"./x\"]\n",
            phase.as_str()
        ));
        assert_eq!(parse(&text).hooks.run[0].at, phase);
    }
    for policy in OnFailure::ALL {
        let text = with(&format!(
            "[hooks.backup]\ncommand = [\"./b\"]\nrestore = [\"./r\"]\n\
             [hooks.migrate]\ncommand = [\"./m\"]\nirreversible = true\non_failure = \"{}\"\n",
            policy.as_str()
        ));
        let spec = parse(&text);
        assert_eq!(spec.hooks.migrate.unwrap().on_failure, Some(policy));
    }
}

#[test]
fn other_spellings_of_the_same_hooks() {
    // Inline tables and an inline array of tables say the same as the sections.
    let text = before(
        r#"hooks = { migrate = { command = ["alembic", "upgrade", "head"], undo = ["alembic", "downgrade", "-1"], irreversible = false } }
"#,
    );
    assert_eq!(parse(&text).hooks.migrate, parse(&issue()).hooks.migrate);
    let text = with(
        "[hooks]\nrun = [{ at = \"post-deploy\", command = [\"./scripts/notify-team.sh\"] }]\n",
    );
    assert_eq!(parse(&text).hooks.run, parse(&issue()).hooks.run);
    let text = before(
        "hooks.backup.command = [\"./b\"]\nhooks.backup.keep = 1\n\
         maintenance.allow = [\"/*\"]\n",
    );
    let spec = parse(&text);
    assert_eq!(spec.hooks.backup.unwrap().keep, 1);
    assert_eq!(spec.maintenance.allow, ["/*"]);
    // A backup with a restore command and nothing that uses it is fine: `runway
    // restore` uses it.
    let text = with("[hooks.backup]\ncommand = [\"./b\"]\nrestore = [\"./r\"]\n");
    assert_eq!(parse(&text).validate(), Ok(()));
    // An inline strategy table of kind recreate.
    let text = before("strategy = { kind = \"recreate\" }\n");
    assert_eq!(
        parse(&text).strategy,
        StrategySpec::Recreate(RecreateSpec {})
    );
}

#[test]
fn json_round_trip_is_exact() {
    for text in [
        issue(),
        with(FULL),
        BASE.to_owned(),
        migrate("irreversible = true\non_failure = \"freeze\"\ntimeout = \"1h0m0.5s\""),
        with("[maintenance]\nallow = []\nretry_after = \"1ms\""),
    ] {
        let spec = parse(&text);
        let json = serde_json::to_string(&spec).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec, "{json}");
        assert_eq!(back.validate(), Ok(()));
    }
}

#[test]
fn json_shape() {
    // No hooks: no key; the maintenance page always has its defaults.
    let json = serde_json::to_value(parse(BASE)).unwrap();
    assert!(json.get("hooks").is_none(), "{json}");
    assert_eq!(
        json["maintenance"],
        serde_json::json!({
            "message": "The service is undergoing maintenance and will be back shortly.",
            "retry_after": "30s",
            "allow": [],
        })
    );

    let json = serde_json::to_value(parse(&with(FULL))).unwrap();
    assert_eq!(json["strategy"], serde_json::json!({"kind": "recreate"}));
    assert_eq!(
        json["hooks"]["migrate"],
        serde_json::json!({
            "command": ["./manage.py", "migrate"],
            "timeout": "20m",
            "irreversible": true,
            "on_failure": "restore",
        })
    );
    assert_eq!(
        json["hooks"]["run"][1],
        serde_json::json!({
            "at": "on-failure",
            "command": ["./scripts/page-oncall.sh"],
            "timeout": "5m",
        })
    );
    assert_eq!(json["hooks"]["backup"]["keep"], 10);

    // A spec stored before hooks and maintenance existed still reads.
    let mut old = serde_json::to_value(parse(BASE)).unwrap();
    old.as_object_mut().unwrap().remove("maintenance");
    let spec: Spec = serde_json::from_value(old).unwrap();
    assert_eq!(spec.maintenance, MaintenanceSpec::default());
}

#[test]
fn json_rejects_unknown_fields_and_bad_values() {
    let full = serde_json::to_value(parse(&with(FULL))).unwrap();
    type Breakage = fn(&mut serde_json::Value);
    let cases: Vec<Breakage> = vec![
        |j| j["hooks"]["bakup"] = serde_json::json!({"command": ["x"]}),
        |j| j["hooks"]["migrate"]["on_failure"] = "restor".into(),
        |j| j["hooks"]["migrate"]["undo"] = "alembic downgrade -1".into(),
        |j| j["hooks"]["run"][0]["at"] = "post-deploi".into(),
        |j| j["hooks"]["run"][0]["at"] = "post_deploy".into(),
        |j| j["hooks"]["backup"]["keep"] = (-1).into(),
        |j| j["maintenance"]["retry-after"] = "1s".into(),
        |j| j["strategy"]["max_surge"] = 1.into(),
        |j| {
            j["hooks"]["migrate"]
                .as_object_mut()
                .unwrap()
                .remove("command");
        },
    ];
    for break_it in cases {
        let mut bad = full.clone();
        break_it(&mut bad);
        assert!(
            serde_json::from_value::<Spec>(bad.clone()).is_err(),
            "accepted {bad}"
        );
    }
}

#[test]
fn validate_applies_the_toml_rules_to_json_specs() {
    let full = parse(&with(FULL));
    let issue = parse(&issue());
    #[track_caller]
    fn fails(spec: &Spec, change: impl FnOnce(&mut Spec), field: &str, words: &str) {
        let mut spec = spec.clone();
        change(&mut spec);
        let err = spec.validate().expect_err("should fail");
        assert!(err.starts_with(&format!("{field}: ")), "{err}");
        assert!(err.contains(words), "{err} should contain {words:?}");
        assert!(err.contains("(hint: "), "{err}");
    }
    fn backup(spec: &mut Spec) -> &mut BackupHook {
        spec.hooks.backup.as_mut().unwrap()
    }
    fn migrate(spec: &mut Spec) -> &mut MigrateHook {
        spec.hooks.migrate.as_mut().unwrap()
    }

    // The combinations of [hooks.migrate].
    fails(
        &full,
        |s| migrate(s).on_failure = None,
        "hooks.migrate.irreversible",
        "an irreversible migration needs an explicit rollback policy",
    );
    fails(
        &issue,
        |s| migrate(s).irreversible = true,
        "hooks.migrate.undo",
        "`undo` contradicts irreversible = true",
    );
    fails(
        &issue,
        |s| migrate(s).on_failure = Some(OnFailure::Freeze),
        "hooks.migrate.on_failure",
        "`on_failure` only applies to a migration without `undo`",
    );
    fails(
        &full,
        |s| backup(s).restore = None,
        "hooks.migrate.on_failure",
        "on_failure = \"restore\" needs [hooks.backup] with a `restore` command",
    );
    fails(
        &full,
        |s| s.hooks.backup = None,
        "hooks.migrate.on_failure",
        "needs [hooks.backup]",
    );
    // Commands, counts and durations.
    fails(
        &full,
        |s| backup(s).command.clear(),
        "hooks.backup.command",
        "`command` must not be empty",
    );
    fails(
        &full,
        |s| backup(s).verify = Some(vec![" ".into()]),
        "hooks.backup.verify",
        "the program (first element of `verify`) must not be empty",
    );
    fails(
        &full,
        |s| backup(s).restore = Some(Vec::new()),
        "hooks.backup.restore",
        "`restore` must not be empty",
    );
    fails(
        &full,
        |s| backup(s).keep = 0,
        "hooks.backup.keep",
        "`keep` must be at least 1",
    );
    fails(
        &full,
        |s| backup(s).timeout = Dur::ZERO,
        "hooks.backup.timeout",
        "`timeout` must be greater than 0",
    );
    fails(
        &full,
        |s| migrate(s).command = vec![String::new()],
        "hooks.migrate.command",
        "the program (first element of `command`)",
    );
    fails(
        &issue,
        |s| migrate(s).undo = Some(Vec::new()),
        "hooks.migrate.undo",
        "`undo` must not be empty",
    );
    fails(
        &full,
        |s| migrate(s).timeout = Dur::ZERO,
        "hooks.migrate.timeout",
        "greater than 0",
    );
    fails(
        &full,
        |s| s.hooks.run[1].command.clear(),
        "hooks.run[1].command",
        "`command` must not be empty",
    );
    fails(
        &full,
        |s| s.hooks.run[2].timeout = Dur::ZERO,
        "hooks.run[2].timeout",
        "greater than 0",
    );
    // [maintenance].
    fails(
        &full,
        |s| s.maintenance.message = " ".into(),
        "maintenance.message",
        "`message` must not be empty",
    );
    fails(
        &full,
        |s| s.maintenance.retry_after = Dur::ZERO,
        "maintenance.retry_after",
        "`retry_after` must be greater than 0",
    );
    fails(
        &full,
        |s| s.maintenance.allow[1] = "api/*".into(),
        "maintenance.allow[1]",
        "the allowed path \"api/*\" must start with '/'",
    );
    fails(
        &full,
        |s| s.maintenance.allow[1] = "/api/*/v1".into(),
        "maintenance.allow[1]",
        "a `*` may only end an allowed path",
    );
}

// ---------------------------------------------------------------------------------------
// Errors: the rules of [hooks.migrate]

#[test]
fn an_irreversible_migration_needs_a_policy() {
    let text = edit("undo = [\"alembic\", \"downgrade\", \"-1\"]\n", "").replacen(
        "irreversible = false",
        "irreversible = true",
        1,
    );
    assert_error(
        &text,
        (16, 16),
        "an irreversible migration needs an explicit rollback policy",
        "on_failure = \"freeze\" (keep the new release and wait for a human), \"rollback\" \
         (old code on the new schema) or \"restore\" (restore the backup)",
    );
    assert_eq!(error_of(&text).width, 4);
}

#[test]
fn undo_contradicts_irreversible() {
    assert_error(
        &edit("irreversible = false", "irreversible = true"),
        (15, 8),
        "`undo` contradicts irreversible = true",
        "remove irreversible = true, or remove `undo` and choose an on_failure policy",
    );
    // Also with a policy: the contradiction comes first.
    assert_error(
        &edit(
            "irreversible = false",
            "irreversible = true\non_failure = \"freeze\"",
        ),
        (15, 8),
        "`undo` contradicts irreversible = true",
        "remove irreversible = true",
    );
}

#[test]
fn on_failure_only_applies_without_undo() {
    assert_error(
        &edit(
            "irreversible = false",
            "irreversible = false\non_failure = \"rollback\"",
        ),
        (18, 14),
        "`on_failure` only applies to a migration without `undo`",
        "remove on_failure, or remove `undo` if the migration cannot be reverted",
    );
    // Wherever the keys are written.
    assert_error(
        &migrate("on_failure = \"freeze\"\nundo = [\"alembic\", \"downgrade\", \"-1\"]\n"),
        (10, 14),
        "`on_failure` only applies to a migration without `undo`",
        "remove on_failure",
    );
}

#[test]
fn restore_needs_a_backup_with_a_restore_command() {
    assert_error(
        &migrate("irreversible = true\non_failure = \"restore\"\n"),
        (11, 14),
        "on_failure = \"restore\" needs [hooks.backup] with a `restore` command",
        "add a [hooks.backup] section with command = [\"sh\", \"-c\", \"pg_dump",
    );
    // The issue's backup has no restore command.
    let text = edit(
        "undo = [\"alembic\", \"downgrade\", \"-1\"]\n",
        "on_failure = \"restore\"\n",
    );
    assert_error(
        &text,
        (15, 14),
        "on_failure = \"restore\" needs [hooks.backup] with a `restore` command",
        "add to [hooks.backup]: restore = [\"sh\", \"-c\", \"psql \\\"$DATABASE_URL\\\" < \
         \\\"$RUNWAY_BACKUP_DIR/db.sql\\\"\"]",
    );
    // With one, it is fine, reversible or not.
    let text = text.replacen("keep = 5", "keep = 5\nrestore = [\"./restore.sh\"]", 1);
    assert_eq!(
        parse(&text).hooks.migrate.unwrap().policy(),
        Some(OnFailure::Restore)
    );
}

// ---------------------------------------------------------------------------------------
// Errors: keys, words and values

#[test]
fn typos() {
    assert_error(
        &edit("at = \"post-deploy\"", "at = \"post-deploi\""),
        (20, 6),
        "unknown hook phase \"post-deploi\"",
        "did you mean \"post-deploy\"? phases: \"pre-deploy\", \"post-deploy\", \
         \"pre-rollback\", \"post-rollback\", \"on-failure\"",
    );
    assert_error(
        &edit("at = \"post-deploy\"", "at = \"post_deploy\""),
        (20, 6),
        "unknown hook phase \"post_deploy\"",
        "did you mean \"post-deploy\"?",
    );
    assert_error(
        &edit("[hooks.backup]", "[hooks.bakup]"),
        (8, 8),
        "unknown section [hooks.bakup]",
        "did you mean [hooks.backup]? valid sections: [hooks.backup], [hooks.migrate], \
         [[hooks.run]]",
    );
    assert_error(
        &edit("[[hooks.run]]", "[[hooks.runs]]"),
        (19, 9),
        "unknown section [hooks.runs]",
        "did you mean [[hooks.run]]?",
    );
    assert_error(
        &migrate("irreversible = true\non_failure = \"restor\"\n"),
        (11, 14),
        "unknown on_failure policy \"restor\"",
        "did you mean \"restore\"? on_failure = \"freeze\" (keep the new release",
    );
    assert_error(
        &edit("verify", "verfy"),
        (10, 1),
        "unknown key `verfy` in [hooks.backup]",
        "did you mean `verify`? valid keys: command, verify, restore, keep, timeout",
    );
    assert_error(
        &edit("irreversible = false", "irreversable = false"),
        (17, 1),
        "unknown key `irreversable` in [hooks.migrate]",
        "did you mean `irreversible`?",
    );
    assert_error(
        &edit("[hooks.migrate]", "[migrate]"),
        (13, 2),
        "unknown section [migrate]",
        "did you mean [hooks.migrate]?",
    );
    assert_error(
        &with("[maintenance]\nretry-after = \"1m\"\n"),
        (9, 1),
        "unknown key `retry-after` in [maintenance]",
        "did you mean `retry_after`? valid keys: message, retry_after, allow",
    );
    assert_error(
        &with("[maintainance]\n"),
        (8, 2),
        "unknown section [maintainance]",
        "did you mean [maintenance]?",
    );
}

#[test]
fn keys_in_the_wrong_table() {
    assert_error(
        &edit("undo =", "restore ="),
        (15, 1),
        "unknown key `restore` in [hooks.migrate]",
        "`restore` is a setting of [hooks.backup]; valid keys: command, undo, timeout, \
         irreversible, on_failure",
    );
    assert_error(
        &edit("keep = 5", "keep = 5\nirreversible = true"),
        (12, 1),
        "unknown key `irreversible` in [hooks.backup]",
        "`irreversible` is a setting of [hooks.migrate]",
    );
    assert_error(
        &edit("at = \"post-deploy\"", "at = \"post-deploy\"\nkeep = 1"),
        (21, 1),
        "unknown key `keep` in hook 1 of [[hooks.run]]",
        "`keep` is a setting of [hooks.backup]; valid keys: at, command, timeout",
    );
    assert_error(
        &with("[hooks]\ncommand = [\"./migrate\"]\n"),
        (9, 1),
        "unknown key `command` in [hooks]",
        "`command` belongs in [hooks.backup] or [hooks.migrate] or [[hooks.run]]; [hooks] \
         holds only sections",
    );
    assert_error(
        &edit("[[hooks.run]]", "[hooks.run]"),
        (19, 1),
        "phase hooks are written [[hooks.run]], with double brackets",
        "at = \"post-deploy\"",
    );
    assert_error(
        &with("[strategy]\nkind = \"recreate\"\nsteps = []\n"),
        (10, 1),
        "unknown key `steps` in [strategy] for kind = \"recreate\"",
        "`steps` is a setting of kind = \"canary\"; valid keys for kind = \"recreate\": kind",
    );
}

#[test]
fn missing_keys_point_at_the_header() {
    assert_error(
        &edit("command = [\"alembic\", \"upgrade\", \"head\"]\n", ""),
        (13, 1),
        "missing `command` in [hooks.migrate]",
        "add command = [\"alembic\", \"upgrade\", \"head\"]",
    );
    assert_error(
        &edit("at = \"post-deploy\"\n", ""),
        (19, 1),
        "missing `at` in hook 1 of [[hooks.run]]",
        "add at = \"post-deploy\"",
    );
    assert_error(
        &with("[hooks.backup]\nkeep = 1\n"),
        (8, 1),
        "missing `command` in [hooks.backup]",
        "add command = [\"sh\", \"-c\", \"pg_dump",
    );
}

#[test]
fn commands() {
    let migrate_command = "command = [\"alembic\", \"upgrade\", \"head\"]";
    assert_error(
        &edit(migrate_command, "command = []"),
        (14, 11),
        "`command` must not be empty",
        "give the program and its arguments (no shell is involved), e.g. command = [\"alembic\"",
    );
    assert_error(
        &edit(migrate_command, "command = [\"\", \"upgrade\"]"),
        (14, 12),
        "the program (first element of `command`) must not be empty",
        "put the executable first",
    );
    assert_error(
        &edit(
            "undo = [\"alembic\", \"downgrade\", \"-1\"]",
            "undo = \"alembic downgrade -1\"",
        ),
        (15, 8),
        "`undo` must be an array of strings, not a single string",
        "write the program and each argument as separate strings: undo = [\"alembic\", \
         \"downgrade\", \"-1\"]",
    );
    assert_error(
        &edit(
            "verify = [\"sh\", \"-c\", \"test -s \\\"$RUNWAY_BACKUP_DIR/db.sql\\\"\"]",
            "verify = 'test -s \"$RUNWAY_BACKUP_DIR/db.sql\"'",
        ),
        (10, 10),
        "`verify` must be an array of strings, not a single string",
        "no shell is involved; to use the shell's syntax, run one: verify = [\"sh\", \"-c\", \
         \"test -s \\\"$RUNWAY_BACKUP_DIR/db.sql\\\"\"]",
    );
    assert_error(
        &edit("[\"./scripts/notify-team.sh\"]", "[\"./notify.sh\", 3]"),
        (21, 27),
        "every element of `command` must be a string, found an integer",
        "quote it: \"3\"",
    );
    assert_error(
        &edit("keep = 5", "keep = 5\nrestore = [[\"x\"]]"),
        (12, 12),
        "every element of `restore` must be a string, found an array",
        "restore = [\"sh\"",
    );
}

#[test]
fn values() {
    assert_error(
        &edit("keep = 5", "keep = 0"),
        (11, 8),
        "`keep` must be at least 1",
        "keep = 5",
    );
    assert_error(
        &edit("keep = 5", "keep = -1"),
        (11, 8),
        "`keep` cannot be negative",
        "keep = 5",
    );
    assert_error(
        &edit("keep = 5", "keep = \"5\""),
        (11, 8),
        "`keep` must be a whole number, found a string",
        "keep = 5",
    );
    assert_error(
        &edit("timeout = \"5m\"", "timeout = \"0s\""),
        (16, 11),
        "`timeout` must be greater than 0",
        "timeout = \"5m\"",
    );
    assert_error(
        &edit("timeout = \"5m\"", "timeout = 300"),
        (16, 11),
        "`timeout` needs a unit",
        "timeout = \"300s\"",
    );
    assert_error(
        &edit("keep = 5", "keep = 5\ntimeout = \"0ms\""),
        (12, 11),
        "`timeout` must be greater than 0",
        "timeout = \"30m\"",
    );
    assert_error(
        &edit(
            "command = [\"./scripts/notify-team.sh\"]",
            "command = [\"./scripts/notify-team.sh\"]\ntimeout = \"5 m\"",
        ),
        (22, 11),
        "invalid duration \"5 m\" for `timeout`",
        "timeout = \"5m\"",
    );
    assert_error(
        &edit("irreversible = false", "irreversible = \"no\""),
        (17, 16),
        "`irreversible` must be a boolean, found a string",
        "irreversible = true",
    );
    assert_error(
        &migrate("on_failure = 1\n"),
        (10, 14),
        "`on_failure` must be a string, found an integer",
        "on_failure = \"freeze\"",
    );
    assert_error(
        &edit("at = \"post-deploy\"", "at = \"deploy\""),
        (20, 6),
        "unknown hook phase \"deploy\"",
        "phases: \"pre-deploy\"",
    );
    assert_error(
        &before("hooks = [\"x\"]\n"),
        (1, 9),
        "[hooks] must be a table, found an array",
        "write it as a section",
    );
    assert_error(
        &with("[hooks]\nmigrate = [\"alembic\"]\n"),
        (9, 11),
        "`migrate` must be a table, found an array",
        "[hooks.migrate]",
    );
}

#[test]
fn maintenance() {
    assert_error(
        &with("[maintenance]\nmessage = \" \"\n"),
        (9, 11),
        "`message` must not be empty",
        "message = \"",
    );
    assert_error(
        &with("[maintenance]\nmessage = 503\n"),
        (9, 11),
        "`message` must be a string, found an integer",
        "message = \"",
    );
    assert_error(
        &with("[maintenance]\nretry_after = \"0s\"\n"),
        (9, 15),
        "`retry_after` must be greater than 0",
        "retry_after = \"30s\"",
    );
    assert_error(
        &with("[maintenance]\nretry_after = 30\n"),
        (9, 15),
        "`retry_after` needs a unit",
        "retry_after = \"30s\"",
    );
    assert_error(
        &with("[maintenance]\nallow = [\"/status\", \"health\"]\n"),
        (9, 21),
        "the allowed path \"health\" must start with '/'",
        "did you mean \"/health\"?",
    );
    assert_error(
        &with("[maintenance]\nallow = [\"/api/*/status\"]\n"),
        (9, 10),
        "a `*` may only end an allowed path, found \"/api/*/status\"",
        "a prefix with one trailing `*`",
    );
    assert_error(
        &with("[maintenance]\nallow = \"/health\"\n"),
        (9, 9),
        "`allow` must be an array of strings, not a single string",
        "put it in brackets: allow = [\"/health\"]",
    );
    assert_error(
        &with("[maintenance]\nallow = [\"/a\", 1]\n"),
        (9, 16),
        "every element of `allow` must be a string, found an integer",
        "quote it",
    );
}

#[test]
fn errors_come_in_document_order() {
    // A broken backup and a broken migration: the backup is reported.
    let text = edit("keep = 5", "keep = 0").replacen("irreversible = false", "irreversible = 1", 1);
    assert_eq!(error_of(&text).line, 11);
    // The hooks come after the sections above them.
    let text = with(&format!(
        "[health]\npath = \"x\"\n{}",
        ISSUE.replace("keep = 5", "keep = 0")
    ));
    assert_eq!(error_of(&text).line, 9);
}

// ---------------------------------------------------------------------------------------
// INIT_TEMPLATE

/// The commented-out block of INIT_TEMPLATE that starts with the line `first`, up to
/// the next line that is not a comment, uncommented.
fn uncommented(first: &str) -> String {
    let lines: Vec<&str> = INIT_TEMPLATE.lines().collect();
    let start = lines
        .iter()
        .position(|&l| l == first)
        .unwrap_or_else(|| panic!("INIT_TEMPLATE has no line {first:?}"));
    lines[start..]
        .iter()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_init_template_hooks_parse_when_uncommented() {
    let hooks = uncommented("# [hooks.backup]");
    let maintenance = uncommented("# [maintenance]");
    let spec = parse(&format!("{INIT_TEMPLATE}\n{hooks}{maintenance}"));
    assert_eq!(spec.validate(), Ok(()));
    let issue = parse(&issue());
    let backup = spec.hooks.backup.as_ref().unwrap();
    assert_eq!(backup.command, issue.hooks.backup.as_ref().unwrap().command);
    assert!(backup.restore.is_some());
    assert_eq!(spec.hooks.migrate, issue.hooks.migrate);
    assert_eq!(spec.hooks.run, issue.hooks.run);
    assert_eq!(spec.maintenance.retry_after, Dur::from_secs(30));
    assert_eq!(spec.maintenance.allow, ["/status", "/api/status/*"]);
    // Every key is shown, on_failure commented out (it does not go with undo).
    for key in [
        "command",
        "verify",
        "restore",
        "keep",
        "timeout",
        "undo",
        "irreversible",
        "at",
        "message",
        "retry_after",
        "allow",
    ] {
        assert!(
            format!("{hooks}{maintenance}").contains(&format!("\n{key} = ")),
            "the examples do not show {key}"
        );
    }
    assert!(hooks.contains("\n# on_failure = \"freeze\"\n"), "{hooks}");
    // The template itself has no hooks, and the default maintenance page.
    let spec = parse(INIT_TEMPLATE);
    assert!(spec.hooks.is_empty());
    assert_eq!(spec.maintenance, MaintenanceSpec::default());
}
