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
//! - [`ErrorCode`] and [`ErrorBody`]: every error the API answers.
//!
//! The crate depends on serde and serde_json only, so that any client can use it.

mod error;
mod event;

pub use error::{ErrorBody, ErrorCode};
pub use event::{Event, Stage};
