//! tapio-server: evidence ingest, the incidents API, health, metrics and live config.
//!
//! [`app`] builds the whole HTTP surface from an [`AppState`], so handlers are tested
//! without a socket; `main.rs` only parses flags, wires the tasks and serves.

pub mod alertmanager;
pub mod audit;
pub mod auth;
pub mod bounds;
pub mod clock;
pub mod cluster;
pub mod correlator;
pub mod error;
pub mod health;
pub mod heartbeats;
pub mod http;
pub mod kubewatch;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod mttx;
pub mod notify;
pub mod promsource;
pub mod protect;
pub mod ratelimit;
pub mod runtime_config;
pub mod serve;
pub mod silences;
pub mod status_page;
pub mod tls;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tapio_proto::Limits;
use tapio_store::Store;
use tokio::sync::{Notify, watch};

pub use http::app;

/// Shared by every handler and task.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<metrics::Metrics>,
    pub config: watch::Receiver<runtime_config::Effective>,
    pub config_dir: String,
    pub limits: Limits,
    /// Largest accepted request body, after decompression.
    pub max_body_bytes: usize,
    /// Wakes the correlator when new evidence is stored.
    pub evidence_stored: Arc<Notify>,
    pub correlator: Arc<correlator::CorrelatorStatus>,
    pub ingest: Arc<health::IngestStatus>,
    pub started: Instant,
    pub shutting_down: Arc<AtomicBool>,
    /// Correlator lag (events) at which load shedding reaches full pressure.
    pub shed_capacity: u64,
    /// Silences in force (shared with the notifier and the dispatcher).
    pub silences: silences::Shared,
    /// People's actions on incidents, to the correlator task (the engine's single owner).
    pub commands: tokio::sync::mpsc::Sender<correlator::Command>,
    /// People's actions answered 202 (operations) and idempotency keys (`lifecycle`).
    pub actions: lifecycle::Actions,
    /// Users and tokens (`--auth-dir`).
    pub auth: Arc<auth::Auth>,
    /// Rate limits and blocked client addresses.
    pub rate: Arc<ratelimit::RateState>,
    /// The security audit stream.
    pub audit: Arc<audit::Audit>,
    /// The store's statistics for `/health` (`health::StatsCache`).
    pub store_stats: health::StatsCache,
    /// Whether store writes succeed (`health::WatchedStore`), for `/health` and `/ready`.
    pub store_writes: Arc<health::StoreWrites>,
    /// Admission control: in-flight slots, memory, refusals (`protect`).
    pub protect: Arc<protect::Protect>,
    /// Kubernetes watch state (`kubewatch`), for `/health`.
    pub kube: Arc<kubewatch::KubeStatus>,
    /// Scale-out mode (`--nats-url`): the bus, leases and the cluster view.
    pub cluster: Option<Arc<cluster::Cluster>>,
    /// Each source's estimated clock offset (`clock`): evidence is put on the server's
    /// time line at ingest.
    pub clocks: clock::SourceClocks,
    /// Latest self-report of each agent, bounded (`heartbeats`).
    pub heartbeats: heartbeats::Heartbeats,
}

/// Agents whose heartbeats are kept; the earliest arrival is forgotten beyond this.
pub const MAX_AGENT_HEARTBEATS: usize = heartbeats::MAX_AGENTS;
