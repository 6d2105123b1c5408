//! What the terminal table and the Markdown summary both show, built once from a
//! [`Report`]: the header facts, one line of formatted figures per severity, the services
//! shown (the top ten and how many more), the P1/P2 incidents and the trend rows. The two
//! renderers ([`super::table`], [`super::markdown`]) only lay these out, so they cannot
//! disagree on a figure.

use super::figures::{IncidentLine, Metrics, Report, SeverityRow};
use super::format::{bucket_name, mean, median, period_dates, severity_mix, share};
use super::period::Granularity;
use crate::incident::Severity;

/// How many services the summaries list by name.
const SERVICES_SHOWN: usize = 10;

/// A report laid out in the order both summaries present it.
pub(super) struct Sections<'a> {
    pub label: &'a str,
    /// `2026-11-23 – 2026-11-29 (UTC)`.
    pub dates: String,
    /// `P1 1 · P2 2 · P3 3 · P4 2`.
    pub mix: String,
    /// The raw overall figures (counts of unresolved and unacknowledged incidents).
    pub overall: &'a Metrics,
    pub overall_figures: Figures,
    pub merged_excluded: usize,
    /// P1..P4.
    pub severities: Vec<SeverityLine<'a>>,
    /// The first [`SERVICES_SHOWN`] services, most incidents first.
    pub services: Vec<ServiceLine<'a>>,
    /// Services with incidents that are not listed.
    pub more_services: usize,
    /// The P1/P2 incidents, in start order.
    pub notable: &'a [IncidentLine],
    pub granularity: Granularity,
    pub trend: Vec<TrendLine>,
    /// The bucket with the most incidents (the earliest on a tie) and its count, if any
    /// bucket has one.
    pub busiest: Option<(String, usize)>,
}

/// The figures of one group, formatted (`—` where there is no value).
pub(super) struct Figures {
    pub count: usize,
    pub mttd: String,
    pub mtta: String,
    pub mtta_median: String,
    pub mttr: String,
    pub mttr_median: String,
    pub mtbf: String,
    /// `3/4 (75%)` of the acknowledged incidents with a target.
    pub acked_in_target: String,
    /// The same for resolved incidents.
    pub resolved_in_target: String,
}

impl Figures {
    fn of(m: &Metrics) -> Self {
        let c = &m.compliance;
        Self {
            count: m.count,
            mttd: mean(m.mttd),
            mtta: mean(m.mtta),
            mtta_median: median(m.mtta),
            mttr: mean(m.mttr),
            mttr_median: median(m.mttr),
            mtbf: mean(m.mtbf),
            acked_in_target: share(c.ack_met, c.ack_measured),
            resolved_in_target: share(c.resolve_met, c.resolve_measured),
        }
    }
}

/// One severity level: its row (targets, raw figures for comparisons) and the figures
/// formatted.
pub(super) struct SeverityLine<'a> {
    pub row: &'a SeverityRow,
    pub figures: Figures,
}

pub(super) struct ServiceLine<'a> {
    pub service: &'a str,
    pub count: usize,
    pub worst: Severity,
    pub mtta: String,
    pub mttr: String,
    pub mtbf: String,
}

/// One trend bucket.
pub(super) struct TrendLine {
    /// `Mon 2026-11-23`, `wk of 2026-11-23`, `November 2026`.
    pub name: String,
    /// Incidents per level, P1..P4.
    pub counts: [usize; 4],
    pub total: usize,
    pub mtta: String,
    pub mttr: String,
}

impl<'a> Sections<'a> {
    pub fn of(r: &'a Report) -> Self {
        let services = r
            .by_service
            .iter()
            .take(SERVICES_SHOWN)
            .map(|s| ServiceLine {
                service: &s.service,
                count: s.metrics.count,
                worst: s.worst,
                mtta: mean(s.metrics.mtta),
                mttr: mean(s.metrics.mttr),
                mtbf: mean(s.metrics.mtbf),
            })
            .collect();
        let trend = r
            .trend
            .iter()
            .map(|b| TrendLine {
                name: bucket_name(b, r.granularity),
                counts: [
                    b.count(Severity::P1),
                    b.count(Severity::P2),
                    b.count(Severity::P3),
                    b.count(Severity::P4),
                ],
                total: b.total,
                mtta: mean(b.mtta),
                mttr: mean(b.mttr),
            })
            .collect();
        let busiest = r
            .trend
            .iter()
            .map(|b| (b, b.total))
            .max_by_key(|(b, n)| (*n, std::cmp::Reverse(b.start)))
            .filter(|(_, n)| *n > 0)
            .map(|(b, n)| (bucket_name(b, r.granularity), n));
        Self {
            label: &r.label,
            dates: period_dates(r),
            mix: severity_mix(r),
            overall: &r.overall,
            overall_figures: Figures::of(&r.overall),
            merged_excluded: r.merged_excluded,
            severities: r
                .by_severity
                .iter()
                .map(|row| SeverityLine {
                    row,
                    figures: Figures::of(&row.metrics),
                })
                .collect(),
            services,
            more_services: r.by_service.len().saturating_sub(SERVICES_SHOWN),
            notable: &r.notable,
            granularity: r.granularity,
            trend,
            busiest,
        }
    }
}
