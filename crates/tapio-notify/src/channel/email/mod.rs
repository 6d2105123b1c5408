//! Email: an RFC 5322 message (MIME plain text, RFC 2047 encoded-words for non-ASCII
//! headers, one thread per incident) submitted over SMTP ([`smtp`]).
//!
//! The message is built here by hand rather than with a MIME library: it is one
//! `text/plain; charset=utf-8` part with a handful of headers, and its exact shape (the
//! thread's Message-ID, folding, encoded-words) is what the tests and mail clients rely on.

pub mod smtp;

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tapio_core::Incident;

use super::{Sent, default_heading, split_heading};
use crate::config::EmailCfg;
use crate::templates::NotificationKind;

/// Longest body line sent (RFC 5322 allows 998 octets before CRLF).
const EMAIL_MAX_LINE: usize = 998;
/// Recommended header line length (RFC 5322 §2.1.1).
const EMAIL_FOLD_AT: usize = 78;

/// Standard base64 (RFC 4648 §4, padded): encoded-words here, AUTH in the SMTP client,
/// basic auth for Jira.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Header values never carry line breaks (no header injection).
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// RFC 2047 "B" encoded-words, each whole UTF-8 characters and at most 64 characters long,
/// separated by folding whitespace.
fn encoded_words(s: &str) -> String {
    const MAX_BYTES: usize = 36; // 48 base64 characters + 12 of "=?UTF-8?B?" and "?=".
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if chunk.len() + c.len_utf8() > MAX_BYTES {
            words.push(format!("=?UTF-8?B?{}?=", b64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", b64(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// `Name: value`, folded at spaces to about 78 characters; non-ASCII values as encoded-words.
fn unstructured_header(name: &str, value: &str) -> String {
    let value = header_safe(value);
    if !value.is_ascii() {
        return format!("{name}: {}", encoded_words(&value));
    }
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        if line_len + 1 + word.len() > EMAIL_FOLD_AT && line_len > name.len() + 1 {
            out.push_str("\r\n");
            line_len = 0;
        }
        out.push(' ');
        out.push_str(word);
        line_len += 1 + word.len();
    }
    out
}

/// One mailbox: `Name <addr>` with a non-ASCII name encoded, or a bare address.
fn mailbox(s: &str) -> String {
    let s = header_safe(s);
    match s.rsplit_once('<') {
        Some((name, addr)) if !name.trim().is_empty() => {
            let name = name.trim().trim_matches('"');
            let name = if name.is_ascii() {
                format!("\"{}\"", name.replace(['\\', '"'], ""))
            } else {
                encoded_words(name)
            };
            format!("{name} <{}", addr.trim())
        }
        Some((_, addr)) => format!("<{}", addr.trim()),
        None => s,
    }
}

/// `Name: a, b, c`, folded between mailboxes.
fn address_header(name: &str, addrs: &[String]) -> String {
    if addrs.is_empty() {
        // An empty group: the header stays valid (RFC 5322 §3.4).
        return format!("{name}: undisclosed-recipients:;");
    }
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    for (i, a) in addrs.iter().map(|a| mailbox(a)).enumerate() {
        let sep = if i + 1 < addrs.len() { "," } else { "" };
        let first_line = a.split("\r\n").next().unwrap_or("");
        if i > 0 && line_len + 1 + first_line.len() + sep.len() > EMAIL_FOLD_AT {
            out.push_str("\r\n");
            line_len = 0;
        }
        out.push(' ');
        out.push_str(&a);
        out.push_str(sep);
        line_len += 1 + a.rsplit("\r\n").next().unwrap_or("").len() + sep.len();
    }
    out
}

/// The domain of the From address, for Message-IDs.
fn mail_domain(from: &str) -> String {
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').trim())
        .unwrap_or("");
    if !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        domain.to_ascii_lowercase()
    } else {
        "tapio.invalid".to_owned()
    }
}

/// The Message-ID of an incident's thread: the Initial message's own ID, and what every
/// later message of the incident replies to.
pub fn thread_id(inc: &Incident, from: &str) -> String {
    format!("<tapio.{}@{}>", inc.id, mail_domain(from))
}

/// Split `line` into pieces of at most `max` bytes, at a space where possible, never inside
/// a character.
fn wrap_line(line: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(space) = rest[..cut].rfind(' ').filter(|&i| i > 0) {
            cut = space;
        }
        out.push(&rest[..cut]);
        rest = rest[cut..].strip_prefix(' ').unwrap_or(&rest[cut..]);
    }
    out.push(rest);
    out
}

/// An RFC 5322 message ready for SMTP `DATA` (CRLF line endings; the SMTP client does the
/// dot-stuffing). Subject: `[P1] ` and the first line of `text`, RFC 2047-encoded when not
/// ASCII; body: `text` as UTF-8 plain text, lines kept under 998 octets. The Initial
/// message's Message-ID is the incident's thread ID ([`thread_id`]); Updates and
/// Resolutions get their own Message-ID and `In-Reply-To`/`References` pointing at it, so
/// mail clients thread one incident's messages together.
pub fn message(
    kind: NotificationKind,
    inc: &Incident,
    text: &str,
    from: &str,
    to: &[String],
    now: DateTime<Utc>,
) -> String {
    let (head, _) = split_heading(text);
    let head = if head.is_empty() {
        default_heading(kind, inc)
    } else {
        head.to_owned()
    };
    let domain = mail_domain(from);
    let thread = thread_id(inc, from);
    let message_id = match kind {
        NotificationKind::Initial => thread.clone(),
        _ => {
            let digest = Sha256::digest(text.as_bytes());
            let tag: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
            format!(
                "<tapio.{}.{}.{}.{tag}@{domain}>",
                inc.id,
                kind,
                now.timestamp_millis()
            )
        }
    };
    let mut headers = vec![
        format!("Date: {}", now.to_rfc2822()),
        address_header("From", &[from.to_owned()]),
        address_header("To", to),
        unstructured_header("Subject", &format!("[{}] {}", inc.severity, head)),
        format!("Message-ID: {message_id}"),
    ];
    if kind != NotificationKind::Initial {
        headers.push(format!("In-Reply-To: {thread}"));
        headers.push(format!("References: {thread}"));
    }
    headers.extend([
        "MIME-Version: 1.0".to_owned(),
        "Content-Type: text/plain; charset=utf-8".to_owned(),
        "Content-Transfer-Encoding: 8bit".to_owned(),
        "Auto-Submitted: auto-generated".to_owned(),
        format!("X-Tapio-Incident: {}", inc.id),
    ]);
    let mut msg = headers.join("\r\n");
    msg.push_str("\r\n\r\n");
    for line in text.trim_end().split('\n') {
        for piece in wrap_line(line.trim_end_matches('\r'), EMAIL_MAX_LINE) {
            msg.push_str(piece);
            msg.push_str("\r\n");
        }
    }
    msg
}

/// Build this notification's message and submit it to the receiver's SMTP server. SMTP
/// 4xx replies and network failures are retried; 5xx replies are final.
pub fn send(
    cfg: &EmailCfg,
    timeout: Duration,
    kind: NotificationKind,
    inc: &Incident,
    text: &str,
    now: DateTime<Utc>,
) -> Sent {
    let msg = message(kind, inc, text, &cfg.from, &cfg.to, now);
    match smtp::send(cfg, timeout, &msg) {
        Ok(()) => Sent::Ok,
        Err(smtp::SmtpError::Temporary(e)) => Sent::Retry(e, None),
        Err(smtp::SmtpError::Permanent(e)) => Sent::Refused(e),
    }
}

#[cfg(test)]
mod tests {
    // Test code: unwrap failures are the test failing.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::fixtures::*;

    fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
        let head = msg.split("\r\n\r\n").next().unwrap();
        head.split("\r\n")
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
    }

    #[test]
    fn email_headers_and_crlf() {
        let inc = confident();
        let text = render(NotificationKind::Initial, &inc, &ctx());
        let to = vec![
            "oncall@example.com".to_owned(),
            "Ops Team <ops@example.com>".to_owned(),
        ];
        let m = message(
            NotificationKind::Initial,
            &inc,
            &text,
            "Tapio <tapio@alerts.example.com>",
            &to,
            t(60),
        );
        // CRLF only.
        assert!(!m.replace("\r\n", "").contains(['\r', '\n']));
        assert!(m.ends_with("\r\n"));
        assert_eq!(header(&m, "Date"), Some("Thu, 1 Jan 2026 10:01:00 +0000"));
        assert_eq!(
            header(&m, "From"),
            Some("\"Tapio\" <tapio@alerts.example.com>")
        );
        assert_eq!(
            header(&m, "To"),
            Some("oncall@example.com, \"Ops Team\" <ops@example.com>")
        );
        assert_eq!(header(&m, "MIME-Version"), Some("1.0"));
        assert_eq!(
            header(&m, "Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(header(&m, "Content-Transfer-Encoding"), Some("8bit"));
        let thread = format!("<tapio.{}@alerts.example.com>", inc.id);
        assert_eq!(header(&m, "Message-ID"), Some(thread.as_str()));
        assert_eq!(header(&m, "In-Reply-To"), None);

        // Subject: non-ASCII → RFC 2047 encoded-words, folded; decodes back.
        let head = m.split("\r\n\r\n").next().unwrap();
        let subject_start = head.find("Subject: ").unwrap();
        let subject: Vec<&str> = head[subject_start + 9..]
            .split("\r\n")
            .take_while(|l| !l.contains(": ") || l.starts_with(' '))
            .collect();
        let mut decoded = Vec::new();
        for (i, w) in subject.iter().enumerate() {
            let w = if i == 0 {
                *w
            } else {
                w.strip_prefix(' ').unwrap()
            };
            assert!(
                w.len() <= 75 && w.starts_with("=?UTF-8?B?") && w.ends_with("?="),
                "{w}"
            );
            decoded.extend(decode_b64(&w[10..w.len() - 2]));
        }
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "[P1] 🚨 INCIDENT: P1 - checkout is crash-looping (OOMKilled)"
        );
        // The body is the text, CRLF.
        let body = m.split_once("\r\n\r\n").unwrap().1;
        assert_eq!(body, format!("{}\r\n", text.replace('\n', "\r\n")));

        // An update threads under the initial message.
        let text = render(NotificationKind::Update, &inc, &ctx());
        let u = message(
            NotificationKind::Update,
            &inc,
            &text,
            "tapio@alerts.example.com",
            &to,
            t(900),
        );
        assert_eq!(header(&u, "In-Reply-To"), Some(thread.as_str()));
        assert_eq!(header(&u, "References"), Some(thread.as_str()));
        let id = header(&u, "Message-ID").unwrap();
        assert_ne!(id, thread);
        assert!(
            id.starts_with('<') && id.ends_with("@alerts.example.com>"),
            "{id}"
        );
    }

    #[test]
    fn email_ascii_subject_folds_and_long_lines_wrap() {
        let mut inc = unsure();
        inc.title = "word ".repeat(40);
        let text = format!("INCIDENT {}\n{}\nend", inc.title.trim(), "z".repeat(2500));
        let m = message(
            NotificationKind::Initial,
            &inc,
            &text,
            "Hälytys <tapio@example.com>",
            &["a@example.com".to_owned()],
            t(0),
        );
        for line in m.split("\r\n") {
            assert!(line.len() <= EMAIL_MAX_LINE, "{}", line.len());
        }
        let head = m.split("\r\n\r\n").next().unwrap();
        assert!(head.contains("Subject: [P2] INCIDENT word word"), "{head}");
        assert!(head.contains("\r\n word"), "{head}");
        for line in head.split("\r\n") {
            assert!(line.len() <= EMAIL_FOLD_AT, "{line}");
        }
        assert!(
            header(&m, "From")
                .unwrap()
                .starts_with("=?UTF-8?B?SMOkbHl0eXM=?= <tapio@example.com>"),
            "{m}"
        );
        // Header injection is neutralised.
        let m = message(
            NotificationKind::Initial,
            &inc,
            "x",
            "a@example.com\r\nBcc: evil@example.com",
            &["b@example.com".to_owned()],
            t(0),
        );
        assert!(!m.contains("\r\nBcc:"), "{m}");
    }

    fn decode_b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(b64(raw.as_bytes()), enc);
        }
    }
}
