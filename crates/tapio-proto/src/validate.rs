//! Strict decoding of untrusted bodies: every rejection names the offending field and value.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::SingleEvent;
use crate::envelope::{AttrValue, Entity, Event, EvidenceBatch, SUPPORTED_ENVELOPE_VERSIONS};

/// Bounds applied to decoded bodies (the byte size of a body is bounded by the server).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_events_per_batch: usize,
    /// How far in the future an event time may be (clock skew allowance).
    pub max_future_skew: Duration,
    pub max_attributes: usize,
    pub max_attr_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_events_per_batch: 10_000,
            max_future_skew: Duration::minutes(5),
            max_attributes: 64,
            max_attr_value_bytes: 4096,
        }
    }
}

/// Why a body was refused. `code` is stable for scripts; `message` is for people and
/// names the value and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    pub code: &'static str,
    pub field: Option<String>,
    pub message: String,
}

impl DecodeError {
    fn new(code: &'static str, field: Option<String>, message: String) -> Self {
        Self {
            code,
            field,
            message,
        }
    }
}

fn check_utf8(body: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(body).map_err(|e| {
        DecodeError::new(
            "invalid_utf8",
            None,
            format!(
                "body is not valid UTF-8 (bad byte sequence at offset {}); send JSON encoded as UTF-8",
                e.valid_up_to()
            ),
        )
    })
}

fn malformed(e: &serde_json::Error) -> DecodeError {
    DecodeError::new(
        "malformed_json",
        None,
        format!(
            "body is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ),
    )
}

fn typed<T: DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return malformed(&inner);
        }
        // serde_json appends " at line X column Y"; keep it, it helps with big bodies.
        DecodeError::new(
            "invalid_field",
            (path != ".").then(|| path.clone()),
            format!("field `{path}`: {inner}"),
        )
    })
}

fn require_object(text: &str) -> Result<(), DecodeError> {
    match text.trim_start().chars().next() {
        Some('{') => Ok(()),
        None => Err(DecodeError::new(
            "malformed_json",
            None,
            "body is empty; send a JSON object".into(),
        )),
        Some(c) => Err(DecodeError::new(
            "invalid_field",
            None,
            format!("body must be a JSON object, but starts with {c:?}"),
        )),
    }
}

#[derive(Deserialize)]
struct VersionProbe {
    version: Option<serde_json::Value>,
}

/// Decode and validate one evidence batch (the body of `POST /api/v1/evidence`, or one line
/// of a replay file).
pub fn decode_batch(
    body: &[u8],
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<EvidenceBatch, DecodeError> {
    let text = check_utf8(body)?;
    require_object(text)?;
    let probe: VersionProbe = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            DecodeError::new(
                "invalid_field",
                None,
                format!("body must be a JSON object (an evidence batch): {e}"),
            )
        } else {
            malformed(&e)
        }
    })?;
    let supported = SUPPORTED_ENVELOPE_VERSIONS
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    match probe.version {
        None => {
            return Err(DecodeError::new(
                "missing_field",
                Some("version".into()),
                format!(
                    "field `version` is missing; this server reads envelope versions {supported}"
                ),
            ));
        }
        Some(v) => {
            let ok = v.as_u64().is_some_and(|n| {
                SUPPORTED_ENVELOPE_VERSIONS
                    .iter()
                    .any(|s| u64::from(*s) == n)
            });
            if !ok {
                return Err(DecodeError::new(
                    "unsupported_version",
                    Some("version".into()),
                    format!(
                        "envelope version {v} is not supported; this server reads versions {supported} \
                         (upgrade the server, or roll the sender back)"
                    ),
                ));
            }
        }
    }
    let batch: EvidenceBatch = typed(text)?;
    // A sender whose clock runs ahead stamps `sent_at` from that same clock: the future
    // allowance is measured on its time line, up to `SENDER_CLOCK_ALLOWANCE` (the server
    // then moves its evidence onto its own time line and dates nothing after its arrival,
    // so this trusts no future time).
    let now = match batch.sent_at {
        Some(sent) if sent > now && sent - now <= SENDER_CLOCK_ALLOWANCE => sent,
        _ => now,
    };
    validate_batch(&batch, now, limits)?;
    Ok(batch)
}

/// How far ahead a sender's own clock (its `sent_at`) may be for its batch's event times to
/// be judged against it rather than against the server's clock.
pub const SENDER_CLOCK_ALLOWANCE: Duration = Duration::hours(1);

fn check_name(field: &str, value: &str, max: usize) -> Result<(), DecodeError> {
    if value.trim().is_empty() {
        return Err(DecodeError::new(
            "invalid_field",
            Some(field.into()),
            format!("field `{field}` must not be empty"),
        ));
    }
    if value.len() > max || value.chars().any(char::is_control) {
        return Err(DecodeError::new(
            "invalid_field",
            Some(field.into()),
            format!(
                "field `{field}` value {:?} is not a valid name (at most {max} bytes, no control characters)",
                crate::text::cut_bytes_marked(value, 80)
            ),
        ));
    }
    Ok(())
}

pub(crate) fn validate_batch(
    batch: &EvidenceBatch,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<(), DecodeError> {
    check_name("agent_id", &batch.agent_id, 253)?;
    check_name("node", &batch.node, 253)?;
    if batch.seq == 0 {
        return Err(DecodeError::new(
            "invalid_field",
            Some("seq".into()),
            "field `seq` is 0; batch sequences start at 1 and increase by one per batch".into(),
        ));
    }
    if i64::try_from(batch.seq).is_err() {
        return Err(DecodeError::new(
            "invalid_field",
            Some("seq".into()),
            format!(
                "field `seq` is {}; the largest supported sequence is {}",
                batch.seq,
                i64::MAX
            ),
        ));
    }
    if batch.events.len() > limits.max_events_per_batch {
        return Err(DecodeError::new(
            "too_many_events",
            Some("events".into()),
            format!(
                "batch holds {} events; the limit is {} per batch: split it",
                batch.events.len(),
                limits.max_events_per_batch
            ),
        ));
    }
    for (i, ev) in batch.events.iter().enumerate() {
        validate_event(&format!("events[{i}]"), ev, now, limits)?;
    }
    Ok(())
}

fn validate_entity(prefix: &str, e: &Entity) -> Result<(), DecodeError> {
    let fields = [
        ("cluster", &e.cluster),
        ("node", &e.node),
        ("namespace", &e.namespace),
        ("pod", &e.pod),
        ("pod_uid", &e.pod_uid),
        ("container", &e.container),
        ("container_id", &e.container_id),
        ("service", &e.service),
    ];
    for (name, v) in fields {
        if let Some(v) = v {
            check_name(&format!("{prefix}.entity.{name}"), v, 253)?;
        }
    }
    if let Some(w) = &e.workload {
        check_name(&format!("{prefix}.entity.workload.kind"), &w.kind, 63)?;
        check_name(&format!("{prefix}.entity.workload.name"), &w.name, 253)?;
    }
    Ok(())
}

fn validate_event(
    prefix: &str,
    ev: &Event,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<(), DecodeError> {
    // A skew so large that it overflows the calendar disables the check.
    let latest = now.checked_add_signed(limits.max_future_skew);
    if latest.is_some_and(|latest| ev.time > latest) {
        return Err(DecodeError::new(
            "timestamp_in_future",
            Some(format!("{prefix}.time")),
            format!(
                "field `{prefix}.time` is {} but the server clock reads {}: more than {} s ahead. \
                 Fix the sender's clock (NTP) or the timestamp",
                ev.time.to_rfc3339(),
                now.to_rfc3339(),
                limits.max_future_skew.num_seconds()
            ),
        ));
    }
    crate::bounds::check_time_floor(&format!("{prefix}.time"), ev.time)
        .map_err(|m| DecodeError::new("timestamp_too_old", Some(format!("{prefix}.time")), m))?;
    validate_entity(prefix, &ev.entity)?;
    validate_attributes(prefix, &ev.attributes, limits)?;
    validate_object(prefix, ev)
}

/// Largest Kubernetes object carried by one state event (serialized).
pub const MAX_OBJECT_BYTES: usize = 512 * 1024;

/// `object` is only for `kubernetes.watch.*` state events, and must look like a
/// Kubernetes object (a JSON object with a `kind` string).
fn validate_object(prefix: &str, ev: &Event) -> Result<(), DecodeError> {
    let is_watch = ev.kind.as_str().starts_with("kubernetes.watch.");
    let Some(obj) = &ev.object else {
        if is_watch {
            return Err(DecodeError::new(
                "missing_field",
                Some(format!("{prefix}.object")),
                format!(
                    "a `{}` event needs the Kubernetes object in `{prefix}.object`",
                    ev.kind.as_str()
                ),
            ));
        }
        return Ok(());
    };
    if !is_watch {
        return Err(DecodeError::new(
            "invalid_field",
            Some(format!("{prefix}.object")),
            format!(
                "`{prefix}.object` is only allowed on kubernetes.watch.added|modified|deleted events, not {}",
                ev.kind.as_str()
            ),
        ));
    }
    if !matches!(ev.kind.anomaly(), "added" | "modified" | "deleted") {
        return Err(DecodeError::new(
            "invalid_field",
            Some(format!("{prefix}.type")),
            format!(
                "state event type {} is not one of kubernetes.watch.added, kubernetes.watch.modified, kubernetes.watch.deleted",
                ev.kind.as_str()
            ),
        ));
    }
    if obj.get("kind").and_then(|k| k.as_str()).is_none() {
        return Err(DecodeError::new(
            "invalid_field",
            Some(format!("{prefix}.object.kind")),
            format!("`{prefix}.object` must be a Kubernetes object with a `kind` string"),
        ));
    }
    let size = serde_json::to_vec(obj)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_OBJECT_BYTES {
        return Err(DecodeError::new(
            "invalid_field",
            Some(format!("{prefix}.object")),
            format!("`{prefix}.object` is {size} bytes; the limit is {MAX_OBJECT_BYTES}"),
        ));
    }
    Ok(())
}

fn validate_attributes(
    prefix: &str,
    attrs: &std::collections::BTreeMap<String, AttrValue>,
    limits: &Limits,
) -> Result<(), DecodeError> {
    if attrs.len() > limits.max_attributes {
        return Err(DecodeError::new(
            "too_many_attributes",
            Some(format!("{prefix}.attributes")),
            format!(
                "field `{prefix}.attributes` holds {} keys; the limit is {}",
                attrs.len(),
                limits.max_attributes
            ),
        ));
    }
    for (k, v) in attrs {
        let key_ok = !k.is_empty()
            && k.len() <= 64
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if !key_ok {
            return Err(DecodeError::new(
                "invalid_field",
                Some(format!("{prefix}.attributes")),
                format!(
                    "attribute key {:?} in `{prefix}.attributes` is invalid: use 1-64 characters of a-z, 0-9, _ and .",
                    crate::text::cut_bytes_marked(k, 80)
                ),
            ));
        }
        if let Some(n) = crate::bounds::attr_number(k, v) {
            let field = format!("{prefix}.attributes.{k}");
            crate::bounds::check_number(&field, k, n)
                .map_err(|m| DecodeError::new("out_of_range", Some(field), m))?;
        }
        if let AttrValue::String(s) = v
            && s.len() > limits.max_attr_value_bytes
        {
            return Err(DecodeError::new(
                "invalid_field",
                Some(format!("{prefix}.attributes.{k}")),
                format!(
                    "attribute `{prefix}.attributes.{k}` is {} bytes; the limit is {}",
                    s.len(),
                    limits.max_attr_value_bytes
                ),
            ));
        }
    }
    Ok(())
}

/// Decode one event for `POST /api/v1/events`, filling in id and time when absent.
pub fn decode_single_event(
    body: &[u8],
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<(Event, String), DecodeError> {
    let text = check_utf8(body)?;
    require_object(text)?;
    let single: SingleEvent = typed(text)?;
    let producer = single.producer.unwrap_or_else(|| "api".to_owned());
    check_name("producer", &producer, 253)?;
    let ev = Event {
        // Not `unwrap_or_default`: the default ULID is the nil id, not a fresh one.
        id: match single.id {
            Some(id) => id,
            None => ulid::Ulid::new(),
        },
        time: single.time.unwrap_or(now),
        kind: single.kind,
        severity: single.severity,
        entity: single.entity,
        attributes: single.attributes,
        object: single.object,
    };
    validate_event("", &ev, now, limits).map_err(|mut e| {
        // Fields of a single event have no `events[i]` prefix.
        e.field = e.field.map(|f| f.trim_start_matches('.').to_owned());
        e.message = e.message.replace("`.", "`");
        e
    })?;
    Ok((ev, producer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-27T10:00:00Z".parse().expect("valid")
    }

    fn batch_json(extra_event: &str) -> String {
        format!(
            r#"{{"version":1,"agent_id":"agent-a","node":"n1","seq":1,"events":[{extra_event}]}}"#
        )
    }

    const GOOD_EVENT: &str = r#"{"id":"01JDQ7ZJ8W3XG5M8F9N0P1Q2R3","time":"2026-11-27T09:59:00Z","type":"kernel.container.oom_kill","severity":"critical","entity":{"namespace":"shop","pod":"api-1"},"attributes":{"pid":42,"comm":"java"}}"#;

    #[test]
    fn good_batch_decodes() {
        let b = decode_batch(batch_json(GOOD_EVENT).as_bytes(), now(), &Limits::default())
            .expect("valid batch");
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.events[0].kind.source(), "kernel");
        assert_eq!(b.events[0].attr_f64("pid"), Some(42.0));
    }

    #[test]
    fn wrong_type_names_the_field() {
        let body = batch_json(GOOD_EVENT).replace(r#""seq":1"#, r#""seq":"one""#);
        let e = decode_batch(body.as_bytes(), now(), &Limits::default()).expect_err("bad seq");
        assert_eq!(e.code, "invalid_field");
        assert_eq!(e.field.as_deref(), Some("seq"));
        assert!(e.message.contains("one"), "{}", e.message);
    }

    #[test]
    fn bad_event_type_names_the_value() {
        let body = batch_json(&GOOD_EVENT.replace("kernel.container.oom_kill", "OOM"));
        let e = decode_batch(body.as_bytes(), now(), &Limits::default()).expect_err("bad type");
        assert_eq!(e.field.as_deref(), Some("events[0].type"));
        assert!(e.message.contains("\"OOM\""), "{}", e.message);
    }

    #[test]
    fn unknown_version_is_refused() {
        let body = batch_json(GOOD_EVENT).replace(r#""version":1"#, r#""version":7"#);
        let e = decode_batch(body.as_bytes(), now(), &Limits::default()).expect_err("v7");
        assert_eq!(e.code, "unsupported_version");
        assert!(e.message.contains('7'));
    }

    #[test]
    fn future_timestamp_is_refused() {
        let body = batch_json(&GOOD_EVENT.replace("2026-11-27T09:59:00Z", "2027-01-01T00:00:00Z"));
        let e = decode_batch(body.as_bytes(), now(), &Limits::default()).expect_err("future");
        assert_eq!(e.code, "timestamp_in_future");
        assert_eq!(e.field.as_deref(), Some("events[0].time"));
    }

    #[test]
    fn invalid_utf8_and_malformed_json() {
        let e = decode_batch(b"{\"version\":1,\xff}", now(), &Limits::default()).expect_err("utf8");
        assert_eq!(e.code, "invalid_utf8");
        let e = decode_batch(b"{\"version\":1,", now(), &Limits::default()).expect_err("json");
        assert_eq!(e.code, "malformed_json");
        let e = decode_batch(b"[1,2]", now(), &Limits::default()).expect_err("array");
        assert_eq!(e.code, "invalid_field");
    }

    #[test]
    fn seq_beyond_store_range_refused() {
        let body = batch_json(GOOD_EVENT).replace(r#""seq":1"#, r#""seq":18446744073709551615"#);
        let e = decode_batch(body.as_bytes(), now(), &Limits::default()).expect_err("huge");
        assert_eq!(e.field.as_deref(), Some("seq"));
    }

    #[test]
    fn seq_zero_and_empty_agent_refused() {
        let body = batch_json(GOOD_EVENT).replace(r#""seq":1"#, r#""seq":0"#);
        let e = decode_batch(body.as_bytes(), now(), &Limits::default()).expect_err("seq 0");
        assert_eq!(e.field.as_deref(), Some("seq"));
        let body = batch_json(GOOD_EVENT).replace(r#""agent-a""#, r#""""#);
        let e = decode_batch(body.as_bytes(), now(), &Limits::default()).expect_err("agent");
        assert_eq!(e.field.as_deref(), Some("agent_id"));
    }

    #[test]
    fn nested_attribute_refused() {
        let body = batch_json(&GOOD_EVENT.replace(r#""pid":42"#, r#""pid":{"a":1}"#));
        let e = decode_batch(body.as_bytes(), now(), &Limits::default()).expect_err("nested");
        assert_eq!(e.field.as_deref(), Some("events[0].attributes.pid"));
    }

    /// Out-of-range values are refused naming the field: a ratio of -5 or 1e308, a
    /// year-0001 time, an overflowing event id.
    #[test]
    fn out_of_range_values_refused() {
        for bad in ["-5", "1e308", "1.5"] {
            let body =
                batch_json(&GOOD_EVENT.replace(r#""pid":42"#, &format!(r#""error_ratio":{bad}"#)));
            let e = decode_batch(body.as_bytes(), now(), &Limits::default()).expect_err(bad);
            assert_eq!(e.code, "out_of_range", "{bad}");
            assert_eq!(e.field.as_deref(), Some("events[0].attributes.error_ratio"));
        }
        let body = batch_json(&GOOD_EVENT.replace(r#""pid":42"#, r#""error_ratio":0.25"#));
        decode_batch(body.as_bytes(), now(), &Limits::default()).expect("in range");
        let body = batch_json(&GOOD_EVENT.replace("2026-11-27T09:59:00Z", "0001-01-01T00:00:00Z"));
        let e = decode_batch(body.as_bytes(), now(), &Limits::default()).expect_err("year 1");
        assert_eq!(e.code, "timestamp_too_old");
        assert_eq!(e.field.as_deref(), Some("events[0].time"));
        let body = batch_json(
            &GOOD_EVENT.replace("01JDQ7ZJ8W3XG5M8F9N0P1Q2R3", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
        );
        let e = decode_batch(body.as_bytes(), now(), &Limits::default()).expect_err("overflow");
        assert_eq!(e.field.as_deref(), Some("events[0].id"));
        let e = decode_single_event(
            br#"{"id":"8ZZZZZZZZZZZZZZZZZZZZZZZZZ","type":"change.deployment.rollout"}"#,
            now(),
            &Limits::default(),
        )
        .expect_err("overflow");
        assert_eq!(e.field.as_deref(), Some("id"));
    }

    #[test]
    fn single_event_fills_id_and_time() {
        let (ev, producer) = decode_single_event(
            br#"{"type":"change.deployment.rollout","entity":{"namespace":"shop","workload":{"kind":"Deployment","name":"api"}},"producer":"ci"}"#,
            now(),
            &Limits::default(),
        )
        .expect("valid");
        assert_eq!(ev.time, now());
        assert_eq!(ev.severity, crate::EventSeverity::Info);
        assert_eq!(producer, "ci");
        let e = decode_single_event(
            br#"{"type":"change.deployment.rollout","time":"2030-01-01T00:00:00Z"}"#,
            now(),
            &Limits::default(),
        )
        .expect_err("future");
        assert_eq!(e.field.as_deref(), Some("time"));
    }
}
