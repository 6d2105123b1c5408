//! The runbook's weekly summary (and monthly trend analysis) as Markdown.

use std::fmt::Write as _;

use super::figures::{Report, Stat};
use super::format::{cell, check, fmt_minute, fmt_secs, fmt_target, severity_word};
use super::period::Granularity;
use super::sections::{Sections, SeverityLine};

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
    let s = Sections::of(r);
    let mut out = String::new();
    summary(&mut out, &s);
    severities(&mut out, &s);
    services(&mut out, &s);
    notable(&mut out, &s, link_base);
    trend(&mut out, &s);
    out
}

fn summary(out: &mut String, s: &Sections) {
    let o = s.overall;
    let f = &s.overall_figures;
    let _ = writeln!(out, "# Incident report — {}", s.label);
    let _ = writeln!(out);
    let _ = writeln!(out, "_Period: {}_", s.dates);
    let _ = writeln!(out);
    let _ = writeln!(out, "## Summary");
    let _ = writeln!(out);
    let _ = writeln!(out, "- **{}** incidents: {}", o.count, s.mix);
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
        f.mttd, f.mtta, f.mtta_median, f.mttr, f.mttr_median, f.mtbf
    );
    let _ = writeln!(
        out,
        "- Within the runbook targets (P1–P3): acknowledged {} · resolved {}",
        f.acked_in_target, f.resolved_in_target
    );
    if s.merged_excluded > 0 {
        let _ = writeln!(
            out,
            "- {} incident(s) merged into another one are not counted separately",
            s.merged_excluded
        );
    }
    let _ = writeln!(out);
}

fn severities(out: &mut String, s: &Sections) {
    let _ = writeln!(out, "## By severity");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Severity | Incidents | MTTD | MTTA (target) | Acked in target | MTTR (target) | Resolved in target | MTBF |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---|---|---|---:|");
    for l in &s.severities {
        severity_row(out, l);
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "✅/❌ on MTTA and MTTR: the mean against the target; \"in target\": the share of \
         acknowledged (resolved) incidents that met it. Unacknowledged and unresolved \
         incidents are not measured."
    );
    let _ = writeln!(out);
}

fn severity_row(out: &mut String, l: &SeverityLine) {
    let (row, f) = (l.row, &l.figures);
    let m = &row.metrics;
    let (ta, tr) = match row.targets {
        Some(t) => (
            format!(" (< {})", fmt_target(t.mtta_secs)),
            format!(" (< {})", fmt_target(t.mttr_secs)),
        ),
        None => (" (no target)".into(), " (no target)".into()),
    };
    // Compliance means nothing for a level without targets.
    let comp = |share: &str| {
        if row.targets.is_none() {
            "n/a".to_owned()
        } else {
            share.to_owned()
        }
    };
    let _ = writeln!(
        out,
        "| **{}** {} | {} | {} | {}{} | {} | {}{} | {} | {} |",
        row.severity,
        severity_word(row.severity),
        f.count,
        f.mttd,
        versus(m.mtta, row.targets.map(|t| t.mtta_secs)),
        ta,
        comp(&f.acked_in_target),
        versus(m.mttr, row.targets.map(|t| t.mttr_secs)),
        tr,
        comp(&f.resolved_in_target),
        f.mtbf
    );
}

fn services(out: &mut String, s: &Sections) {
    let _ = writeln!(out, "## Top services");
    let _ = writeln!(out);
    if s.services.is_empty() {
        let _ = writeln!(out, "No incidents.");
    } else {
        let _ = writeln!(out, "| Service | Incidents | Worst | MTTA | MTTR | MTBF |");
        let _ = writeln!(out, "|---|---:|---|---:|---:|---:|");
        for l in &s.services {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} |",
                cell(l.service),
                l.count,
                l.worst,
                l.mtta,
                l.mttr,
                l.mtbf
            );
        }
        if s.more_services > 0 {
            let _ = writeln!(out);
            let _ = writeln!(out, "… and {} more.", s.more_services);
        }
    }
    let _ = writeln!(out);
}

fn notable(out: &mut String, s: &Sections, link_base: Option<&str>) {
    let _ = writeln!(out, "## P1/P2 incidents");
    let _ = writeln!(out);
    if s.notable.is_empty() {
        let _ = writeln!(out, "None. 🎉");
    }
    for n in s.notable {
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
    let _ = writeln!(out);
}

fn trend(out: &mut String, s: &Sections) {
    let (heading, column) = match s.granularity {
        Granularity::Day => ("Daily trend", "Day"),
        Granularity::Week => ("Weekly trend", "Week of"),
        Granularity::Month => ("Monthly trend", "Month"),
    };
    let _ = writeln!(out, "## {heading}");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| {column} | P1 | P2 | P3 | P4 | Total | MTTA | MTTR |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for b in &s.trend {
        let [p1, p2, p3, p4] = b.counts;
        let _ = writeln!(
            out,
            "| {} | {p1} | {p2} | {p3} | {p4} | **{}** | {} | {} |",
            b.name, b.total, b.mtta, b.mttr
        );
    }
    if let Some((busiest, n)) = &s.busiest {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Busiest {}: {busiest} ({n} incidents).",
            s.granularity.as_str()
        );
    }
}
