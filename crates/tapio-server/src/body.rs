//! Request bodies, read the one careful way: bounded in size (also after gzip), whole
//! within a deadline and without long pauses. Used by the handlers and by admission
//! control (`crate::security::protect`), which reads bodies before they take a slot.

use std::io::Read;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;

use crate::error::ApiError;

/// Read the whole body, bounded, decompressing gzip. The bound applies to the
/// decompressed size too, so a small gzip bomb is refused like a large body.
pub async fn read_body(headers: &HeaderMap, body: Body, max: usize) -> Result<Vec<u8>, ApiError> {
    let raw = collect_body(headers, body, max).await?;
    decode_body(content_encoding(headers).as_deref(), &raw, max)
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "request body exceeds {max} bytes (after decompression); split the batch, \
             or raise --max-body-bytes / TAPIO_MAX_BODY_BYTES"
        ),
    )
}

/// The body as sent (at most `max` bytes).
pub async fn collect_body(
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<axum::body::Bytes, ApiError> {
    crate::security::bounds::check_json_content_type(headers)?;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > max
    {
        return Err(too_large(max));
    }
    collect_timed(body, max, BODY_READ_TIMEOUT).await
}

/// A request body must arrive whole within this (`--body-read-timeout` in admission).
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// ... and never pause longer than this between two pieces.
pub const BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The body, at most `max` bytes, arriving whole within `total` and with no pause over
/// [`BODY_IDLE_TIMEOUT`]: a client trickling its body gets 408 naming the limit.
pub async fn collect_timed(
    body: Body,
    max: usize,
    total: std::time::Duration,
) -> Result<axum::body::Bytes, ApiError> {
    let timeout = |what: String| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_read_timeout",
            what + "; send the body at once (the server does not wait for slow uploads)",
        )
    };
    let deadline = tokio::time::Instant::now() + total;
    let mut body = http_body_util::Limited::new(body, max);
    let mut out: Vec<u8> = Vec::new();
    loop {
        let idle =
            BODY_IDLE_TIMEOUT.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Ok(f) => f,
            Err(_) if tokio::time::Instant::now() >= deadline => {
                return Err(timeout(format!(
                    "the request body did not arrive within {} s (--body-read-timeout)",
                    total.as_secs()
                )));
            }
            Err(_) => {
                return Err(timeout(format!(
                    "the request body paused for over {} s",
                    BODY_IDLE_TIMEOUT.as_secs()
                )));
            }
        };
        match frame {
            None => return Ok(axum::body::Bytes::from(out)),
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Some(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(too_large(max));
            }
            Some(Err(e)) => {
                return Err(ApiError::bad_request(
                    "body_read_failed",
                    None,
                    format!("reading the request body failed: {e}"),
                ));
            }
        }
    }
}

pub fn content_encoding(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase())
}

/// Undo `Content-Encoding` (CPU work: run it through `protect::cpu` on hot paths).
pub fn decode_body(encoding: Option<&str>, raw: &[u8], max: usize) -> Result<Vec<u8>, ApiError> {
    match encoding {
        None | Some("identity") | Some("") => Ok(raw.to_vec()),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::new();
            let mut dec = flate2::read::GzDecoder::new(raw).take(max as u64 + 1);
            dec.read_to_end(&mut out).map_err(|e| {
                ApiError::bad_request(
                    "invalid_gzip",
                    None,
                    format!("Content-Encoding is gzip but the body does not decompress: {e}"),
                )
            })?;
            if out.len() > max {
                return Err(too_large(max));
            }
            Ok(out)
        }
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!("Content-Encoding {other:?} is not supported; send identity or gzip"),
        )),
    }
}
