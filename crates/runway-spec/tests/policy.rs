//! `[deploy]` and `[types]` (issue 14): runbook 001's deployment types, windows and freezes,
//! and each mistake located where it is written.

mod common;

use common::{assert_error, parse};
use runway_spec::{FreezeWhen, StrategySpec};

const RUNBOOK_001: &str = r#"[service]
name = "api"
listen = "127.0.0.1:8080"

[run]
command = ["./api"]

[strategy]
kind = "canary"
steps = [{ weight = 10, pause = "5m" }, { weight = 100 }]

[deploy]
default_type = "standard"
timezone = "Europe/Berlin"
windows = ["Mon-Thu 14:00-18:00"]

[[deploy.freeze]]
name = "holiday"
from = "2026-12-15"
to = "2027-01-02"
except = ["emergency"]

[[deploy.freeze]]
name = "quarter close"
last_days_of_quarter = 3
except = ["emergency"]

[[deploy.freeze]]
name = "friday afternoons"
rrule = "FREQ=WEEKLY;BYDAY=FR;BYHOUR=12"
duration = "12h"

[types.standard]
approvals = 1
monitor = "30m"

[types.hotfix]
approvals = 1
windows = ["Mon-Fri 10:00-20:00"]
monitor = "15m"

[types.emergency]
approvals = 1
approvers = ["admin"]
windows = []
skip_checks = ["*"]
strategy = { kind = "rolling" }
"#;

#[test]
fn runbook_001s_types_windows_and_freezes_read_whole() {
    let spec = parse(RUNBOOK_001);
    assert_eq!(spec.deploy.timezone, "Europe/Berlin");
    assert_eq!(spec.deploy.windows, ["Mon-Thu 14:00-18:00"]);
    assert_eq!(spec.deploy.freezes.len(), 3);
    assert!(matches!(
        spec.deploy.freezes[1].when,
        FreezeWhen::QuarterEnd { days: 3 }
    ));
    assert!(matches!(
        spec.deploy.freezes[2].when,
        FreezeWhen::Rule { .. }
    ));
    let (name, standard) = spec.deploy_type(None).unwrap();
    assert_eq!((name.as_str(), standard.approvals), ("standard", 1));
    assert_eq!(standard.approvers, ["approver", "admin"]);
    assert_eq!(standard.monitor.unwrap().0.as_secs(), 1800);
    let (_, emergency) = spec.deploy_type(Some("emergency")).unwrap();
    assert_eq!(emergency.windows, Some(Vec::new()), "any time");
    assert!(
        matches!(
            spec.with_type(&emergency).strategy,
            StrategySpec::Rolling(_)
        ),
        "an emergency skips the canary"
    );
    assert!(matches!(
        spec.with_type(&standard).strategy,
        StrategySpec::Canary(_)
    ));
    let err = spec.deploy_type(Some("yolo")).unwrap_err();
    assert_eq!(
        err,
        "unknown deployment type `yolo`: runway.toml's [types] are emergency, hotfix, standard"
    );
    spec.validate().unwrap();
    let json = serde_json::to_string(&spec).unwrap();
    let back: runway_spec::Spec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec, "stored with the release and read back whole");
    let calendar = spec.calendar("hotfix", &spec.types["hotfix"]).unwrap();
    assert_eq!(calendar.windows.len(), 1);
    assert_eq!(calendar.freezes.len(), 3);
}

#[test]
fn without_deploy_or_types_every_deploy_is_a_standard_one_at_any_time() {
    let spec = parse(
        "[service]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[run]\ncommand = [\"./app\"]\n",
    );
    let (name, t) = spec.deploy_type(None).unwrap();
    assert_eq!((name.as_str(), t.approvals), ("standard", 0));
    assert!(spec.deploy_type(Some("hotfix")).is_err());
    let calendar = spec.calendar(&name, &t).unwrap();
    assert!(calendar.windows.is_empty() && calendar.freezes.is_empty());
}

const HEAD: &str =
    "[service]\nname = \"api\"\nlisten = \"127.0.0.1:8080\"\n[run]\ncommand = [\"./api\"]\n";

#[test]
fn policy_mistakes_are_located_with_what_to_write() {
    assert_error(
        &format!("{HEAD}[deploy]\nwindows = [\"Mon-Thr 14:00-18:00\"]\n"),
        (7, 12),
        "`Thr` is not a day",
        "Mon-Thu 14:00-18:00",
    );
    assert_error(
        &format!("{HEAD}[deploy]\ntimezone = \"Mars/Olympus\"\n"),
        (7, 12),
        "not an IANA time zone",
        "Europe/Berlin",
    );
    assert_error(
        &format!("{HEAD}[deploy]\nwindows = [\"Mon-Thu 14:00-18:00\", \"Mon 17:00-19:00\"]\n"),
        (7, 35),
        "the window `Mon 17:00-19:00` overlaps `Mon-Thu 14:00-18:00`",
        "merge them",
    );
    assert_error(
        &format!("{HEAD}[[deploy.freeze]]\nname = \"leap\"\nrrule = \"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\"\nduration = \"24h\"\n"),
        (8, 9),
        "never fires",
        "February 30",
    );
    assert_error(
        &format!("{HEAD}[[deploy.freeze]]\nname = \"x\"\nrrule = \"FREQ=SOMETIMES\"\nduration = \"1h\"\n"),
        (8, 9),
        "is not a recurrence rule",
        "RRULE",
    );
    assert_error(
        &format!(
            "{HEAD}[[deploy.freeze]]\nname = \"x\"\nfrom = \"2027-01-02\"\nto = \"2026-12-15\"\n"
        ),
        (9, 6),
        "ends (2026-12-15) before it starts",
        "swap",
    );
    assert_error(
        &format!("{HEAD}[[deploy.freeze]]\nname = \"x\"\nfrom = \"2026-12-15\"\nto = \"2027-01-02\"\nlast_days_of_quarter = 3\n"),
        (6, 1),
        "needs exactly one of",
        "last_days_of_quarter = 3",
    );
    assert_error(
        &format!("{HEAD}[types.standard]\napprovals = 1\n[deploy]\ndefault_type = \"normal\"\n"),
        (9, 16),
        "unknown deployment type `normal`",
        "the types are standard",
    );
    assert_error(
        &format!("{HEAD}[types.standard]\n[[deploy.freeze]]\nname = \"x\"\nfrom = \"2026-12-15\"\nto = \"2027-01-02\"\nexcept = [\"emergncy\"]\n"),
        (11, 11),
        "unknown deployment type `emergncy`",
        "the types are standard",
    );
    assert_error(
        &format!("{HEAD}[types.standard]\napprovers = [\"vp\"]\n"),
        (7, 14),
        "`vp` is not a role that approves",
        "\"approver\" or \"admin\"",
    );
    assert_error(
        &format!("{HEAD}[types.standard]\napprovals = 1\nstrategy = {{ kind = \"yolo\" }}\n"),
        (8, 21),
        "yolo",
        "rolling",
    );
    assert_error(
        &format!("{HEAD}[types.standard]\naprovals = 1\n"),
        (7, 1),
        "unknown key `aprovals`",
        "approvals",
    );
}
