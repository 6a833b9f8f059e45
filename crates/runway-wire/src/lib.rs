//! What runway's server, its CLI and its records say to each other, as types.
//!
//! Everything here is part of a contract that outlives one runway binary: journal rows are
//! read back by a newer server after an upgrade and by any client of the API, error codes
//! decide the CLI's exit statuses. So the types only grow: a variant or field is added,
//! never renamed or removed (docs/json.md, version 1).
//!
//! - [`Event`]: one journal entry, a serde-tagged enum, written by the engine *before* the
//!   step it describes takes effect, and matched on (never parsed from text) by the engine
//!   when it resumes and by the CLI when it shows progress;
//! - [`record`]: what is recorded (deployments, journal entries, replicas, hook runs, backups,
//!   traffic modes), as the store keeps it and the API answers it;
//! - [`api`]: the requests the API takes and the views it answers with;
//! - [`metrics`]: the per-release numbers a router reports;
//! - [`notice`]: what runway announces to `[[notify]]` targets, and each delivery;
//! - [`id`]: typed ids of deployments, replicas, backups, baselines and check runs;
//! - [`ErrorCode`] and [`ErrorBody`]: every error the API answers;
//! - `client` (feature `client`): a typed client of the API, one method per route.
//!
//! The crate depends on serde, runway.toml's model (a deployment carries its release's config)
//! and a clock format, so that any client can use it.

#[cfg(feature = "records")]
pub mod api;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "records")]
pub mod dora;
mod error;
#[cfg(feature = "records")]
mod event;
pub mod id;
#[cfg(feature = "records")]
pub mod incident;
pub mod metrics;
#[cfg(feature = "records")]
pub mod notice;
#[cfg(feature = "client")]
mod pinned;
#[cfg(feature = "records")]
pub mod record;

pub use error::{ErrorBody, ErrorCode};
#[cfg(feature = "records")]
pub use event::{Event, Stage};
