use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// Incident severity exactly as the runbook defines it. `P1` is the most severe; the
/// derived ordering puts P1 first (`P1 < P2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    P1,
    P2,
    P3,
    P4,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Self::P1, Self::P2, Self::P3, Self::P4];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::P1 => "P1",
            Self::P2 => "P2",
            Self::P3 => "P3",
            Self::P4 => "P4",
        }
    }

    /// The runbook's name for the level.
    pub fn label(self) -> &'static str {
        match self {
            Self::P1 => "Critical (Service Down)",
            Self::P2 => "High (Service Degraded)",
            Self::P3 => "Medium (Service Impaired)",
            Self::P4 => "Low (Informational)",
        }
    }

    /// The runbook's response (acknowledgement) time. P4 is "next business day"; as a
    /// duration it is taken as 24 h here (the lifecycle issue makes it calendar-aware).
    pub fn response_time(self) -> Duration {
        match self {
            Self::P1 => Duration::minutes(5),
            Self::P2 => Duration::minutes(15),
            Self::P3 => Duration::hours(1),
            Self::P4 => Duration::hours(24),
        }
    }

    /// True for the levels that page people and make `tapio check` exit 1.
    pub fn is_urgent(self) -> bool {
        matches!(self, Self::P1 | Self::P2)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "P1" => Ok(Self::P1),
            "P2" => Ok(Self::P2),
            "P3" => Ok(Self::P3),
            "P4" => Ok(Self::P4),
            _ => Err(format!("severity {s:?} is not one of P1, P2, P3, P4")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Acknowledged,
    Mitigated,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Mitigated => "mitigated",
            Self::Resolved => "resolved",
        }
    }

    /// Not yet resolved: still needs people.
    pub fn is_active(self) -> bool {
        !matches!(self, Self::Resolved)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(Self::Open),
            "acknowledged" => Ok(Self::Acknowledged),
            "mitigated" => Ok(Self::Mitigated),
            "resolved" => Ok(Self::Resolved),
            _ => Err(format!(
                "status {s:?} is not one of open, acknowledged, mitigated, resolved"
            )),
        }
    }
}

/// A reference to one stored evidence event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRef {
    pub id: Ulid,
    pub time: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    pub entity: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    Detected,
    Evidence,
    SeverityChanged,
    StatusChanged,
    Note,
    Change,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub kind: TimelineKind,
    pub message: String,
    /// How many consecutive identical facts this entry stands for (repeats are folded).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

fn one() -> u64 {
    1
}
fn is_one(n: &u64) -> bool {
    *n == 1
}

/// A candidate root cause (filled by the correlation engine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    pub cause: String,
    pub entity: String,
    pub confidence: f64,
    pub evidence: Vec<Ulid>,
    #[serde(default)]
    pub chain: Vec<String>,
    /// The rule that proposed it.
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub explanation: String,
    /// The runbook's actions with the real names filled in.
    #[serde(default)]
    pub mitigations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: Ulid,
    pub title: String,
    pub severity: Severity,
    /// Why this severity, in the runbook's terms, with the numbers that decided it.
    pub severity_reason: String,
    pub status: Status,
    /// Hex digest of the stable identity below.
    pub fingerprint: String,
    /// The stable identity: cluster, namespace, kind, name and problem.
    pub identity: Identity,
    /// Time of the earliest evidence.
    pub started_at: DateTime<Utc>,
    /// When Tapio opened the incident.
    pub detected_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Time of the latest evidence.
    pub last_evidence_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub affected: Vec<String>,
    /// The first [`MAX_EVIDENCE_REFS`] evidence references; `evidence_count` counts all.
    pub evidence: Vec<EvidenceRef>,
    pub evidence_count: u64,
    pub timeline: Vec<TimelineEntry>,
    #[serde(default)]
    pub hypotheses: Vec<Hypothesis>,
    /// True when the top hypothesis is confident enough to be called the root cause;
    /// false means "no confident root cause" (the engine abstains rather than guess).
    #[serde(default)]
    pub root_cause_confident: bool,
    /// What changed before the incident on the entities it involves (rollouts, config,
    /// node changes, change markers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeNote>,
    /// Set when this incident turned out to be part of another causal chain and was merged
    /// into it (it is then resolved, pointing at the survivor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<Ulid>,
    /// The most severe level the incident reached (severity moves up and down as evidence
    /// evolves; reports and scoring use the peak).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_severity: Option<Severity>,
    /// Who set the severity by hand. From then on detection no longer changes it (people
    /// know about impact the evidence cannot see); it still records what it observes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_set_by: Option<String>,
}

/// A change seen before an incident ("what changed").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeNote {
    pub at: DateTime<Utc>,
    pub entity: String,
    /// `rollout`, `config`, `node`, `scale`, `marker`.
    pub kind: String,
    pub description: String,
    pub evidence: Ulid,
}

/// Bounds that keep one incident record small however long it stays open.
pub const MAX_EVIDENCE_REFS: usize = 200;
pub const MAX_TIMELINE: usize = 500;
pub const MAX_AFFECTED: usize = 50;

/// Stable identity of what an incident is about. Never derived from generated text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Kind of the subject: a workload kind (`Deployment`), `Pod`, `Node`, `Service`,
    /// `Destination`, `Container`, `Alert`.
    pub kind: String,
    /// Name (or UID where no name is stable) of the subject.
    pub name: String,
    /// The problem, normalised across sources (`oom`, `crash_loop`, `connection_refused`...).
    pub problem: String,
}

impl Identity {
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            self.cluster.as_deref().unwrap_or(""),
            self.namespace.as_deref().unwrap_or(""),
            &self.kind,
            &self.name,
            &self.problem,
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        let digest = h.finalize();
        digest[..12].iter().map(|b| format!("{b:02x}")).collect()
    }
}
