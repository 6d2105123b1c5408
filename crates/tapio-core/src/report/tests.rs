//! The report's figures checked against hand computations, and every rendering checked
//! for the figures and sections it must carry.

use chrono::{DateTime, Duration, Utc};
use ulid::Ulid;

use super::format::fmt_target;
use super::period::{midnight, ymd};
use super::postmortem::escalates;
use super::*;
use crate::incident::{
    ChangeNote, Hypothesis, Identity, Incident, Severity, Status, TimelineEntry, TimelineKind,
};

/// Monday 2026-11-23 00:00 UTC plus `day` days, `h` hours, `m` minutes.
fn t(day: i64, h: i64, m: i64) -> DateTime<Utc> {
    midnight(ymd(2026, 11, 23)) + Duration::days(day) + Duration::hours(h) + Duration::minutes(m)
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
// A fixture builder: each argument is one figure the hand computations use.
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
    assert!(
        md.contains(
            "| 2026-11-23 09:55:00 | -5m 00s | Change | changed before: image checkout:v42 → v43 |"
        ),
        "{md}"
    );
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
