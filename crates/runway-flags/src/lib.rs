//! Feature flags (issue 17): what a flag is, which bucket a user falls in, and what a flag
//! evaluates to for one evaluation context. Pure: no I/O, no clock, so that the server, the
//! CLI and the tests agree by construction.
//!
//! - [`model`]: a flag, its variants, its targeting rules and its percentage rollout.
//! - [`bucket`]: consistent hashing of a targeting key into 10,000 buckets, per flag, so that a
//!   user who is in at 5% stays in at 25% (their bucket does not move; the threshold does).
//! - [`evaluate`]: a flag and a context to a value, its variant and the reason, with the reason
//!   codes of OpenFeature (and its Remote Evaluation Protocol, OFREP).

pub mod bucket;
pub mod evaluate;
pub mod model;

pub use bucket::{bucket, in_rollout, BUCKETS};
pub use evaluate::{evaluate, Context, Evaluation, Reason};
pub use model::{Flag, FlagKind, Rule, Target};
