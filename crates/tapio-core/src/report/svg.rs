//! The trend as a self-contained SVG chart: stacked bars of incidents per bucket by
//! severity (left axis) and MTTA / MTTR lines on a logarithmic time axis (right).

use std::fmt::Write as _;

use chrono::Datelike;

use super::figures::{Bucket, Report};
use super::format::{bucket_name, fmt_secs, mean, period_dates, severity_mix, severity_word};
use super::period::Granularity;
use crate::incident::Severity;

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

/// The canvas and the plot area inside it.
const W: f64 = 960.0;
const H: f64 = 540.0;
const X0: f64 = 72.0;
const X1: f64 = 880.0;
const Y0: f64 = 104.0;
const Y1: f64 = 420.0;

/// Right axis ticks: time, logarithmic (minutes and hours on one chart).
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

/// The scales of one chart, fixed from the report before anything is drawn.
struct Chart<'a> {
    r: &'a Report,
    /// Width of one bucket's slot on the x axis.
    slot: f64,
    max_total: usize,
    /// Count axis: its top value and tick step.
    top: usize,
    step: usize,
    /// Time axis: its bottom and top in seconds.
    t_bottom: f64,
    t_top: f64,
}

impl<'a> Chart<'a> {
    fn new(r: &'a Report) -> Self {
        let n = r.trend.len().max(1);
        let max_total = r.trend.iter().map(|b| b.total).max().unwrap_or(0);
        // About 10 % headroom above the tallest bar for its label.
        let want = max_total + max_total.div_ceil(10);
        let step = count_step(want.max(1));
        let top = if max_total == 0 {
            4
        } else {
            want.div_ceil(step) * step
        };
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
        Self {
            r,
            slot: (X1 - X0) / n as f64,
            max_total,
            top,
            step,
            t_bottom,
            t_top,
        }
    }

    fn y_count(&self, c: f64) -> f64 {
        Y1 - c / self.top as f64 * (Y1 - Y0)
    }

    fn y_time(&self, v: f64) -> f64 {
        let v = v.clamp(self.t_bottom, self.t_top);
        Y1 - (v.ln() - self.t_bottom.ln()) / (self.t_top.ln() - self.t_bottom.ln()) * (Y1 - Y0)
    }

    /// The centre of bucket `i` on the x axis.
    fn x(&self, i: usize) -> f64 {
        X0 + self.slot * (i as f64 + 0.5)
    }
}

/// The trend as a self-contained SVG: stacked bars of incidents per bucket by severity
/// (left axis) and MTTA / MTTR lines on a logarithmic time axis (right).
pub fn to_svg(r: &Report) -> String {
    let c = Chart::new(r);
    let mut s = String::new();
    heading(&mut s, r);
    count_axis(&mut s, &c);
    time_axis(&mut s, &c);
    bars(&mut s, &c);
    lines(&mut s, &c);
    if r.overall.count == 0 {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"15\" fill=\"#9ca3af\" text-anchor=\"middle\">\
             No incidents in this period</text>",
            (X0 + X1) / 2.0,
            (Y0 + Y1) / 2.0
        );
    }
    x_axis(&mut s, &c);
    legend(&mut s);
    s.push_str("</svg>\n");
    s
}

/// The opening tag, accessible title and description, frame, title and subtitle.
fn heading(s: &mut String, r: &Report) {
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
}

/// Left axis: incident counts, with grid lines.
fn count_axis(s: &mut String, ch: &Chart) {
    let _ = writeln!(s, "<g font-size=\"11\" fill=\"#6b7280\">");
    let mut c = 0;
    while c <= ch.top {
        let y = ch.y_count(c as f64);
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
        c += if ch.max_total == 0 { 1 } else { ch.step };
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        "<text x=\"24\" y=\"{:.1}\" font-size=\"12\" fill=\"#374151\" text-anchor=\"middle\" \
         transform=\"rotate(-90 24 {:.1})\">Incidents</text>",
        (Y0 + Y1) / 2.0,
        (Y0 + Y1) / 2.0
    );
}

/// Right axis: time, logarithmic.
fn time_axis(s: &mut String, ch: &Chart) {
    let _ = writeln!(s, "<g font-size=\"11\" fill=\"#6b7280\">");
    let _ = writeln!(
        s,
        "<line x1=\"{X1}\" y1=\"{Y0}\" x2=\"{X1}\" y2=\"{Y1}\" stroke=\"#9ca3af\" stroke-width=\"1\"/>"
    );
    for (v, label) in TICKS
        .iter()
        .filter(|(v, _)| *v >= ch.t_bottom && *v <= ch.t_top)
    {
        let y = ch.y_time(*v);
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
}

/// Stacked bars per bucket by severity, and each bar's total above it when there is room.
fn bars(s: &mut String, ch: &Chart) {
    let r = ch.r;
    let bar_w = (ch.slot * 0.62).clamp(2.0, 56.0);
    let _ = writeln!(s, "<g stroke=\"#ffffff\" stroke-width=\"1\">");
    for (i, b) in r.trend.iter().enumerate() {
        let cx = ch.x(i);
        let mut acc = 0usize;
        for sev in Severity::ALL {
            let k = b.count(sev);
            if k == 0 {
                continue;
            }
            let y_top = ch.y_count((acc + k) as f64);
            let y_bot = ch.y_count(acc as f64);
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
    if ch.slot >= 14.0 {
        let _ = writeln!(
            s,
            "<g font-size=\"10\" fill=\"#374151\" text-anchor=\"middle\">"
        );
        for (i, b) in r.trend.iter().enumerate().filter(|(_, b)| b.total > 0) {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                ch.x(i),
                ch.y_count(b.total as f64) - 4.0,
                b.total
            );
        }
        let _ = writeln!(s, "</g>");
    }
}

/// MTTA solid, MTTR dashed; gaps where a bucket has no value.
fn lines(s: &mut String, ch: &Chart) {
    let r = ch.r;
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
                v.map(|st| (ch.x(i), ch.y_time(st.mean_secs), st.mean_secs))
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
}

/// X axis labels, thinned to about 16, and the axis title.
fn x_axis(s: &mut String, ch: &Chart) {
    let r = ch.r;
    let every = r.trend.len().max(1).div_ceil(16).max(1);
    let _ = writeln!(
        s,
        "<g font-size=\"11\" fill=\"#6b7280\" text-anchor=\"middle\">"
    );
    for (i, b) in r.trend.iter().enumerate() {
        if i % every != 0 {
            continue;
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            ch.x(i),
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
}

/// The severities' colours and the two lines, along the bottom.
fn legend(s: &mut String) {
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
}
