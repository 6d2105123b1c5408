//! Text pieces every rendering shares: durations for people, targets as the runbook
//! writes them, shares, severity words, dates, bucket names, Markdown cells.

use chrono::{DateTime, Duration, Utc};

use super::figures::{Bucket, Report, Stat, rate, secs};
use super::period::Granularity;
use crate::incident::Severity;

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

pub(super) fn fmt_dur(d: Duration) -> String {
    fmt_secs(secs(d))
}

/// A target as the runbook writes it: `5m`, `15m`, `1h`, `24h`.
pub(super) fn fmt_target(secs: i64) -> String {
    if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

pub(super) fn mean(s: Option<Stat>) -> String {
    s.map_or_else(|| "—".into(), |s| fmt_secs(s.mean_secs))
}

pub(super) fn median(s: Option<Stat>) -> String {
    s.map_or_else(|| "—".into(), |s| fmt_secs(s.median_secs))
}

pub(super) fn share(met: usize, n: usize) -> String {
    match rate(met, n) {
        Some(r) => format!("{met}/{n} ({:.0}%)", r * 100.0),
        None => "—".into(),
    }
}

pub(super) fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::P1 => "Critical",
        Severity::P2 => "High",
        Severity::P3 => "Medium",
        Severity::P4 => "Low",
    }
}

pub(super) fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub(super) fn fmt_minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// A Markdown table cell: no pipes or line breaks.
pub(super) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

pub(super) fn period_dates(r: &Report) -> String {
    let last = r.to - Duration::seconds(1);
    format!(
        "{} – {} (UTC)",
        r.from.format("%Y-%m-%d"),
        last.format("%Y-%m-%d")
    )
}

pub(super) fn bucket_name(b: &Bucket, g: Granularity) -> String {
    match g {
        Granularity::Day => b.start.format("%a %Y-%m-%d").to_string(),
        Granularity::Week => b.start.format("wk of %Y-%m-%d").to_string(),
        Granularity::Month => b.start.format("%B %Y").to_string(),
    }
}

/// `P1 1 · P2 2 · P3 3 · P4 2`
pub(super) fn severity_mix(r: &Report) -> String {
    r.by_severity
        .iter()
        .map(|row| format!("{} {}", row.severity, row.metrics.count))
        .collect::<Vec<_>>()
        .join(" · ")
}

pub(super) fn check(ok: bool) -> &'static str {
    if ok { "✅" } else { "❌" }
}
