use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// The envelope version this build writes.
pub const ENVELOPE_VERSION: u32 = 1;
/// Every envelope version this build reads. A server accepts its own version and the one
/// before it, so `kubectl rollout undo` of either side keeps evidence flowing.
pub const SUPPORTED_ENVELOPE_VERSIONS: &[u32] = &[1];

/// One batch of evidence from one agent. The JSON Lines form (one batch per line) is
/// Tapio's replay format; see `docs/evidence-format.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceBatch {
    /// Envelope version; see [`SUPPORTED_ENVELOPE_VERSIONS`].
    pub version: u32,
    /// Stable identity of the sender (an agent's node-scoped id, or a replay's name).
    pub agent_id: String,
    /// Node the sender runs on.
    pub node: String,
    /// Per-agent batch sequence, starting at 1 and increasing by one per batch. The pair
    /// (agent_id, seq) identifies a batch: a retried batch is acknowledged but not stored twice,
    /// and a jump in seq is recorded as a sequence gap (lost evidence).
    pub seq: u64,
    /// When the sender sent the batch (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    pub events: Vec<Event>,
}

/// One named fact about one entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Globally unique, assigned by the producer; the server ignores an id it already holds.
    #[serde(deserialize_with = "crate::bounds::de_ulid")]
    pub id: Ulid,
    /// When the fact happened (RFC 3339).
    pub time: DateTime<Utc>,
    /// `<source>.<domain>.<anomaly>`, e.g. `kernel.network.connection_refused`.
    #[serde(rename = "type")]
    pub kind: EventType,
    pub severity: EventSeverity,
    #[serde(default)]
    pub entity: Entity,
    /// Factual attributes only (numbers, names, codes), never prose or guesses.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttrValue>,
    /// A whole Kubernetes object, as a watch returns it, for `kubernetes.watch.*` state
    /// events (see docs/scenarios.md); absent on every other fact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<serde_json::Value>,
}

impl Event {
    pub fn attr_f64(&self, key: &str) -> Option<f64> {
        match self.attributes.get(key)? {
            AttrValue::Int(i) => Some(*i as f64),
            AttrValue::Float(f) => Some(*f),
            AttrValue::String(s) => s.parse().ok(),
            AttrValue::Bool(_) => None,
        }
    }

    pub fn attr_str(&self, key: &str) -> Option<String> {
        match self.attributes.get(key)? {
            AttrValue::String(s) => Some(s.clone()),
            AttrValue::Int(i) => Some(i.to_string()),
            AttrValue::Float(f) => Some(f.to_string()),
            AttrValue::Bool(b) => Some(b.to_string()),
        }
    }
}

/// A validated event type name: three lowercase segments `<source>.<domain>.<anomaly>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventType(String);

/// Known evidence sources. Anything else is accepted and reported as `other` in metrics,
/// so label cardinality stays bounded whatever producers send.
pub const KNOWN_SOURCES: &[&str] = &["kernel", "kubernetes", "alert", "change", "node", "app"];

impl EventType {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > 128 {
            return Err(format!(
                "event type is {} bytes long; the limit is 128",
                s.len()
            ));
        }
        let parts: Vec<&str> = s.split('.').collect();
        let segment_ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if parts.len() != 3 || !parts.iter().all(|p| segment_ok(p)) {
            return Err(format!(
                "event type {s:?} is not of the form <source>.<domain>.<anomaly> \
                 (three segments of a-z, 0-9 and _, e.g. kernel.network.connection_refused)"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn source(&self) -> &str {
        self.0.split('.').next().unwrap_or("")
    }

    pub fn domain(&self) -> &str {
        self.0.split('.').nth(1).unwrap_or("")
    }

    pub fn anomaly(&self) -> &str {
        self.0.split('.').nth(2).unwrap_or("")
    }

    /// The source as a bounded metric label value.
    pub fn source_label(&self) -> &'static str {
        let src = self.source();
        KNOWN_SOURCES
            .iter()
            .find(|k| **k == src)
            .copied()
            .unwrap_or("other")
    }
}

impl TryFrom<String> for EventType {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EventType> for String {
    fn from(t: EventType) -> String {
        t.0
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How bad the producer judged the single fact to be. Incident severity (P1–P4) is derived
/// by the server from the facts, never taken from this field alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventSeverity {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl EventSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

/// The entity a fact concerns; whichever parts are known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl Entity {
    pub fn is_empty(&self) -> bool {
        *self == Entity::default()
    }

    /// The most specific part known, for "affected" lists: `ns/pod/api-123` rather than
    /// its Deployment.
    pub fn leaf_name(&self) -> String {
        match (&self.pod, &self.namespace) {
            (Some(p), Some(ns)) => format!("{ns}/pod/{p}"),
            (Some(p), None) => format!("pod/{p}"),
            _ => self.display_name(),
        }
    }

    /// Short human form: `ns/Deployment/api`, `ns/pod/api-123`, `node/worker-1`, ...
    pub fn display_name(&self) -> String {
        let ns = self.namespace.as_deref();
        let with_ns = |s: String| match ns {
            Some(ns) => format!("{ns}/{s}"),
            None => s,
        };
        if let Some(w) = &self.workload {
            with_ns(format!("{}/{}", w.kind, w.name))
        } else if let Some(p) = &self.pod {
            with_ns(format!("pod/{p}"))
        } else if let Some(s) = &self.service {
            with_ns(format!("service/{s}"))
        } else if let Some(c) = &self.container {
            with_ns(format!("container/{c}"))
        } else if let Some(n) = &self.node {
            format!("node/{n}")
        } else if let Some(c) = &self.cluster {
            format!("cluster/{c}")
        } else {
            "unknown".to_owned()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkloadRef {
    /// Kubernetes kind: Deployment, StatefulSet, DaemonSet, Job, CronJob, ...
    pub kind: String,
    pub name: String,
}

/// A factual attribute value: a scalar, never a nested object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}
impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}
impl From<i64> for AttrValue {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}
impl From<f64> for AttrValue {
    fn from(f: f64) -> Self {
        Self::Float(f)
    }
}
impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

/// Body of `POST /api/v1/events`: one fact from another tool (a CI/CD change marker, a
/// custom signal). `id` and `time` are filled in by the server when absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SingleEvent {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::bounds::de_opt_ulid"
    )]
    pub id: Option<Ulid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(default = "default_single_severity")]
    pub severity: EventSeverity,
    #[serde(default)]
    pub entity: Entity,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttrValue>,
    #[serde(default)]
    pub object: Option<serde_json::Value>,
    /// Who sent it (`ci/github-actions`, `argo-rollouts`, ...). Defaults to `api`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
}

fn default_single_severity() -> EventSeverity {
    EventSeverity::Info
}
