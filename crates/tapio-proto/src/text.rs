//! Cutting text to a bound — the one place Tapio does it, for every crate.
//!
//! Two measures, chosen by what the bound protects: bytes where the bound is storage or a
//! wire limit (`cut_bytes`, `cut_bytes_marked`), characters where a person reads the result
//! in a fixed width (`cut_chars`). Each cuts on a character boundary, never inside one.

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn cut_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut to at most `max` bytes, then marked with "…" when it was cut (the mark is not
/// counted in `max`).
pub fn cut_bytes_marked(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    format!("{}…", cut_bytes(s, max))
}

/// `s` in at most `max` characters; a cut string ends with "…" (counted in `max`).
pub fn cut_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cut_on_a_character_boundary() {
        assert_eq!(cut_bytes("héllo", 2), "h");
        assert_eq!(cut_bytes("héllo", 3), "hé");
        assert_eq!(cut_bytes("abc", 10), "abc");
        assert_eq!(cut_bytes_marked("héllo", 2), "h…");
        assert_eq!(cut_bytes_marked("abc", 3), "abc");
    }

    #[test]
    fn chars_count_the_mark() {
        assert_eq!(cut_chars("abcdef", 4), "abc…");
        assert_eq!(cut_chars("ääää", 4), "ääää");
        assert_eq!(cut_chars("abc", 0), "…");
        assert_eq!(cut_chars("", 0), "");
    }
}
