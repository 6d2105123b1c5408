//! Scoring the engine against scenarios with ground truth (`docs/scenarios.md`).
//!
//! Pure: the caller reads the files; [`run_scenario`] replays the events through a fresh
//! engine (event time as the clock) and scores what it produced.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tapio_proto::{Event, EventSeverity};

use crate::config::CorrelationDepth;
use crate::correlate::CorrelationEngine;
use crate::engine::IncidentEngine;
use crate::incident::{Incident, Severity};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub source: String,
    /// Depth to evaluate at (`basic`, `standard`, `deep`); default `standard`.
    #[serde(default)]
    pub depth: Option<String>,
    pub incidents: Vec<ExpectedIncident>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedIncident {
    pub severity: Severity,
    pub cause: String,
    pub entity: String,
    #[serde(default)]
    pub involves: Vec<String>,
    #[serde(default)]
    pub severity_reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentScore {
    pub expected_cause: String,
    pub expected_entity: String,
    pub expected_severity: Severity,
    /// Produced incidents that matched (more than one: over-split).
    pub matched: usize,
    pub got_cause: Option<String>,
    pub got_entity: Option<String>,
    pub got_severity: Option<Severity>,
    pub confident: bool,
    pub ac_at_1: bool,
    pub ac_at_3: bool,
    pub severity_exact: bool,
    pub detection_delay_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub depth: String,
    pub expected: usize,
    pub produced: usize,
    pub incidents: Vec<IncidentScore>,
    pub over_merge: usize,
    pub over_split: usize,
    /// Produced incidents matching no expected one.
    pub spurious: Vec<String>,
    /// Those of them that reached P1 or P2: pages for noise.
    pub noise_pages: Vec<String>,
    pub abstained: usize,
    pub signals: usize,
    pub events: usize,
}

/// Raw signals a human would otherwise see: every fact that is not state or informational.
fn is_raw_signal(ev: &Event) -> bool {
    if ev.kind.as_str().starts_with("kubernetes.watch.") {
        return ev.object.as_ref().is_some_and(|o| {
            o.get("kind").and_then(|k| k.as_str()) == Some("Event")
                && o.get("type").and_then(|t| t.as_str()) == Some("Warning")
        });
    }
    ev.severity >= EventSeverity::Warning
}

fn entities_of(inc: &Incident) -> BTreeSet<String> {
    let mut s: BTreeSet<String> = inc.affected.iter().cloned().collect();
    let id = &inc.identity;
    s.insert(match &id.namespace {
        Some(ns) => format!("{}/{}/{}", id.kind, ns, id.name),
        None => format!("{}/{}", id.kind, id.name),
    });
    if let Some(h) = inc.hypotheses.first() {
        s.insert(h.entity.clone());
    }
    s
}

/// What an incident is about: its identity entity and its top hypothesis' entity.
fn heads_of(inc: &Incident) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    let id = &inc.identity;
    s.insert(match &id.namespace {
        Some(ns) => format!("{}/{}/{}", id.kind, ns, id.name),
        None => format!("{}/{}", id.kind, id.name),
    });
    if let Some(h) = inc.hypotheses.first() {
        s.insert(h.entity.clone());
    }
    s
}

pub fn parse_depth(s: Option<&str>) -> Result<CorrelationDepth, String> {
    match s.unwrap_or("standard") {
        "basic" => Ok(CorrelationDepth::Basic),
        "standard" => Ok(CorrelationDepth::Standard),
        "deep" => Ok(CorrelationDepth::Deep),
        other => Err(format!(
            "depth {other:?} is not one of basic, standard, deep"
        )),
    }
}

/// Replay `events` through a fresh engine and score it against `expected`.
pub fn run_scenario(
    name: &str,
    events: &[Event],
    expected: &Expected,
    depth_override: Option<CorrelationDepth>,
) -> Result<ScenarioResult, String> {
    let depth = match depth_override {
        Some(d) => d,
        None => parse_depth(expected.depth.as_deref())?,
    };
    let produced = replay(events, depth);
    Ok(score(name, depth, &produced, expected, events))
}

/// Replay `events` through a fresh engine (event time as the clock) and return every
/// incident it reported, in its latest version — what a live server's store holds (an
/// incident that resolved and left the engine's memory still counts) — without those
/// merged into another chain (they are part of the survivor).
pub fn replay(events: &[Event], depth: CorrelationDepth) -> Vec<Incident> {
    let mut engine = CorrelationEngine::with_defaults(depth);
    let mut seen: std::collections::BTreeMap<ulid::Ulid, Incident> = Default::default();
    for ev in events {
        for c in engine.observe(ev, ev.time) {
            let i = c.incident();
            seen.insert(i.id, i.clone());
        }
    }
    for c in engine.flush() {
        let i = c.incident();
        seen.insert(i.id, i.clone());
    }
    for i in engine.incidents() {
        seen.insert(i.id, i);
    }
    seen.into_values()
        .filter(|i| i.merged_into.is_none())
        .collect()
}

/// The most severe level an incident reached.
fn peak(i: &Incident) -> Severity {
    i.peak_severity.unwrap_or(i.severity).min(i.severity)
}

pub fn score(
    name: &str,
    depth: CorrelationDepth,
    produced: &[Incident],
    expected: &Expected,
    events: &[Event],
) -> ScenarioResult {
    let ents: Vec<BTreeSet<String>> = produced.iter().map(entities_of).collect();
    let wanted = |e: &ExpectedIncident| -> BTreeSet<String> {
        let mut s: BTreeSet<String> = e.involves.iter().cloned().collect();
        s.insert(e.entity.clone());
        s
    };
    // Which expected incidents each produced one matches: by what it is about (its
    // identity or its root-cause entity) first; by what it affects only when that names
    // none of them — a caller affected by two chains does not make either chain the other.
    let heads: Vec<BTreeSet<String>> = produced.iter().map(heads_of).collect();
    let mut matches_of_produced: Vec<Vec<usize>> = vec![Vec::new(); produced.len()];
    for (pi, pe) in ents.iter().enumerate() {
        let by_head: Vec<usize> = expected
            .incidents
            .iter()
            .enumerate()
            .filter(|(_, e)| !heads[pi].is_disjoint(&wanted(e)))
            .map(|(ei, _)| ei)
            .collect();
        matches_of_produced[pi] = if by_head.is_empty() {
            expected
                .incidents
                .iter()
                .enumerate()
                .filter(|(_, e)| !pe.is_disjoint(&wanted(e)))
                .map(|(ei, _)| ei)
                .collect()
        } else {
            by_head
        };
    }
    let mut over_merge = 0;
    for m in &matches_of_produced {
        over_merge += m.len().saturating_sub(1);
    }
    let spurious: Vec<String> = matches_of_produced
        .iter()
        .enumerate()
        .filter(|(_, m)| m.is_empty())
        .map(|(pi, _)| produced[pi].title.clone())
        .collect();
    let noise_pages: Vec<String> = matches_of_produced
        .iter()
        .enumerate()
        .filter(|(pi, m)| m.is_empty() && peak(&produced[*pi]) <= Severity::P2)
        .map(|(pi, _)| format!("{} {}", peak(&produced[pi]), produced[pi].title))
        .collect();
    let mut over_split = 0;
    let mut scores = Vec::new();
    for (ei, e) in expected.incidents.iter().enumerate() {
        let mine: Vec<&Incident> = matches_of_produced
            .iter()
            .enumerate()
            .filter(|(_, m)| m.contains(&ei))
            .map(|(pi, _)| &produced[pi])
            .collect();
        over_split += mine.len().saturating_sub(1);
        // Where abstaining is right, a confident page in the same scenario (on this chain
        // or on nothing expected) is a confident wrong answer, whatever else abstained.
        let confident_page = matches_of_produced.iter().enumerate().any(|(pi, m)| {
            (m.is_empty() || m.contains(&ei))
                && produced[pi].root_cause_confident
                && peak(&produced[pi]) <= Severity::P2
        });
        let hit = |i: &Incident, k: usize| {
            if e.cause == "none" {
                return !i.root_cause_confident && !confident_page;
            }
            i.root_cause_confident
                && i.hypotheses
                    .iter()
                    .take(k)
                    .any(|h| h.cause == e.cause && h.entity == e.entity)
        };
        // The best of the matching incidents stands for the expected one.
        let best = mine
            .iter()
            .max_by_key(|i| {
                (
                    hit(i, 1),
                    hit(i, 3),
                    i.severity == e.severity,
                    std::cmp::Reverse(i.detected_at),
                )
            })
            .copied();
        let delay = best.map(|i| {
            let first = i
                .evidence
                .iter()
                .map(|r| r.time)
                .min()
                .unwrap_or(i.started_at)
                .min(i.started_at);
            (i.detected_at - first).num_milliseconds().max(0) as f64 / 1000.0
        });
        scores.push(IncidentScore {
            expected_cause: e.cause.clone(),
            expected_entity: e.entity.clone(),
            expected_severity: e.severity,
            matched: mine.len(),
            got_cause: best.and_then(|i| i.hypotheses.first().map(|h| h.cause.clone())),
            got_entity: best.and_then(|i| i.hypotheses.first().map(|h| h.entity.clone())),
            got_severity: best.map(peak),
            confident: best.is_some_and(|i| i.root_cause_confident),
            ac_at_1: best.is_some_and(|i| hit(i, 1)),
            ac_at_3: best.is_some_and(|i| hit(i, 3)),
            severity_exact: best.is_some_and(|i| peak(i) == e.severity),
            detection_delay_s: delay,
        });
    }
    ScenarioResult {
        name: name.into(),
        depth: depth.to_string(),
        expected: expected.incidents.len(),
        produced: produced.len(),
        incidents: scores,
        over_merge,
        over_split,
        spurious,
        noise_pages,
        abstained: produced.iter().filter(|i| !i.root_cause_confident).count(),
        signals: events.iter().filter(|e| is_raw_signal(e)).count(),
        events: events.len(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenarios: usize,
    pub expected_incidents: usize,
    pub ac_at_1: f64,
    pub ac_at_3: f64,
    pub severity_exact: f64,
    pub over_merge: usize,
    pub over_split: usize,
    pub spurious: usize,
    /// Spurious incidents that reached P1/P2: pages on noise.
    pub noise_pages: usize,
    pub missed: usize,
    pub abstained: usize,
    pub detection_delay_p50_s: f64,
    pub detection_delay_p99_s: f64,
    pub signals: usize,
    pub incidents: usize,
}

pub fn summarize(results: &[ScenarioResult]) -> Summary {
    let all: Vec<&IncidentScore> = results.iter().flat_map(|r| &r.incidents).collect();
    let n = all.len().max(1) as f64;
    let frac = |f: &dyn Fn(&IncidentScore) -> bool| {
        if all.is_empty() {
            1.0
        } else {
            all.iter().filter(|s| f(s)).count() as f64 / n
        }
    };
    let mut delays: Vec<f64> = all.iter().filter_map(|s| s.detection_delay_s).collect();
    delays.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let pct = |p: f64| {
        if delays.is_empty() {
            0.0
        } else {
            let i = ((delays.len() as f64 - 1.0) * p).round() as usize;
            delays[i.min(delays.len() - 1)]
        }
    };
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Summary {
        scenarios: results.len(),
        expected_incidents: all.len(),
        ac_at_1: round(frac(&|s| s.ac_at_1)),
        ac_at_3: round(frac(&|s| s.ac_at_3)),
        severity_exact: round(frac(&|s| s.severity_exact)),
        over_merge: results.iter().map(|r| r.over_merge).sum(),
        over_split: results.iter().map(|r| r.over_split).sum(),
        spurious: results.iter().map(|r| r.spurious.len()).sum(),
        noise_pages: results.iter().map(|r| r.noise_pages.len()).sum(),
        missed: all.iter().filter(|s| s.matched == 0).count(),
        abstained: results.iter().map(|r| r.abstained).sum(),
        detection_delay_p50_s: round(pct(0.5)),
        detection_delay_p99_s: round(pct(0.99)),
        signals: results.iter().map(|r| r.signals).sum(),
        incidents: results.iter().map(|r| r.produced).sum(),
    }
}
