//! Shared parts of the benchmark tools.

pub mod workload;
