//! Transformation 2: every timestamp shifted by the same amount.

use super::*;

// ---------------------------------------------------------------------------------------
// 2. Shifting time.
// ---------------------------------------------------------------------------------------

pub(crate) fn digits_at(b: &[u8], i: usize, n: usize) -> bool {
    i + n <= b.len() && b[i..i + n].iter().all(u8::is_ascii_digit)
}

/// Every RFC 3339 timestamp in `text` (the whole string or embedded in a message) moved
/// by `d`, written with the same precision and offset.
pub(crate) fn shift_times(text: &str, d: Duration) -> Option<String> {
    let b = text.as_bytes();
    if b.len() < 20 || !b.contains(&b'T') {
        return None;
    }
    let mut out: Option<String> = None;
    let mut last = 0;
    let mut i = 0;
    while i + 20 <= b.len() {
        let looks = (i == 0 || !b[i - 1].is_ascii_digit())
            && digits_at(b, i, 4)
            && b[i + 4] == b'-'
            && digits_at(b, i + 5, 2)
            && b[i + 7] == b'-'
            && digits_at(b, i + 8, 2)
            && b[i + 10] == b'T'
            && digits_at(b, i + 11, 2)
            && b[i + 13] == b':'
            && digits_at(b, i + 14, 2)
            && b[i + 16] == b':'
            && digits_at(b, i + 17, 2);
        if !looks {
            i += 1;
            continue;
        }
        let mut j = i + 19;
        let mut frac = 0;
        if j < b.len() && b[j] == b'.' {
            j += 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
                frac += 1;
            }
        }
        let end = if j < b.len() && b[j] == b'Z' {
            j + 1
        } else if j + 6 <= b.len()
            && (b[j] == b'+' || b[j] == b'-')
            && digits_at(b, j + 1, 2)
            && b[j + 3] == b':'
            && digits_at(b, j + 4, 2)
        {
            j + 6
        } else {
            i += 1;
            continue;
        };
        let Ok(t) = DateTime::parse_from_rfc3339(&text[i..end]) else {
            i += 1;
            continue;
        };
        let z = b[end - 1] == b'Z';
        let shifted: DateTime<FixedOffset> = t + d;
        let form = match frac {
            0 => SecondsFormat::Secs,
            1..=3 => SecondsFormat::Millis,
            4..=6 => SecondsFormat::Micros,
            _ => SecondsFormat::Nanos,
        };
        let mut new = shifted.to_rfc3339_opts(form, z);
        // Keep an odd precision (".5", ".12") as it was written.
        if matches!(frac, 1 | 2 | 4 | 5 | 7 | 8) {
            let dot = new.find('.').unwrap_or(new.len());
            let keep = dot + 1 + frac;
            let rest = new[dot..]
                .find(['Z', '+', '-'])
                .map(|p| dot + p)
                .unwrap_or(new.len());
            new = format!("{}{}", &new[..keep], &new[rest..]);
        }
        let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
        o.push_str(&text[last..i]);
        o.push_str(&new);
        last = end;
        i = end;
    }
    out.map(|mut o| {
        o.push_str(&text[last..]);
        o
    })
}

pub(crate) fn shift(sc: &Scenario, d: Duration) -> Variant {
    let mut batches = sc.batches();
    let f = |t: &str| shift_times(t, d);
    for b in &mut batches {
        map_strings(b, &[], &f);
    }
    Variant {
        batches,
        expected: sc.expected.clone(),
        back: None,
    }
}
