//! The embedded platform: releases run as supervised local processes.
//!
//! A `Replica` (replica.rs) is platform-neutral: status, health probe, restarts, records. What
//! it runs is a `Workload`'s instance (workload.rs): a local process here (`ProcessWorkload`,
//! process.rs); a container on Docker is another workload with the same replica around it.

pub mod health;
pub mod logfile;
pub mod process;
pub mod replica;
pub mod tasks;
pub mod workload;
