//! The evidence path behind the API: ingest, clocks, the correlator, the scale-out bus and
//! partitions, and the sources that feed evidence in (Alertmanager, Kubernetes, Prometheus).
//!
//! Nothing here imports a handler: the API layer (`crate::api`) calls into the pipeline.

pub mod alertmanager;
pub mod clock;
pub mod cluster;
pub mod correlator;
pub mod heartbeats;
pub mod ingest;
pub mod kubewatch;
pub mod mttx;
pub mod outcome;
pub mod promsource;
