//! What the engine reasons about: symptoms (signals), changes and recoveries, derived
//! from evidence of every source.

use chrono::{DateTime, Utc};
use ulid::Ulid;

use super::entity::EntityKey;
use crate::incident::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Symptom {
    OomKilled,
    CrashLoop,
    Restarted,
    ImagePullFailed,
    ConfigError,
    Unschedulable,
    Evicted,
    ProbeFailed,
    MountFailed,
    NodeNotReady,
    NodeMemoryPressure,
    NodeDiskPressure,
    NodePidPressure,
    CpuPressure,
    IoPressure,
    NoReadyEndpoints,
    WorkloadUnavailable,
    WorkloadDegraded,
    ConnRefused,
    ConnTimeout,
    ConnError,
    DnsFailure,
    ConnectStats,
    DiskError,
    DiskLatency,
    HungTask,
    Alert,
    AbnormalExit,
    WebhookFailed,
    CertExpired,
    NetworkDegraded,
    Declared,
    Informational,
    TargetsDown,
    VolumeFilling,
    FilesystemFilling,
    ResourceExhausted,
    ControlPlaneDegraded,
    JobFailed,
    ScalingLimit,
    CpuThrottled,
    NetworkSetupFailed,
    VolumeAttachFailed,
    VolumeProvisionFailed,
    QuotaExceeded,
    RuntimeFailed,
}

impl Symptom {
    /// Name used in rule files (`symptoms = [...]`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OomKilled => "oom_killed",
            Self::CrashLoop => "crash_loop",
            Self::Restarted => "restarted",
            Self::ImagePullFailed => "image_pull_failed",
            Self::ConfigError => "config_error",
            Self::Unschedulable => "unschedulable",
            Self::Evicted => "evicted",
            Self::ProbeFailed => "probe_failed",
            Self::MountFailed => "mount_failed",
            Self::NodeNotReady => "node_not_ready",
            Self::NodeMemoryPressure => "node_memory_pressure",
            Self::NodeDiskPressure => "node_disk_pressure",
            Self::NodePidPressure => "node_pid_pressure",
            Self::CpuPressure => "cpu_pressure",
            Self::IoPressure => "io_pressure",
            Self::NoReadyEndpoints => "no_ready_endpoints",
            Self::WorkloadUnavailable => "workload_unavailable",
            Self::WorkloadDegraded => "workload_degraded",
            Self::ConnRefused => "connection_refused",
            Self::ConnTimeout => "connection_timeout",
            Self::ConnError => "connection_error",
            Self::DnsFailure => "dns_failure",
            Self::ConnectStats => "connect_failures",
            Self::DiskError => "disk_error",
            Self::DiskLatency => "disk_latency",
            Self::HungTask => "hung_task",
            Self::Alert => "alert",
            Self::AbnormalExit => "abnormal_exit",
            Self::WebhookFailed => "webhook_failed",
            Self::CertExpired => "certificate_expired",
            Self::NetworkDegraded => "network_degraded",
            Self::Declared => "declared",
            Self::Informational => "informational",
            Self::TargetsDown => "targets_down",
            Self::VolumeFilling => "volume_filling",
            Self::FilesystemFilling => "filesystem_filling",
            Self::ResourceExhausted => "resource_exhausted",
            Self::ControlPlaneDegraded => "control_plane_degraded",
            Self::JobFailed => "job_failed",
            Self::ScalingLimit => "scaling_limit",
            Self::CpuThrottled => "cpu_throttled",
            Self::NetworkSetupFailed => "network_setup_failed",
            Self::VolumeAttachFailed => "volume_attach_failed",
            Self::VolumeProvisionFailed => "volume_provision_failed",
            Self::QuotaExceeded => "quota_exceeded",
            Self::RuntimeFailed => "runtime_failed",
        }
    }

    pub const ALL: [Symptom; 46] = [
        Self::OomKilled,
        Self::CrashLoop,
        Self::Restarted,
        Self::ImagePullFailed,
        Self::ConfigError,
        Self::Unschedulable,
        Self::Evicted,
        Self::ProbeFailed,
        Self::MountFailed,
        Self::NodeNotReady,
        Self::NodeMemoryPressure,
        Self::NodeDiskPressure,
        Self::NodePidPressure,
        Self::CpuPressure,
        Self::IoPressure,
        Self::NoReadyEndpoints,
        Self::WorkloadUnavailable,
        Self::WorkloadDegraded,
        Self::ConnRefused,
        Self::ConnTimeout,
        Self::ConnError,
        Self::DnsFailure,
        Self::ConnectStats,
        Self::DiskError,
        Self::DiskLatency,
        Self::HungTask,
        Self::Alert,
        Self::AbnormalExit,
        Self::WebhookFailed,
        Self::CertExpired,
        Self::NetworkDegraded,
        Self::Declared,
        Self::Informational,
        Self::TargetsDown,
        Self::VolumeFilling,
        Self::FilesystemFilling,
        Self::ResourceExhausted,
        Self::ControlPlaneDegraded,
        Self::JobFailed,
        Self::ScalingLimit,
        Self::CpuThrottled,
        Self::NetworkSetupFailed,
        Self::VolumeAttachFailed,
        Self::VolumeProvisionFailed,
        Self::QuotaExceeded,
        Self::RuntimeFailed,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|x| x.as_str() == s)
    }

    /// Node-level conditions: the node is the subject and a candidate cause.
    pub fn is_node_condition(self) -> bool {
        matches!(
            self,
            Self::NodeNotReady
                | Self::NodeMemoryPressure
                | Self::NodeDiskPressure
                | Self::NodePidPressure
                | Self::CpuPressure
                | Self::IoPressure
                | Self::DiskError
                | Self::DiskLatency
                | Self::HungTask
                | Self::FilesystemFilling
                | Self::ResourceExhausted
                | Self::RuntimeFailed
        )
    }
}

/// One observed symptom.
#[derive(Debug, Clone)]
pub struct Signal {
    pub at: DateTime<Utc>,
    pub evidence: Ulid,
    pub symptom: Symptom,
    /// Where it is observed: a workload, pod, service or node.
    pub subject: EntityKey,
    /// The node it happened on, when known.
    pub node: Option<String>,
    /// For connection failures: the destination (a Service, or an address).
    pub target: Option<EntityKey>,
    /// Human text for the timeline.
    pub detail: String,
    /// Opens an incident on its own (weak signals only join existing incidents, or open
    /// one when they repeat).
    pub strong: bool,
    /// Failed and attempted requests/connects, for error ratios.
    pub ratio: Option<(f64, f64)>,
    pub latency_s: Option<f64>,
    /// A producer's explicit P-level (alert label `priority`, a person's declaration).
    pub priority: Option<Severity>,
    /// Free text worth matching in rules (event message, unschedulable reason).
    pub message: String,
    /// A failed share (0–1) the producer states, e.g. TargetDown's targets down.
    pub fraction: Option<f64>,
    /// About the monitoring pipeline itself: a non-critical component.
    pub monitoring: bool,
    /// Who measured a ratio or latency, named in the severity reason ("" for the agent's
    /// connect statistics; "Prometheus"; "alert").
    pub source: &'static str,
    /// Part of a planned disruption (a cordoned node going down, its pods evicted): it
    /// joins a chain that exists, never opens one, however often it repeats.
    pub joins_only: bool,
}

/// Something that changed: a candidate cause ("what changed before it").
#[derive(Debug, Clone)]
pub struct Change {
    pub at: DateTime<Utc>,
    pub evidence: Ulid,
    pub entity: EntityKey,
    /// `rollout`, `config`, `node`, `scale`, `marker`.
    pub kind: String,
    pub description: String,
}

/// A condition ended (endpoints back, node Ready, pod Ready): severity may drop and the
/// quiet period may start.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub at: DateTime<Utc>,
    pub subject: EntityKey,
    pub symptom: Symptom,
}

#[derive(Debug, Clone)]
pub enum Derived {
    Signal(Signal),
    Change(Change),
    Recovery(Recovery),
}
