//! Request-level bounds (issue 15), as small pure functions the handlers call with one
//! line: the body's `Content-Type`, control characters in people's text, the longest
//! silence. Value bounds of the wire types live in `tapio_proto::bounds`.

use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, Utc};

use crate::error::ApiError;

/// Error codes of refusals counted in `tapio_input_refused_total{reason}` (by
/// `http::track`, from the answer's `error::Refused` marker).
pub const COUNTED_CODES: &[&str] = &[
    "unsupported_media_type",
    "invalid_id",
    "control_character",
    "silence_too_long",
    "timestamp_too_old",
    "out_of_range",
];

/// A JSON body's `Content-Type`: absent is accepted (older agents and scripts send
/// none), `application/json` and any `+json` type are accepted; anything else — notably
/// `text/plain` and form encodings, which a browser page may send to another site
/// without asking — is 415 naming the type.
pub fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(v) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let raw = v.to_str().unwrap_or("(not text)");
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if json {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "Content-Type {:?} is not accepted here: the body must be JSON, sent with \
             Content-Type: application/json (e.g. curl -H 'content-type: application/json')",
            raw.chars().take(100).collect::<String>()
        ),
    ))
}

/// Fields whose text may span lines (notes, comments, descriptions, reasons).
const MULTILINE_FIELDS: &[&str] = &["text", "note", "comment", "description", "reason"];

/// Every string of a JSON body people wrote (declare, notes, actions, silences): no NUL,
/// no terminal escapes, no other control characters; line breaks only in multi-line
/// fields. A body that is not JSON is left to the decoder (its error is better).
pub fn check_body_text(bytes: &[u8], what: &str) -> Result<(), ApiError> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    check_value(&v, "", false).map_err(|(path, message)| {
        ApiError::bad_request(
            "control_character",
            Some(&path),
            format!("{what} body: {message}"),
        )
    })
}

fn check_value(v: &serde_json::Value, path: &str, multiline: bool) -> Result<(), (String, String)> {
    match v {
        serde_json::Value::String(s) => {
            tapio_proto::bounds::check_text(path, s, multiline).map_err(|m| (path.to_owned(), m))
        }
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| check_value(x, &format!("{path}[{i}]"), multiline)),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, x)| {
            tapio_proto::bounds::check_text(path, k, false).map_err(|m| (path.to_owned(), m))?;
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            check_value(x, &p, MULTILINE_FIELDS.contains(&k.as_str()))
        }),
        _ => Ok(()),
    }
}

/// A new silence must end within `tapio_proto::bounds::max_silence()` (90 days).
pub fn check_silence_end(ends_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), ApiError> {
    tapio_proto::bounds::check_silence_until("ends_at", ends_at, now)
        .map_err(|m| ApiError::bad_request("silence_too_long", Some("ends_at"), m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ct(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(v).expect("header"),
        );
        h
    }

    #[test]
    fn content_type_must_be_json_when_present() {
        assert!(check_json_content_type(&HeaderMap::new()).is_ok());
        assert!(check_json_content_type(&ct("application/json")).is_ok());
        assert!(check_json_content_type(&ct("Application/JSON; charset=utf-8")).is_ok());
        assert!(check_json_content_type(&ct("application/merge-patch+json")).is_ok());
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
        ] {
            let e = check_json_content_type(&ct(bad)).expect_err(bad);
            assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert!(e.message.contains(bad) && e.message.contains("application/json"));
        }
    }

    #[test]
    fn control_characters_in_people_text_refused() {
        assert!(check_body_text(br#"{"title":"db down","description":"a\nb"}"#, "declare").is_ok());
        let e = check_body_text(br#"{"title":"db\u0000down"}"#, "declare").expect_err("nul");
        assert_eq!(e.field.as_deref(), Some("title"));
        let e = check_body_text(br#"{"text":"\u001b]0;pwned\u0007"}"#, "note").expect_err("esc");
        assert_eq!(e.code, "control_character");
        let e = check_body_text(
            br#"{"matchers":{"labels":["a\u001bb"]},"comment":"ok\nfine"}"#,
            "silence",
        )
        .expect_err("nested");
        assert_eq!(e.field.as_deref(), Some("matchers.labels[0]"));
        assert!(check_body_text(b"not json", "note").is_ok());
    }
}
