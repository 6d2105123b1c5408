//! Human durations as operators type them: `500ms`, `30s`, `5m`, `2h`, `7d`, `1h30m`.
//!
//! The accepted language is deliberately small: one or more `<digits><unit>` parts, no
//! spaces inside, with the units `ms`, `s`, `m`, `h`, `d` (lower case only); surrounding
//! whitespace is trimmed; a total too large saturates instead of failing (a number past
//! `u64` is an error). Every error names the value and lists the units.
//!
//! Why hand-written and not the `humantime` crate (checked for issue 16): `humantime`
//! accepts a much larger language, so swapping it in would change what the server, the CLI
//! and correlation rules accept. It takes `5 minutes`, `5min`, `1h 30m` and `1w`, which
//! this parser refuses (the `5 minutes` case is a test below), and it reads `5M` as five
//! *months*, a silent trap for an operator who meant minutes. It also fails on overflow
//! (`999999999999999d`) where this one saturates. Narrowing it back to this language
//! would need a validator about as long as the parser itself, so the parser stays.

use std::time::Duration;

/// Parses a duration such as `30s`, `5m`, `7d` or `1h30m` (see the module doc for the
/// accepted forms); the error names the bad value.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "duration {s:?} is invalid; use a number with a unit: ms, s, m, h, d (e.g. 30s, 5m, 7d, 1h30m)"
        )
    };
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("5 minutes").is_err());
    }
}
