//! The figures of a report: which incidents count, their MTTD/MTTA/MTTR/MTBF (mean and
//! median), target compliance, and the breakdowns by severity, service and trend bucket.
//! The data model here is what every renderer reads; nothing in this file formats text.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use super::period::{Granularity, bucket_bounds, granularity_for, period_label};
use crate::incident::{Incident, Severity, Status};

/// The runbook's "Target Metrics" for one severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// MTTA must be below this.
    pub mtta_secs: i64,
    /// MTTR must be below this.
    pub mttr_secs: i64,
}

/// P1: MTTA < 5 min, MTTR < 2 h; P2: 15 min / 8 h; P3: 1 h / 24 h; P4: no target.
pub fn targets(sev: Severity) -> Option<Targets> {
    let t = |a: i64, r: i64| {
        Some(Targets {
            mtta_secs: a,
            mttr_secs: r,
        })
    };
    match sev {
        Severity::P1 => t(5 * 60, 2 * 3600),
        Severity::P2 => t(15 * 60, 8 * 3600),
        Severity::P3 => t(3600, 24 * 3600),
        Severity::P4 => None,
    }
}

/// The most severe level the incident reached.
pub fn effective_severity(inc: &Incident) -> Severity {
    inc.peak_severity
        .map_or(inc.severity, |p| p.min(inc.severity))
}

/// The incident's main entity for per-service figures: the first `Service/…` in
/// `affected`, else the identity's subject (`Kind/namespace/name`), else `(declared)` for
/// an incident declared by hand without a service.
pub fn service_of(inc: &Incident) -> String {
    if let Some(s) = inc.affected.iter().find(|a| a.starts_with("Service/")) {
        return s.clone();
    }
    let id = &inc.identity;
    if id.kind == "Declared" || id.name.is_empty() {
        return "(declared)".into();
    }
    match id.namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => format!("{}/{ns}/{}", id.kind, id.name),
        None => format!("{}/{}", id.kind, id.name),
    }
}

pub(super) fn resolved_at(inc: &Incident) -> Option<DateTime<Utc>> {
    inc.resolved_at.filter(|_| inc.status == Status::Resolved)
}

pub(super) fn nonneg(d: Duration) -> Duration {
    d.max(Duration::zero())
}

pub(super) fn secs(d: Duration) -> f64 {
    nonneg(d).num_milliseconds() as f64 / 1000.0
}

/// Time to acknowledge, when acknowledged.
pub fn time_to_ack(inc: &Incident) -> Option<Duration> {
    inc.acknowledged_at.map(|a| nonneg(a - inc.detected_at))
}

/// Time to resolve, when resolved.
pub fn time_to_resolve(inc: &Incident) -> Option<Duration> {
    resolved_at(inc).map(|r| nonneg(r - inc.detected_at))
}

/// Mean and median of a set of durations, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// How many values.
    pub n: usize,
    pub mean_secs: f64,
    pub median_secs: f64,
}

fn stat(mut v: Vec<f64>) -> Option<Stat> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Stat {
        n,
        mean_secs: mean,
        median_secs: median,
    })
}

/// How many measured incidents met their severity's target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Compliance {
    pub ack_met: usize,
    /// Acknowledged incidents with a target (P1–P3).
    pub ack_measured: usize,
    pub ack_rate: Option<f64>,
    pub resolve_met: usize,
    /// Resolved incidents with a target (P1–P3).
    pub resolve_measured: usize,
    pub resolve_rate: Option<f64>,
}

/// The figures of one group of incidents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub count: usize,
    /// Not acknowledged (left out of MTTA).
    pub unacknowledged: usize,
    /// Not resolved (left out of MTTR).
    pub unresolved: usize,
    pub mttd: Option<Stat>,
    pub mtta: Option<Stat>,
    pub mttr: Option<Stat>,
    pub mtbf: Option<Stat>,
    pub compliance: Compliance,
}

pub(super) fn rate(met: usize, n: usize) -> Option<f64> {
    (n > 0).then(|| met as f64 / n as f64)
}

fn metrics(incs: &[&Incident]) -> Metrics {
    let (mut ttd, mut tta, mut ttr) = (Vec::new(), Vec::new(), Vec::new());
    let mut c = Compliance::default();
    let (mut unack, mut unres) = (0, 0);
    for i in incs {
        ttd.push(secs(i.detected_at - i.started_at));
        let t = targets(effective_severity(i));
        match time_to_ack(i) {
            Some(a) => {
                tta.push(secs(a));
                if let Some(t) = t {
                    c.ack_measured += 1;
                    if a < Duration::seconds(t.mtta_secs) {
                        c.ack_met += 1;
                    }
                }
            }
            None => unack += 1,
        }
        match time_to_resolve(i) {
            Some(r) => {
                ttr.push(secs(r));
                if let Some(t) = t {
                    c.resolve_measured += 1;
                    if r < Duration::seconds(t.mttr_secs) {
                        c.resolve_met += 1;
                    }
                }
            }
            None => unres += 1,
        }
    }
    c.ack_rate = rate(c.ack_met, c.ack_measured);
    c.resolve_rate = rate(c.resolve_met, c.resolve_measured);
    let mut starts: Vec<DateTime<Utc>> = incs.iter().map(|i| i.started_at).collect();
    starts.sort();
    let gaps: Vec<f64> = starts.windows(2).map(|w| secs(w[1] - w[0])).collect();
    Metrics {
        count: incs.len(),
        unacknowledged: unack,
        unresolved: unres,
        mttd: stat(ttd),
        mtta: stat(tta),
        mttr: stat(ttr),
        mtbf: stat(gaps),
        compliance: c,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeverityRow {
    pub severity: Severity,
    /// `None` for P4.
    pub targets: Option<Targets>,
    pub metrics: Metrics,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRow {
    /// See [`service_of`].
    pub service: String,
    /// Most severe level among its incidents.
    pub worst: Severity,
    pub metrics: Metrics,
}

/// One P1/P2 incident, listed by name in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentLine {
    pub id: Ulid,
    pub severity: Severity,
    pub title: String,
    pub service: String,
    pub status: Status,
    pub started_at: DateTime<Utc>,
    pub detected_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub tta_secs: Option<f64>,
    pub ttr_secs: Option<f64>,
    /// Acknowledged within target (None: not acknowledged).
    pub ack_met: Option<bool>,
    /// Resolved within target (None: not resolved).
    pub resolve_met: Option<bool>,
}

/// One trend bucket: incidents that started in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Per severity, every level present (zero included).
    pub counts: BTreeMap<Severity, usize>,
    pub total: usize,
    pub mtta: Option<Stat>,
    pub mttr: Option<Stat>,
}

impl Bucket {
    pub fn count(&self, s: Severity) -> usize {
        self.counts.get(&s).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `Week 2026-W48 (2026-11-23 – 2026-11-29)`, `November 2026`, `Q4 2026`...
    pub label: String,
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
    pub granularity: Granularity,
    pub overall: Metrics,
    /// P1..P4, every level present.
    pub by_severity: Vec<SeverityRow>,
    /// Most incidents first.
    pub by_service: Vec<ServiceRow>,
    /// The P1/P2 incidents, in start order.
    pub notable: Vec<IncidentLine>,
    pub trend: Vec<Bucket>,
    /// Incidents in the period merged into another one (not counted).
    pub merged_excluded: usize,
}

fn severity_counts(incs: &[&Incident]) -> BTreeMap<Severity, usize> {
    let mut m: BTreeMap<Severity, usize> = Severity::ALL.iter().map(|s| (*s, 0)).collect();
    for i in incs {
        *m.entry(effective_severity(i)).or_default() += 1;
    }
    m
}

/// The figures for the incidents that started in `[from, to)`; trend buckets by day up
/// to a month, by week up to a quarter, by month beyond (as [`PeriodKind::granularity`]).
///
/// [`PeriodKind::granularity`]: super::PeriodKind::granularity
pub fn compute(incidents: &[Incident], from: DateTime<Utc>, to: DateTime<Utc>) -> Report {
    let (incs, merged_excluded) = counted(incidents, from, to);
    let granularity = granularity_for(from, to);
    Report {
        label: period_label(from, to),
        from,
        to,
        granularity,
        overall: metrics(&incs),
        by_severity: by_severity(&incs),
        by_service: by_service(&incs),
        notable: notable(&incs),
        trend: trend(&incs, from, to, granularity),
        merged_excluded,
    }
}

/// The incidents that count for `[from, to)`, in start order without duplicates, and how
/// many were left out because they were merged into another one.
fn counted(
    incidents: &[Incident],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (Vec<&Incident>, usize) {
    let mut merged_excluded = 0;
    let mut incs: Vec<&Incident> = Vec::new();
    for i in incidents {
        if i.started_at < from || i.started_at >= to {
            continue;
        }
        if i.merged_into.is_some() {
            merged_excluded += 1;
            continue;
        }
        incs.push(i);
    }
    incs.sort_by_key(|i| (i.started_at, i.id));
    incs.dedup_by_key(|i| i.id);
    (incs, merged_excluded)
}

/// One row per level, P1..P4, every level present.
fn by_severity(incs: &[&Incident]) -> Vec<SeverityRow> {
    Severity::ALL
        .iter()
        .map(|s| {
            let group: Vec<&Incident> = incs
                .iter()
                .copied()
                .filter(|i| effective_severity(i) == *s)
                .collect();
            SeverityRow {
                severity: *s,
                targets: targets(*s),
                metrics: metrics(&group),
            }
        })
        .collect()
}

/// One row per service, most incidents first (then worst severity, then name).
fn by_service(incs: &[&Incident]) -> Vec<ServiceRow> {
    let mut services: BTreeMap<String, Vec<&Incident>> = BTreeMap::new();
    for i in incs {
        services.entry(service_of(i)).or_default().push(i);
    }
    let mut by_service: Vec<ServiceRow> = services
        .into_iter()
        .map(|(service, group)| ServiceRow {
            worst: group
                .iter()
                .map(|i| effective_severity(i))
                .min()
                .unwrap_or(Severity::P4),
            metrics: metrics(&group),
            service,
        })
        .collect();
    by_service.sort_by(|a, b| {
        b.metrics
            .count
            .cmp(&a.metrics.count)
            .then(a.worst.cmp(&b.worst))
            .then(a.service.cmp(&b.service))
    });
    by_service
}

/// The P1/P2 incidents, each with its times and whether it met its targets.
fn notable(incs: &[&Incident]) -> Vec<IncidentLine> {
    incs.iter()
        .filter(|i| effective_severity(i).is_urgent())
        .map(|i| {
            let sev = effective_severity(i);
            let t = targets(sev);
            let tta = time_to_ack(i);
            let ttr = time_to_resolve(i);
            IncidentLine {
                id: i.id,
                severity: sev,
                title: i.title.clone(),
                service: service_of(i),
                status: i.status,
                started_at: i.started_at,
                detected_at: i.detected_at,
                acknowledged_at: i.acknowledged_at,
                resolved_at: resolved_at(i),
                tta_secs: tta.map(secs),
                ttr_secs: ttr.map(secs),
                ack_met: tta.zip(t).map(|(a, t)| a < Duration::seconds(t.mtta_secs)),
                resolve_met: ttr.zip(t).map(|(r, t)| r < Duration::seconds(t.mttr_secs)),
            }
        })
        .collect()
}

/// The trend buckets of `[from, to)` at `granularity`.
fn trend(
    incs: &[&Incident],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    granularity: Granularity,
) -> Vec<Bucket> {
    bucket_bounds(from, to, granularity)
        .into_iter()
        .map(|(start, end)| {
            let group: Vec<&Incident> = incs
                .iter()
                .copied()
                .filter(|i| i.started_at >= start && i.started_at < end)
                .collect();
            let m = metrics(&group);
            Bucket {
                start,
                end,
                counts: severity_counts(&group),
                total: group.len(),
                mtta: m.mtta,
                mttr: m.mttr,
            }
        })
        .collect()
}
