//! runway: deployment runbooks that run themselves.
//!
//! This crate is the binary's: `cli` parses and dispatches, `server` is the daemon that wires
//! the engine (crates/runway-engine) to its adapters (the store, the process platform, the
//! built-in router, Prometheus, the check runner) and serves the API. See
//! docs/architecture.md for the crates and why they are cut where they are.

pub mod cli;
pub mod server;
pub mod state_dir;
