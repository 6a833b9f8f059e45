//! The demo app that runway deploys in its demo, end-to-end tests and
//! benchmarks.
//!
//! It is a deliberately small HTTP/1.1 service whose behaviour is set by flags
//! (see [`Args`]), so that every situation runway must handle can be staged
//! with real processes: a healthy release, one that is slow to become ready,
//! one whose health check fails, one that returns errors or is slow, one that
//! cannot start, and one that crashes later.
//!
//! It ships twice: as the standalone `runway-demo-app` binary and as the
//! hidden `runway demo-app` subcommand, so a runway install can deploy it
//! without a second binary. Both front ends parse [`Args`] and call [`run`].
//!
//! # Endpoints
//!
//! | request | answer |
//! | --- | --- |
//! | any method on `/` | 200 `hello from <version>` (500 at `--error-rate`), after `--latency-ms` |
//! | `GET /health/ready` | 200 `{"status":"healthy",…}`; 503 `"starting"` during `--slow-start-ms`, `"unhealthy"` with `--fail-health` |
//! | `GET /health/live` | 200 `{"status":"alive"}` |
//! | `GET /version` | 200 `{"version":…,"pid":…,"port":…}` |
//! | `GET /slow?ms=N` | 200 after N ms (default 1000, at most 600 000) |
//! | `GET /ws` (WebSocket upgrade) | 101, then every byte sent is echoed back |
//! | anything else | 404 (405 for other methods on the paths above) |
//!
//! Every response carries `x-version: <version>`. Nothing is logged per
//! request unless `--log-requests` is given: `/` is a benchmark target.
//!
//! [`load`] is the other half of every demo: a steady HTTP load that counts
//! each outcome and version (`runway demo`, the end-to-end tests, the
//! benchmarks' `runway loadgen`).

mod app;
mod args;
pub mod load;
mod process;
mod server;
mod websocket;

pub use args::Args;
pub use process::{run, EXIT_CRASH, EXIT_FAIL_START};
pub use server::run_on;
