//! JSON bodies of the REST API (what the CLI and scripts read).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Answer to an accepted evidence batch. Sent only after the batch is durably stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestAck {
    pub agent_id: String,
    pub seq: u64,
    /// Events newly stored.
    pub accepted: usize,
    /// Events whose id was already stored (a replay or an overlapping retry).
    pub duplicate_events: usize,
    /// Events dropped by load shedding (counted in `tapio_events_dropped_total{reason="load_shed"}`).
    pub shed: usize,
    /// True when this (agent_id, seq) was stored before: nothing was stored again.
    pub duplicate_batch: bool,
}

/// Every 4xx/5xx answer carries this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_field`, `payload_too_large`.
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Healthy,
    Degraded,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthReport {
    pub status: HealthStatus,
    pub version: String,
    pub uptime_seconds: u64,
    pub config_generation: u64,
    pub components: BTreeMap<String, ComponentHealth>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComponentHealth {
    pub status: HealthStatus,
    /// One line for people.
    pub message: String,
    /// Whether this component being unhealthy makes Tapio unhealthy (else degraded).
    pub critical: bool,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// One sender as the server has seen it (`GET /api/v1/agents`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub agent_id: String,
    pub node: String,
    pub last_seq: u64,
    pub last_seen: DateTime<Utc>,
    pub batches: u64,
    pub events: u64,
    /// Batches never received: sequence numbers skipped and not filled in later.
    pub missing_batches: u64,
}

/// `GET /api/v1/config`: the effective runtime configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigView {
    pub generation: u64,
    pub log_level: String,
    pub load_shedding_enabled: bool,
    pub correlation_depth: String,
    pub audit_level: String,
    pub config_dir: String,
    /// Last refused value per key, so a typo is visible without reading logs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rejected: BTreeMap<String, String>,
    pub updated_at: DateTime<Utc>,
}

/// `GET /api/v1/incidents/summary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentSummary {
    /// Unresolved incidents (open, acknowledged, mitigated) per severity `P1`..`P4`.
    pub active: BTreeMap<String, u64>,
    /// Status → severity → count, resolved included.
    pub by_status: BTreeMap<String, BTreeMap<String, u64>>,
}
