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
//!
//! Layout: [`period`] (calendar periods and trend buckets) and [`figures`] (the data model
//! and the arithmetic) are the pure part; the renderings read a finished [`Report`]:
//! `table` (terminal) and `markdown` (the runbook's summary) both lay out one shared
//! `sections` view, `svg` draws the trend chart, `postmortem` drafts a post-mortem for one
//! incident. Everything public is re-exported here, so callers name `report::compute`,
//! `report::to_markdown` and so on.

pub mod figures;
mod format;
mod markdown;
pub mod period;
mod postmortem;
mod sections;
mod svg;
mod table;

pub use figures::{
    Bucket, Compliance, IncidentLine, Metrics, Report, ServiceRow, SeverityRow, Stat, Targets,
    compute, effective_severity, service_of, targets, time_to_ack, time_to_resolve,
};
pub use format::fmt_secs;
pub use markdown::to_markdown;
pub use period::{Granularity, PeriodKind, bucket_bounds, parse_date, period, period_label};
pub use postmortem::postmortem_markdown;
pub use svg::to_svg;
pub use table::to_table;

/// The report as pretty JSON (all durations in seconds).
pub fn to_json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests;
