//! End-to-end tests: the real `runway` binary (server and CLI) deploying the real demo app on
//! loopback, under real HTTP load. Each test has its own state dir and ports.

mod api;
mod canary;
mod checks;
mod client_errors;
mod dashboard;
mod docker;
mod examples;
mod flags;
mod full_disk;
mod harness;
mod incidents;
mod json_docs;
mod keepalive;
mod kubernetes;
mod notify;
mod policy;
mod prometheus;
mod recovery;
mod resilience;
mod retention;
mod roles;
mod rolling;
mod runbook;
mod secrets;
mod security;
mod surface;
