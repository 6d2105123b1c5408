//! Text: how symptoms, causes and sizes read in titles and explanations.

use super::*;

pub(super) fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return (n > 0).then_some(n);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let m = match unit {
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return None,
    };
    Some(n * m)
}

pub(super) fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
        format!("{}Gi", b >> 30)
    } else {
        format!("{}Mi", b.div_ceil(1 << 20))
    }
}

pub(super) fn human(s: Symptom) -> &'static str {
    match s {
        Symptom::OomKilled => "OOM kills",
        Symptom::CrashLoop => "Crash loop",
        Symptom::Restarted => "Restarts",
        Symptom::ImagePullFailed => "Image pull failures",
        Symptom::ConfigError => "Container config errors",
        Symptom::Unschedulable => "Unschedulable pods",
        Symptom::Evicted => "Evictions",
        Symptom::ProbeFailed => "Probe failures",
        Symptom::MountFailed => "Volume mount failures",
        Symptom::NodeNotReady => "Node NotReady",
        Symptom::NodeMemoryPressure => "Node memory pressure",
        Symptom::NodeDiskPressure => "Node disk pressure",
        Symptom::NodePidPressure => "Node PID pressure",
        Symptom::CpuPressure => "CPU pressure",
        Symptom::IoPressure => "I/O pressure",
        Symptom::NoReadyEndpoints => "No ready endpoints",
        Symptom::WorkloadUnavailable => "No replica available",
        Symptom::WorkloadDegraded => "Replicas unavailable",
        Symptom::ConnRefused => "Connections refused",
        Symptom::ConnTimeout => "Connections timing out",
        Symptom::ConnError => "Connection errors",
        Symptom::DnsFailure => "DNS failures",
        Symptom::ConnectStats => "Connection failures",
        Symptom::DiskError => "Disk I/O errors",
        Symptom::DiskLatency => "Disk latency",
        Symptom::HungTask => "Hung tasks",
        Symptom::Alert => "Alert",
        Symptom::AbnormalExit => "Abnormal exits",
        Symptom::WebhookFailed => "Admission webhook failures",
        Symptom::CertExpired => "Expired certificate",
        Symptom::NetworkDegraded => "Network degradation",
        Symptom::Declared => "Declared incident",
        Symptom::Informational => "Informational",
        Symptom::TargetsDown => "Scrape targets down",
        Symptom::VolumeFilling => "Volume filling up",
        Symptom::FilesystemFilling => "Node filesystem filling up",
        Symptom::ResourceExhausted => "Node resource exhaustion",
        Symptom::ControlPlaneDegraded => "Control plane degraded",
        Symptom::JobFailed => "Job failures",
        Symptom::ScalingLimit => "Autoscaler at its limit",
        Symptom::CpuThrottled => "CPU throttling",
        Symptom::NetworkSetupFailed => "Pod network setup failures",
        Symptom::VolumeAttachFailed => "Volume attach failures",
        Symptom::VolumeProvisionFailed => "Volume provisioning failures",
        Symptom::QuotaExceeded => "Quota exceeded",
        Symptom::RuntimeFailed => "Container runtime failures",
    }
}

pub(super) fn human_cause(c: &str) -> String {
    let s = c.replace('_', " ");
    let mut ch = s.chars();
    match ch.next() {
        Some(f) => f.to_uppercase().collect::<String>() + ch.as_str(),
        None => s,
    }
}

pub(super) fn push_timeline(inc: &mut Incident, entry: TimelineEntry) {
    if let Some(last) = inc.timeline.last_mut()
        && last.kind == TimelineKind::Evidence
        && entry.kind == TimelineKind::Evidence
        && last.message == entry.message
    {
        last.count += 1;
        last.last_at = Some(entry.at.max(last.last_at.unwrap_or(last.at)));
        return;
    }
    if inc.timeline.len() >= MAX_TIMELINE {
        inc.timeline.remove(1);
    }
    inc.timeline.push(entry);
}

/// Where an error ratio is kept in an incident: per target and per source, so the
/// severity reason says who measured it.
pub(super) fn ratio_key(s: &Signal) -> String {
    let t = s.target.as_ref().unwrap_or(&s.subject);
    if s.source.is_empty() {
        t.to_string()
    } else {
        format!("{t} ({})", s.source)
    }
}

/// An incident's title: its confident cause on the entity, a cascade's likely origin, a
/// storm's summary, or the first strong symptom on the anchor when no cause is confident.
pub(super) fn title(w: &Working, hyps: &[Hypothesis], confident: bool) -> String {
    match hyps.first().filter(|_| confident) {
        Some(h) if h.cause == CASCADE_ORIGIN => format!(
            "{} workloads failing together in {}, likely origin {}",
            w.members
                .keys()
                .filter(|k| k.namespace == w.anchor.namespace)
                .count(),
            w.anchor.namespace.as_deref().unwrap_or("-"),
            h.entity
        ),
        Some(h) => format!("{} on {}", human_cause(&h.cause), h.entity),
        None if is_storm(&w.anchor) => format!(
            "Incident storm ({}): {} reports from {}{} sources about entities the cluster does not know, grouped into one incident",
            w.signals
                .front()
                .map(|s| human(s.symptom))
                .unwrap_or("Trouble"),
            w.inc.evidence_count,
            w.seen.len(),
            if w.seen.len() >= MAX_SEEN {
                " or more"
            } else {
                ""
            },
        ),
        None => {
            let first = w.signals.iter().find(|s| s.strong).or(w.signals.front());
            format!(
                "{} on {} (no confident root cause)",
                first.map(|s| human(s.symptom)).unwrap_or("Trouble"),
                w.anchor
            )
        }
    }
}
