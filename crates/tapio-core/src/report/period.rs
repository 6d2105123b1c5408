//! Calendar periods a report covers (an ISO week, a month, a quarter, a year), their
//! human labels, and the trend buckets inside them. Pure date arithmetic in UTC.

use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

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

pub(super) fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

pub(super) fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MAX)
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    ymd(d.year(), d.month(), 1)
}

pub(super) fn add_months(d: NaiveDate, n: u32) -> NaiveDate {
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

/// Trend granularity for an arbitrary span: days up to a month, weeks up to a quarter,
/// months beyond.
pub(super) fn granularity_for(from: DateTime<Utc>, to: DateTime<Utc>) -> Granularity {
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
