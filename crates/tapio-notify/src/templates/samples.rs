//! Sample incidents for load-time validation of user templates: a complete resolved one
//! and a bare open one, so both sides of a template's conditionals run.

use chrono::{DateTime, Utc};
use tapio_core::incident::*;
use ulid::Ulid;

use super::RenderContext;

fn sample_time(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_261_600 + secs, 0).unwrap_or_default()
}

pub(crate) fn sample_entry(
    secs: i64,
    kind: TimelineKind,
    message: &str,
    by: Option<&str>,
) -> TimelineEntry {
    TimelineEntry {
        at: sample_time(secs),
        kind,
        message: message.to_owned(),
        count: 1,
        last_at: None,
        by: by.map(str::to_owned),
    }
}

/// A complete, resolved incident (every optional field set, with a base URL) and a bare,
/// open one (nothing optional, no base URL), so both sides of a template's conditionals run.
pub(crate) fn samples() -> [(Incident, RenderContext); 2] {
    let identity = Identity {
        cluster: Some("prod".into()),
        namespace: Some("shop".into()),
        kind: "Deployment".into(),
        name: "checkout".into(),
        problem: "oom".into(),
    };
    let evidence = Ulid::from_parts(1_767_261_600_000, 1);
    let full = Incident {
        id: Ulid::from_parts(1_767_261_600_000, 42),
        title: "checkout is crash-looping (OOMKilled)".into(),
        severity: Severity::P1,
        severity_reason: "P1: checkout serves traffic and 0 of 3 replicas are ready".into(),
        status: Status::Resolved,
        fingerprint: identity.fingerprint(),
        identity: identity.clone(),
        started_at: sample_time(0),
        detected_at: sample_time(20),
        acknowledged_at: Some(sample_time(120)),
        mitigated_at: Some(sample_time(1800)),
        resolved_at: Some(sample_time(4320)),
        updated_at: sample_time(4320),
        last_evidence_at: sample_time(1700),
        namespace: Some("shop".into()),
        affected: vec![
            "Deployment/shop/checkout".into(),
            "Service/shop/checkout".into(),
        ],
        evidence: vec![EvidenceRef {
            id: evidence,
            time: sample_time(0),
            kind: "oom_kill".into(),
            entity: "Pod/shop/checkout-7d9f".into(),
        }],
        evidence_count: 12,
        timeline: vec![
            sample_entry(20, TimelineKind::Detected, "detected: OOMKilled", None),
            sample_entry(
                120,
                TimelineKind::StatusChanged,
                "acknowledged by alice",
                Some("alice"),
            ),
            sample_entry(600, TimelineKind::Note, "ETA: 11:30 UTC", Some("alice")),
            sample_entry(
                1800,
                TimelineKind::StatusChanged,
                "mitigated by alice",
                Some("alice"),
            ),
            sample_entry(
                4300,
                TimelineKind::Note,
                "rolled back to v41; memory limit raised to 1Gi",
                Some("alice"),
            ),
            sample_entry(
                4320,
                TimelineKind::StatusChanged,
                "resolved by alice",
                Some("alice"),
            ),
        ],
        hypotheses: vec![Hypothesis {
            cause: "memory limit too low after rollout".into(),
            entity: "Deployment/shop/checkout".into(),
            confidence: 0.9,
            evidence: vec![evidence],
            chain: vec!["rollout v42".into(), "OOMKilled".into()],
            rule: "oom_after_rollout".into(),
            explanation: "rollout v42 raised memory use past the 512Mi limit".into(),
            mitigations: vec![
                "kubectl rollout undo deployment/checkout -n shop".into(),
                "raise the memory limit of checkout".into(),
            ],
        }],
        root_cause_confident: true,
        changes: vec![ChangeNote {
            at: sample_time(-300),
            entity: "Deployment/shop/checkout".into(),
            kind: "rollout".into(),
            description: "image checkout:v42".into(),
            evidence,
        }],
        merged_into: None,
        peak_severity: Some(Severity::P1),
        severity_set_by: None,
    };
    let bare = Incident {
        id: Ulid::from_parts(1_767_261_600_000, 43),
        title: "node-3 NotReady".into(),
        severity: Severity::P3,
        severity_reason: String::new(),
        status: Status::Open,
        fingerprint: identity.fingerprint(),
        identity,
        started_at: sample_time(0),
        detected_at: sample_time(0),
        acknowledged_at: None,
        mitigated_at: None,
        resolved_at: None,
        updated_at: sample_time(0),
        last_evidence_at: sample_time(0),
        namespace: None,
        affected: Vec::new(),
        evidence: Vec::new(),
        evidence_count: 0,
        timeline: vec![sample_entry(0, TimelineKind::Detected, "detected", None)],
        hypotheses: Vec::new(),
        root_cause_confident: false,
        changes: Vec::new(),
        merged_into: None,
        peak_severity: None,
        severity_set_by: None,
    };
    let now = sample_time(5000);
    [
        (
            full,
            RenderContext {
                base_url: Some("https://tapio.example.com".into()),
                now,
            },
        ),
        (bare, RenderContext::new(now)),
    ]
}
