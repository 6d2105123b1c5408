//! The seam between the server and incident logic, and the first implementation.
//!
//! The server owns one engine in a single task, feeds it stored evidence in storage order,
//! and persists every [`IncidentChange`] together with how far it has read. The correlation
//! engine (a later issue) replaces [`SimpleIncidentPath`] behind the same trait.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use tapio_proto::Event;
use ulid::Ulid;

use crate::classify::classify;
use crate::incident::*;

/// What processing one fact did to the incident set.
#[derive(Debug, Clone, PartialEq)]
pub enum IncidentChange {
    Opened(Incident),
    Updated(Incident),
}

impl IncidentChange {
    pub fn incident(&self) -> &Incident {
        match self {
            Self::Opened(i) | Self::Updated(i) => i,
        }
    }
}

pub trait IncidentEngine: Send {
    /// Load the incidents that are still active (after a restart).
    fn restore(&mut self, active: Vec<Incident>);
    /// After a warm-up (the partition's stored evidence replayed into a fresh engine, its
    /// output discarded): take the stored active incidents as the truth for what the
    /// engine rebuilt, and hold the others as `restore` does.
    fn resume(&mut self, stored: Vec<Incident>) {
        self.restore(stored);
    }
    /// Process one stored fact. Deterministic for the same facts, order and clock.
    /// Every incident the fact opened or changed (a fact may also let quiet incidents
    /// resolve).
    fn observe(&mut self, ev: &Event, now: DateTime<Utc>) -> Vec<IncidentChange>;
    /// Incidents held in memory (a gauge).
    fn active_count(&self) -> usize;
    /// `correlation-depth` changed (applied live).
    fn set_depth(&mut self, _depth: crate::config::CorrelationDepth) {}
    /// Time passes without evidence: incidents may resolve after their quiet period.
    fn tick(&mut self, _now: DateTime<Utc>) -> Vec<IncidentChange> {
        Vec::new()
    }
    /// A person acted on an incident the engine holds (acknowledge, resolve, note…): apply
    /// it to the engine's copy so later changes keep it. `None`: not held here (the caller
    /// applies it to the stored record).
    fn act(
        &mut self,
        _id: Ulid,
        _action: &crate::lifecycle::Action,
        _by: &str,
        _at: DateTime<Utc>,
    ) -> Option<Result<Incident, crate::lifecycle::ActionError>> {
        None
    }
    /// Incidents changed since they were last returned (evidence only; the engine may
    /// batch such updates): called after each chunk, before persisting.
    fn flush(&mut self) -> Vec<IncidentChange> {
        Vec::new()
    }
    /// Name shown in `/health`.
    fn name(&self) -> &'static str {
        "simple-incident-path"
    }
    /// The engine's clock (the newest event time it has seen or restored), if any: a new
    /// owner lets idle time pass from here, so what waits on time (a grace period, a
    /// quiet period) still comes due when no further evidence arrives.
    fn clock(&self) -> Option<DateTime<Utc>> {
        None
    }
}

/// One incident per stable fingerprint for signals the runbook classifies on their own.
///
/// Invariant: at most one active incident per fingerprint is held; state is bounded by
/// `max_active`, beyond which the incident with the oldest evidence is forgotten (it stays
/// stored and listed; a new signal for it opens a new incident).
pub struct SimpleIncidentPath {
    active: HashMap<String, Incident>,
    max_active: usize,
}

impl Default for SimpleIncidentPath {
    fn default() -> Self {
        Self::new(50_000)
    }
}

impl SimpleIncidentPath {
    pub fn new(max_active: usize) -> Self {
        Self {
            active: HashMap::new(),
            max_active: max_active.max(1),
        }
    }

    fn evict_if_full(&mut self) {
        if self.active.len() < self.max_active {
            return;
        }
        if let Some(oldest) = self
            .active
            .values()
            .min_by_key(|i| (i.last_evidence_at, i.id))
            .map(|i| i.fingerprint.clone())
        {
            self.active.remove(&oldest);
        }
    }
}

fn evidence_ref(ev: &Event) -> EvidenceRef {
    EvidenceRef {
        id: ev.id,
        time: ev.time,
        kind: ev.kind.to_string(),
        entity: ev.entity.leaf_name(),
    }
}

fn evidence_line(ev: &Event) -> String {
    format!("{} on {}", ev.kind, ev.entity.leaf_name())
}

fn push_timeline(inc: &mut Incident, entry: TimelineEntry) {
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
        // Keep the opening entries; drop the oldest entry after them.
        inc.timeline.remove(1);
    }
    inc.timeline.push(entry);
}

fn entry(at: DateTime<Utc>, kind: TimelineKind, message: String) -> TimelineEntry {
    TimelineEntry {
        at,
        kind,
        message,
        count: 1,
        last_at: None,
        by: None,
    }
}

impl IncidentEngine for SimpleIncidentPath {
    fn restore(&mut self, active: Vec<Incident>) {
        self.active.clear();
        for inc in active {
            if inc.status.is_active() {
                self.evict_if_full();
                self.active.insert(inc.fingerprint.clone(), inc);
            }
        }
    }

    fn observe(&mut self, ev: &Event, now: DateTime<Utc>) -> Vec<IncidentChange> {
        self.observe_one(ev, now).into_iter().collect()
    }

    fn active_count(&self) -> usize {
        self.active.len()
    }
}

impl SimpleIncidentPath {
    fn observe_one(&mut self, ev: &Event, now: DateTime<Utc>) -> Option<IncidentChange> {
        let c = classify(ev)?;
        let fp = c.identity.fingerprint();
        if let Some(inc) = self.active.get_mut(&fp) {
            inc.evidence_count += 1;
            if inc.evidence.len() < MAX_EVIDENCE_REFS && !inc.evidence.iter().any(|r| r.id == ev.id)
            {
                inc.evidence.push(evidence_ref(ev));
            }
            let who = ev.entity.leaf_name();
            if inc.affected.len() < MAX_AFFECTED && !inc.affected.contains(&who) {
                inc.affected.push(who);
            }
            inc.started_at = inc.started_at.min(ev.time);
            inc.last_evidence_at = inc.last_evidence_at.max(ev.time);
            inc.updated_at = now;
            push_timeline(
                inc,
                entry(ev.time, TimelineKind::Evidence, evidence_line(ev)),
            );
            if c.severity < inc.severity && inc.severity_set_by.is_none() {
                let msg = format!(
                    "severity raised {} -> {}: {}",
                    inc.severity, c.severity, c.reason
                );
                inc.severity = c.severity;
                inc.severity_reason = c.reason;
                push_timeline(inc, entry(now, TimelineKind::SeverityChanged, msg));
            }
            return Some(IncidentChange::Updated(inc.clone()));
        }

        self.evict_if_full();
        // The id is derived from the fingerprint and the opening fact, so a replay of the
        // same evidence opens incidents with the same ids.
        let id = incident_id(&fp, ev);
        let mut inc = Incident {
            id,
            title: c.title,
            severity: c.severity,
            severity_reason: c.reason.clone(),
            status: Status::Open,
            fingerprint: fp.clone(),
            identity: c.identity.clone(),
            started_at: ev.time,
            detected_at: now,
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            updated_at: now,
            last_evidence_at: ev.time,
            namespace: c.identity.namespace.clone(),
            affected: vec![ev.entity.leaf_name()],
            evidence: vec![evidence_ref(ev)],
            evidence_count: 1,
            timeline: Vec::new(),
            hypotheses: Vec::new(),
            root_cause_confident: false,
            changes: Vec::new(),
            merged_into: None,
            peak_severity: None,
            severity_set_by: None,
        };
        push_timeline(
            &mut inc,
            entry(ev.time, TimelineKind::Evidence, evidence_line(ev)),
        );
        push_timeline(
            &mut inc,
            entry(
                now,
                TimelineKind::Detected,
                format!("opened as {}: {}", c.severity, c.reason),
            ),
        );
        self.active.insert(fp, inc.clone());
        Some(IncidentChange::Opened(inc))
    }
}

/// Derived from the fingerprint and the opening fact, so a replay of the same evidence
/// opens incidents with the same ids.
fn incident_id(fp: &str, ev: &Event) -> Ulid {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(fp.as_bytes());
    h.update(ev.id.to_bytes());
    let d = h.finalize();
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&d[..10]);
    Ulid::from_parts(
        u64::try_from(ev.time.timestamp_millis()).unwrap_or(0),
        u128::from_be_bytes(random),
    )
}

/// Detection delay of an incident (first evidence to detection), never negative.
pub fn time_to_detect(inc: &Incident) -> Duration {
    (inc.detected_at - inc.started_at).max(Duration::zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapio_proto::{AttrValue, Entity, EventSeverity, EventType, WorkloadRef};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn oom(pod: &str, at: &str) -> Event {
        Event {
            id: Ulid::new(),
            time: t(at),
            kind: EventType::parse("kernel.container.oom_kill").expect("type"),
            severity: EventSeverity::Critical,
            entity: Entity {
                namespace: Some("shop".into()),
                pod: Some(pod.into()),
                workload: Some(WorkloadRef {
                    kind: "Deployment".into(),
                    name: "api".into(),
                }),
                ..Entity::default()
            },
            attributes: [("comm".to_owned(), AttrValue::from("java"))].into(),
            object: None,
        }
    }

    #[test]
    fn repeated_signals_update_one_incident() {
        let mut e = SimpleIncidentPath::default();
        let now = t("2026-11-27T10:00:05Z");
        let first = e.observe_one(&oom("api-1", "2026-11-27T10:00:00Z"), now);
        let Some(IncidentChange::Opened(opened)) = first else {
            panic!("first OOM opens an incident: {first:?}");
        };
        assert_eq!(opened.severity, Severity::P3);
        let second = e.observe_one(&oom("api-2", "2026-11-27T10:00:01Z"), now);
        let Some(IncidentChange::Updated(updated)) = second else {
            panic!("second OOM of the same workload updates: {second:?}");
        };
        assert_eq!(updated.id, opened.id);
        assert_eq!(updated.evidence_count, 2);
        assert_eq!(updated.affected.len(), 2);
        assert_eq!(e.active_count(), 1);
    }

    #[test]
    fn repeats_fold_in_the_timeline() {
        let mut e = SimpleIncidentPath::default();
        let now = t("2026-11-27T10:00:05Z");
        let mut last = None;
        for _ in 0..10 {
            last = e.observe_one(&oom("api-1", "2026-11-27T10:00:00Z"), now);
        }
        let inc = last.expect("updated").incident().clone();
        let evidence: Vec<_> = inc
            .timeline
            .iter()
            .filter(|x| x.kind == TimelineKind::Evidence)
            .collect();
        // The opening fact, then one folded entry for the nine repeats.
        assert_eq!(evidence.len(), 2);
        assert_eq!(evidence.iter().map(|x| x.count).sum::<u64>(), 10);
        assert_eq!(inc.evidence_count, 10);
    }

    #[test]
    fn severity_only_rises() {
        let mut e = SimpleIncidentPath::default();
        let now = t("2026-11-27T10:00:05Z");
        let rate = |r: f64| {
            let mut ev = oom("api-1", "2026-11-27T10:00:00Z");
            ev.kind = EventType::parse("app.http.errors").expect("type");
            ev.attributes = [("error_ratio".to_owned(), AttrValue::from(r))].into();
            ev
        };
        let sev = |c: Option<IncidentChange>| c.expect("change").incident().severity;
        assert_eq!(sev(e.observe_one(&rate(0.02), now)), Severity::P3);
        assert_eq!(sev(e.observe_one(&rate(0.10), now)), Severity::P2);
        assert_eq!(sev(e.observe_one(&rate(0.02), now)), Severity::P2);
        assert_eq!(e.active_count(), 1);
    }

    #[test]
    fn replay_is_deterministic() {
        let evs: Vec<Event> = (0..5)
            .map(|i| oom(&format!("api-{i}"), "2026-11-27T10:00:00Z"))
            .collect();
        let now = t("2026-11-27T10:00:05Z");
        let run = || {
            let mut e = SimpleIncidentPath::default();
            evs.iter().filter_map(|ev| e.observe_one(ev, now)).last()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn state_is_bounded() {
        let mut e = SimpleIncidentPath::new(3);
        let now = t("2026-11-27T10:00:05Z");
        for i in 0..10 {
            let mut ev = oom("p", "2026-11-27T10:00:00Z");
            ev.entity.workload = Some(WorkloadRef {
                kind: "Deployment".into(),
                name: format!("w{i}"),
            });
            e.observe_one(&ev, now);
        }
        assert_eq!(e.active_count(), 3);
    }
}
