//! The API's state: the handles every handler reads. Built by `crate::topology` (or
//! `topology::embedded_state`); background tasks never take it, only the handles they use.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tapio_proto::Limits;
use tapio_store::Store;
use tokio::sync::watch;

use crate::{health, metrics, pipeline, runtime_config, security, silences};

/// Shared by every handler.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<metrics::Metrics>,
    pub config: watch::Receiver<runtime_config::Effective>,
    pub config_dir: String,
    pub limits: Limits,
    /// Largest accepted request body, after decompression.
    pub max_body_bytes: usize,
    pub correlator: Arc<pipeline::correlator::CorrelatorStatus>,
    /// The ingest service every evidence source calls (`pipeline::ingest`).
    pub ingest: Arc<pipeline::ingest::Ingest>,
    pub started: Instant,
    pub shutting_down: Arc<AtomicBool>,
    /// Silences in force (shared with the notifier and the dispatcher).
    pub silences: silences::Shared,
    /// People's actions on incidents, to the correlator task (the engine's single owner).
    pub commands: tokio::sync::mpsc::Sender<pipeline::correlator::Command>,
    /// People's actions answered 202 (operations) and idempotency keys (`lifecycle`).
    pub actions: super::lifecycle::Actions,
    /// Users and tokens (`--auth-dir`).
    pub auth: Arc<security::auth::Auth>,
    /// Rate limits and blocked client addresses.
    pub rate: Arc<security::ratelimit::RateState>,
    /// The security audit stream.
    pub audit: Arc<security::audit::Audit>,
    /// The store's statistics for `/health` (`health::StatsCache`).
    pub store_stats: Arc<health::StatsCache>,
    /// Whether store writes succeed (`health::WatchedStore`), for `/health` and `/ready`.
    pub store_writes: Arc<health::StoreWrites>,
    /// Admission control: in-flight slots, memory, refusals (`protect`).
    pub protect: Arc<security::protect::Protect>,
    /// Kubernetes watch state (`kubewatch`), for `/health`.
    pub kube: Arc<pipeline::kubewatch::KubeStatus>,
    /// Scale-out mode (`--nats-url`): the bus, leases and the cluster view.
    pub cluster: Option<Arc<pipeline::cluster::Cluster>>,
    /// Latest self-report of each agent, bounded (`heartbeats`).
    pub heartbeats: pipeline::heartbeats::Heartbeats,
}
