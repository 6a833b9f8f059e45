//! The embedded platform: releases run as supervised local processes.
//!
//! Kubernetes will be a second platform; the engine talks to replicas through `Replica`'s small
//! surface (start, wait_healthy, stop, status) so that split stays possible.

pub mod health;
pub mod logfile;
pub mod process;
pub mod replica;
