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
    /// The agent's latest self-report (kept in memory; absent until one arrives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<AgentHeartbeat>,
}

/// State of one BPF program on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramState {
    Attached,
    /// The kernel lacks what the program needs (tracepoint, BTF, helper, verifier feature).
    Unsupported,
    /// Not allowed: missing CAP_BPF / CAP_PERFMON or root, or a security policy.
    PermissionDenied,
    /// Switched off in the agent's configuration.
    Disabled,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramStatus {
    pub observer: String,
    pub program: String,
    pub tracepoint: String,
    pub state: ProgramState,
    /// Why it is not attached (the kernel's error).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// What the agent found this kernel able to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelCapabilities {
    pub kernel_release: String,
    pub btf_present: bool,
    /// At least one BPF program loaded.
    pub bpf_allowed: bool,
    pub programs: Vec<ProgramStatus>,
    /// Hash of the BPF sources the agent's embedded objects were built from.
    #[serde(default)]
    pub bpf_sources_sha256: String,
}

/// A non-BPF evidence source of the agent (PSI, kmsg, filesystems, pod index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub name: String,
    pub available: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// `POST /api/v1/agents/heartbeat`: an agent's self-report, every few seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentHeartbeat {
    pub agent_id: String,
    pub node: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub sent_at: DateTime<Utc>,
    pub kernel: KernelCapabilities,
    #[serde(default)]
    pub sources: Vec<SourceStatus>,
    /// Evidence waiting in the agent's spool.
    pub spool_pending_events: u64,
    pub spool_bytes: u64,
    /// Evidence the agent lost, by reason (never silently).
    #[serde(default)]
    pub dropped: BTreeMap<String, u64>,
    /// Records lost in the kernel (ring buffer full), cumulative.
    #[serde(default)]
    pub kernel_drops: u64,
    #[serde(default)]
    pub last_error: String,
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
