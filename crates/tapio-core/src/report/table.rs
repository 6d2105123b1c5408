//! The report as plain aligned text for a terminal (`tapio report`).

use std::fmt::Write as _;

use super::figures::{Report, Targets};
use super::format::{fmt_minute, fmt_secs, fmt_target};
use super::sections::{Figures, Sections};
use crate::incident::Severity;
use tapio_proto::text::cut_chars;

/// Plain aligned text for a terminal.
pub fn to_table(r: &Report) -> String {
    let s = Sections::of(r);
    let mut out = String::new();
    header(&mut out, &s);
    severities(&mut out, &s);
    services(&mut out, &s);
    notable(&mut out, &s);
    trend(&mut out, &s);
    out
}

fn header(out: &mut String, s: &Sections) {
    let o = s.overall;
    let _ = writeln!(out, "Incident report: {}", s.label);
    let _ = writeln!(out, "Period: {}", s.dates);
    let _ = writeln!(
        out,
        "{} incidents ({}); {} unresolved, {} unacknowledged{}",
        o.count,
        s.mix,
        o.unresolved,
        o.unacknowledged,
        if s.merged_excluded > 0 {
            format!("; {} merged into others (not counted)", s.merged_excluded)
        } else {
            String::new()
        }
    );
    let _ = writeln!(out);
}

/// One row per severity, then `ALL`.
fn severities(out: &mut String, s: &Sections) {
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
    for l in &s.severities {
        let sev = l.row.severity;
        severity_row(
            out,
            sev.as_str(),
            &l.figures,
            l.row.targets,
            sev == Severity::P4,
        );
    }
    severity_row(out, "ALL", &s.overall_figures, None, false);
}

/// `p4`: the level without targets ("none", compliance "n/a").
fn severity_row(out: &mut String, name: &str, f: &Figures, t: Option<Targets>, p4: bool) {
    let tgt = t.map_or_else(
        || if p4 { "none".into() } else { String::new() },
        |t| format!("{}/{}", fmt_target(t.mtta_secs), fmt_target(t.mttr_secs)),
    );
    let na = |s: &str| if p4 { "n/a".to_owned() } else { s.to_owned() };
    let _ = writeln!(
        out,
        "{:<5} {:>5}  {:<8} {:<8} {:<8} {:<8} {:<8} {:<8} {:<8}  {:<17} {:<17}",
        name,
        f.count,
        f.mttd,
        f.mtta,
        f.mtta_median,
        f.mttr,
        f.mttr_median,
        f.mtbf,
        if tgt.is_empty() { "-".into() } else { tgt },
        na(&f.acked_in_target),
        na(&f.resolved_in_target),
    );
}

fn services(out: &mut String, s: &Sections) {
    if s.services.is_empty() {
        return;
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<44} {:>5}  {:<5} {:<8} {:<8} {:<8}",
        "SERVICE", "COUNT", "WORST", "MTTA", "MTTR", "MTBF"
    );
    for l in &s.services {
        let _ = writeln!(
            out,
            "{:<44} {:>5}  {:<5} {:<8} {:<8} {:<8}",
            cut_chars(l.service, 44),
            l.count,
            l.worst.as_str(),
            l.mtta,
            l.mttr,
            l.mtbf
        );
    }
    if s.more_services > 0 {
        let _ = writeln!(out, "… and {} more", s.more_services);
    }
}

fn notable(out: &mut String, s: &Sections) {
    if s.notable.is_empty() {
        return;
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<4} {:<26} {:<16} {:<13} {:<10} {:<10} TITLE",
        "SEV", "ID", "STARTED", "STATUS", "ACK AFTER", "RESOLVED"
    );
    // A time over its target carries a `!`.
    let mark = |v: Option<f64>, met: Option<bool>| match (v, met) {
        (Some(v), Some(false)) => format!("{}!", fmt_secs(v)),
        (Some(v), _) => fmt_secs(v),
        (None, _) => "—".into(),
    };
    for n in s.notable {
        let _ = writeln!(
            out,
            "{:<4} {:<26} {:<16} {:<13} {:<10} {:<10} {}",
            n.severity.as_str(),
            n.id.to_string(),
            fmt_minute(n.started_at),
            n.status.as_str(),
            mark(n.tta_secs, n.ack_met),
            mark(n.ttr_secs, n.resolve_met),
            cut_chars(&n.title, 60)
        );
    }
    let _ = writeln!(out, "(! = over the runbook target)");
}

fn trend(out: &mut String, s: &Sections) {
    if s.trend.is_empty() {
        return;
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<20} {:>3} {:>3} {:>3} {:>3} {:>6}  {:<8} {:<8}",
        format!("TREND (by {})", s.granularity.as_str()),
        "P1",
        "P2",
        "P3",
        "P4",
        "TOTAL",
        "MTTA",
        "MTTR"
    );
    for b in &s.trend {
        let [p1, p2, p3, p4] = b.counts;
        let _ = writeln!(
            out,
            "{:<20} {:>3} {:>3} {:>3} {:>3} {:>6}  {:<8} {:<8}",
            b.name, p1, p2, p3, p4, b.total, b.mtta, b.mttr
        );
    }
}
