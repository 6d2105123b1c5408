//! Value bounds shared by every decoder of client input (issue 15): ids that must not
//! overflow, text that must not carry control characters, numbers that must be finite and
//! in range, times that must be plausible. Pure functions; each error names the value and
//! what is accepted.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Deserializer};
use ulid::Ulid;

/// Parse a ULID from a client. `ulid` itself accepts 26 characters whose first one is
/// above `7` and silently drops the overflowing bits (`8ZZZ…` becomes `0ZZZ…`, another
/// id); this refuses them.
pub fn parse_ulid(s: &str) -> Result<Ulid, String> {
    let example = "01JDQ7ZJ8W3XG5M8F9N0P1Q2R3";
    if s.len() != 26 {
        return Err(format!(
            "{:?} is not a ULID: it has {} characters, a ULID has 26 (such as {example})",
            crate::text::cut_bytes_marked(s, 40),
            s.chars().count()
        ));
    }
    if !s.as_bytes()[0].is_ascii_digit() || s.as_bytes()[0] > b'7' {
        return Err(format!(
            "{s:?} is not a ULID: the first character must be 0-7 (larger values overflow 128 bits), such as {example}"
        ));
    }
    Ulid::from_string(s).map_err(|e| format!("{s:?} is not a ULID ({e}), such as {example}"))
}

/// `#[serde(deserialize_with = "...")]` for a ULID field of a client body.
pub fn de_ulid<'de, D: Deserializer<'de>>(d: D) -> Result<Ulid, D::Error> {
    let s = String::deserialize(d)?;
    parse_ulid(&s).map_err(serde::de::Error::custom)
}

/// `#[serde(deserialize_with = "...")]` for an optional ULID field of a client body.
pub fn de_opt_ulid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ulid>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_ulid(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

/// Text people read in a terminal or a page (titles, notes, comments, alert labels and
/// annotations): no NUL, no escape sequences, no other control characters. Line breaks
/// and tabs are allowed where `multiline` (notes, comments, descriptions).
pub fn check_text(field: &str, value: &str, multiline: bool) -> Result<(), String> {
    let bad = value
        .char_indices()
        .find(|(_, c)| c.is_control() && !(multiline && matches!(c, '\n' | '\t' | '\r')));
    match bad {
        None => Ok(()),
        Some((at, c)) => Err(format!(
            "field `{field}` holds the control character {:?} at byte {at}; control characters \
             (NUL, terminal escapes{}) are not allowed: remove it",
            c,
            if multiline { "" } else { ", line breaks" }
        )),
    }
}

/// The earliest event, alert or activity time accepted. Earlier times are unset clocks
/// and zero values (Go's `0001-01-01T00:00:00Z`, the Unix epoch), never evidence; they
/// would open incidents dated centuries ago.
pub fn min_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A time from a client must not be before [`min_time`].
pub fn check_time_floor(field: &str, t: DateTime<Utc>) -> Result<(), String> {
    let floor = min_time();
    if t < floor {
        return Err(format!(
            "field `{field}` is {} — before {}: an unset clock or a zero value, not a real time. \
             Fix the sender's clock or send the real time",
            t.to_rfc3339(),
            floor.format("%Y-%m-%d")
        ));
    }
    Ok(())
}

/// Longest silence: a silence "until 9999" is a muted service forgotten.
pub fn max_silence() -> Duration {
    Duration::days(90)
}

/// A silence ending at `until`, created at `now`, must end after `now` and within
/// [`max_silence`].
pub fn check_silence_until(
    field: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let max = max_silence();
    if until > now + max {
        return Err(format!(
            "field `{field}` is {}: more than {} days from now (the longest silence); \
             silence for at most {} days and renew it if still needed",
            until.to_rfc3339(),
            max.num_days(),
            max.num_days()
        ));
    }
    Ok(())
}

/// Bounds on a numeric attribute, from its name: `ratio` and `*_ratio` are in [0, 1],
/// `*_percent` in [0, 100]; every number is finite.
pub fn check_number(field: &str, key: &str, v: f64) -> Result<(), String> {
    if !v.is_finite() {
        return Err(format!("field `{field}` is {v}: numbers must be finite"));
    }
    if let Some((lo, hi)) = range_of(key)
        && !(lo..=hi).contains(&v)
    {
        return Err(format!(
            "field `{field}` is {v}; `{key}` must be between {lo} and {hi}"
        ));
    }
    Ok(())
}

/// The number an attribute holds, as far as [`check_number`] must check it: ints and
/// floats, and text under a ranged name that parses as a number — readers take such text
/// as a number (`attr_f64`), so `"error_ratio": "27"` is held to the range like `27`.
pub fn attr_number(key: &str, v: &crate::AttrValue) -> Option<f64> {
    use crate::AttrValue;
    match v {
        AttrValue::Int(i) => Some(*i as f64),
        AttrValue::Float(f) => Some(*f),
        AttrValue::String(s) if range_of(key).is_some() => s.parse().ok(),
        AttrValue::String(_) | AttrValue::Bool(_) => None,
    }
}

fn range_of(key: &str) -> Option<(f64, f64)> {
    if key == "ratio" || key.ends_with("_ratio") {
        Some((0.0, 1.0))
    } else if key.ends_with("_percent") {
        Some((0.0, 100.0))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflowing_ulid_is_refused() {
        let e = parse_ulid("8ZZZZZZZZZZZZZZZZZZZZZZZZZ").expect_err("overflow");
        assert!(e.contains("0-7"), "{e}");
        // `ulid` alone would have read it as another id.
        assert_eq!(
            Ulid::from_string("8ZZZZZZZZZZZZZZZZZZZZZZZZZ")
                .expect("ulid crate accepts it")
                .to_string(),
            "0ZZZZZZZZZZZZZZZZZZZZZZZZZ"
        );
        assert!(parse_ulid("7ZZZZZZZZZZZZZZZZZZZZZZZZZ").is_ok());
        assert!(parse_ulid("01jdq7zj8w3xg5m8f9n0p1q2r3").is_ok());
        assert!(parse_ulid("01JDQ7ZJ8W3XG5M8F9N0P1Q2R").is_err());
        assert!(parse_ulid("Z1JDQ7ZJ8W3XG5M8F9N0P1Q2R3").is_err());
    }

    #[test]
    fn control_characters_in_text_are_refused() {
        assert!(check_text("title", "db down", false).is_ok());
        assert!(check_text("title", "db\u{0}down", false).is_err());
        let e = check_text("title", "x\u{1b}[2Jy", false).expect_err("escape");
        assert!(e.contains("title") && e.contains("\\u{1b}"), "{e}");
        assert!(check_text("title", "a\nb", false).is_err());
        assert!(check_text("text", "a\nb\tc", true).is_ok());
        assert!(check_text("text", "a\u{9b}b", true).is_err());
    }

    #[test]
    fn numbers_and_times_in_range() {
        assert!(check_number("a.error_ratio", "error_ratio", 0.5).is_ok());
        assert!(check_number("a.error_ratio", "error_ratio", -5.0).is_err());
        assert!(check_number("a.error_ratio", "error_ratio", 1e308).is_err());
        assert!(check_number("a.fs_error_percent", "fs_error_percent", 101.0).is_err());
        assert!(check_number("a.bytes", "bytes", 1e12).is_ok());
        assert!(check_number("a.bytes", "bytes", f64::NAN).is_err());
        use crate::AttrValue;
        assert_eq!(
            attr_number("error_ratio", &AttrValue::from("1.27")),
            Some(1.27)
        );
        assert_eq!(attr_number("summary", &AttrValue::from("1.27")), None);
        assert_eq!(attr_number("error_ratio", &AttrValue::from("high")), None);
        let zero: DateTime<Utc> = "0001-01-01T00:00:00Z".parse().expect("t");
        assert!(check_time_floor("time", zero).is_err());
        assert!(check_time_floor("time", "2026-11-27T10:00:00Z".parse().expect("t")).is_ok());
        let now: DateTime<Utc> = "2026-11-27T10:00:00Z".parse().expect("t");
        let e = check_silence_until("until", "9999-01-01T00:00:00Z".parse().expect("t"), now)
            .expect_err("9999");
        assert!(e.contains("90 days"), "{e}");
        assert!(check_silence_until("until", now + Duration::days(89), now).is_ok());
    }
}
