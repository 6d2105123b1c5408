//! Incidents, times and render contexts the unit tests of templates and channels share.

// Test code: a fixture that cannot be built is a broken test, reported by the panic.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use tapio_core::incident::*;
use ulid::Ulid;

use crate::templates::samples::{sample_entry, samples};
use crate::templates::{NotificationKind, RenderContext, Templates};

pub(crate) fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_261_600 + secs, 0).unwrap()
}

pub(crate) fn entry(
    secs: i64,
    kind: TimelineKind,
    message: &str,
    by: Option<&str>,
) -> TimelineEntry {
    sample_entry(secs, kind, message, by)
}

/// Open at 10:00, acknowledged by bob, confident root cause, a note.
pub(crate) fn confident() -> Incident {
    let (mut inc, _) = samples().into_iter().next().unwrap();
    inc.id = Ulid::from_parts(1_767_261_600_000, 7);
    inc.status = Status::Acknowledged;
    inc.started_at = t(0);
    inc.detected_at = t(30);
    inc.acknowledged_at = Some(t(240));
    inc.mitigated_at = None;
    inc.resolved_at = None;
    inc.timeline = vec![
        entry(30, TimelineKind::Detected, "detected: OOMKilled", None),
        entry(
            240,
            TimelineKind::StatusChanged,
            "acknowledged by bob",
            Some("bob"),
        ),
        entry(600, TimelineKind::Note, "rolling back to v41", Some("bob")),
    ];
    inc
}

/// Open, P2, hypotheses but not confident, nobody acknowledged, no notes.
pub(crate) fn unsure() -> Incident {
    let mut inc = confident();
    inc.id = Ulid::from_parts(1_767_261_600_000, 8);
    inc.severity = Severity::P2;
    inc.status = Status::Open;
    inc.acknowledged_at = None;
    inc.root_cause_confident = false;
    inc.hypotheses[0].confidence = 0.4;
    inc.timeline.truncate(1);
    inc
}

pub(crate) fn ctx() -> RenderContext {
    RenderContext {
        base_url: Some("https://tapio.example.com/".into()),
        now: t(3600),
    }
}

pub(crate) fn render(kind: NotificationKind, inc: &Incident, ctx: &RenderContext) -> String {
    Templates::defaults().render(kind, inc, ctx).unwrap()
}
