//! What the messages say: the facts derived from an incident (who leads, the root cause,
//! progress, ETA, duration, …) that the template variables expose and the channel
//! payloads reuse, and [`template_vars`], every variable a template sees.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tapio_core::incident::*;

use super::{NotificationKind, RenderContext};

const MAX_LISTED_AFFECTED: usize = 5;
const MAX_NEXT_STEPS: usize = 3;

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Machine-readable time, same format as the incident's own serialization.
pub(crate) fn rfc3339_full(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(crate) fn hhmm(t: DateTime<Utc>) -> String {
    t.format("%H:%M UTC").to_string()
}

/// "1 h 12 min", "45 s", "2 d 3 h".
pub fn human_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Open => "Investigating",
        Status::Acknowledged => "Investigating (acknowledged)",
        Status::Mitigated => "Mitigated (monitoring)",
        Status::Resolved => "Resolved",
    }
}

fn is_status_change(e: &TimelineEntry, prefix: &str) -> bool {
    e.kind == TimelineKind::StatusChanged && e.message.starts_with(prefix)
}

/// Who acknowledged: the latest "acknowledged by" entry, else the person whose mitigate or
/// resolve acknowledged it implicitly (the entry at `acknowledged_at`).
pub(crate) fn acknowledged_by(inc: &Incident) -> Option<&str> {
    inc.timeline
        .iter()
        .rev()
        .find(|e| is_status_change(e, "acknowledged by ") && e.by.is_some())
        .or_else(|| {
            let at = inc.acknowledged_at?;
            inc.timeline.iter().find(|e| {
                e.at == at
                    && e.by.is_some()
                    && (is_status_change(e, "mitigated by ") || is_status_change(e, "resolved by "))
            })
        })
        .and_then(|e| e.by.as_deref())
}

/// The entry that resolved it (a person's, Tapio's quiet-period one, or a merge).
fn resolved_entry(inc: &Incident) -> Option<&TimelineEntry> {
    if inc.status != Status::Resolved {
        return None;
    }
    inc.timeline.iter().rev().find(|e| {
        e.kind == TimelineKind::StatusChanged
            && (e.message.starts_with("resolved") || e.message.starts_with("merged into"))
    })
}

fn latest_note(inc: &Incident) -> Option<&TimelineEntry> {
    inc.timeline
        .iter()
        .rev()
        .find(|e| e.kind == TimelineKind::Note)
}

pub(crate) fn top(inc: &Incident) -> Option<&Hypothesis> {
    inc.hypotheses.first()
}

/// The top hypothesis when it is confident enough to be called the root cause.
pub(crate) fn root_cause(inc: &Incident) -> Option<&Hypothesis> {
    top(inc).filter(|_| inc.root_cause_confident)
}

fn cause_on_entity(h: &Hypothesis) -> String {
    if h.entity.is_empty() {
        h.cause.clone()
    } else {
        format!("{} on {}", h.cause, h.entity)
    }
}

fn affected_summary(inc: &Incident) -> Option<String> {
    if inc.affected.is_empty() {
        return None;
    }
    let shown = &inc.affected[..inc.affected.len().min(MAX_LISTED_AFFECTED)];
    let mut s = shown.join(", ");
    let more = inc.affected.len() - shown.len();
    if more > 0 {
        s.push_str(&format!(" (+{more} more)"));
    }
    Some(s)
}

fn impact(inc: &Incident) -> String {
    let mut s = if inc.severity_reason.trim().is_empty() {
        format!("{} {}", inc.severity, inc.severity.label())
    } else {
        inc.severity_reason.trim().to_owned()
    };
    if let Some(a) = affected_summary(inc) {
        s.push_str("; affected: ");
        s.push_str(&a);
    }
    s
}

/// The confident root cause's explanation, or why there is none.
pub(crate) fn root_cause_text(inc: &Incident) -> String {
    match (root_cause(inc), top(inc)) {
        (Some(h), _) if !h.explanation.trim().is_empty() => h.explanation.trim().to_owned(),
        (Some(h), _) => cause_on_entity(h),
        (None, Some(h)) => format!(
            "no confident root cause yet (leading hypothesis: {}, {:.0} %)",
            cause_on_entity(h),
            h.confidence * 100.0
        ),
        (None, None) => "no confident root cause yet".to_owned(),
    }
}

fn progress(inc: &Incident) -> String {
    let mut s = root_cause_text(inc);
    if root_cause(inc).is_some() {
        s.insert_str(0, "root cause: ");
    }
    if let Some(n) = latest_note(inc) {
        s.push_str("; latest note (");
        if let Some(by) = &n.by {
            s.push_str(by);
            s.push_str(", ");
        }
        s.push_str(&hhmm(n.at));
        s.push_str("): ");
        s.push_str(n.message.trim());
    }
    s
}

fn next_steps(inc: &Incident) -> String {
    if inc.status == Status::Resolved {
        return format!("post-mortem: tapio postmortem {}", inc.id);
    }
    let Some(h) = top(inc) else {
        return format!(
            "investigate: timeline and evidence in `tapio incidents show {}`",
            inc.id
        );
    };
    let steps: Vec<&str> = h
        .mitigations
        .iter()
        .map(|m| m.trim())
        .filter(|m| !m.is_empty())
        .take(MAX_NEXT_STEPS)
        .collect();
    match (inc.root_cause_confident, steps.is_empty()) {
        (true, false) => steps.join("; "),
        (true, true) => format!("address {}", cause_on_entity(h)),
        (false, false) => format!("confirm {}, then: {}", cause_on_entity(h), steps.join("; ")),
        (false, true) => format!("confirm or rule out {}", cause_on_entity(h)),
    }
}

/// The text after "ETA" of the latest note that starts with it.
fn eta(inc: &Incident) -> String {
    if inc.status == Status::Resolved {
        return "resolved".to_owned();
    }
    inc.timeline
        .iter()
        .rev()
        .filter(|e| e.kind == TimelineKind::Note)
        .find_map(|e| {
            let m = e.message.trim();
            let head = m.get(..3)?;
            let rest = &m[3..];
            (head.eq_ignore_ascii_case("eta") && rest.starts_with([':', ' ', '\t']))
                .then(|| rest.trim_start_matches([':', ' ', '\t']).trim())
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn start(inc: &Incident) -> DateTime<Utc> {
    inc.started_at.min(inc.detected_at)
}

fn duration(inc: &Incident, now: DateTime<Utc>) -> String {
    match inc.resolved_at {
        Some(end) => human_duration(end - start(inc)),
        None => format!("{} (ongoing)", human_duration(now - start(inc))),
    }
}

fn cause(inc: &Incident) -> String {
    root_cause(inc)
        .map(cause_on_entity)
        .unwrap_or_else(|| "no confident root cause".to_owned())
}

fn resolution(inc: &Incident) -> String {
    if let Some(n) = latest_note(inc) {
        return n.message.trim().to_owned();
    }
    match resolved_entry(inc) {
        Some(e) => match &e.by {
            Some(by) => format!("resolved by {by}"),
            None => e.message.clone(),
        },
        None if inc.status == Status::Resolved => "resolved".to_owned(),
        None => "not resolved yet".to_owned(),
    }
}

fn follow_up(inc: &Incident) -> String {
    format!("post-mortem: tapio postmortem {}", inc.id)
}

/// The incident as JSON with every optional field present (`null` when unset), so strict
/// templates can test them.
fn incident_json(inc: &Incident) -> Map<String, Value> {
    let mut m = match serde_json::to_value(inc) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for key in [
        "acknowledged_at",
        "mitigated_at",
        "resolved_at",
        "namespace",
        "merged_into",
        "peak_severity",
    ] {
        m.entry(key).or_insert(Value::Null);
    }
    m.entry("changes").or_insert_with(|| json!([]));
    if let Some(Value::Object(id)) = m.get_mut("identity") {
        id.entry("cluster").or_insert(Value::Null);
        id.entry("namespace").or_insert(Value::Null);
    }
    if let Some(Value::Array(tl)) = m.get_mut("timeline") {
        for e in tl.iter_mut() {
            if let Value::Object(e) = e {
                e.entry("count").or_insert(json!(1));
                e.entry("last_at").or_insert(Value::Null);
                e.entry("by").or_insert(Value::Null);
            }
        }
    }
    // Whole seconds at the top level: these are for people.
    let times = [
        ("started_at", Some(inc.started_at)),
        ("detected_at", Some(inc.detected_at)),
        ("updated_at", Some(inc.updated_at)),
        ("last_evidence_at", Some(inc.last_evidence_at)),
        ("acknowledged_at", inc.acknowledged_at),
        ("mitigated_at", inc.mitigated_at),
        ("resolved_at", inc.resolved_at),
    ];
    for (key, t) in times {
        m.insert(
            key.to_owned(),
            t.map(rfc3339).map_or(Value::Null, Value::String),
        );
    }
    m
}

fn opt_str(s: Option<String>) -> Value {
    s.map_or(Value::Null, Value::String)
}

/// Every variable a template sees (documented in the module doc).
pub(super) fn template_vars(kind: NotificationKind, inc: &Incident, ctx: &RenderContext) -> Value {
    let incident = incident_json(inc);
    let mut vars = incident.clone();
    let hypothesis = |h: Option<&Hypothesis>| {
        h.and_then(|h| serde_json::to_value(h).ok())
            .unwrap_or(Value::Null)
    };
    let derived = [
        ("incident", Value::Object(incident)),
        ("kind", json!(kind.as_str())),
        ("severity_label", json!(inc.severity.label())),
        ("status_label", json!(status_label(inc.status))),
        (
            "started",
            json!(format!(
                "{} ({})",
                rfc3339(inc.started_at),
                hhmm(inc.started_at)
            )),
        ),
        ("started_hhmm", json!(hhmm(inc.started_at))),
        ("lead", json!(acknowledged_by(inc).unwrap_or("unassigned"))),
        (
            "acknowledged_by",
            opt_str(acknowledged_by(inc).map(str::to_owned)),
        ),
        ("impact", json!(impact(inc))),
        ("affected_summary", opt_str(affected_summary(inc))),
        ("top_hypothesis", hypothesis(top(inc))),
        ("root_cause", hypothesis(root_cause(inc))),
        ("progress", json!(progress(inc))),
        (
            "latest_note",
            latest_note(inc).map_or(
                Value::Null,
                |n| json!({"at": rfc3339(n.at), "by": n.by, "message": n.message}),
            ),
        ),
        ("next_steps", json!(next_steps(inc))),
        ("eta", json!(eta(inc))),
        ("duration", json!(duration(inc, ctx.now))),
        ("cause", json!(cause(inc))),
        ("resolution", json!(resolution(inc))),
        (
            "resolved_by",
            opt_str(resolved_entry(inc).and_then(|e| e.by.clone())),
        ),
        ("follow_up", json!(follow_up(inc))),
        ("link", opt_str(ctx.link(inc))),
        (
            "base_url",
            opt_str(ctx.base_url.clone().filter(|b| !b.trim().is_empty())),
        ),
        ("now", json!(rfc3339(ctx.now))),
    ];
    for (k, v) in derived {
        vars.insert(k.to_owned(), v);
    }
    Value::Object(vars)
}
