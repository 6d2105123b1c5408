//! What a Prometheus alert means: the entity it is about, the symptom it reports and the
//! figure it states, read the way the alert really arrives.
//!
//! Real rules rarely carry machine-readable figures: the value is rendered into
//! `description` / `summary` (`{{ $value }}`), and the meaning lives in the alert's name
//! and labels. Labels also mislead: a kube-state-metrics or node-exporter alert carries the
//! *scrape target's* `service`, `pod` and `namespace` (`service="kube-state-metrics"`,
//! `pod="node-exporter-x7k2p"`), not the thing the alert is about. This module knows the
//! kube-prometheus rule set (`../shared/reference/kube-prometheus/`, the rules most
//! clusters run) by family, so every one of its alerts lands on the right entity; any
//! other alert still works from its labels (`namespace`, `pod`, `deployment`, `node`,
//! `service`, `instance`, `persistentvolumeclaim`, ...) and its `severity`, and a figure
//! stated in its text (an error percentage, a latency) is read from the text.

use tapio_proto::{Event, EventSeverity};

use super::entity::EntityKey;
use super::signal::Symptom;
use super::state::ClusterState;

/// How an alert bears on the runbook: the symptom, its subject, whether it opens an
/// incident alone, and the figure it states.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub symptom: Symptom,
    pub subject: Option<EntityKey>,
    /// Opens an incident by itself (otherwise it joins a chain, or opens one on repeats).
    pub strong: bool,
    /// A failure fraction the alert states (0–1), e.g. TargetDown's share of targets down.
    pub fraction: Option<f64>,
    /// An error ratio (0–1) read from an alert about errors.
    pub error_ratio: Option<f64>,
    /// A latency in seconds read from an alert about latency.
    pub latency_s: Option<f64>,
    /// The figure as stated, with its source, for the severity reason.
    pub figure: Option<String>,
    /// About the monitoring pipeline itself (Prometheus, Alertmanager, exporters): a
    /// non-critical component, never a page.
    pub monitoring: bool,
}

/// Scrape jobs of the monitoring stack and the cluster's own exporters: a target of these
/// being down is a monitoring gap, not a user-facing outage.
const MONITORING_JOBS: &[&str] = &[
    "node-exporter",
    "kube-state-metrics",
    "kubelet",
    "prometheus-k8s",
    "prometheus",
    "prometheus-operator",
    "alertmanager-main",
    "alertmanager",
    "grafana",
    "blackbox-exporter",
    "coredns",
    "kube-proxy",
    "apiserver",
    "kube-scheduler",
    "kube-controller-manager",
];

fn attr<'a>(ev: &'a Event, k: &str) -> Option<&'a str> {
    match ev.attributes.get(k) {
        Some(tapio_proto::AttrValue::String(s)) if !s.trim().is_empty() => Some(s.as_str()),
        _ => None,
    }
}

fn text(ev: &Event) -> String {
    format!(
        "{} {}",
        attr(ev, "summary").unwrap_or_default(),
        attr(ev, "description").unwrap_or_default()
    )
}

/// The first number followed by `%` in `s` (e.g. "100% of the …", "only 2.31% free").
pub fn percent_in(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let mut j = i;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            if j < b.len() && b[j] == b'%' {
                return s[start..i].parse::<f64>().ok().filter(|v| v.is_finite());
            }
        } else {
            i += 1;
        }
    }
    None
}

/// A latency in seconds stated in `s`: a number followed by `s`, `sec`, `seconds` or `ms`.
fn seconds_in(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let Ok(v) = s[start..i].parse::<f64>() else {
                continue;
            };
            let rest = s[i..].trim_start();
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect::<String>()
                .to_ascii_lowercase();
            match word.as_str() {
                "s" | "sec" | "secs" | "second" | "seconds" => return Some(v),
                "ms" | "millisecond" | "milliseconds" => return Some(v / 1000.0),
                _ => {}
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The node an alert is about: its `node` label, else `instance` (node-exporter's
/// instance is the node name in kube-prometheus; an `ip:port` is looked up among the
/// nodes' addresses).
fn node_of(ev: &Event, state: &ClusterState) -> Option<EntityKey> {
    if let Some(n) = ev.entity.node.as_deref().or_else(|| attr(ev, "node")) {
        return Some(EntityKey::node(n));
    }
    let inst = attr(ev, "instance")?;
    let host = match inst.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => inst,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if state.nodes.contains_key(host) {
        return Some(EntityKey::node(host));
    }
    if let Some(n) = state.node_by_address(host) {
        return Some(EntityKey::node(n));
    }
    Some(EntityKey::node(host))
}

fn namespaced(ev: &Event, kind: &str, label: &str) -> Option<EntityKey> {
    let ns = ev.entity.namespace.as_deref()?;
    attr(ev, label).map(|n| EntityKey::ns(kind, ns, n))
}

/// The workload an alert names by label, or the owner of the pod it names.
fn workload_of(ev: &Event, state: &ClusterState) -> Option<EntityKey> {
    let ns = ev.entity.namespace.as_deref();
    if let Some(w) = &ev.entity.workload {
        return Some(EntityKey::new(&w.kind, ns, &w.name));
    }
    let ns = ns?;
    let pod = ev.entity.pod.as_deref()?;
    let pk = EntityKey::ns("Pod", ns, pod);
    if let Some(p) = state.pods.get(&pk)
        && let Some(o) = &p.owner
    {
        return Some(o.clone());
    }
    Some(state.owner_from_pod_name(ns, pod).unwrap_or(pk))
}

fn cluster(ev: &Event) -> EntityKey {
    EntityKey::new(
        "Cluster",
        None,
        ev.entity.cluster.as_deref().unwrap_or("default"),
    )
}

/// The HPA's scale target when the state knows it, else a workload of the same name
/// (the usual convention), else the HPA itself.
fn hpa_target(ev: &Event, state: &ClusterState) -> Option<EntityKey> {
    let hpa = namespaced(ev, "HorizontalPodAutoscaler", "horizontalpodautoscaler")?;
    if let Some(t) = state.hpa_targets.get(&hpa) {
        return Some(t.clone());
    }
    let ns = hpa.namespace.as_deref().unwrap_or_default();
    for kind in ["Deployment", "StatefulSet"] {
        let k = EntityKey::ns(kind, ns, &hpa.name);
        if state.workloads.contains_key(&k) {
            return Some(k);
        }
    }
    Some(hpa)
}

/// Read one firing (or resolved) alert. `None`: the alert means nothing for incidents
/// (Watchdog, InfoInhibitor: they fire all the time by design).
///
/// Long by nature: one match arm per known alert name, grouped by section (nodes, control
/// plane, workloads, storage, node exporter, targets, the monitoring pipeline, anything
/// else); each arm is a few lines naming the symptom and the subject, so splitting it
/// would only spread one lookup table over many functions.
pub fn read(ev: &Event, state: &ClusterState) -> Option<Reading> {
    let name = attr(ev, "alertname").unwrap_or("alert");
    let critical = ev.severity >= EventSeverity::Critical;
    let erroring = ev.severity >= EventSeverity::Error;
    let txt = text(ev);
    let pct = percent_in(&txt);
    let job = attr(ev, "job").unwrap_or_default();
    let mut r = Reading {
        symptom: Symptom::Alert,
        subject: None,
        strong: erroring,
        fraction: None,
        error_ratio: None,
        latency_s: None,
        figure: None,
        monitoring: false,
    };
    let weak = |mut r: Reading, sym: Symptom, subject: Option<EntityKey>| {
        r.symptom = sym;
        r.subject = subject;
        r.strong = false;
        r
    };
    match name {
        "Watchdog" | "InfoInhibitor" => return None,

        // --- Nodes (kube-state-metrics, kubelet) -----------------------------------------
        "KubeNodeNotReady" | "KubeNodeUnreachable" => {
            r.symptom = Symptom::NodeNotReady;
            r.subject = node_of(ev, state);
            r.strong = true;
        }
        "KubeNodePressure" => {
            let sym = match attr(ev, "condition").unwrap_or_default() {
                "MemoryPressure" => Symptom::NodeMemoryPressure,
                "DiskPressure" => Symptom::NodeDiskPressure,
                "PIDPressure" => Symptom::NodePidPressure,
                _ => Symptom::Alert,
            };
            r = weak(r, sym, node_of(ev, state));
        }
        "KubeNodeEviction" => {
            r = weak(r, Symptom::Evicted, node_of(ev, state));
            r.figure = attr(ev, "eviction_signal").map(|s| format!("eviction signal {s}"));
        }
        "KubeNodeReadinessFlapping"
        | "KubeletTooManyPods"
        | "KubeletPlegDurationHigh"
        | "KubeletPodStartUpLatencyHigh"
        | "KubeletClientCertificateExpiration"
        | "KubeletServerCertificateExpiration"
        | "KubeletClientCertificateRenewalErrors"
        | "KubeletServerCertificateRenewalErrors" => {
            r = weak(r, Symptom::Alert, node_of(ev, state));
        }

        // --- Control plane ----------------------------------------------------------------
        "KubeAPIDown"
        | "KubeAPIErrorBudgetBurn"
        | "KubeAPITerminatedRequests"
        | "KubeAPIInstanceUnreachable"
        | "KubeSchedulerDown"
        | "KubeSchedulerInstanceUnreachable"
        | "KubeControllerManagerDown"
        | "KubeControllerManagerInstanceUnreachable"
        | "KubeletDown"
        | "KubeletInstanceUnreachable"
        | "KubeProxyDown"
        | "KubeAggregatedAPIDown"
        | "KubeAggregatedAPIErrors"
        | "KubeClientErrors" => {
            r.symptom = Symptom::ControlPlaneDegraded;
            r.subject = Some(cluster(ev));
            r.strong = critical;
            r.figure = pct.map(|p| format!("{p}% (alert {name})"));
        }
        // etcd (the etcd mixin most clusters add): about the member that reports it.
        n if n.starts_with("etcd") => {
            r.symptom = Symptom::ControlPlaneDegraded;
            r.subject = ev
                .entity
                .pod
                .as_deref()
                .map(|p| {
                    EntityKey::ns(
                        "Pod",
                        ev.entity.namespace.as_deref().unwrap_or("kube-system"),
                        p,
                    )
                })
                .or_else(|| Some(cluster(ev)));
            r.strong = critical;
            r.figure = pct.map(|p| format!("{p}% (alert {name})"));
        }
        "KubeVersionMismatch"
        | "KubeClientCertificateExpiration"
        | "KubeCPUOvercommit"
        | "KubeMemoryOvercommit"
        | "KubeCPUQuotaOvercommit"
        | "KubeMemoryQuotaOvercommit" => {
            r = weak(r, Symptom::Informational, Some(cluster(ev)));
        }
        "KubeQuotaAlmostFull" | "KubeQuotaFullyUsed" | "KubeQuotaExceeded" => {
            let ns = ev.entity.namespace.as_deref().unwrap_or("default");
            r = weak(
                r,
                Symptom::Informational,
                Some(EntityKey::new("Namespace", None, ns)),
            );
        }

        // --- Workloads (kube-state-metrics) -----------------------------------------------
        "KubePodCrashLooping" => {
            r.symptom = Symptom::CrashLoop;
            r.subject = workload_of(ev, state);
            r.strong = true;
        }
        "KubePodNotReady" | "KubeContainerWaiting" => {
            r = weak(r, Symptom::ProbeFailed, workload_of(ev, state));
        }
        "KubeDeploymentReplicasMismatch"
        | "KubeDeploymentRolloutStuck"
        | "KubeDeploymentGenerationMismatch"
        | "KubeStatefulSetReplicasMismatch"
        | "KubeStatefulSetGenerationMismatch"
        | "KubeStatefulSetUpdateNotRolledOut"
        | "KubeDaemonSetRolloutStuck"
        | "KubeDaemonSetNotScheduled"
        | "KubeDaemonSetMisScheduled"
        | "KubePdbNotEnoughHealthyPods" => {
            // Replicas short: how short (and whether it serves) is the state's to say.
            r = weak(r, Symptom::WorkloadDegraded, workload_of(ev, state));
        }
        "KubeJobFailed" | "KubeJobNotCompleted" => {
            r.symptom = Symptom::JobFailed;
            r.subject = workload_of(ev, state).map(|j| state.job_owner(&j).unwrap_or(j));
            r.strong = name == "KubeJobFailed";
        }
        "KubeHpaMaxedOut" | "KubeHpaReplicasMismatch" => {
            // The cause sits on the HPA (its maxReplicas); the engine routes it to the
            // chain of the workload it scales.
            let hpa = namespaced(ev, "HorizontalPodAutoscaler", "horizontalpodautoscaler");
            r = weak(
                r,
                Symptom::ScalingLimit,
                hpa.or_else(|| hpa_target(ev, state)),
            );
        }
        "CPUThrottlingHigh" => {
            r = weak(r, Symptom::CpuThrottled, workload_of(ev, state));
            r.figure = pct.map(|p| format!("{p}% of CPU periods throttled (alert {name})"));
        }

        // --- Storage ---------------------------------------------------------------------
        "KubePersistentVolumeFillingUp" | "KubePersistentVolumeInodesFillingUp" => {
            r.symptom = Symptom::VolumeFilling;
            r.subject = namespaced(ev, "PersistentVolumeClaim", "persistentvolumeclaim");
            r.strong = critical;
            r.figure = pct.map(|p| format!("{p}% free (alert {name})"));
        }
        "KubePersistentVolumeErrors" => {
            r.symptom = Symptom::VolumeFilling;
            r.subject =
                attr(ev, "persistentvolume").map(|pv| EntityKey::new("PersistentVolume", None, pv));
            r.strong = true;
        }

        // --- Node exporter ---------------------------------------------------------------
        "NodeFilesystemSpaceFillingUp"
        | "NodeFilesystemAlmostOutOfSpace"
        | "NodeFilesystemFilesFillingUp"
        | "NodeFilesystemAlmostOutOfFiles" => {
            r.symptom = Symptom::FilesystemFilling;
            r.subject = node_of(ev, state);
            r.strong = critical;
            r.figure = pct.map(|p| {
                format!(
                    "{p}% left on {} (alert {name})",
                    attr(ev, "mountpoint").unwrap_or("a filesystem")
                )
            });
        }
        "NodeRAIDDegraded" | "NodeRAIDDiskFailure" => {
            r.symptom = Symptom::DiskError;
            r.subject = node_of(ev, state);
            r.strong = true;
        }
        "NodeHighNumberConntrackEntriesUsed" | "NodeFileDescriptorLimit" => {
            r.symptom = Symptom::ResourceExhausted;
            r.subject = node_of(ev, state);
            r.strong = critical || pct.is_some_and(|p| p >= 90.0);
            r.figure = pct.map(|p| format!("{p}% used (alert {name})"));
        }
        "NodeNetworkReceiveErrs"
        | "NodeNetworkTransmitErrs"
        | "NodeNetworkInterfaceFlapping"
        | "NodeBondingDegraded" => {
            r = weak(r, Symptom::NetworkDegraded, node_of(ev, state));
        }
        "NodeCPUHighUsage" | "NodeSystemSaturation" => {
            r = weak(r, Symptom::CpuPressure, node_of(ev, state));
        }
        "NodeMemoryHighUtilization" | "NodeMemoryMajorPagesFaults" => {
            r = weak(r, Symptom::NodeMemoryPressure, node_of(ev, state));
        }
        "NodeDiskIOSaturation" => {
            r = weak(r, Symptom::IoPressure, node_of(ev, state));
        }
        "NodeClockSkewDetected"
        | "NodeClockNotSynchronising"
        | "NodeSystemdServiceFailed"
        | "NodeSystemdServiceCrashlooping" => {
            r = weak(r, Symptom::Alert, node_of(ev, state));
        }
        "NodeTextFileCollectorScrapeError" => {
            r = weak(r, Symptom::Alert, node_of(ev, state));
            r.monitoring = true;
        }

        // --- Targets ---------------------------------------------------------------------
        "TargetDown" => {
            let svc = ev
                .entity
                .service
                .as_deref()
                .or_else(|| attr(ev, "service"))
                .or(Some(job).filter(|j| !j.is_empty()));
            r.subject = match (ev.entity.namespace.as_deref(), svc) {
                (Some(ns), Some(s)) => Some(EntityKey::ns("Service", ns, s)),
                _ => None,
            };
            r.monitoring =
                MONITORING_JOBS.contains(&job) || svc.is_some_and(|s| MONITORING_JOBS.contains(&s));
            r.symptom = Symptom::TargetsDown;
            r.fraction = pct.map(|p| (p / 100.0).clamp(0.0, 1.0));
            // An application's targets down (the rule waited 10 minutes) opens an
            // incident — P1 when all are down, P3 for a share; the monitoring stack's own
            // targets only join a chain.
            r.strong = !r.monitoring && r.fraction.is_some_and(|f| f > 0.0);
            r.figure = pct.map(|p| format!("{p}% of the {job} targets down (alert TargetDown)"));
        }

        // --- The monitoring pipeline itself ------------------------------------------------
        n if n.starts_with("Alertmanager")
            || n.starts_with("Prometheus")
            || n.starts_with("KubeStateMetrics")
            || n.starts_with("Grafana")
            || n.starts_with("ConfigReloader") =>
        {
            r.subject = workload_of(ev, state);
            r.monitoring = true;
            r.strong = critical;
        }

        // --- Anything else: labels, severity, and a figure in its text -------------------
        _ => {
            let lower = format!("{name} {txt}").to_ascii_lowercase();
            let about_errors = ["error", "5xx", "fail", "unavailable"]
                .iter()
                .any(|w| lower.contains(w));
            let about_latency = ["latency", "slow", "response time", "duration"]
                .iter()
                .any(|w| lower.contains(w));
            if about_errors && let Some(p) = pct {
                r.error_ratio = Some((p / 100.0).clamp(0.0, 1.0));
                r.figure = Some(format!("{p}% errors (stated by alert {name})"));
            } else if about_latency && let Some(s) = seconds_in(&txt) {
                r.latency_s = Some(s);
                r.figure = Some(format!("{s} s latency (stated by alert {name})"));
            }
        }
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_read_from_rendered_text() {
        assert_eq!(
            percent_in("100% of the shop/checkout targets in shop namespace are down."),
            Some(100.0)
        );
        assert_eq!(
            percent_in("has only 2.31% available space left"),
            Some(2.31)
        );
        assert_eq!(percent_in("no figure"), None);
        assert_eq!(seconds_in("p99 latency is 6.8 s on checkout"), Some(6.8));
        assert_eq!(seconds_in("p99 latency is 750ms"), Some(0.75));
        assert_eq!(seconds_in("version 1.2 of x"), None);
    }
}
