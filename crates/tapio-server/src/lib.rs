//! tapio-server: evidence ingest, the incidents API, health, metrics and live config.
//!
//! In layers (docs/architecture.md): [`api`] (the router and its handlers, on top),
//! [`pipeline`] (ingest, correlation, the scale-out bus, evidence sources), [`security`]
//! (auth, audit, limits, admission) and [`notify`]; nothing imports from `api`.
//! [`topology`] wires them; `main.rs` only parses the flags. [`app`] builds the whole HTTP
//! surface from an [`AppState`], so the router is tested without a socket
//! (`tests/router.rs`, with `topology::embedded_state`).

pub mod api;
pub mod body;
pub mod error;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod runtime_config;
pub mod security;
pub mod serve;
pub mod silences;
pub mod topology;

pub use api::{AppState, app};
pub use security::auth::OPENAPI_PATH;

/// Agents whose heartbeats are kept; the earliest arrival is forgotten beyond this.
pub const MAX_AGENT_HEARTBEATS: usize = pipeline::heartbeats::MAX_AGENTS;
