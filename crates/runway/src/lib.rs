//! runway: deployment runbooks that run themselves.
//!
//! The binary is a thin shell over this library: `cli` parses and dispatches, `server` is the
//! daemon, `engine` decides and journals, `platform` runs processes, `store` remembers. See
//! docs/architecture.md for the design and why it is so.

pub mod api_types;
pub mod builtin_router;
pub mod checks;
pub mod cli;
pub mod engine;
pub mod platform;
pub mod secrets;
pub mod server;
pub mod state_dir;
/// The state store (crates/runway-store), under its old path.
pub use runway_store as store;
pub mod text;
