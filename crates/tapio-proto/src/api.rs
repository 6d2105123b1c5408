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

/// Largest heartbeat body the server accepts (after decompression): a real one is a few
/// KiB; the evidence bound (`--max-body-bytes`) is far too generous for a status report.
pub const HEARTBEAT_MAX_BODY_BYTES: usize = 64 * 1024;

/// Per-field bounds of a kept heartbeat. Identity fields that are too long are refused;
/// descriptive text and lists are cut, with a marker saying how much was cut.
pub mod heartbeat_bounds {
    /// `agent_id` and `node`: a Kubernetes node name's limit.
    pub const MAX_ID: usize = 253;
    /// `version`, `kernel.kernel_release`, `kernel.bpf_sources_sha256`, names.
    pub const MAX_SHORT: usize = 128;
    /// `last_error` and each program's or source's `detail`.
    pub const MAX_TEXT: usize = 1024;
    /// Entries of `kernel.programs`, of `sources` and of `dropped`.
    pub const MAX_ENTRIES: usize = 128;
}

/// Why a heartbeat was refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatFieldError {
    pub field: &'static str,
    pub message: String,
}

fn cut_text(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let total = s.len();
    let end = crate::text::cut_bytes(s, max).len();
    s.truncate(end);
    s.push_str(&format!("…[cut: {total} bytes]"));
    true
}

impl AgentHeartbeat {
    /// Bounds every field so a kept report stays small whatever the sender puts in it.
    /// Returns how many fields were cut; refuses an empty or too-long `agent_id` or `node`.
    pub fn bound(&mut self) -> Result<usize, HeartbeatFieldError> {
        use heartbeat_bounds::*;
        if self.agent_id.is_empty() || self.agent_id.len() > MAX_ID {
            return Err(HeartbeatFieldError {
                field: "agent_id",
                message: format!(
                    "agent_id must be 1-{MAX_ID} bytes (got {}); use the node name or the pod's UID",
                    self.agent_id.len()
                ),
            });
        }
        if self.node.len() > MAX_ID {
            return Err(HeartbeatFieldError {
                field: "node",
                message: format!(
                    "node must be at most {MAX_ID} bytes (got {}), like a Kubernetes node name",
                    self.node.len()
                ),
            });
        }
        let mut cut = 0;
        let mut text = |s: &mut String, max: usize| {
            if cut_text(s, max) {
                cut += 1;
            }
        };
        text(&mut self.version, MAX_SHORT);
        text(&mut self.last_error, MAX_TEXT);
        text(&mut self.kernel.kernel_release, MAX_SHORT);
        text(&mut self.kernel.bpf_sources_sha256, MAX_SHORT);
        for p in &mut self.kernel.programs {
            text(&mut p.observer, MAX_SHORT);
            text(&mut p.program, MAX_SHORT);
            text(&mut p.tracepoint, MAX_SHORT);
            text(&mut p.detail, MAX_TEXT);
        }
        for s in &mut self.sources {
            text(&mut s.name, MAX_SHORT);
            text(&mut s.detail, MAX_TEXT);
        }
        if self.kernel.programs.len() > MAX_ENTRIES {
            self.kernel.programs.truncate(MAX_ENTRIES);
            cut += 1;
        }
        if self.sources.len() > MAX_ENTRIES {
            self.sources.truncate(MAX_ENTRIES);
            cut += 1;
        }
        let long_keys = self.dropped.keys().any(|k| k.len() > MAX_SHORT);
        if self.dropped.len() > MAX_ENTRIES || long_keys {
            let kept: BTreeMap<String, u64> = std::mem::take(&mut self.dropped)
                .into_iter()
                .filter(|(k, _)| k.len() <= MAX_SHORT)
                .take(MAX_ENTRIES)
                .collect();
            self.dropped = kept;
            cut += 1;
        }
        Ok(cut)
    }
}

#[cfg(test)]
mod heartbeat_tests {
    use super::*;

    fn beat() -> AgentHeartbeat {
        AgentHeartbeat {
            agent_id: "node-1".into(),
            node: "node-1".into(),
            version: "0.1.0".into(),
            started_at: Utc::now(),
            sent_at: Utc::now(),
            kernel: KernelCapabilities {
                kernel_release: "6.1".into(),
                btf_present: true,
                bpf_allowed: true,
                programs: vec![],
                bpf_sources_sha256: String::new(),
            },
            sources: vec![],
            spool_pending_events: 0,
            spool_bytes: 0,
            dropped: BTreeMap::new(),
            kernel_drops: 0,
            last_error: String::new(),
        }
    }

    #[test]
    fn a_huge_last_error_is_cut_with_a_marker() {
        let mut hb = beat();
        hb.last_error = "é".repeat(2_000_000);
        assert_eq!(hb.bound(), Ok(1));
        assert!(hb.last_error.len() < heartbeat_bounds::MAX_TEXT + 40);
        assert!(
            hb.last_error.ends_with("…[cut: 4000000 bytes]"),
            "{}",
            &hb.last_error[1000..]
        );
    }

    #[test]
    fn long_lists_are_cut_and_bad_identities_refused() {
        let mut hb = beat();
        hb.dropped = (0..1000).map(|i| (format!("r{i}"), 1)).collect();
        hb.sources = (0..1000)
            .map(|i| SourceStatus {
                name: format!("s{i}"),
                available: true,
                detail: String::new(),
            })
            .collect();
        assert_eq!(hb.bound(), Ok(2));
        assert_eq!(hb.dropped.len(), heartbeat_bounds::MAX_ENTRIES);
        assert_eq!(hb.sources.len(), heartbeat_bounds::MAX_ENTRIES);
        let mut hb = beat();
        hb.agent_id.clear();
        assert_eq!(hb.bound().map_err(|e| e.field), Err("agent_id"));
        let mut hb = beat();
        hb.node = "n".repeat(300);
        assert_eq!(hb.bound().map_err(|e| e.field), Err("node"));
        assert_eq!(beat().bound(), Ok(0));
    }
}
