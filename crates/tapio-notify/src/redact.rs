//! What notification errors may show (issue 15): receiver URLs carry credentials
//! (`https://user:password@host/`, `?token=…`), and a receiver's error answer is whatever
//! it chose to send (megabytes, terminal escapes). Every error and log line of `notify`
//! passes through these.

/// Longest part of a receiver's answer kept in an error or log line.
pub const MAX_BODY_EXCERPT: usize = 256;

/// Query parameter names (lower-cased, by substring) whose values are secrets.
const SECRET_KEYS: &[&str] = &[
    "token",
    "key",
    "secret",
    "pass",
    "pwd",
    "auth",
    "sig",
    "credential",
    "session",
    "code",
];

const HIDDEN: &str = "***";

/// `text` with every URL's userinfo password and secret-looking query values replaced by
/// `***` (`https://bot:s3cret@h/x?token=abc&a=1` → `https://bot:***@h/x?token=***&a=1`).
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The scheme: letters, digits, + - . before "://".
        let scheme_start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |j| j + 1);
        let after = &rest[i + 3..];
        let end = after
            .find(|c: char| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(c, '"' | '\'' | '<' | '>' | '`' | '\\')
            })
            .unwrap_or(after.len());
        out.push_str(&rest[..scheme_start]);
        if scheme_start == i {
            // "://" with no scheme: not a URL.
            out.push_str("://");
            rest = after;
            continue;
        }
        out.push_str(&rest[scheme_start..i + 3]);
        out.push_str(&redact_after_scheme(&after[..end]));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `user:pass@host/path?query#frag` with the secrets hidden.
fn redact_after_scheme(s: &str) -> String {
    let auth_end = s.find(['/', '?', '#']).unwrap_or(s.len());
    let (authority, tail) = s.split_at(auth_end);
    let mut out = String::with_capacity(s.len());
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(HIDDEN);
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    let Some(q) = tail.find('?') else {
        out.push_str(tail);
        return out;
    };
    out.push_str(&tail[..=q]);
    let query = &tail[q + 1..];
    let (query, frag) = match query.find('#') {
        Some(h) => query.split_at(h),
        None => (query, ""),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !v.is_empty() && secret_key(k) => format!("{k}={HIDDEN}"),
            _ => pair.to_owned(),
        })
        .collect();
    out.push_str(&pairs.join("&"));
    out.push_str(frag);
    out
}

fn secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    SECRET_KEYS.iter().any(|s| k.contains(s))
}

/// A receiver's answer as it may appear in an error or a log line: at most
/// [`MAX_BODY_EXCERPT`] bytes, control characters escaped (`\n`, `\u{1b}`), URLs
/// redacted, and the full size said when cut.
pub fn body_excerpt(body: &str) -> String {
    let kept = tapio_proto::text::cut_bytes(body, MAX_BODY_EXCERPT);
    let mut out = String::with_capacity(kept.len() + 32);
    for c in kept.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    let mut out = redact_urls(&out);
    if kept.len() < body.len() {
        out.push_str(&format!("… ({} bytes)", body.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_token_query_values_are_hidden() {
        assert_eq!(
            redact_urls("\"https://bot:s3cret@hooks.example.com/x?token=abc&a=1#f\" must be"),
            "\"https://bot:***@hooks.example.com/x?token=***&a=1#f\" must be"
        );
        assert_eq!(
            redact_urls("smtp://alice:pw@mail:587 and http://h/?api_key=k&X-Amz-Signature=s"),
            "smtp://alice:***@mail:587 and http://h/?api_key=***&X-Amz-Signature=***"
        );
        assert_eq!(
            redact_urls("http://h:8080/path?fields=key&maxResults=1"),
            "http://h:8080/path?fields=key&maxResults=1"
        );
        assert_eq!(redact_urls("no url :// here"), "no url :// here");
        assert!(!redact_urls("ftp://u:p@x").contains(":p@"));
    }

    #[test]
    fn receiver_bodies_are_bounded_and_escaped() {
        let big = format!("\u{1b}[31mERR\0{}", "x".repeat(10_000));
        let e = body_excerpt(&big);
        assert!(e.len() < MAX_BODY_EXCERPT + 64, "{}", e.len());
        assert!(!e.chars().any(char::is_control), "{e:?}");
        assert!(e.starts_with("\\u{1b}[31mERR\\u{0}"), "{e}");
        assert!(e.ends_with("(10009 bytes)"), "{e}");
        assert_eq!(body_excerpt("{\"ok\":false}"), "{\"ok\":false}");
    }
}
