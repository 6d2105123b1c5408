//! The incident lifecycle people drive: open → acknowledged → mitigated → resolved (and
//! reopened), notes, and incidents declared by hand. Pure: the caller passes the time.
//!
//! Every transition is a timeline entry naming who did it. An action that makes no sense
//! in the incident's state is refused with the state and the actions that are allowed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::incident::*;

/// Largest note accepted.
pub const MAX_NOTE_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    Ack,
    Mitigate,
    Resolve,
    Reopen,
    Note {
        text: String,
    },
    /// A person sets the severity (the runbook's responders re-classify with what they
    /// know: customer reports, revenue impact); detection keeps it from then on.
    Severity {
        severity: Severity,
        #[serde(default)]
        reason: Option<String>,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ack => "acknowledge",
            Self::Mitigate => "mitigate",
            Self::Resolve => "resolve",
            Self::Reopen => "reopen",
            Self::Note { .. } => "note",
            Self::Severity { .. } => "severity",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    /// `invalid_transition` or `invalid_field`.
    pub code: &'static str,
    pub message: String,
}

/// What can be done to an incident in this status.
pub fn allowed(status: Status) -> &'static [&'static str] {
    match status {
        Status::Open => &["ack", "mitigate", "resolve", "note", "severity"],
        Status::Acknowledged => &["mitigate", "resolve", "note", "severity"],
        Status::Mitigated => &["resolve", "note", "severity"],
        Status::Resolved => &["reopen", "note", "severity"],
    }
}

fn refuse(inc: &Incident, action: &Action, why: &str) -> ActionError {
    ActionError {
        code: "invalid_transition",
        message: format!(
            "incident {} is {}{}: it cannot be {}; allowed now: {}",
            inc.id,
            inc.status,
            why,
            match action {
                Action::Ack => "acknowledged",
                Action::Mitigate => "mitigated",
                Action::Resolve => "resolved",
                Action::Reopen => "reopened",
                Action::Note { .. } => "noted",
                Action::Severity { .. } => "re-classified",
            },
            allowed(inc.status).join(", ")
        ),
    }
}

fn entry(at: DateTime<Utc>, kind: TimelineKind, message: String, by: &str) -> TimelineEntry {
    TimelineEntry {
        at,
        kind,
        message,
        count: 1,
        last_at: None,
        by: Some(by.to_owned()),
    }
}

fn push(inc: &mut Incident, e: TimelineEntry) {
    if inc.timeline.len() >= MAX_TIMELINE {
        inc.timeline.remove(1);
    }
    inc.timeline.push(e);
}

/// Check a person's name: 1–128 printable characters.
pub fn check_by(by: &str) -> Result<(), ActionError> {
    if by.trim().is_empty() || by.len() > 128 || by.chars().any(char::is_control) {
        return Err(ActionError {
            code: "invalid_field",
            message: format!(
                "by {:?} must name who acts: 1-128 printable characters (--by NAME)",
                by.chars().take(40).collect::<String>()
            ),
        });
    }
    Ok(())
}

/// Apply one action at `at` by `by`.
pub fn apply(
    inc: &mut Incident,
    action: &Action,
    by: &str,
    at: DateTime<Utc>,
) -> Result<(), ActionError> {
    check_by(by)?;
    let at = at.max(inc.detected_at);
    match action {
        Action::Ack => {
            if inc.status != Status::Open {
                return Err(refuse(
                    inc,
                    action,
                    &inc.acknowledged_at
                        .map(|t| format!(" (acknowledged at {})", t.format("%H:%M:%S")))
                        .unwrap_or_default(),
                ));
            }
            inc.status = Status::Acknowledged;
            inc.acknowledged_at.get_or_insert(at);
            push(
                inc,
                entry(
                    at,
                    TimelineKind::StatusChanged,
                    format!("acknowledged by {by}"),
                    by,
                ),
            );
        }
        Action::Mitigate => {
            if !matches!(inc.status, Status::Open | Status::Acknowledged) {
                return Err(refuse(inc, action, ""));
            }
            if inc.acknowledged_at.is_none() {
                inc.acknowledged_at = Some(at);
            }
            inc.status = Status::Mitigated;
            inc.mitigated_at = Some(at);
            push(
                inc,
                entry(
                    at,
                    TimelineKind::StatusChanged,
                    format!("mitigated by {by}"),
                    by,
                ),
            );
        }
        Action::Resolve => {
            if inc.status == Status::Resolved {
                return Err(refuse(inc, action, " already"));
            }
            if inc.acknowledged_at.is_none() {
                inc.acknowledged_at = Some(at);
            }
            inc.status = Status::Resolved;
            inc.resolved_at = Some(at);
            push(
                inc,
                entry(
                    at,
                    TimelineKind::StatusChanged,
                    format!("resolved by {by}"),
                    by,
                ),
            );
        }
        Action::Reopen => {
            if inc.status != Status::Resolved {
                return Err(refuse(inc, action, ""));
            }
            inc.status = Status::Open;
            inc.resolved_at = None;
            inc.mitigated_at = None;
            push(
                inc,
                entry(
                    at,
                    TimelineKind::StatusChanged,
                    format!("reopened by {by}"),
                    by,
                ),
            );
        }
        Action::Note { text } => {
            let t = text.trim();
            if t.is_empty() || t.len() > MAX_NOTE_BYTES {
                return Err(ActionError {
                    code: "invalid_field",
                    message: format!(
                        "a note needs 1-{MAX_NOTE_BYTES} bytes of text (got {})",
                        t.len()
                    ),
                });
            }
            push(inc, entry(at, TimelineKind::Note, t.to_owned(), by));
        }
        Action::Severity { severity, reason } => {
            let reason = reason.as_deref().map(str::trim).unwrap_or("");
            if reason.len() > MAX_NOTE_BYTES {
                return Err(ActionError {
                    code: "invalid_field",
                    message: format!(
                        "a severity reason is at most {MAX_NOTE_BYTES} bytes (got {})",
                        reason.len()
                    ),
                });
            }
            let why = if reason.is_empty() {
                format!("set by {by}")
            } else {
                format!("set by {by}: {reason}")
            };
            let old = inc.severity;
            inc.severity = *severity;
            inc.severity_reason = format!("{} — {why}", severity.label());
            inc.severity_set_by = Some(by.to_owned());
            inc.peak_severity = Some(inc.peak_severity.map_or(*severity, |p| p.min(*severity)));
            push(
                inc,
                entry(
                    at,
                    TimelineKind::SeverityChanged,
                    format!("severity {old} → {severity}: {why}"),
                    by,
                ),
            );
        }
    }
    inc.updated_at = inc.updated_at.max(at);
    Ok(())
}

/// A person's report of an incident (`tapio incidents declare`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declare {
    pub severity: Severity,
    pub title: String,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Build a declared incident; it runs the same lifecycle as detected ones.
pub fn declare(d: &Declare, at: DateTime<Utc>, id: Ulid) -> Result<Incident, ActionError> {
    let by = d.by.clone().unwrap_or_else(|| "api".into());
    check_by(&by)?;
    let title = d.title.trim();
    if title.is_empty() || title.len() > 256 {
        return Err(ActionError {
            code: "invalid_field",
            message: format!("title must be 1-256 bytes (got {})", title.len()),
        });
    }
    if let Some(desc) = &d.description
        && desc.len() > MAX_NOTE_BYTES
    {
        return Err(ActionError {
            code: "invalid_field",
            message: format!(
                "description is {} bytes; the limit is {MAX_NOTE_BYTES}",
                desc.len()
            ),
        });
    }
    let identity = Identity {
        cluster: None,
        namespace: d.namespace.clone(),
        kind: "Declared".into(),
        name: id.to_string(),
        problem: "declared".into(),
    };
    let mut affected = Vec::new();
    if let Some(svc) = &d.service {
        affected.push(match &d.namespace {
            Some(ns) => format!("Service/{ns}/{svc}"),
            None => format!("Service/{svc}"),
        });
    }
    let mut timeline = vec![entry(
        at,
        TimelineKind::Detected,
        format!("declared by {by}: {title}"),
        &by,
    )];
    if let Some(desc) = d
        .description
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        timeline.push(entry(at, TimelineKind::Note, desc.to_owned(), &by));
    }
    Ok(Incident {
        id,
        title: title.to_owned(),
        severity: d.severity,
        severity_reason: format!(
            "{} declared by {by} (reported by people, not detected)",
            d.severity
        ),
        status: Status::Open,
        fingerprint: identity.fingerprint(),
        identity,
        started_at: at,
        detected_at: at,
        acknowledged_at: None,
        mitigated_at: None,
        resolved_at: None,
        updated_at: at,
        last_evidence_at: at,
        namespace: d.namespace.clone(),
        affected,
        evidence: Vec::new(),
        evidence_count: 0,
        timeline,
        hypotheses: Vec::new(),
        root_cause_confident: false,
        changes: Vec::new(),
        merged_into: None,
        peak_severity: Some(d.severity),
        severity_set_by: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("time")
    }

    fn declared() -> Incident {
        declare(
            &Declare {
                severity: Severity::P2,
                title: "Checkout slow for EU users".into(),
                by: Some("alice".into()),
                namespace: Some("shop".into()),
                service: Some("checkout".into()),
                description: Some("three customer tickets since 10:05".into()),
            },
            t(0),
            Ulid::from_parts(1, 1),
        )
        .expect("valid")
    }

    #[test]
    fn the_happy_path_records_who_and_when() {
        let mut i = declared();
        apply(&mut i, &Action::Ack, "bob", t(60)).expect("ack");
        apply(
            &mut i,
            &Action::Note {
                text: "rolling back".into(),
            },
            "bob",
            t(90),
        )
        .expect("note");
        apply(&mut i, &Action::Mitigate, "bob", t(120)).expect("mitigate");
        apply(&mut i, &Action::Resolve, "carol", t(600)).expect("resolve");
        assert_eq!(i.status, Status::Resolved);
        assert_eq!(i.acknowledged_at, Some(t(60)));
        assert_eq!(i.mitigated_at, Some(t(120)));
        assert_eq!(i.resolved_at, Some(t(600)));
        let msgs: Vec<(&str, Option<&str>)> = i
            .timeline
            .iter()
            .map(|e| (e.message.as_str(), e.by.as_deref()))
            .collect();
        assert!(msgs.contains(&("acknowledged by bob", Some("bob"))));
        assert!(msgs.contains(&("rolling back", Some("bob"))));
        assert!(msgs.contains(&("resolved by carol", Some("carol"))));
        apply(&mut i, &Action::Reopen, "dave", t(700)).expect("reopen");
        assert_eq!(i.status, Status::Open);
        assert_eq!(i.resolved_at, None);
    }

    #[test]
    fn invalid_transitions_say_what_is_allowed() {
        let mut i = declared();
        apply(&mut i, &Action::Ack, "bob", t(60)).expect("ack");
        let e = apply(&mut i, &Action::Ack, "bob", t(61)).expect_err("twice");
        assert_eq!(e.code, "invalid_transition");
        assert!(e.message.contains("acknowledged"), "{e}");
        assert!(
            e.message.contains("allowed now: mitigate, resolve, note"),
            "{e}"
        );
        let e = apply(&mut i, &Action::Reopen, "bob", t(62)).expect_err("not resolved");
        assert!(e.message.contains("cannot be reopened"), "{e}");
        apply(&mut i, &Action::Resolve, "bob", t(63)).expect("resolve");
        let e = apply(&mut i, &Action::Mitigate, "bob", t(64)).expect_err("resolved");
        assert!(e.message.contains("allowed now: reopen, note"), "{e}");
    }

    #[test]
    fn resolving_or_mitigating_unacknowledged_counts_as_the_response() {
        let mut i = declared();
        apply(&mut i, &Action::Mitigate, "bob", t(30)).expect("mitigate");
        assert_eq!(i.acknowledged_at, Some(t(30)));
    }

    #[test]
    fn bad_input_is_refused_with_the_field() {
        let mut i = declared();
        assert_eq!(
            apply(&mut i, &Action::Ack, " ", t(1)).expect_err("by").code,
            "invalid_field"
        );
        let e = apply(
            &mut i,
            &Action::Note {
                text: "x".repeat(5000),
            },
            "bob",
            t(1),
        )
        .expect_err("long");
        assert!(e.message.contains("4096"), "{e}");
        let e = declare(
            &Declare {
                severity: Severity::P3,
                title: " ".into(),
                by: None,
                namespace: None,
                service: None,
                description: None,
            },
            t(0),
            Ulid::from_parts(1, 2),
        )
        .expect_err("empty title");
        assert!(e.message.contains("title"), "{e}");
    }
}
