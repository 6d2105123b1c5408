//! Incident metrics, periodic reports and post-mortem drafts (the runbook's "Incident
//! Metrics" and "Post-Mortem Process"). Pure: the period and `now` are passed in.
//!
//! Definitions (runbook, "Key Performance Indicators"):
//!
//! - **MTTD**: mean of `detected_at − started_at` (first evidence → Tapio opened it), over
//!   all incidents of the group.
//! - **MTTA**: mean of `acknowledged_at − detected_at`, over the acknowledged ones only.
//! - **MTTR**: mean of `resolved_at − detected_at`, over the resolved ones only.
//! - **MTBF**: mean time between consecutive `started_at` of the group within the period
//!   (`None` with fewer than two incidents).
//!
//! Medians come with every mean. Negative spans (clock skew) count as zero.
//!
//! Which incidents: those whose `started_at` lies in `[from, to)`. Incidents merged into
//! another (`merged_into`) are left out (the survivor stands for them) and counted in
//! [`Report::merged_excluded`].
//!
//! Severity: an incident counts at the most severe level it reached (the lower of
//! `severity` and `peak_severity`), and is held to that level's targets.
//!
//! Service: the incident's main entity, [`service_of`]: the first `Service/…` in
//! `affected`, else the identity's subject (`Deployment/shop/checkout`, `Node/worker-1`),
//! else `(declared)` for incidents declared by hand without a service.
//!
//! Compliance ([`targets`]): the share of *measured* incidents that met the runbook target
//! for their severity, strictly (`MTTA < 5 min` means 5 min 00 s misses it). Incidents not
//! yet acknowledged (resolved) are not measured for MTTA (MTTR); they show as
//! `unacknowledged` (`unresolved`). P4 has no target.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::incident::{Incident, Severity, Status, TimelineEntry, TimelineKind};

// ---------------------------------------------------------------------------------------
// Periods
// ---------------------------------------------------------------------------------------

/// A calendar period a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    /// ISO week, Monday 00:00 UTC to the next Monday.
    Week,
    Month,
    Quarter,
    Year,
}

impl PeriodKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Week => "week",
            Self::Month => "month",
            Self::Quarter => "quarter",
            Self::Year => "year",
        }
    }

    /// Trend buckets: days for a week or month, weeks for a quarter, months for a year.
    pub fn granularity(self) -> Granularity {
        match self {
            Self::Week | Self::Month => Granularity::Day,
            Self::Quarter => Granularity::Week,
            Self::Year => Granularity::Month,
        }
    }
}

impl FromStr for PeriodKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            "quarter" => Ok(Self::Quarter),
            "year" => Ok(Self::Year),
            _ => Err(format!(
                "period {s:?} is not one of week, month, quarter, year"
            )),
        }
    }
}

/// A calendar date as operators type it: `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        format!("date {s:?} is not a calendar date in the form YYYY-MM-DD (e.g. 2026-11-23)")
    })
}

/// Size of a trend bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Day,
    /// Monday-aligned weeks, clipped to the period.
    Week,
    Month,
}

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MAX)
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    ymd(d.year(), d.month(), 1)
}

fn add_months(d: NaiveDate, n: u32) -> NaiveDate {
    let m0 = d.month0() + n;
    let y = d.year().saturating_add(i32::try_from(m0 / 12).unwrap_or(0));
    ymd(y, m0 % 12 + 1, 1)
}

fn monday_of(d: NaiveDate) -> NaiveDate {
    d.checked_sub_days(Days::new(u64::from(d.weekday().num_days_from_monday())))
        .unwrap_or(d)
}

/// The calendar period of `kind` containing `from` (default: containing `now`), as
/// `[start, end)` in UTC: an ISO week from Monday, a month, a quarter, a year.
pub fn period(
    kind: PeriodKind,
    from: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let d = from.unwrap_or_else(|| now.date_naive());
    let (start, end) = match kind {
        PeriodKind::Week => {
            let s = monday_of(d);
            (
                s,
                s.checked_add_days(Days::new(7)).unwrap_or(NaiveDate::MAX),
            )
        }
        PeriodKind::Month => {
            let s = first_of_month(d);
            (s, add_months(s, 1))
        }
        PeriodKind::Quarter => {
            let s = ymd(d.year(), d.month0() / 3 * 3 + 1, 1);
            (s, add_months(s, 3))
        }
        PeriodKind::Year => (ymd(d.year(), 1, 1), ymd(d.year().saturating_add(1), 1, 1)),
    };
    (midnight(start), midnight(end))
}

/// A human name for `[from, to)`: `Week 2026-W48 (2026-11-23 – 2026-11-29)`,
/// `November 2026`, `Q4 2026`, `Year 2026`, else the dates.
pub fn period_label(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let (f, t) = (from.date_naive(), to.date_naive());
    let last = t.pred_opt().unwrap_or(t);
    let aligned = from.time() == NaiveTime::MIN && to.time() == NaiveTime::MIN;
    if aligned {
        if f.weekday() == chrono::Weekday::Mon && (t - f).num_days() == 7 {
            let w = f.iso_week();
            return format!("Week {}-W{:02} ({f} – {last})", w.year(), w.week());
        }
        if f.day() == 1 {
            if t == add_months(f, 1) {
                return f.format("%B %Y").to_string();
            }
            if f.month0() % 3 == 0 && t == add_months(f, 3) {
                return format!("Q{} {}", f.month0() / 3 + 1, f.year());
            }
            if f.month() == 1 && t == add_months(f, 12) {
                return format!("Year {}", f.year());
            }
        }
        return format!("{f} – {last}");
    }
    format!(
        "{} – {}",
        from.format("%Y-%m-%d %H:%M"),
        to.format("%Y-%m-%d %H:%M")
    )
}

// ---------------------------------------------------------------------------------------
// Targets, severity and service of an incident
// ---------------------------------------------------------------------------------------

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

fn resolved_at(inc: &Incident) -> Option<DateTime<Utc>> {
    inc.resolved_at.filter(|_| inc.status == Status::Resolved)
}

fn nonneg(d: Duration) -> Duration {
    d.max(Duration::zero())
}

fn secs(d: Duration) -> f64 {
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

// ---------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------

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

fn rate(met: usize, n: usize) -> Option<f64> {
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

/// Trend granularity for an arbitrary span: days up to a month, weeks up to a quarter,
/// months beyond.
fn granularity_for(from: DateTime<Utc>, to: DateTime<Utc>) -> Granularity {
    match (to - from).num_days() {
        ..=31 => Granularity::Day,
        32..=93 => Granularity::Week,
        _ => Granularity::Month,
    }
}

fn next_boundary(t: DateTime<Utc>, g: Granularity) -> DateTime<Utc> {
    let d = t.date_naive();
    let next = match g {
        Granularity::Day => d.succ_opt(),
        Granularity::Week => {
            d.checked_add_days(Days::new(7 - u64::from(d.weekday().num_days_from_monday())))
        }
        Granularity::Month => Some(add_months(d, 1)),
    };
    next.map_or(DateTime::<Utc>::MAX_UTC, midnight)
}

/// Bucket bounds covering `[from, to)`: calendar-aligned, the first and last clipped.
pub fn bucket_bounds(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    g: Granularity,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let mut start = from;
    while start < to && out.len() < 1000 {
        let next = next_boundary(start, g);
        if next <= start {
            break;
        }
        let end = next.min(to);
        out.push((start, end));
        start = end;
    }
    out
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
pub fn compute(incidents: &[Incident], from: DateTime<Utc>, to: DateTime<Utc>) -> Report {
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

    let by_severity = Severity::ALL
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
        .collect();

    let mut services: BTreeMap<String, Vec<&Incident>> = BTreeMap::new();
    for i in &incs {
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

    let notable = incs
        .iter()
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
        .collect();

    let granularity = granularity_for(from, to);
    let trend = bucket_bounds(from, to, granularity)
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
        .collect();

    Report {
        label: period_label(from, to),
        from,
        to,
        granularity,
        overall: metrics(&incs),
        by_severity,
        by_service,
        notable,
        trend,
        merged_excluded,
    }
}

// ---------------------------------------------------------------------------------------
// Rendering helpers
// ---------------------------------------------------------------------------------------

/// A duration for people: `45s`, `4m 30s`, `2h 05m`, `3d 04h`.
pub fn fmt_secs(secs: f64) -> String {
    let s = secs.max(0.0).round() as i64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn fmt_dur(d: Duration) -> String {
    fmt_secs(secs(d))
}

/// A target as the runbook writes it: `5m`, `15m`, `1h`, `24h`.
fn fmt_target(secs: i64) -> String {
    if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

fn mean(s: Option<Stat>) -> String {
    s.map_or_else(|| "—".into(), |s| fmt_secs(s.mean_secs))
}

fn median(s: Option<Stat>) -> String {
    s.map_or_else(|| "—".into(), |s| fmt_secs(s.median_secs))
}

fn share(met: usize, n: usize) -> String {
    match rate(met, n) {
        Some(r) => format!("{met}/{n} ({:.0}%)", r * 100.0),
        None => "—".into(),
    }
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::P1 => "Critical",
        Severity::P2 => "High",
        Severity::P3 => "Medium",
        Severity::P4 => "Low",
    }
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn fmt_minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A Markdown table cell: no pipes or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn period_dates(r: &Report) -> String {
    let last = r.to - Duration::seconds(1);
    format!(
        "{} – {} (UTC)",
        r.from.format("%Y-%m-%d"),
        last.format("%Y-%m-%d")
    )
}

fn bucket_name(b: &Bucket, g: Granularity) -> String {
    match g {
        Granularity::Day => b.start.format("%a %Y-%m-%d").to_string(),
        Granularity::Week => b.start.format("wk of %Y-%m-%d").to_string(),
        Granularity::Month => b.start.format("%B %Y").to_string(),
    }
}

/// `P1 1 · P2 2 · P3 3 · P4 2`
fn severity_mix(r: &Report) -> String {
    r.by_severity
        .iter()
        .map(|row| format!("{} {}", row.severity, row.metrics.count))
        .collect::<Vec<_>>()
        .join(" · ")
}

// ---------------------------------------------------------------------------------------
// Table, JSON, Markdown
// ---------------------------------------------------------------------------------------

/// Plain aligned text for a terminal.
pub fn to_table(r: &Report) -> String {
    let mut out = String::new();
    let o = &r.overall;
    let _ = writeln!(out, "Incident report: {}", r.label);
    let _ = writeln!(out, "Period: {}", period_dates(r));
    let _ = writeln!(
        out,
        "{} incidents ({}); {} unresolved, {} unacknowledged{}",
        o.count,
        severity_mix(r),
        o.unresolved,
        o.unacknowledged,
        if r.merged_excluded > 0 {
            format!("; {} merged into others (not counted)", r.merged_excluded)
        } else {
            String::new()
        }
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<5} {:>5}  {:<8} {:<8} {:<8} {:<8} {:<8} {:<8} {:<8}  {:<17} {:<17}",
        "SEV",
        "COUNT",
        "MTTD",
        "MTTA",
        "(med)",
        "MTTR",
        "(med)",
        "MTBF",
        "TARGETS",
        "ACK IN TARGET",
        "RESOLVED IN TARGET"
    );
    let row = |out: &mut String, name: &str, m: &Metrics, t: Option<Targets>, p4: bool| {
        let tgt = t.map_or_else(
            || if p4 { "none".into() } else { String::new() },
            |t| format!("{}/{}", fmt_target(t.mtta_secs), fmt_target(t.mttr_secs)),
        );
        let c = &m.compliance;
        let na = |s: String| if p4 { "n/a".into() } else { s };
        let _ = writeln!(
            out,
            "{:<5} {:>5}  {:<8} {:<8} {:<8} {:<8} {:<8} {:<8} {:<8}  {:<17} {:<17}",
            name,
            m.count,
            mean(m.mttd),
            mean(m.mtta),
            median(m.mtta),
            mean(m.mttr),
            median(m.mttr),
            mean(m.mtbf),
            if tgt.is_empty() { "-".into() } else { tgt },
            na(share(c.ack_met, c.ack_measured)),
            na(share(c.resolve_met, c.resolve_measured)),
        );
    };
    for s in &r.by_severity {
        row(
            &mut out,
            s.severity.as_str(),
            &s.metrics,
            s.targets,
            s.severity == Severity::P4,
        );
    }
    row(&mut out, "ALL", o, None, false);

    if !r.by_service.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<44} {:>5}  {:<5} {:<8} {:<8} {:<8}",
            "SERVICE", "COUNT", "WORST", "MTTA", "MTTR", "MTBF"
        );
        for s in r.by_service.iter().take(10) {
            let _ = writeln!(
                out,
                "{:<44} {:>5}  {:<5} {:<8} {:<8} {:<8}",
                cut(&s.service, 44),
                s.metrics.count,
                s.worst.as_str(),
                mean(s.metrics.mtta),
                mean(s.metrics.mttr),
                mean(s.metrics.mtbf)
            );
        }
        if r.by_service.len() > 10 {
            let _ = writeln!(out, "… and {} more", r.by_service.len() - 10);
        }
    }

    if !r.notable.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<4} {:<26} {:<16} {:<13} {:<10} {:<10} TITLE",
            "SEV", "ID", "STARTED", "STATUS", "ACK AFTER", "RESOLVED"
        );
        for n in &r.notable {
            let mark = |v: Option<f64>, met: Option<bool>| match (v, met) {
                (Some(v), Some(false)) => format!("{}!", fmt_secs(v)),
                (Some(v), _) => fmt_secs(v),
                (None, _) => "—".into(),
            };
            let _ = writeln!(
                out,
                "{:<4} {:<26} {:<16} {:<13} {:<10} {:<10} {}",
                n.severity.as_str(),
                n.id.to_string(),
                fmt_minute(n.started_at),
                n.status.as_str(),
                mark(n.tta_secs, n.ack_met),
                mark(n.ttr_secs, n.resolve_met),
                cut(&n.title, 60)
            );
        }
        let _ = writeln!(out, "(! = over the runbook target)");
    }

    if !r.trend.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<20} {:>3} {:>3} {:>3} {:>3} {:>6}  {:<8} {:<8}",
            format!("TREND (by {})", r.granularity.as_str()),
            "P1",
            "P2",
            "P3",
            "P4",
            "TOTAL",
            "MTTA",
            "MTTR"
        );
        for b in &r.trend {
            let _ = writeln!(
                out,
                "{:<20} {:>3} {:>3} {:>3} {:>3} {:>6}  {:<8} {:<8}",
                bucket_name(b, r.granularity),
                b.count(Severity::P1),
                b.count(Severity::P2),
                b.count(Severity::P3),
                b.count(Severity::P4),
                b.total,
                mean(b.mtta),
                mean(b.mttr)
            );
        }
    }
    out
}

/// The report as pretty JSON (all durations in seconds).
pub fn to_json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

fn check(ok: bool) -> &'static str {
    if ok { "✅" } else { "❌" }
}

/// Mean vs target: `✅ 4m 10s` / `❌ 2h 00m`; `—` without data.
fn versus(s: Option<Stat>, target: Option<i64>) -> String {
    match (s, target) {
        (Some(s), Some(t)) => format!(
            "{} {}",
            check(s.mean_secs < t as f64),
            fmt_secs(s.mean_secs)
        ),
        (Some(s), None) => fmt_secs(s.mean_secs),
        (None, _) => "—".into(),
    }
}

/// The runbook's weekly summary (and monthly trend analysis) as Markdown. P1/P2
/// incidents link to `{link_base}/api/v1/incidents/{id}` when a base is given.
pub fn to_markdown(r: &Report, link_base: Option<&str>) -> String {
    let mut out = String::new();
    let o = &r.overall;
    let _ = writeln!(out, "# Incident report — {}", r.label);
    let _ = writeln!(out);
    let _ = writeln!(out, "_Period: {}_", period_dates(r));
    let _ = writeln!(out);
    let _ = writeln!(out, "## Summary");
    let _ = writeln!(out);
    let _ = writeln!(out, "- **{}** incidents: {}", o.count, severity_mix(r));
    let _ = writeln!(
        out,
        "- {} resolved, {} still unresolved; {} not acknowledged",
        o.count - o.unresolved,
        o.unresolved,
        o.unacknowledged
    );
    let _ = writeln!(
        out,
        "- MTTD **{}** · MTTA **{}** (median {}) · MTTR **{}** (median {}) · MTBF **{}**",
        mean(o.mttd),
        mean(o.mtta),
        median(o.mtta),
        mean(o.mttr),
        median(o.mttr),
        mean(o.mtbf)
    );
    let c = &o.compliance;
    let _ = writeln!(
        out,
        "- Within the runbook targets (P1–P3): acknowledged {} · resolved {}",
        share(c.ack_met, c.ack_measured),
        share(c.resolve_met, c.resolve_measured)
    );
    if r.merged_excluded > 0 {
        let _ = writeln!(
            out,
            "- {} incident(s) merged into another one are not counted separately",
            r.merged_excluded
        );
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "## By severity");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Severity | Incidents | MTTD | MTTA (target) | Acked in target | MTTR (target) | Resolved in target | MTBF |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---|---|---|---:|");
    for s in &r.by_severity {
        let m = &s.metrics;
        let (ta, tr) = match s.targets {
            Some(t) => (
                format!(" (< {})", fmt_target(t.mtta_secs)),
                format!(" (< {})", fmt_target(t.mttr_secs)),
            ),
            None => (" (no target)".into(), " (no target)".into()),
        };
        let c = &m.compliance;
        let comp = |met: usize, n: usize| {
            if s.targets.is_none() {
                "n/a".to_owned()
            } else {
                share(met, n)
            }
        };
        let _ = writeln!(
            out,
            "| **{}** {} | {} | {} | {}{} | {} | {}{} | {} | {} |",
            s.severity,
            severity_word(s.severity),
            m.count,
            mean(m.mttd),
            versus(m.mtta, s.targets.map(|t| t.mtta_secs)),
            ta,
            comp(c.ack_met, c.ack_measured),
            versus(m.mttr, s.targets.map(|t| t.mttr_secs)),
            tr,
            comp(c.resolve_met, c.resolve_measured),
            mean(m.mtbf)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "✅/❌ on MTTA and MTTR: the mean against the target; \"in target\": the share of \
         acknowledged (resolved) incidents that met it. Unacknowledged and unresolved \
         incidents are not measured."
    );
    let _ = writeln!(out);

    let _ = writeln!(out, "## Top services");
    let _ = writeln!(out);
    if r.by_service.is_empty() {
        let _ = writeln!(out, "No incidents.");
    } else {
        let _ = writeln!(out, "| Service | Incidents | Worst | MTTA | MTTR | MTBF |");
        let _ = writeln!(out, "|---|---:|---|---:|---:|---:|");
        for s in r.by_service.iter().take(10) {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} |",
                cell(&s.service),
                s.metrics.count,
                s.worst,
                mean(s.metrics.mtta),
                mean(s.metrics.mttr),
                mean(s.metrics.mtbf)
            );
        }
        if r.by_service.len() > 10 {
            let _ = writeln!(out);
            let _ = writeln!(out, "… and {} more.", r.by_service.len() - 10);
        }
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "## P1/P2 incidents");
    let _ = writeln!(out);
    if r.notable.is_empty() {
        let _ = writeln!(out, "None. 🎉");
    } else {
        for n in &r.notable {
            let title = cell(&n.title).replace(['[', ']'], "");
            let link = match link_base {
                Some(b) => format!(
                    "[{title}]({}/api/v1/incidents/{})",
                    b.trim_end_matches('/'),
                    n.id
                ),
                None => title,
            };
            let ack = match (n.tta_secs, n.ack_met) {
                (Some(v), Some(met)) => {
                    format!("acknowledged after {} {}", fmt_secs(v), check(met))
                }
                _ => "**not acknowledged**".into(),
            };
            let res = match (n.ttr_secs, n.resolve_met) {
                (Some(v), Some(met)) => format!("resolved after {} {}", fmt_secs(v), check(met)),
                _ => format!("**{}**", n.status),
            };
            let _ = writeln!(
                out,
                "- **{}** {link} — `{}` · `{}` · started {} UTC · {ack} · {res}",
                n.severity,
                n.id,
                cell(&n.service),
                fmt_minute(n.started_at),
            );
        }
    }
    let _ = writeln!(out);

    let heading = match r.granularity {
        Granularity::Day => "Daily trend",
        Granularity::Week => "Weekly trend",
        Granularity::Month => "Monthly trend",
    };
    let _ = writeln!(out, "## {heading}");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| {} | P1 | P2 | P3 | P4 | Total | MTTA | MTTR |",
        match r.granularity {
            Granularity::Day => "Day",
            Granularity::Week => "Week of",
            Granularity::Month => "Month",
        }
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for b in &r.trend {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | **{}** | {} | {} |",
            bucket_name(b, r.granularity),
            b.count(Severity::P1),
            b.count(Severity::P2),
            b.count(Severity::P3),
            b.count(Severity::P4),
            b.total,
            mean(b.mtta),
            mean(b.mttr)
        );
    }
    if let Some((busiest, n)) = r
        .trend
        .iter()
        .map(|b| (b, b.total))
        .max_by_key(|(b, n)| (*n, std::cmp::Reverse(b.start)))
        .filter(|(_, n)| *n > 0)
    {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Busiest {}: {} ({n} incidents).",
            r.granularity.as_str(),
            bucket_name(busiest, r.granularity)
        );
    }
    out
}

// ---------------------------------------------------------------------------------------
// SVG chart
// ---------------------------------------------------------------------------------------

/// XML text/attribute escape.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn severity_colour(s: Severity) -> &'static str {
    match s {
        Severity::P1 => "#dc2626",
        Severity::P2 => "#f97316",
        Severity::P3 => "#eab308",
        Severity::P4 => "#94a3b8",
    }
}

const MTTA_COLOUR: &str = "#2563eb";
const MTTR_COLOUR: &str = "#7c3aed";

/// A nice step for about five integer ticks up to `max`.
fn count_step(max: usize) -> usize {
    let raw = max.div_ceil(5).max(1);
    let mut mag = 1;
    while mag * 10 <= raw {
        mag *= 10;
    }
    [1, 2, 5, 10]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10 * mag)
}

/// Short x-axis label of a bucket.
fn short_label(b: &Bucket, g: Granularity, n: usize, first: bool) -> String {
    match g {
        Granularity::Day if n <= 7 => b.start.format("%a %-d").to_string(),
        Granularity::Day if first || b.start.day() == 1 => b.start.format("%b %-d").to_string(),
        Granularity::Day => b.start.format("%-d").to_string(),
        Granularity::Week => b.start.format("%b %-d").to_string(),
        Granularity::Month => b.start.format("%b").to_string(),
    }
}

/// The trend as a self-contained SVG: stacked bars of incidents per bucket by severity
/// (left axis) and MTTA / MTTR lines on a logarithmic time axis (right).
pub fn to_svg(r: &Report) -> String {
    const W: f64 = 960.0;
    const H: f64 = 540.0;
    const X0: f64 = 72.0;
    const X1: f64 = 880.0;
    const Y0: f64 = 104.0;
    const Y1: f64 = 420.0;
    let mut s = String::new();
    let n = r.trend.len().max(1);
    let slot = (X1 - X0) / n as f64;

    // The dates are in the subtitle: keep the title short.
    let short = r.label.split(" (").next().unwrap_or(&r.label);
    let title = format!("Incidents — {short}");
    let o = &r.overall;
    let subtitle = format!(
        "{} · {} incidents ({}) · MTTA {} · MTTR {}",
        period_dates(r),
        o.count,
        severity_mix(r),
        mean(o.mtta),
        mean(o.mttr)
    );
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
         role=\"img\" aria-labelledby=\"chart-title chart-desc\" \
         font-family=\"Inter, 'Segoe UI', system-ui, -apple-system, Helvetica, Arial, sans-serif\">"
    );
    let _ = writeln!(s, "<title id=\"chart-title\">{}</title>", esc(&title));
    let _ = writeln!(
        s,
        "<desc id=\"chart-desc\">Incidents per {} by severity (bars) with mean time to \
         acknowledge and to resolve (lines). {}</desc>",
        r.granularity.as_str(),
        esc(&subtitle)
    );
    let _ = writeln!(
        s,
        "<rect x=\"0.5\" y=\"0.5\" width=\"{}\" height=\"{}\" rx=\"10\" fill=\"#ffffff\" stroke=\"#e5e7eb\"/>",
        W - 1.0,
        H - 1.0
    );
    let _ = writeln!(
        s,
        "<text x=\"32\" y=\"44\" font-size=\"20\" font-weight=\"600\" fill=\"#111827\">{}</text>",
        esc(&title)
    );
    let _ = writeln!(
        s,
        "<text x=\"32\" y=\"70\" font-size=\"13\" fill=\"#6b7280\">{}</text>",
        esc(&subtitle)
    );

    // Left axis: incident counts.
    let max_total = r.trend.iter().map(|b| b.total).max().unwrap_or(0);
    // About 10 % headroom above the tallest bar for its label.
    let want = max_total + max_total.div_ceil(10);
    let step = count_step(want.max(1));
    let top = if max_total == 0 {
        4
    } else {
        want.div_ceil(step) * step
    };
    let y_count = |c: f64| Y1 - c / top as f64 * (Y1 - Y0);
    let _ = writeln!(s, "<g font-size=\"11\" fill=\"#6b7280\">");
    let mut c = 0;
    while c <= top {
        let y = y_count(c as f64);
        let _ = writeln!(
            s,
            "<line x1=\"{X0}\" y1=\"{y:.1}\" x2=\"{X1}\" y2=\"{y:.1}\" stroke=\"{}\" stroke-width=\"1\"/>",
            if c == 0 { "#9ca3af" } else { "#e5e7eb" }
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{c}</text>",
            X0 - 8.0,
            y + 4.0
        );
        c += if max_total == 0 { 1 } else { step };
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        "<text x=\"24\" y=\"{:.1}\" font-size=\"12\" fill=\"#374151\" text-anchor=\"middle\" \
         transform=\"rotate(-90 24 {:.1})\">Incidents</text>",
        (Y0 + Y1) / 2.0,
        (Y0 + Y1) / 2.0
    );

    // Right axis: time, logarithmic (minutes and hours on one chart).
    const TICKS: [(f64, &str); 11] = [
        (10.0, "10s"),
        (60.0, "1m"),
        (300.0, "5m"),
        (900.0, "15m"),
        (3600.0, "1h"),
        (7200.0, "2h"),
        (28_800.0, "8h"),
        (86_400.0, "24h"),
        (259_200.0, "3d"),
        (604_800.0, "7d"),
        (2_592_000.0, "30d"),
    ];
    let times: Vec<f64> = r
        .trend
        .iter()
        .flat_map(|b| [b.mtta, b.mttr])
        .flatten()
        .map(|st| st.mean_secs)
        .collect();
    let tmax = times.iter().copied().fold(3600.0, f64::max);
    let tmin = times.iter().copied().fold(60.0, f64::min);
    let t_top = TICKS
        .iter()
        .map(|t| t.0)
        .find(|t| *t >= tmax)
        .unwrap_or(2_592_000.0);
    let t_bottom = if tmin < 60.0 { 10.0 } else { 60.0 };
    let y_time = |v: f64| {
        let v = v.clamp(t_bottom, t_top);
        Y1 - (v.ln() - t_bottom.ln()) / (t_top.ln() - t_bottom.ln()) * (Y1 - Y0)
    };
    let _ = writeln!(s, "<g font-size=\"11\" fill=\"#6b7280\">");
    let _ = writeln!(
        s,
        "<line x1=\"{X1}\" y1=\"{Y0}\" x2=\"{X1}\" y2=\"{Y1}\" stroke=\"#9ca3af\" stroke-width=\"1\"/>"
    );
    for (v, label) in TICKS.iter().filter(|(v, _)| *v >= t_bottom && *v <= t_top) {
        let y = y_time(*v);
        let _ = writeln!(
            s,
            "<line x1=\"{X1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#9ca3af\" stroke-width=\"1\"/>",
            X1 + 5.0
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
            X1 + 9.0,
            y + 4.0
        );
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#374151\" text-anchor=\"middle\" \
         transform=\"rotate(90 {:.1} {:.1})\">MTTA / MTTR (log scale)</text>",
        W - 22.0,
        (Y0 + Y1) / 2.0,
        W - 22.0,
        (Y0 + Y1) / 2.0
    );

    // Bars.
    let bar_w = (slot * 0.62).clamp(2.0, 56.0);
    let _ = writeln!(s, "<g stroke=\"#ffffff\" stroke-width=\"1\">");
    for (i, b) in r.trend.iter().enumerate() {
        let cx = X0 + slot * (i as f64 + 0.5);
        let mut acc = 0usize;
        for sev in Severity::ALL {
            let k = b.count(sev);
            if k == 0 {
                continue;
            }
            let y_top = y_count((acc + k) as f64);
            let y_bot = y_count(acc as f64);
            let _ = writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{y_top:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"{}\">\
                 <title>{}: {k} × {} {}</title></rect>",
                cx - bar_w / 2.0,
                y_bot - y_top,
                severity_colour(sev),
                esc(&bucket_name(b, r.granularity)),
                sev,
                severity_word(sev)
            );
            acc += k;
        }
    }
    let _ = writeln!(s, "</g>");
    if slot >= 14.0 {
        let _ = writeln!(
            s,
            "<g font-size=\"10\" fill=\"#374151\" text-anchor=\"middle\">"
        );
        for (i, b) in r.trend.iter().enumerate().filter(|(_, b)| b.total > 0) {
            let cx = X0 + slot * (i as f64 + 0.5);
            let _ = writeln!(
                s,
                "<text x=\"{cx:.1}\" y=\"{:.1}\">{}</text>",
                y_count(b.total as f64) - 4.0,
                b.total
            );
        }
        let _ = writeln!(s, "</g>");
    }

    // Lines: MTTA solid, MTTR dashed; gaps where a bucket has no value.
    for (name, colour, dash, pick) in [
        ("MTTA", MTTA_COLOUR, "", 0usize),
        ("MTTR", MTTR_COLOUR, " stroke-dasharray=\"6 4\"", 1usize),
    ] {
        let pts: Vec<Option<(f64, f64, f64)>> = r
            .trend
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let v = if pick == 0 { b.mtta } else { b.mttr };
                v.map(|st| {
                    (
                        X0 + slot * (i as f64 + 0.5),
                        y_time(st.mean_secs),
                        st.mean_secs,
                    )
                })
            })
            .collect();
        let _ = writeln!(s, "<g>");
        for seg in pts.split(Option::is_none) {
            let seg: Vec<(f64, f64, f64)> = seg.iter().flatten().copied().collect();
            if seg.len() >= 2 {
                let p: Vec<String> = seg
                    .iter()
                    .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.25\" \
                     stroke-linejoin=\"round\" stroke-linecap=\"round\"{dash}/>",
                    p.join(" ")
                );
            }
        }
        for (i, p) in pts.iter().enumerate() {
            if let Some((x, y, v)) = p {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"#ffffff\" stroke=\"{colour}\" \
                     stroke-width=\"2\"><title>{}: {name} {}</title></circle>",
                    esc(&bucket_name(&r.trend[i], r.granularity)),
                    fmt_secs(*v)
                );
            }
        }
        let _ = writeln!(s, "</g>");
    }

    if o.count == 0 {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"15\" fill=\"#9ca3af\" text-anchor=\"middle\">\
             No incidents in this period</text>",
            (X0 + X1) / 2.0,
            (Y0 + Y1) / 2.0
        );
    }

    // X axis labels, thinned to about 16.
    let every = n.div_ceil(16).max(1);
    let _ = writeln!(
        s,
        "<g font-size=\"11\" fill=\"#6b7280\" text-anchor=\"middle\">"
    );
    for (i, b) in r.trend.iter().enumerate() {
        if i % every != 0 {
            continue;
        }
        let cx = X0 + slot * (i as f64 + 0.5);
        let _ = writeln!(
            s,
            "<text x=\"{cx:.1}\" y=\"{:.1}\">{}</text>",
            Y1 + 18.0,
            esc(&short_label(b, r.granularity, r.trend.len(), i == 0))
        );
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#374151\" text-anchor=\"middle\">{}</text>",
        (X0 + X1) / 2.0,
        Y1 + 42.0,
        match r.granularity {
            Granularity::Day => "Day (UTC)",
            Granularity::Week => "Week starting (UTC)",
            Granularity::Month => "Month",
        }
    );

    // Legend.
    let mut x = X0;
    let y = H - 40.0;
    let _ = writeln!(s, "<g font-size=\"12\" fill=\"#374151\">");
    for sev in Severity::ALL {
        let label = format!("{} {}", sev, severity_word(sev));
        let _ = writeln!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{}\"/>",
            y - 10.0,
            severity_colour(sev)
        );
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{y:.1}\">{label}</text>", x + 18.0);
        x += 18.0 + label.chars().count() as f64 * 6.6 + 20.0;
    }
    for (name, colour, dash) in [
        ("MTTA (mean time to acknowledge)", MTTA_COLOUR, ""),
        (
            "MTTR (mean time to resolve)",
            MTTR_COLOUR,
            " stroke-dasharray=\"6 4\"",
        ),
    ] {
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"2.25\"{dash}/>",
            y - 4.0,
            x + 22.0,
            y - 4.0
        );
        let _ = writeln!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"#ffffff\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            x + 11.0,
            y - 4.0
        );
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{y:.1}\">{name}</text>", x + 28.0);
        x += 28.0 + name.chars().count() as f64 * 6.4 + 22.0;
    }
    let _ = writeln!(s, "</g>");
    s.push_str("</svg>\n");
    s
}

// ---------------------------------------------------------------------------------------
// Post-mortem
// ---------------------------------------------------------------------------------------

const TODO: &str = "_TODO_";

fn kind_name(k: TimelineKind) -> &'static str {
    match k {
        TimelineKind::Detected => "Detected",
        TimelineKind::Evidence => "Evidence",
        TimelineKind::SeverityChanged => "Severity changed",
        TimelineKind::StatusChanged => "Status changed",
        TimelineKind::Note => "Note",
        TimelineKind::Change => "Change",
    }
}

/// `+1h 05m` relative to the start (or `-5m 00s` before it).
fn offset(t: DateTime<Utc>, start: DateTime<Utc>) -> String {
    let d = t - start;
    if d < Duration::zero() {
        format!("-{}", fmt_dur(-d))
    } else {
        format!("+{}", fmt_dur(d))
    }
}

/// How many evidence entries the event timeline lists before summarising the rest.
const EVIDENCE_LISTED: usize = 15;

/// A post-mortem draft in Markdown following the runbook's "Post-Mortem Process": summary,
/// impact, timeline (key times and the event timeline), root cause analysis (root cause,
/// why it was not caught earlier, what made it worse / better), action items and lessons
/// learned. What Tapio knows is filled in; everything a person must write is marked
/// `_TODO_`.
pub fn postmortem_markdown(inc: &Incident, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let sev = effective_severity(inc);
    let tg = targets(sev);
    let tta = time_to_ack(inc);
    let ttr = time_to_resolve(inc);
    let ttd = nonneg(inc.detected_at - inc.started_at);
    let resolved = resolved_at(inc);
    let service = service_of(inc);

    let _ = writeln!(out, "# Post-mortem: {}", inc.title.replace('\n', " "));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "> Draft generated by Tapio on {} UTC. Review every section; replace each {TODO}.",
        fmt_minute(now)
    );
    if let Some(survivor) = inc.merged_into {
        let _ = writeln!(
            out,
            ">\n> This incident was merged into incident `{survivor}` (same causal chain); \
             the post-mortem usually belongs there."
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "| | |");
    let _ = writeln!(out, "|---|---|");
    let _ = writeln!(out, "| Incident | `{}` |", inc.id);
    let sev_text = if sev != inc.severity {
        format!(
            "**{sev}** {} (peak; {} at the end)",
            sev.label(),
            inc.severity
        )
    } else {
        format!("**{sev}** {}", sev.label())
    };
    let _ = writeln!(out, "| Severity | {sev_text} |");
    let _ = writeln!(out, "| Status | {} |", inc.status);
    let _ = writeln!(out, "| Service | `{}` |", cell(&service));
    if let Some(ns) = inc.namespace.as_deref() {
        let _ = writeln!(out, "| Namespace | `{}` |", cell(ns));
    }
    let duration = match resolved {
        Some(r) => format!(
            "{} (first evidence → resolved)",
            fmt_dur(r - inc.started_at)
        ),
        None => format!(
            "{} so far (still {} at {} UTC)",
            fmt_dur(now - inc.started_at),
            inc.status,
            fmt_minute(now)
        ),
    };
    let _ = writeln!(out, "| Duration | {duration} |");
    let _ = writeln!(out, "| Authors | {TODO} |");
    let _ = writeln!(out, "| Post-mortem meeting | {TODO} (date, attendees) |");
    let _ = writeln!(out);

    // Summary.
    let _ = writeln!(out, "## Summary");
    let _ = writeln!(out);
    let mut facts = format!(
        "{} started at {} UTC and was detected {} later",
        inc.title.replace('\n', " "),
        fmt_time(inc.started_at),
        fmt_dur(ttd)
    );
    if let Some(a) = tta {
        let _ = write!(facts, "; acknowledged after {}", fmt_dur(a));
    }
    if let Some(r) = ttr {
        let _ = write!(facts, "; resolved {} after detection", fmt_dur(r));
    } else {
        let _ = write!(facts, "; not resolved yet ({})", inc.status);
    }
    let _ = writeln!(out, "{facts}.");
    if inc.root_cause_confident
        && let Some(h) = inc.hypotheses.first()
    {
        let _ = writeln!(
            out,
            "Tapio's root cause: {} on `{}` ({:.0}% confidence).",
            h.cause,
            h.entity,
            h.confidence * 100.0
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{TODO}: two or three sentences for someone who was not there: what broke, who \
         noticed, what fixed it."
    );
    let _ = writeln!(out);

    // Impact.
    let _ = writeln!(out, "## Impact");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "- Severity: {sev} {} — {}",
        sev.label(),
        inc.severity_reason.replace('\n', " ")
    );
    let impact_end = inc.mitigated_at.or(resolved);
    match impact_end {
        Some(e) => {
            let _ = writeln!(
                out,
                "- Impact window: {} – {} UTC ({}, first evidence → {})",
                fmt_time(inc.started_at),
                fmt_time(e),
                fmt_dur(e - inc.started_at),
                if inc.mitigated_at.is_some() {
                    "mitigated"
                } else {
                    "resolved"
                }
            );
        }
        None => {
            let _ = writeln!(
                out,
                "- Impact window: since {} UTC, not mitigated yet",
                fmt_time(inc.started_at)
            );
        }
    }
    if inc.affected.is_empty() {
        let _ = writeln!(out, "- Affected: {TODO}");
    } else {
        let shown: Vec<String> = inc
            .affected
            .iter()
            .take(20)
            .map(|a| format!("`{a}`"))
            .collect();
        let more = inc.affected.len().saturating_sub(20);
        let _ = writeln!(
            out,
            "- Affected ({}): {}{}",
            inc.affected.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(out, "- Evidence: {} events", inc.evidence_count);
    let _ = writeln!(
        out,
        "- Customer impact: {TODO} (users or requests affected, errors seen, revenue)"
    );
    let _ = writeln!(out, "- SLO / error budget consumed: {TODO}");
    let _ = writeln!(out);

    // Timeline.
    let _ = writeln!(out, "## Timeline");
    let _ = writeln!(out);
    let _ = writeln!(out, "### Key times");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Milestone | Time (UTC) | Since start | Since detection | Target |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---|");
    let _ = writeln!(
        out,
        "| Start (first evidence) | {} | — | — | |",
        fmt_time(inc.started_at)
    );
    let _ = writeln!(
        out,
        "| Detection | {} | {} (time to detect) | — | |",
        fmt_time(inc.detected_at),
        fmt_dur(ttd)
    );
    let not_yet = "_not yet_";
    let milestone = |out: &mut String,
                     name: &str,
                     at: Option<DateTime<Utc>>,
                     what: &str,
                     target: Option<i64>| {
        match at {
            Some(t) => {
                let since_det = nonneg(t - inc.detected_at);
                let tgt = target.map_or_else(String::new, |tg| {
                    format!(
                        "< {} {}",
                        fmt_target(tg),
                        check(since_det < Duration::seconds(tg))
                    )
                });
                let _ = writeln!(
                    out,
                    "| {name} | {} | {} | {}{what} | {tgt} |",
                    fmt_time(t),
                    fmt_dur(t - inc.started_at),
                    fmt_dur(since_det)
                );
            }
            None => {
                let tgt = target.map_or_else(String::new, |tg| format!("< {}", fmt_target(tg)));
                let _ = writeln!(out, "| {name} | {not_yet} | | | {tgt} |");
            }
        }
    };
    milestone(
        &mut out,
        "Response (acknowledged)",
        inc.acknowledged_at,
        " (time to acknowledge)",
        tg.map(|t| t.mtta_secs),
    );
    milestone(&mut out, "Mitigation", inc.mitigated_at, "", None);
    milestone(
        &mut out,
        "Resolution",
        resolved,
        " (time to resolve)",
        tg.map(|t| t.mttr_secs),
    );
    let _ = writeln!(out);

    if !inc.changes.is_empty() {
        let _ = writeln!(out, "### Changes before the incident");
        let _ = writeln!(out);
        let mut changes = inc.changes.clone();
        changes.sort_by_key(|c| c.at);
        for c in &changes {
            let _ = writeln!(
                out,
                "- {} UTC ({} vs start) — {} on `{}`: {}",
                fmt_time(c.at),
                offset(c.at, inc.started_at),
                c.kind,
                c.entity,
                c.description.replace('\n', " ")
            );
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "### Event timeline");
    let _ = writeln!(out);
    let _ = writeln!(out, "| Time (UTC) | Since start | Event | Details | By |");
    let _ = writeln!(out, "|---|---:|---|---|---|");
    let mut entries: Vec<&TimelineEntry> = inc.timeline.iter().collect();
    entries.sort_by_key(|e| e.at);
    let evidence_total = entries
        .iter()
        .filter(|e| e.kind == TimelineKind::Evidence)
        .count();
    let mut evidence_seen = 0;
    for e in &entries {
        if e.kind == TimelineKind::Evidence {
            evidence_seen += 1;
            if evidence_total > EVIDENCE_LISTED && evidence_seen > 5 {
                continue;
            }
        }
        let repeat = if e.count > 1 {
            format!(
                " (×{}{})",
                e.count,
                e.last_at
                    .map(|l| format!(", last {}", l.format("%H:%M:%S")))
                    .unwrap_or_default()
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}{repeat} | {} |",
            fmt_time(e.at),
            offset(e.at, inc.started_at),
            kind_name(e.kind),
            cell(&e.message),
            e.by.as_deref().map(cell).unwrap_or_default()
        );
    }
    let _ = writeln!(out);
    if evidence_total > EVIDENCE_LISTED {
        let _ = writeln!(
            out,
            "{} more evidence entries are not listed: `tapio incidents timeline {}` shows them.",
            evidence_total - 5,
            inc.id
        );
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "### Communication timeline");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{TODO}: when were stakeholders notified (#incident-response, management briefing, \
         status page, customers), and by whom?"
    );
    let _ = writeln!(out);

    // Root cause analysis.
    let _ = writeln!(out, "## Root cause analysis");
    let _ = writeln!(out);
    let _ = writeln!(out, "### Root cause");
    let _ = writeln!(out);
    match inc.hypotheses.first() {
        Some(h) if inc.root_cause_confident => {
            let _ = writeln!(
                out,
                "**{}** on `{}` — {:.0}% confidence{}.",
                h.cause,
                h.entity,
                h.confidence * 100.0,
                if h.rule.is_empty() {
                    String::new()
                } else {
                    format!(" (rule `{}`)", h.rule)
                }
            );
            let _ = writeln!(out);
            if !h.explanation.trim().is_empty() {
                let _ = writeln!(out, "{}", h.explanation.trim());
                let _ = writeln!(out);
            }
            if !h.chain.is_empty() {
                let _ = writeln!(out, "Causal chain:");
                let _ = writeln!(out);
                for (i, step) in h.chain.iter().enumerate() {
                    let _ = writeln!(out, "{}. {}", i + 1, step.replace('\n', " "));
                }
                let _ = writeln!(out);
            }
            let _ = writeln!(
                out,
                "Evidence: {} supporting event(s), of {} on the incident.",
                h.evidence.len(),
                inc.evidence_count
            );
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{TODO}: confirm (or correct) the cause, and go one level deeper: why did it \
                 happen?"
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "**No confident root cause — to be determined.** {TODO}: what was the root cause?"
            );
        }
    }
    let others: Vec<_> = if inc.root_cause_confident {
        inc.hypotheses.iter().skip(1).collect()
    } else {
        inc.hypotheses.iter().collect()
    };
    if !others.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}",
            if inc.root_cause_confident {
                "Other hypotheses Tapio considered:"
            } else {
                "Tapio's candidates (below the confidence bar):"
            }
        );
        let _ = writeln!(out);
        for h in others {
            let _ = writeln!(
                out,
                "- {} on `{}` ({:.0}%, {} evidence event(s))",
                h.cause,
                h.entity,
                h.confidence * 100.0,
                h.evidence.len()
            );
        }
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "### Why wasn't it caught earlier?");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "- Hint: detection came {} after the first evidence.",
        fmt_dur(ttd)
    );
    if let Some(c) = inc.changes.iter().min_by_key(|c| c.at) {
        let _ = writeln!(
            out,
            "- Hint: a change preceded it ({} on `{}` at {} UTC: {}). Could a canary, review \
             or alert have caught it?",
            c.kind,
            c.entity,
            fmt_time(c.at),
            c.description.replace('\n', " ")
        );
    }
    let _ = writeln!(out, "- {TODO}");
    let _ = writeln!(out);

    let _ = writeln!(out, "### What made it worse?");
    let _ = writeln!(out);
    let mut worse = Vec::new();
    for e in &entries {
        match e.kind {
            TimelineKind::SeverityChanged if escalates(&e.message) => worse.push(format!(
                "{} UTC: {}",
                fmt_time(e.at),
                e.message.replace('\n', " ")
            )),
            TimelineKind::StatusChanged if e.message.starts_with("reopened") => worse.push(
                format!("{} UTC: {}", fmt_time(e.at), e.message.replace('\n', " ")),
            ),
            TimelineKind::Note if e.message.starts_with("joined incident") => worse.push(format!(
                "{} UTC: the problem spread — {}",
                fmt_time(e.at),
                e.message.replace('\n', " ")
            )),
            _ => {}
        }
    }
    if let (Some(a), Some(t)) = (tta, tg)
        && a >= Duration::seconds(t.mtta_secs)
    {
        worse.push(format!(
            "acknowledged after {}, over the {sev} target of {}",
            fmt_dur(a),
            fmt_target(t.mtta_secs)
        ));
    }
    if let (Some(r), Some(t)) = (ttr, tg)
        && r >= Duration::seconds(t.mttr_secs)
    {
        worse.push(format!(
            "resolved after {}, over the {sev} target of {}",
            fmt_dur(r),
            fmt_target(t.mttr_secs)
        ));
    }
    if !inc.root_cause_confident {
        worse.push("Tapio found no confident root cause".into());
    }
    for w in &worse {
        let _ = writeln!(out, "- Hint (from the timeline): {w}");
    }
    let _ = writeln!(out, "- {TODO}");
    let _ = writeln!(out);

    let _ = writeln!(out, "### What made it better?");
    let _ = writeln!(out);
    let mut better = Vec::new();
    if let (Some(a), Some(t)) = (tta, tg)
        && a < Duration::seconds(t.mtta_secs)
    {
        better.push(format!(
            "acknowledged after {}, within the {sev} target of {}",
            fmt_dur(a),
            fmt_target(t.mtta_secs)
        ));
    }
    if let Some(m) = inc.mitigated_at {
        better.push(format!(
            "mitigated at {} UTC, {} after detection",
            fmt_time(m),
            fmt_dur(m - inc.detected_at)
        ));
    }
    if inc.root_cause_confident
        && let Some(h) = inc.hypotheses.first()
    {
        better.push(format!(
            "Tapio pointed at {} on `{}` with {:.0}% confidence",
            h.cause,
            h.entity,
            h.confidence * 100.0
        ));
    }
    for e in entries
        .iter()
        .filter(|e| e.kind == TimelineKind::Note && e.by.is_some())
    {
        better.push(format!(
            "{} UTC note by {}: {}",
            fmt_time(e.at),
            e.by.as_deref().unwrap_or(""),
            cut(&e.message.replace('\n', " "), 160)
        ));
    }
    for b in &better {
        let _ = writeln!(out, "- Hint (from the timeline): {b}");
    }
    let _ = writeln!(out, "- {TODO}");
    let _ = writeln!(out);

    // Action items.
    let _ = writeln!(out, "## Action items");
    let _ = writeln!(out);
    let mut mitigations: Vec<String> = Vec::new();
    let sources: Vec<_> = if inc.root_cause_confident {
        inc.hypotheses.iter().take(1).collect()
    } else {
        inc.hypotheses.iter().collect()
    };
    for h in sources {
        for m in &h.mitigations {
            let m = m.trim().replace('\n', " ");
            if !m.is_empty() && !mitigations.contains(&m) {
                mitigations.push(m);
            }
        }
    }
    if !mitigations.is_empty() {
        let _ = writeln!(
            out,
            "Pre-filled from Tapio's suggested mitigations: tick what was done during the \
             incident, turn the rest into follow-ups with an owner and a date."
        );
        let _ = writeln!(out);
        for m in &mitigations {
            let _ = writeln!(out, "- [ ] {m} — owner: {TODO}, due: {TODO}");
        }
        let _ = writeln!(out);
    }
    for area in [
        "Immediate fix",
        "Monitoring / alerting improvement",
        "Process improvement",
        "Documentation / runbook update",
    ] {
        let _ = writeln!(out, "- [ ] {area}: {TODO} — owner: {TODO}, due: {TODO}");
    }
    let _ = writeln!(out);

    // Lessons learned.
    let _ = writeln!(out, "## Lessons learned");
    let _ = writeln!(out);
    for q in ["What went well", "What went wrong", "Where we got lucky"] {
        let _ = writeln!(out, "### {q}");
        let _ = writeln!(out);
        let _ = writeln!(out, "- {TODO}");
        let _ = writeln!(out);
    }
    out
}

/// `severity P3 → P1: …` goes up (P1 is the most severe).
fn escalates(msg: &str) -> bool {
    let Some(rest) = msg.strip_prefix("severity ") else {
        return false;
    };
    let mut parts = rest.split([' ', ':']);
    let from = parts.next().and_then(|s| s.parse::<Severity>().ok());
    let to = parts
        .find(|p| p.starts_with('P'))
        .and_then(|s| s.parse::<Severity>().ok());
    matches!((from, to), (Some(f), Some(t)) if t < f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{ChangeNote, Hypothesis, Identity, TimelineEntry};

    /// Monday 2026-11-23 00:00 UTC plus `day` days, `h` hours, `m` minutes.
    fn t(day: i64, h: i64, m: i64) -> DateTime<Utc> {
        midnight(ymd(2026, 11, 23))
            + Duration::days(day)
            + Duration::hours(h)
            + Duration::minutes(m)
    }

    fn entry(at: DateTime<Utc>, kind: TimelineKind, msg: &str, by: Option<&str>) -> TimelineEntry {
        TimelineEntry {
            at,
            kind,
            message: msg.into(),
            count: 1,
            last_at: None,
            by: by.map(str::to_owned),
        }
    }

    /// An incident on `Kind/ns/name` with `affected`, detected `ttd` minutes after it
    /// started, acknowledged / resolved `tta` / `ttr` minutes after detection.
    #[allow(clippy::too_many_arguments)]
    fn inc(
        n: u16,
        sev: Severity,
        subject: (&str, &str, &str),
        affected: &[&str],
        start: DateTime<Utc>,
        ttd: i64,
        tta: Option<i64>,
        ttr: Option<i64>,
    ) -> Incident {
        let (kind, ns, name) = subject;
        let identity = Identity {
            cluster: None,
            namespace: (!ns.is_empty()).then(|| ns.to_owned()),
            kind: kind.into(),
            name: name.into(),
            problem: "chain".into(),
        };
        let detected = start + Duration::minutes(ttd);
        let ack = tta.map(|m| detected + Duration::minutes(m));
        let res = ttr.map(|m| detected + Duration::minutes(m));
        let status = match (ack, res) {
            (_, Some(_)) => Status::Resolved,
            (Some(_), None) => Status::Acknowledged,
            (None, None) => Status::Open,
        };
        let mut timeline = vec![entry(detected, TimelineKind::Detected, "detected: x", None)];
        if let Some(a) = ack {
            timeline.push(entry(
                a,
                TimelineKind::StatusChanged,
                "acknowledged by alice",
                Some("alice"),
            ));
        }
        if let Some(r) = res {
            timeline.push(entry(
                r,
                TimelineKind::StatusChanged,
                "resolved by alice",
                Some("alice"),
            ));
        }
        Incident {
            id: Ulid::from_parts(
                u64::try_from(start.timestamp_millis()).unwrap_or(0),
                u128::from(n),
            ),
            title: format!("incident {n} on {name}"),
            severity: sev,
            severity_reason: format!("{sev} because"),
            status,
            fingerprint: identity.fingerprint(),
            identity,
            started_at: start,
            detected_at: detected,
            acknowledged_at: ack,
            mitigated_at: None,
            resolved_at: res,
            updated_at: res.or(ack).unwrap_or(detected),
            last_evidence_at: detected,
            namespace: (!ns.is_empty()).then(|| ns.to_owned()),
            affected: affected.iter().map(|s| (*s).to_owned()).collect(),
            evidence: Vec::new(),
            evidence_count: 3,
            timeline,
            hypotheses: Vec::new(),
            root_cause_confident: false,
            changes: Vec::new(),
            merged_into: None,
            peak_severity: Some(sev),
            severity_set_by: None,
        }
    }

    const CHECKOUT: &str = "Service/shop/checkout";
    const CART: &str = "Service/shop/cart";

    /// The fixed history: ISO week 2026-W48, Monday 2026-11-23 (day 0) to Sunday (day 6).
    /// Times in minutes; TTD = detected − started, TTA = acked − detected,
    /// TTR = resolved − detected.
    ///
    /// | #  | sev          | service                    | start      | TTD | TTA      | TTR       |
    /// |----|--------------|----------------------------|------------|-----|----------|-----------|
    /// | 1  | P1           | Service/shop/checkout      | Mon 10:00  | 2   | 3  ✓<5   | 90  ✓<120 |
    /// | 2  | P3, peak P1  | Service/shop/cart          | Wed 14:00  | 1   | 8  ✗     | 150 ✗     |
    /// | 3  | P2           | Service/shop/checkout      | Tue 09:00  | 4   | 10 ✓<15  | 240 ✓<480 |
    /// | 4  | P2           | Deployment/payments/ledger | Thu 20:00  | 3   | 20 ✗     | (mitigated, open) |
    /// | 5  | P3           | Service/shop/checkout      | Tue 03:00  | 5   | 30 ✓<60  | 1440 ✗ (= 24 h, not < 24 h) |
    /// | 6  | P3           | Node/worker-1              | Fri 12:00  | 0   | —        | —         |
    /// | 7  | P4           | Service/shop/checkout      | Sat 08:00  | 10  | 60 (no target) | 120 |
    /// | 8  | P3           | Service/shop/cart          | Sun 22:00  | 2   | 10 ✓<60  | 60 ✓      |
    ///
    /// Not counted: a P2 merged into #1 (Mon 10:01), a P1 on Sunday 2026-11-22 23:59 and
    /// one on Monday 2026-11-30 01:00 (outside the week).
    fn history() -> Vec<Incident> {
        fn svc(name: &'static str) -> (&'static str, &'static str, &'static str) {
            ("Deployment", "shop", name)
        }
        let mut v = vec![
            inc(
                1,
                Severity::P1,
                svc("checkout"),
                &["Deployment/shop/checkout", CHECKOUT],
                t(0, 10, 0),
                2,
                Some(3),
                Some(90),
            ),
            inc(
                2,
                Severity::P1,
                svc("cart"),
                &["Deployment/shop/cart", CART],
                t(2, 14, 0),
                1,
                Some(8),
                Some(150),
            ),
            inc(
                3,
                Severity::P2,
                svc("checkout"),
                &[CHECKOUT],
                t(1, 9, 0),
                4,
                Some(10),
                Some(240),
            ),
            inc(
                4,
                Severity::P2,
                ("Deployment", "payments", "ledger"),
                &["Pod/payments/ledger-1"],
                t(3, 20, 0),
                3,
                Some(20),
                None,
            ),
            inc(
                5,
                Severity::P3,
                svc("checkout"),
                &[CHECKOUT],
                t(1, 3, 0),
                5,
                Some(30),
                Some(1440),
            ),
            inc(
                6,
                Severity::P3,
                ("Node", "", "worker-1"),
                &["Node/worker-1"],
                t(4, 12, 0),
                0,
                None,
                None,
            ),
            inc(
                7,
                Severity::P4,
                svc("checkout"),
                &[CHECKOUT],
                t(5, 8, 0),
                10,
                Some(60),
                Some(120),
            ),
            inc(
                8,
                Severity::P3,
                svc("cart"),
                &[CART],
                t(6, 22, 0),
                2,
                Some(10),
                Some(60),
            ),
        ];
        // #2 peaked at P1 and ended at P3.
        v[1].severity = Severity::P3;
        // #4 was mitigated but is not resolved.
        v[3].status = Status::Mitigated;
        v[3].mitigated_at = Some(t(3, 21, 0));
        let mut merged = inc(
            9,
            Severity::P2,
            svc("checkout"),
            &[CHECKOUT],
            t(0, 10, 1),
            1,
            Some(1),
            Some(30),
        );
        merged.merged_into = Some(v[0].id);
        v.push(merged);
        v.push(inc(
            10,
            Severity::P1,
            svc("checkout"),
            &[CHECKOUT],
            t(-1, 23, 59),
            1,
            Some(1),
            Some(5),
        ));
        v.push(inc(
            11,
            Severity::P1,
            svc("checkout"),
            &[CHECKOUT],
            t(7, 1, 0),
            1,
            Some(1),
            Some(5),
        ));
        v
    }

    fn week() -> (DateTime<Utc>, DateTime<Utc>) {
        period(PeriodKind::Week, Some(ymd(2026, 11, 27)), t(10, 0, 0))
    }

    fn report() -> Report {
        let (from, to) = week();
        compute(&history(), from, to)
    }

    fn close(got: Option<Stat>, mean_secs: f64, median_secs: f64, n: usize) {
        let s = got.unwrap_or_else(|| panic!("expected a value, got None"));
        assert_eq!(s.n, n, "{s:?}");
        assert!(
            (s.mean_secs - mean_secs).abs() < 1e-6,
            "mean {s:?} want {mean_secs}"
        );
        assert!(
            (s.median_secs - median_secs).abs() < 1e-6,
            "median {s:?} want {median_secs}"
        );
    }

    fn row(r: &Report, s: Severity) -> &Metrics {
        &r.by_severity[s as usize].metrics
    }

    #[test]
    fn period_alignment() {
        let now = t(0, 0, 0);
        let d = |y, m, d| midnight(ymd(y, m, d));
        // Friday 2026-11-27 lies in ISO week 48: Monday 23rd to Monday 30th (exclusive).
        assert_eq!(
            period(PeriodKind::Week, Some(ymd(2026, 11, 27)), now),
            (d(2026, 11, 23), d(2026, 11, 30))
        );
        // A Monday is its own week's start; a Sunday belongs to the week before.
        assert_eq!(
            period(PeriodKind::Week, Some(ymd(2026, 11, 23)), now).0,
            d(2026, 11, 23)
        );
        assert_eq!(
            period(PeriodKind::Week, Some(ymd(2026, 11, 29)), now).0,
            d(2026, 11, 23)
        );
        // ISO week 2026-W53 spans the new year.
        let (f, e) = period(PeriodKind::Week, Some(ymd(2027, 1, 1)), now);
        assert_eq!((f, e), (d(2026, 12, 28), d(2027, 1, 4)));
        assert_eq!(
            period_label(f, e),
            "Week 2026-W53 (2026-12-28 – 2027-01-03)"
        );
        assert_eq!(
            period(PeriodKind::Month, Some(ymd(2026, 11, 27)), now),
            (d(2026, 11, 1), d(2026, 12, 1))
        );
        assert_eq!(
            period(PeriodKind::Month, Some(ymd(2026, 12, 31)), now),
            (d(2026, 12, 1), d(2027, 1, 1))
        );
        assert_eq!(
            period(PeriodKind::Quarter, Some(ymd(2026, 11, 27)), now),
            (d(2026, 10, 1), d(2027, 1, 1))
        );
        assert_eq!(
            period(PeriodKind::Quarter, Some(ymd(2026, 2, 28)), now),
            (d(2026, 1, 1), d(2026, 4, 1))
        );
        assert_eq!(
            period(PeriodKind::Year, Some(ymd(2026, 11, 27)), now),
            (d(2026, 1, 1), d(2027, 1, 1))
        );
        // Default: the period containing now.
        let now = t(3, 15, 30); // Thursday 2026-11-26 15:30
        assert_eq!(
            period(PeriodKind::Week, None, now),
            (d(2026, 11, 23), d(2026, 11, 30))
        );
        assert_eq!(period(PeriodKind::Month, None, now).0, d(2026, 11, 1));
        // Labels.
        let (f, e) = period(PeriodKind::Week, None, now);
        assert_eq!(
            period_label(f, e),
            "Week 2026-W48 (2026-11-23 – 2026-11-29)"
        );
        let (f, e) = period(PeriodKind::Month, None, now);
        assert_eq!(period_label(f, e), "November 2026");
        let (f, e) = period(PeriodKind::Quarter, None, now);
        assert_eq!(period_label(f, e), "Q4 2026");
        let (f, e) = period(PeriodKind::Year, None, now);
        assert_eq!(period_label(f, e), "Year 2026");
    }

    #[test]
    fn parsing_names_the_bad_value() {
        assert_eq!("Month".parse::<PeriodKind>(), Ok(PeriodKind::Month));
        let e = "fortnight".parse::<PeriodKind>().err().unwrap_or_default();
        assert!(
            e.contains("\"fortnight\"") && e.contains("week, month"),
            "{e}"
        );
        assert_eq!(parse_date("2026-11-27"), Ok(ymd(2026, 11, 27)));
        for bad in ["2026-13-01", "2026-02-30", "27/11/2026", ""] {
            let e = parse_date(bad).err().unwrap_or_default();
            assert!(
                e.contains(&format!("{bad:?}")) && e.contains("YYYY-MM-DD"),
                "{e}"
            );
        }
    }

    #[test]
    fn trend_buckets_follow_the_calendar() {
        let now = t(0, 0, 0);
        let b = |k| {
            let (f, e) = period(k, Some(ymd(2026, 11, 27)), now);
            bucket_bounds(f, e, k.granularity())
        };
        assert_eq!(b(PeriodKind::Week).len(), 7);
        assert_eq!(b(PeriodKind::Month).len(), 30);
        // Q4 2026: Thu Oct 1 – Sun Oct 4 (clipped), then 13 Mondays Oct 5 … Dec 28.
        let q = b(PeriodKind::Quarter);
        assert_eq!(q.len(), 14);
        assert_eq!(
            q[0],
            (midnight(ymd(2026, 10, 1)), midnight(ymd(2026, 10, 5)))
        );
        assert_eq!(
            q[13],
            (midnight(ymd(2026, 12, 28)), midnight(ymd(2027, 1, 1)))
        );
        let y = b(PeriodKind::Year);
        assert_eq!(y.len(), 12);
        assert_eq!(y[1].0, midnight(ymd(2026, 2, 1)));
        // compute picks the same granularity from the span.
        for k in [
            PeriodKind::Week,
            PeriodKind::Month,
            PeriodKind::Quarter,
            PeriodKind::Year,
        ] {
            let (f, e) = period(k, Some(ymd(2026, 11, 27)), now);
            assert_eq!(compute(&[], f, e).granularity, k.granularity(), "{k:?}");
        }
    }

    #[test]
    fn overall_figures_match_the_hand_computation() {
        let r = report();
        let o = &r.overall;
        // Merged #9 and the two outside the week are not counted.
        assert_eq!(o.count, 8);
        assert_eq!(r.merged_excluded, 1);
        assert_eq!(o.unacknowledged, 1); // #6
        assert_eq!(o.unresolved, 2); // #4, #6
        // MTTD: 2+1+4+3+5+0+10+2 = 27 min / 8 = 3.375 min = 202.5 s;
        // median of 0,1,2,2,3,4,5,10 = (2+3)/2 = 2.5 min = 150 s.
        close(o.mttd, 202.5, 150.0, 8);
        // MTTA over the 7 acknowledged (#6 excluded): 3+8+10+20+30+60+10 = 141 min / 7
        // = 20.142857 min; median of 3,8,10,10,20,30,60 = 10 min.
        close(o.mtta, 141.0 * 60.0 / 7.0, 600.0, 7);
        // MTTR over the 6 resolved: 90+150+240+1440+120+60 = 2100 min / 6 = 350 min
        // = 21000 s; median of 60,90,120,150,240,1440 = (120+150)/2 = 135 min = 8100 s.
        close(o.mttr, 21_000.0, 8_100.0, 6);
        // MTBF: starts Mon 10:00, Tue 03:00, Tue 09:00, Wed 14:00, Thu 20:00, Fri 12:00,
        // Sat 08:00, Sun 22:00; gaps 17, 6, 29, 30, 16, 20, 38 h (sum 156 h = Mon 10:00 →
        // Sun 22:00); mean 156/7 h = 80228.571 s; median of 6,16,17,20,29,30,38 = 20 h.
        close(o.mtbf, 156.0 * 3600.0 / 7.0, 72_000.0, 7);
        // Compliance (P4 #7 has no target, #6 not acknowledged):
        //   ack: #1 ✓, #2 ✗ (8 ≥ 5), #3 ✓, #4 ✗ (20 ≥ 15), #5 ✓, #8 ✓ → 4/6;
        //   resolve: #1 ✓, #2 ✗ (150 ≥ 120), #3 ✓, #5 ✗ (1440 = 24 h, not < 24 h), #8 ✓
        //   → 3/5.
        let c = o.compliance;
        assert_eq!((c.ack_met, c.ack_measured), (4, 6));
        assert_eq!((c.resolve_met, c.resolve_measured), (3, 5));
        assert_eq!(c.resolve_rate, Some(0.6));
    }

    #[test]
    fn per_severity_figures_and_compliance() {
        let r = report();
        // P1: #1 and #2 (#2 counts at its peak, P1).
        let p1 = row(&r, Severity::P1);
        assert_eq!(p1.count, 2);
        close(p1.mttd, 90.0, 90.0, 2); // (2+1)/2 = 1.5 min
        close(p1.mtta, 330.0, 330.0, 2); // (3+8)/2 = 5.5 min
        close(p1.mttr, 7_200.0, 7_200.0, 2); // (90+150)/2 = 120 min: not < 2 h
        close(p1.mtbf, 52.0 * 3600.0, 52.0 * 3600.0, 1); // Mon 10:00 → Wed 14:00
        assert_eq!((p1.compliance.ack_met, p1.compliance.ack_measured), (1, 2));
        assert_eq!(
            (p1.compliance.resolve_met, p1.compliance.resolve_measured),
            (1, 2)
        );
        // P2: #3 and #4.
        let p2 = row(&r, Severity::P2);
        assert_eq!(p2.count, 2);
        close(p2.mttd, 210.0, 210.0, 2); // (4+3)/2 = 3.5 min
        close(p2.mtta, 900.0, 900.0, 2); // (10+20)/2 = 15 min: not < 15 min
        close(p2.mttr, 14_400.0, 14_400.0, 1); // #3 only: 240 min
        close(p2.mtbf, 59.0 * 3600.0, 59.0 * 3600.0, 1); // Tue 09:00 → Thu 20:00
        assert_eq!((p2.compliance.ack_met, p2.compliance.ack_measured), (1, 2));
        assert_eq!(
            (p2.compliance.resolve_met, p2.compliance.resolve_measured),
            (1, 1)
        );
        assert_eq!(p2.unresolved, 1);
        // P3: #5, #6, #8; #6 (never acknowledged) counts for MTTD and MTBF only.
        let p3 = row(&r, Severity::P3);
        assert_eq!(p3.count, 3);
        assert_eq!(p3.unacknowledged, 1);
        close(p3.mttd, 140.0, 120.0, 3); // (5+0+2)/3 min = 140 s; median 2 min
        close(p3.mtta, 1_200.0, 1_200.0, 2); // (30+10)/2 = 20 min
        close(p3.mttr, 45_000.0, 45_000.0, 2); // (1440+60)/2 = 750 min
        // Tue 03:00 → Fri 12:00 = 81 h, Fri 12:00 → Sun 22:00 = 58 h; mean 69.5 h.
        close(p3.mtbf, 69.5 * 3600.0, 69.5 * 3600.0, 2);
        assert_eq!((p3.compliance.ack_met, p3.compliance.ack_measured), (2, 2));
        assert_eq!(
            (p3.compliance.resolve_met, p3.compliance.resolve_measured),
            (1, 2)
        );
        // P4: #7, no target, a single incident has no MTBF.
        let p4 = &r.by_severity[3];
        assert_eq!(p4.targets, None);
        assert_eq!(p4.metrics.count, 1);
        close(p4.metrics.mtta, 3_600.0, 3_600.0, 1);
        assert_eq!(p4.metrics.mtbf, None);
        assert_eq!(p4.metrics.compliance.ack_rate, None);
        assert_eq!(
            r.by_severity[0].targets,
            Some(Targets {
                mtta_secs: 300,
                mttr_secs: 7200
            })
        );
    }

    #[test]
    fn per_service_and_notable() {
        let r = report();
        let names: Vec<(&str, usize, Severity)> = r
            .by_service
            .iter()
            .map(|s| (s.service.as_str(), s.metrics.count, s.worst))
            .collect();
        assert_eq!(
            names,
            vec![
                (CHECKOUT, 4, Severity::P1),
                (CART, 2, Severity::P1),
                ("Deployment/payments/ledger", 1, Severity::P2),
                ("Node/worker-1", 1, Severity::P3),
            ]
        );
        // checkout: #1, #5, #3, #7 start Mon 10:00, Tue 03:00, Tue 09:00, Sat 08:00:
        // 118 h over 3 gaps; TTA 3, 30, 10, 60 → 25.75 min.
        let co = &r.by_service[0].metrics;
        close(co.mtbf, 118.0 * 3600.0 / 3.0, 17.0 * 3600.0, 3); // gaps 17, 6, 95 h: median 17 h
        close(co.mtta, 25.75 * 60.0, 1_200.0, 4); // median (10+30)/2 = 20 min
        // P1/P2 in start order: #1 (Mon), #3 (Tue), #2 (Wed), #4 (Thu).
        let notable: Vec<(Severity, Option<bool>, Option<bool>)> = r
            .notable
            .iter()
            .map(|n| (n.severity, n.ack_met, n.resolve_met))
            .collect();
        assert_eq!(
            notable,
            vec![
                (Severity::P1, Some(true), Some(true)),
                (Severity::P2, Some(true), Some(true)),
                (Severity::P1, Some(false), Some(false)),
                (Severity::P2, Some(false), None),
            ]
        );
    }

    #[test]
    fn daily_trend() {
        let r = report();
        assert_eq!(r.granularity, Granularity::Day);
        let totals: Vec<usize> = r.trend.iter().map(|b| b.total).collect();
        assert_eq!(totals, vec![1, 2, 1, 1, 1, 1, 1]);
        let tue = &r.trend[1];
        assert_eq!((tue.count(Severity::P2), tue.count(Severity::P3)), (1, 1));
        close(tue.mtta, 1_200.0, 1_200.0, 2); // #5 30 min, #3 10 min
        close(tue.mttr, 840.0 * 60.0, 840.0 * 60.0, 2); // (1440+240)/2 min
        assert_eq!(r.trend[2].count(Severity::P1), 1); // #2 at its peak
        assert_eq!(r.trend[4].mtta, None); // Friday: #6 only, never acknowledged
    }

    #[test]
    fn empty_period() {
        let (f, e) = week();
        let r = compute(&[], f, e);
        assert_eq!(r.overall.count, 0);
        assert_eq!(r.overall.mtta, None);
        assert_eq!(r.trend.len(), 7);
        assert!(to_markdown(&r, None).contains("None."));
        assert!(to_svg(&r).contains("No incidents in this period"));
    }

    /// Tags open and close in order (a minimal well-formedness check).
    fn balanced(svg: &str) -> Result<usize, String> {
        let mut stack: Vec<String> = Vec::new();
        let mut elements = 0;
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            rest = &rest[i..];
            let end = rest.find('>').ok_or("unterminated tag")?;
            let tag = &rest[1..end];
            rest = &rest[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name.trim() => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else {
                elements += 1;
                if tag.contains('<') {
                    return Err(format!("'<' inside tag {tag:?}"));
                }
                let name: String = tag
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '/')
                    .collect();
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
        }
        if stack.is_empty() {
            Ok(elements)
        } else {
            Err(format!("unclosed: {stack:?}"))
        }
    }

    #[test]
    fn svg_is_well_formed_with_legend() {
        let mut h = history();
        h[0].title = "checkout <down> & \"out\"".into();
        let (f, e) = week();
        let r = compute(&h, f, e);
        let svg = to_svg(&r);
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.trim_end().ends_with("</svg>"));
        let n = balanced(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        assert!(n > 50, "{n} elements");
        for label in [
            "P1 Critical",
            "P2 High",
            "P3 Medium",
            "P4 Low",
            "MTTA",
            "MTTR",
        ] {
            assert!(svg.contains(label), "legend {label}");
        }
        assert!(svg.contains("Week 2026-W48"));
        assert!(svg.contains("<polyline"));
        // One bar segment per non-empty (bucket, severity): 8 incidents, Tuesday has two
        // severities, all other days one.
        assert_eq!(svg.matches("<rect").count(), 1 + 8 + 4);
        for k in [PeriodKind::Month, PeriodKind::Quarter, PeriodKind::Year] {
            let (f, e) = period(k, Some(ymd(2026, 11, 27)), t(0, 0, 0));
            let svg = to_svg(&compute(&h, f, e));
            balanced(&svg).unwrap_or_else(|e| panic!("{k:?}: {e}"));
        }
        // Escaping keeps text out of the markup.
        assert!(!svg.contains("<down>"));
    }

    #[test]
    fn renderings_carry_the_figures() {
        let r = report();
        let md = to_markdown(&r, Some("http://tapio:8080/"));
        for h in [
            "# Incident report — Week 2026-W48",
            "## Summary",
            "## By severity",
            "## Top services",
            "## P1/P2 incidents",
            "## Daily trend",
        ] {
            assert!(md.contains(h), "{h}\n{md}");
        }
        // P1: mean MTTA 5m 30s misses < 5m, mean MTTR 2h 00m misses < 2h.
        assert!(md.contains("| **P1** Critical | 2 | 1m 30s | ❌ 5m 30s (< 5m) | 1/2 (50%) | ❌ 2h 00m (< 2h) | 1/2 (50%) | 2d 04h |"), "{md}");
        assert!(md.contains("| **P3** Medium | 3 | 2m 20s | ✅ 20m 00s (< 1h) | 2/2 (100%) | ✅ 12h 30m (< 24h) | 1/2 (50%) |"), "{md}");
        assert!(
            md.contains("| **P4** Low | 1 | 10m 00s | 1h 00m (no target) | n/a |"),
            "{md}"
        );
        assert!(md.contains(&format!(
            "(http://tapio:8080/api/v1/incidents/{})",
            r.notable[0].id
        )));
        assert!(
            md.contains("acknowledged 4/6 (67%) · resolved 3/5 (60%)"),
            "{md}"
        );
        let table = to_table(&r);
        assert!(table.contains("Incident report: Week 2026-W48"));
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("ALL") && l.contains("3m 23s")),
            "{table}"
        );
        let json: serde_json::Value = serde_json::from_str(&to_json(&r)).unwrap_or_default();
        assert_eq!(json["overall"]["count"], 8);
        assert_eq!(json["by_severity"][0]["severity"], "P1");
        assert_eq!(json["trend"][1]["counts"]["P2"], 1);
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_secs(45.0), "45s");
        assert_eq!(fmt_secs(270.0), "4m 30s");
        assert_eq!(fmt_secs(7500.0), "2h 05m");
        assert_eq!(fmt_secs(3.0 * 86_400.0 + 4.0 * 3600.0), "3d 04h");
        assert_eq!(fmt_target(300), "5m");
        assert_eq!(fmt_target(86_400), "24h");
        assert!(escalates("severity P3 → P1: error ratio 40%"));
        assert!(!escalates("severity P1 → P3: quiet"));
    }

    fn postmortem_incident() -> Incident {
        let mut i = inc(
            1,
            Severity::P2,
            ("Deployment", "shop", "checkout"),
            &["Deployment/shop/checkout", CHECKOUT, "Node/worker-2"],
            t(0, 10, 0),
            2,
            Some(3),
            Some(90),
        );
        i.title = "Crash loop on Deployment/shop/checkout".into();
        i.peak_severity = Some(Severity::P1);
        i.mitigated_at = Some(t(0, 10, 40));
        i.root_cause_confident = true;
        i.hypotheses = vec![
            Hypothesis {
                cause: "bad rollout".into(),
                entity: "Deployment/shop/checkout".into(),
                confidence: 0.87,
                evidence: vec![Ulid::nil(), Ulid::nil(), Ulid::nil()],
                chain: vec![
                    "rollout checkout v43".into(),
                    "checkout pods crash (exit 1)".into(),
                    "Service/shop/checkout has no endpoints".into(),
                ],
                rule: "rollout_regression".into(),
                explanation: "The crashes began right after the rollout.".into(),
                mitigations: vec![
                    "kubectl rollout undo deployment/checkout -n shop".into(),
                    "kubectl rollout history deployment/checkout -n shop".into(),
                ],
            },
            Hypothesis {
                cause: "node pressure".into(),
                entity: "Node/worker-2".into(),
                confidence: 0.2,
                evidence: vec![Ulid::nil()],
                chain: Vec::new(),
                rule: String::new(),
                explanation: String::new(),
                mitigations: vec!["kubectl top nodes".into()],
            },
        ];
        i.changes = vec![ChangeNote {
            at: t(0, 9, 55),
            entity: "Deployment/shop/checkout".into(),
            kind: "rollout".into(),
            description: "image checkout:v42 → v43".into(),
            evidence: Ulid::nil(),
        }];
        i.timeline.extend([
            entry(
                t(0, 9, 55),
                TimelineKind::Change,
                "changed before: image checkout:v42 → v43",
                None,
            ),
            entry(
                t(0, 10, 1),
                TimelineKind::Evidence,
                "CrashLoopBackOff checkout-1",
                None,
            ),
            entry(
                t(0, 10, 3),
                TimelineKind::SeverityChanged,
                "severity P2 → P1: no ready endpoints",
                None,
            ),
            entry(
                t(0, 10, 20),
                TimelineKind::Note,
                "rolling back to v42",
                Some("bob"),
            ),
            entry(
                t(0, 10, 40),
                TimelineKind::StatusChanged,
                "mitigated by bob",
                Some("bob"),
            ),
            entry(
                t(0, 11, 0),
                TimelineKind::SeverityChanged,
                "severity P1 → P2: endpoints back",
                None,
            ),
        ]);
        i.timeline.sort_by_key(|e| e.at);
        i
    }

    #[test]
    fn postmortem_has_every_section_and_the_right_times() {
        let i = postmortem_incident();
        let md = postmortem_markdown(&i, t(1, 9, 0));
        for h in [
            "# Post-mortem: Crash loop on Deployment/shop/checkout",
            "## Summary",
            "## Impact",
            "## Timeline",
            "### Key times",
            "### Changes before the incident",
            "### Event timeline",
            "### Communication timeline",
            "## Root cause analysis",
            "### Root cause",
            "### Why wasn't it caught earlier?",
            "### What made it worse?",
            "### What made it better?",
            "## Action items",
            "## Lessons learned",
        ] {
            assert!(md.contains(h), "missing {h}\n{md}");
        }
        // Held to P1 (its peak): ack 3 min < 5 min, resolve 90 min < 2 h.
        assert!(
            md.contains("| Start (first evidence) | 2026-11-23 10:00:00 |"),
            "{md}"
        );
        assert!(
            md.contains("| Detection | 2026-11-23 10:02:00 | 2m 00s (time to detect) |"),
            "{md}"
        );
        assert!(md.contains("| Response (acknowledged) | 2026-11-23 10:05:00 | 5m 00s | 3m 00s (time to acknowledge) | < 5m ✅ |"), "{md}");
        assert!(
            md.contains("| Mitigation | 2026-11-23 10:40:00 | 40m 00s | 38m 00s |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| Resolution | 2026-11-23 11:32:00 | 1h 32m | 1h 30m (time to resolve) | < 2h ✅ |"
            ),
            "{md}"
        );
        assert!(
            md.contains("**P1** Critical (Service Down) (peak; P2 at the end)"),
            "{md}"
        );
        // Event timeline: who did what, changes before the start.
        assert!(
            md.contains(
                "| 2026-11-23 10:05:00 | +5m 00s | Status changed | acknowledged by alice | alice |"
            ),
            "{md}"
        );
        assert!(md.contains("| 2026-11-23 09:55:00 | -5m 00s | Change | changed before: image checkout:v42 → v43 |"), "{md}");
        assert!(md.contains("| Note | rolling back to v42 | bob |"), "{md}");
        // Root cause, chain and evidence count.
        assert!(
            md.contains("**bad rollout** on `Deployment/shop/checkout` — 87% confidence"),
            "{md}"
        );
        assert!(md.contains("2. checkout pods crash (exit 1)"), "{md}");
        assert!(
            md.contains("Evidence: 3 supporting event(s), of 3 on the incident."),
            "{md}"
        );
        // Hints and action items.
        assert!(
            md.contains("Hint (from the timeline): 2026-11-23 10:03:00 UTC: severity P2 → P1"),
            "{md}"
        );
        assert!(
            !md.contains("severity P1 → P2: endpoints back\n- Hint"),
            "{md}"
        );
        assert!(
            md.contains(
                "Hint (from the timeline): 2026-11-23 10:20:00 UTC note by bob: rolling back to v42"
            ),
            "{md}"
        );
        assert!(
            md.contains("- [ ] kubectl rollout undo deployment/checkout -n shop — owner: _TODO_"),
            "{md}"
        );
        // Only the confident hypothesis's mitigations become action items.
        assert!(!md.contains("- [ ] kubectl top nodes"), "{md}");
        assert!(md.matches("_TODO_").count() >= 10);
    }

    #[test]
    fn postmortem_without_root_cause_or_resolution() {
        let mut i = postmortem_incident();
        i.root_cause_confident = false;
        i.resolved_at = None;
        i.status = Status::Mitigated;
        let md = postmortem_markdown(&i, t(0, 12, 0));
        assert!(
            md.contains("**No confident root cause — to be determined.** _TODO_"),
            "{md}"
        );
        assert!(
            md.contains("Tapio's candidates (below the confidence bar):"),
            "{md}"
        );
        assert!(md.contains("| Resolution | _not yet_ | | | < 2h |"), "{md}");
        assert!(
            md.contains("2h 00m so far (still mitigated at 2026-11-23 12:00 UTC)"),
            "{md}"
        );
        // Without a confident cause every candidate's mitigations are offered.
        assert!(md.contains("- [ ] kubectl top nodes"), "{md}");
    }
}
