//! Typed checks and their execution.
//!
//! Runbooks open with checklists ticked by hand ("PostgreSQL accepts queries", "more
//! than 10 GB free", "certificates valid for 30 more days") and end with verification
//! ("the health endpoint says healthy"). runway runs those as typed checks: preflight
//! gates before a deploy, verification of a new release, smoke tests and scheduled
//! daily checklists.
//!
//! * [`model`]: the serializable description of a check ([`CheckSpec`]), built by
//!   `runway-spec` from `runway.toml` and stored by runway as JSON, with the parsers for
//!   sizes, durations, schedules and conditions.
//! * [`run`]: executing checks with bounded attempts and retries into [`CheckResult`]s.
//!   Failure is information: every failure is a result with its cause in one line,
//!   never a panic or a hang past the timeout.
//! * [`redact`]: keeping secret values and URL passwords out of every result.

pub mod model;
pub mod redact;
pub mod run;

pub use model::*;
pub use run::{blocking_failures, CheckResult, CheckStatus, Context};
#[cfg(feature = "run")]
pub use run::{run_check, run_checks};
