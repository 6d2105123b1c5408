//! Alertmanager's webhook payload, mapped to evidence (the handler is
//! `crate::api::alertmanager`).
//!
//! Alertmanager posts a webhook payload (version `"4"`) per notification of an alert group.
//! Every alert in it becomes one evidence event, `alert.prometheus.firing` or
//! `alert.prometheus.resolved`, stored through the same path as agent evidence. The event id
//! is derived from the alert's identity (fingerprint, status, start, and end once resolved),
//! so the re-notifications Alertmanager sends every `repeat_interval` and on every group
//! change are recognised by the store's event-id dedupe: one alert, one signal.
//!
//! The mapping ([`decode`], [`to_events`]) is pure.
//! See "Alerts from Alertmanager" in docs/evidence-format.md.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use tapio_proto::text::cut_bytes;
use tapio_proto::{
    AttrValue, DecodeError, Entity, Event, EventSeverity, EventType, Limits, WorkloadRef,
};
use ulid::Ulid;

/// The only webhook payload version this receiver reads.
pub const WEBHOOK_VERSION: &str = "4";
/// Stored sender identity: `alertmanager:<receiver>`.
pub const AGENT_PREFIX: &str = "alertmanager:";
/// Longest receiver name (so the sender identity stays within 253 bytes).
const MAX_RECEIVER_BYTES: usize = 253 - AGENT_PREFIX.len();
/// Longest value kept for an entity part (as the evidence format allows).
const MAX_NAME_BYTES: usize = 253;
/// Longest attribute key.
const MAX_KEY_BYTES: usize = 64;
/// Labels or annotations parsed as numbers when they hold one.
const NUMERIC_KEYS: &[&str] = &[
    "error_ratio",
    "p99_latency_seconds",
    "latency_seconds",
    "value",
];
/// Attributes the classifier opens incidents from on any event type. A resolved alert does
/// not carry them: the condition they describe has ended, and carrying them would page on
/// the recovery.
const CLASSIFYING_KEYS: &[&str] = &[
    "priority",
    "error_ratio",
    "p99_latency_seconds",
    "latency_seconds",
];
/// Annotations kept as text attributes.
const TEXT_ANNOTATIONS: &[&str] = &["summary", "description", "runbook_url"];
/// Labels that name the entity, in the order they are read.
const WORKLOAD_LABELS: &[(&str, &str)] = &[
    ("deployment", "Deployment"),
    ("statefulset", "StatefulSet"),
    ("daemonset", "DaemonSet"),
    ("job_name", "Job"),
];

/// An alert's status, or a notification's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// The webhook payload, version 4. Fields this receiver does not know are ignored
/// (Alertmanager adds fields over time); the ones it reads are checked strictly.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub version: String,
    #[serde(default, deserialize_with = "null_default")]
    pub group_key: String,
    #[serde(default, deserialize_with = "null_default")]
    pub truncated_alerts: u64,
    pub status: AlertStatus,
    pub receiver: String,
    #[serde(default, deserialize_with = "null_default")]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_default")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_default")]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL", deserialize_with = "null_default")]
    pub external_url: String,
    pub alerts: Vec<Alert>,
}

/// One alert of a notification.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: AlertStatus,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_default")]
    pub annotations: BTreeMap<String, String>,
    #[serde(deserialize_with = "time")]
    pub starts_at: DateTime<Utc>,
    /// Go's zero time (`0001-01-01T00:00:00Z`) when not set.
    #[serde(default, deserialize_with = "optional_time")]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "generatorURL", deserialize_with = "null_default")]
    pub generator_url: String,
    /// Alertmanager's hash of the labels; derived here the same way when absent.
    #[serde(default, deserialize_with = "null_default")]
    pub fingerprint: String,
}

/// Go encodes a nil map or an unset string as `null`: read it as empty.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An RFC 3339 time; a refusal quotes the value.
fn time<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    parse_time(&s).map_err(serde::de::Error::custom)
}

fn optional_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| parse_time(&s))
        .transpose()
        .map_err(serde::de::Error::custom)
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{:?} is not an RFC 3339 time ({e})", cut_bytes(s, 80)))
}

fn err(code: &'static str, field: Option<&str>, message: String) -> DecodeError {
    DecodeError {
        code,
        field: field.map(str::to_owned),
        message,
    }
}

fn malformed(e: &serde_json::Error) -> DecodeError {
    err(
        "malformed_json",
        None,
        format!(
            "body is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ),
    )
}

#[derive(Deserialize)]
struct VersionProbe {
    version: Option<serde_json::Value>,
}

/// Decode a webhook payload strictly: version `"4"`, every field this receiver reads of
/// the right type. Errors name the field (as a JSON path, e.g. `alerts[0].startsAt`) and
/// the value.
pub fn decode(body: &[u8], limits: &Limits) -> Result<Webhook, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        err(
            "invalid_utf8",
            None,
            format!(
                "body is not valid UTF-8 (bad byte sequence at offset {}); send JSON encoded as UTF-8",
                e.valid_up_to()
            ),
        )
    })?;
    if text.trim().is_empty() {
        return Err(err(
            "malformed_json",
            None,
            "body is empty; send an Alertmanager webhook payload (a JSON object)".into(),
        ));
    }
    let probe: VersionProbe = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            err(
                "invalid_field",
                None,
                format!("body must be a JSON object (an Alertmanager webhook payload): {e}"),
            )
        } else {
            malformed(&e)
        }
    })?;
    match probe.version {
        None => {
            return Err(err(
                "missing_field",
                Some("version"),
                format!(
                    "field `version` is missing; this receiver reads Alertmanager webhook payloads \
                     of version \"{WEBHOOK_VERSION}\""
                ),
            ));
        }
        Some(serde_json::Value::String(v)) if v == WEBHOOK_VERSION => {}
        Some(v) => {
            return Err(err(
                "unsupported_version",
                Some("version"),
                format!(
                    "webhook payload version {v} is not supported; this receiver reads version \
                     \"{WEBHOOK_VERSION}\" (Alertmanager 0.x webhook_configs)"
                ),
            ));
        }
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    let hook: Webhook = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return malformed(&inner);
        }
        err(
            "invalid_field",
            (path != ".").then_some(path.as_str()),
            format!("field `{path}`: {inner}"),
        )
    })?;
    if hook.receiver.trim().is_empty()
        || hook.receiver.len() > MAX_RECEIVER_BYTES
        || hook.receiver.chars().any(char::is_control)
    {
        return Err(err(
            "invalid_field",
            Some("receiver"),
            format!(
                "field `receiver` value {:?} is not a valid receiver name (1-{MAX_RECEIVER_BYTES} bytes, no control characters)",
                cut_bytes(&hook.receiver, 80)
            ),
        ));
    }
    if hook.alerts.len() > limits.max_events_per_batch {
        return Err(err(
            "too_many_events",
            Some("alerts"),
            format!(
                "payload holds {} alerts; the limit is {} per notification (set max_alerts in the webhook config)",
                hook.alerts.len(),
                limits.max_events_per_batch
            ),
        ));
    }
    Ok(hook)
}

/// Map every alert of a payload to one evidence event.
pub fn to_events(
    hook: &Webhook,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<Vec<Event>, DecodeError> {
    hook.alerts
        .iter()
        .enumerate()
        .map(|(i, a)| to_event(&format!("alerts[{i}]"), a, now, limits))
        .collect()
}

/// Map one alert to one evidence event. `prefix` names the alert in errors.
pub fn to_event(
    prefix: &str,
    alert: &Alert,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<Event, DecodeError> {
    // Year 0001 (Go's zero time) or 1970: unset, not when an alert started.
    if let Err(why) =
        tapio_proto::bounds::check_time_floor(&format!("{prefix}.startsAt"), alert.starts_at)
    {
        return Err(err(
            "invalid_field",
            Some(&format!("{prefix}.startsAt")),
            format!("{why} (not a time an alert can start: unset?)"),
        ));
    }
    let ends_at = alert
        .ends_at
        .filter(|t| *t >= tapio_proto::bounds::min_time());
    let at = match alert.status {
        AlertStatus::Firing => alert.starts_at,
        AlertStatus::Resolved => ends_at.ok_or_else(|| {
            err(
                "invalid_field",
                Some(&format!("{prefix}.endsAt")),
                format!(
                    "field `{prefix}.endsAt` is {}: a resolved alert needs the time it ended",
                    alert
                        .ends_at
                        .map_or_else(|| "missing".to_owned(), |t| t.to_rfc3339())
                ),
            )
        })?,
    };
    // Never further ahead than the skew the evidence API accepts.
    let time = match now.checked_add_signed(limits.max_future_skew) {
        Some(latest) if at > latest => latest,
        _ => at,
    };
    let fingerprint = if alert.fingerprint.trim().is_empty() {
        label_fingerprint(&alert.labels)
    } else {
        alert.fingerprint.clone()
    };
    let (entity, consumed) = entity(&alert.labels);
    let attributes = attributes(alert, &fingerprint, &consumed, limits);
    let kind = EventType::parse(&format!("alert.prometheus.{}", alert.status.as_str()))
        .map_err(|e| err("invalid_field", Some(&format!("{prefix}.status")), e))?;
    Ok(Event {
        id: event_id(&fingerprint, alert.status, alert.starts_at, ends_at, at),
        time,
        kind,
        severity: severity(alert.labels.get("severity").map(String::as_str)),
        entity,
        attributes,
        object: None,
    })
}

/// The label `severity` as an event severity: critical; error/high; warning/warn;
/// info/none/low; anything else (or none) is a warning.
pub fn severity(label: Option<&str>) -> EventSeverity {
    match label.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Some("critical") => EventSeverity::Critical,
        Some("error" | "high") => EventSeverity::Error,
        Some("warning" | "warn") => EventSeverity::Warning,
        Some("info" | "none" | "low") => EventSeverity::Info,
        _ => EventSeverity::Warning,
    }
}

/// A deterministic event id for one state of one alert: the same alert re-notified maps
/// to the same id. The timestamp part is the alert time (start, or end once resolved), so
/// ids still sort by time; the random part is taken from a SHA-256 of the identity.
pub fn event_id(
    fingerprint: &str,
    status: AlertStatus,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Ulid {
    let canon = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let mut h = Sha256::new();
    h.update(b"tapio.alertmanager.v1\0");
    h.update(fingerprint.as_bytes());
    h.update(b"\0");
    h.update(status.as_str().as_bytes());
    h.update(b"\0");
    h.update(canon(starts_at).as_bytes());
    if status == AlertStatus::Resolved
        && let Some(end) = ends_at
    {
        h.update(b"\0");
        h.update(canon(end).as_bytes());
    }
    let digest = h.finalize();
    let mut random = [0u8; 16];
    random.copy_from_slice(&digest[..16]);
    let ms = at.timestamp_millis().clamp(0, (1i64 << 48) - 1);
    Ulid::from_parts(ms as u64, u128::from_be_bytes(random))
}

/// What Alertmanager's fingerprint stands for (a hash of the label set), for senders that
/// leave it out.
fn label_fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update(b"\xff");
        h.update(v.as_bytes());
        h.update(b"\xff");
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn valid_name(v: &str) -> bool {
    !v.trim().is_empty() && v.len() <= MAX_NAME_BYTES && !v.chars().any(char::is_control)
}

/// The entity the labels name, and the labels used for it (not repeated as attributes).
fn entity(labels: &BTreeMap<String, String>) -> (Entity, BTreeSet<&'static str>) {
    let mut used = BTreeSet::new();
    let mut take = |keys: &[&'static str]| -> Option<String> {
        keys.iter().find_map(|k| {
            let v = labels.get(*k).filter(|v| valid_name(v))?;
            used.insert(*k);
            Some(v.clone())
        })
    };
    let mut e = Entity {
        cluster: take(&["cluster"]),
        node: take(&["node", "kubernetes_node"]),
        namespace: take(&["namespace"]),
        pod: take(&["pod"]),
        container: take(&["container"]),
        service: take(&["service"]),
        ..Entity::default()
    };
    e.workload = WORKLOAD_LABELS.iter().find_map(|(label, kind)| {
        let name = labels.get(*label).filter(|v| valid_name(v))?;
        used.insert(*label);
        Some(WorkloadRef {
            kind: (*kind).to_owned(),
            name: name.clone(),
        })
    });
    (e, used)
}

/// An attribute key from a label name: lower-cased, other characters than `a-z 0-9 _ .`
/// replaced by `_`, at most 64 bytes. `None` when nothing is left.
pub fn sanitize_key(k: &str) -> Option<String> {
    let s: String = k
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_KEY_BYTES)
        .collect();
    (!s.is_empty()).then_some(s)
}

/// Alert text as an attribute: at most `max` bytes, control characters (NUL, terminal
/// escapes) replaced by U+FFFD; line breaks and tabs kept in `multiline` text
/// (annotations such as `description`).
fn clean(s: &str, max: usize, multiline: bool) -> String {
    let s = cut_bytes(s, max);
    if !has_control(s, multiline) {
        return s.to_owned();
    }
    let replaced: String = s
        .chars()
        .map(|c| {
            if bad_char(c, multiline) {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    // U+FFFD is 3 bytes where a control character is 1: cut again, or a text at the bound
    // would come out longer than evidence allows (found by the fuzzer).
    cut_bytes(&replaced, max).to_owned()
}

fn bad_char(c: char, multiline: bool) -> bool {
    c.is_control() && !(multiline && matches!(c, '\n' | '\t' | '\r'))
}

fn has_control(s: &str, multiline: bool) -> bool {
    s.chars().any(|c| bad_char(c, multiline))
}

/// Whether a label or annotation of the alert carries control characters (they are
/// replaced before the alert becomes evidence; counted by the receiver).
pub fn alert_has_control(alert: &Alert) -> bool {
    alert
        .labels
        .iter()
        .any(|(k, v)| has_control(k, false) || has_control(v, false))
        || alert
            .annotations
            .iter()
            .any(|(k, v)| has_control(k, false) || has_control(v, true))
        || has_control(&alert.fingerprint, false)
}

fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

fn attributes(
    alert: &Alert,
    fingerprint: &str,
    consumed: &BTreeSet<&'static str>,
    limits: &Limits,
) -> BTreeMap<String, AttrValue> {
    let firing = alert.status == AlertStatus::Firing;
    let max_len = limits.max_attr_value_bytes;
    let mut out: BTreeMap<String, AttrValue> = BTreeMap::new();
    // First come, first kept: a later key that collides is skipped, and so is anything
    // beyond the per-event attribute limit.
    // A value out of its name's range (`error_ratio: "27"`, meaning percent, or 1.27) is
    // left out: evidence must not carry it, and guessing its meaning could page for noise.
    let mut put = |k: String, v: AttrValue| {
        let in_range = tapio_proto::bounds::attr_number(&k, &v)
            .is_none_or(|n| tapio_proto::bounds::check_number(&k, &k, n).is_ok());
        if in_range && out.len() < limits.max_attributes && !out.contains_key(&k) {
            out.insert(k, v);
        }
    };
    let canon = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);

    if let Some(name) = alert.labels.get("alertname").filter(|n| !n.is_empty()) {
        put("alertname".into(), clean(name, max_len, false).into());
    }
    put(
        "fingerprint".into(),
        clean(fingerprint, max_len, false).into(),
    );
    put("starts_at".into(), canon(alert.starts_at).into());
    if !firing && let Some(end) = alert.ends_at {
        put("ends_at".into(), canon(end).into());
    }
    if firing
        && let Some(p) = alert.labels.get("priority")
        && let Some(p) = normalize_priority(p)
    {
        put("priority".into(), p.into());
    }
    for k in NUMERIC_KEYS {
        if !firing && CLASSIFYING_KEYS.contains(k) {
            continue;
        }
        let n = alert
            .annotations
            .get(*k)
            .and_then(|v| number(v))
            .or_else(|| alert.labels.get(*k).and_then(|v| number(v)));
        if let Some(n) = n {
            put((*k).to_owned(), n.into());
        }
    }
    for k in TEXT_ANNOTATIONS {
        if let Some(v) = alert.annotations.get(*k).filter(|v| !v.trim().is_empty()) {
            put((*k).to_owned(), clean(v, max_len, true).into());
        }
    }
    for (k, v) in &alert.labels {
        if k == "alertname" || consumed.contains(k.as_str()) {
            continue;
        }
        let Some(key) = sanitize_key(k) else { continue };
        if !firing && CLASSIFYING_KEYS.contains(&key.as_str()) {
            continue;
        }
        put(key, clean(v, max_len, false).into());
    }
    out
}

/// `P1`–`P4` in any case, else `None` (then the label passes as plain text).
fn normalize_priority(p: &str) -> Option<String> {
    let p = p.trim().to_ascii_uppercase();
    matches!(p.as_str(), "P1" | "P2" | "P3" | "P4").then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-27T10:00:00Z".parse().expect("time")
    }

    const PAYLOAD: &str = r#"{
      "version": "4",
      "groupKey": "{}:{alertname=\"CheckoutErrors\"}",
      "truncatedAlerts": 0,
      "status": "firing",
      "receiver": "tapio",
      "groupLabels": {"alertname": "CheckoutErrors"},
      "commonLabels": {"alertname": "CheckoutErrors", "severity": "critical"},
      "commonAnnotations": {},
      "externalURL": "http://alertmanager:9093",
      "someFutureField": {"nested": [1, 2]},
      "alerts": [
        {
          "status": "firing",
          "labels": {"alertname": "CheckoutErrors", "severity": "critical", "cluster": "prod",
                     "namespace": "shop", "pod": "checkout-7d9f-x2x9q", "container": "app",
                     "deployment": "checkout", "service": "checkout", "node": "node-a",
                     "instance": "10.1.0.12:8080", "job": "kubernetes-pods", "priority": "p1",
                     "Team-Name": "payments", "team_name": "dup", "error_ratio": "0.2"},
          "annotations": {"summary": "checkout 5xx above 10%", "description": "long text",
                          "runbook_url": "https://runbooks/checkout", "error_ratio": "0.27",
                          "value": "+Inf", "p99_latency_seconds": "6.5"},
          "startsAt": "2026-11-27T09:58:30.123456789Z",
          "endsAt": "0001-01-01T00:00:00Z",
          "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
          "fingerprint": "c2a1b3d4e5f60718"
        },
        {
          "status": "resolved",
          "labels": {"alertname": "DiskSlow", "severity": "warning", "kubernetes_node": "node-b",
                     "priority": "P2", "error_ratio": "0.5"},
          "annotations": {"summary": "disk slow", "latency_seconds": "9"},
          "startsAt": "2026-11-27T09:00:00Z",
          "endsAt": "2026-11-27T09:30:00Z",
          "generatorURL": "",
          "fingerprint": "0011223344556677"
        }
      ]
    }"#;

    fn events() -> Vec<Event> {
        let hook = decode(PAYLOAD.as_bytes(), &Limits::default()).expect("decodes");
        let events = to_events(&hook, now(), &Limits::default()).expect("maps");
        assert_valid(&events);
        events
    }

    /// What the receiver stores passes the evidence API's own validation.
    fn assert_valid(events: &[Event]) {
        let batch = tapio_proto::EvidenceBatch {
            version: tapio_proto::ENVELOPE_VERSION,
            agent_id: "alertmanager:tapio".into(),
            node: "-".into(),
            seq: 1,
            sent_at: None,
            events: events.to_vec(),
        };
        let body = serde_json::to_vec(&batch).expect("serializes");
        let back =
            tapio_proto::decode_batch(&body, now(), &Limits::default()).expect("valid evidence");
        assert_eq!(back.events, events);
    }

    #[test]
    fn severity_from_label() {
        for (label, want) in [
            (Some("critical"), EventSeverity::Critical),
            (Some("Critical "), EventSeverity::Critical),
            (Some("error"), EventSeverity::Error),
            (Some("high"), EventSeverity::Error),
            (Some("warning"), EventSeverity::Warning),
            (Some("warn"), EventSeverity::Warning),
            (Some("info"), EventSeverity::Info),
            (Some("none"), EventSeverity::Info),
            (Some("low"), EventSeverity::Info),
            (Some("page"), EventSeverity::Warning),
            (None, EventSeverity::Warning),
        ] {
            assert_eq!(severity(label), want, "{label:?}");
        }
        let ev = events();
        assert_eq!(ev[0].severity, EventSeverity::Critical);
        assert_eq!(ev[1].severity, EventSeverity::Warning);
    }

    #[test]
    fn entity_from_labels() {
        let ev = events();
        let e = &ev[0].entity;
        assert_eq!(e.cluster.as_deref(), Some("prod"));
        assert_eq!(e.node.as_deref(), Some("node-a"));
        assert_eq!(e.namespace.as_deref(), Some("shop"));
        assert_eq!(e.pod.as_deref(), Some("checkout-7d9f-x2x9q"));
        assert_eq!(e.container.as_deref(), Some("app"));
        assert_eq!(e.service.as_deref(), Some("checkout"));
        assert_eq!(
            e.workload,
            Some(WorkloadRef {
                kind: "Deployment".into(),
                name: "checkout".into()
            })
        );
        assert_eq!(ev[1].entity.node.as_deref(), Some("node-b"));
        assert!(ev[1].entity.workload.is_none());

        let labels: BTreeMap<String, String> = [
            ("job_name", "nightly-backup"),
            ("statefulset", ""),
            ("instance", "node-c:9100"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let (e, used) = entity(&labels);
        assert_eq!(
            e.workload.map(|w| (w.kind, w.name)),
            Some(("Job".into(), "nightly-backup".into()))
        );
        assert!(e.node.is_none(), "instance does not name a node");
        assert_eq!(used.into_iter().collect::<Vec<_>>(), vec!["job_name"]);
    }

    /// Control characters replaced by U+FFFD (3 bytes each) never push a text past its
    /// bound: found by the fuzzer, a 4,096-byte `runbook_url` with control characters came
    /// out 4,102 bytes, which the evidence API refuses.
    #[test]
    fn replaced_control_characters_stay_within_the_bound() {
        let text = format!("{}{}", "a".repeat(4090), "\u{1}".repeat(6));
        let out = clean(&text, 4096, true);
        assert!(out.len() <= 4096, "{} bytes", out.len());
        assert!(
            out.ends_with('\u{fffd}'),
            "the replacement is kept where it fits"
        );
        let payload = PAYLOAD.replace(
            r#""runbook_url": "https://runbooks/checkout""#,
            &format!(r#""runbook_url": "{}""#, "\\u0001".repeat(4096)),
        );
        let hook = decode(payload.as_bytes(), &Limits::default()).expect("decodes");
        let events = to_events(&hook, now(), &Limits::default()).expect("maps");
        assert_valid(&events);
    }

    /// A ratio out of [0, 1] (a percent written as a ratio, a mutated payload) is left out of
    /// the evidence instead of making the whole webhook invalid: found by the fuzzer, where
    /// `"error_ratio": "1.27"` mapped to evidence the evidence API refuses.
    #[test]
    fn out_of_range_ratio_is_left_out() {
        let payload = PAYLOAD
            .replace(r#""error_ratio": "0.27""#, r#""error_ratio": "1.27""#)
            .replace(
                r#""error_ratio": "0.2""#,
                r#""error_ratio": "27", "cpu_percent": "250""#,
            );
        let hook = decode(payload.as_bytes(), &Limits::default()).expect("decodes");
        let events = to_events(&hook, now(), &Limits::default()).expect("maps");
        assert_valid(&events);
        let a = &events[0].attributes;
        assert!(!a.contains_key("error_ratio"), "{a:?}");
        assert!(!a.contains_key("cpu_percent"), "{a:?}");
        // The rest of the alert is kept.
        assert_eq!(events[0].attr_str("priority").as_deref(), Some("P1"));
        assert_eq!(a.get("p99_latency_seconds"), Some(&AttrValue::Float(6.5)));
    }

    #[test]
    fn attributes_from_labels_and_annotations() {
        let ev = events();
        let a = &ev[0].attributes;
        assert_eq!(
            ev[0].attr_str("alertname").as_deref(),
            Some("CheckoutErrors")
        );
        assert_eq!(
            ev[0].attr_str("fingerprint").as_deref(),
            Some("c2a1b3d4e5f60718")
        );
        assert_eq!(
            ev[0].attr_str("starts_at").as_deref(),
            Some("2026-11-27T09:58:30.123456789Z")
        );
        assert_eq!(ev[0].attr_str("priority").as_deref(), Some("P1"));
        // The annotation's number wins over the label; both parse.
        assert_eq!(a.get("error_ratio"), Some(&AttrValue::Float(0.27)));
        assert_eq!(a.get("p99_latency_seconds"), Some(&AttrValue::Float(6.5)));
        // +Inf is not a finite number: not an attribute (JSON has no infinity).
        assert!(!a.contains_key("value"));
        assert_eq!(
            ev[0].attr_str("summary").as_deref(),
            Some("checkout 5xx above 10%")
        );
        assert_eq!(
            ev[0].attr_str("runbook_url").as_deref(),
            Some("https://runbooks/checkout")
        );
        assert_eq!(ev[0].attr_str("description").as_deref(), Some("long text"));
        assert_eq!(
            ev[0].attr_str("instance").as_deref(),
            Some("10.1.0.12:8080")
        );
        assert_eq!(ev[0].attr_str("job").as_deref(), Some("kubernetes-pods"));
        assert_eq!(ev[0].attr_str("severity").as_deref(), Some("critical"));
        // `Team-Name` sorts first and takes `team_name`; the real `team_name` collides.
        assert_eq!(ev[0].attr_str("team_name").as_deref(), Some("payments"));
        // Labels that became the entity are not repeated.
        for k in [
            "namespace",
            "pod",
            "deployment",
            "cluster",
            "node",
            "service",
        ] {
            assert!(!a.contains_key(k), "{k} repeated as an attribute");
        }
        assert!(a.keys().all(|k| sanitize_key(k).as_deref() == Some(k)));
        assert_eq!(ev[0].object, None);
    }

    #[test]
    fn key_sanitizing_and_limits() {
        assert_eq!(sanitize_key("Team-Name").as_deref(), Some("team_name"));
        assert_eq!(
            sanitize_key("app.kubernetes.io/name").as_deref(),
            Some("app.kubernetes.io_name")
        );
        assert_eq!(sanitize_key("").as_deref(), None);
        assert_eq!(sanitize_key(&"x".repeat(100)).map(|k| k.len()), Some(64));

        let mut labels: BTreeMap<String, String> = (0..100)
            .map(|i| (format!("l{i:03}"), "v".repeat(10_000)))
            .collect();
        labels.insert("alertname".into(), "Many".into());
        let alert = Alert {
            status: AlertStatus::Firing,
            labels,
            annotations: [("summary".to_owned(), "é".repeat(5000))].into(),
            starts_at: now(),
            ends_at: None,
            generator_url: String::new(),
            fingerprint: String::new(),
        };
        let limits = Limits::default();
        let ev = to_event("alerts[0]", &alert, now(), &limits).expect("maps");
        assert_valid(std::slice::from_ref(&ev));
        assert_eq!(ev.attributes.len(), limits.max_attributes);
        for v in ev.attributes.values() {
            if let AttrValue::String(s) = v {
                assert!(s.len() <= limits.max_attr_value_bytes);
            }
        }
        // The derived fingerprint stands in for a missing one.
        assert_eq!(ev.attr_str("fingerprint").map(|f| f.len()), Some(16));
        assert!(ev.attributes.contains_key("summary"));
    }

    #[test]
    fn firing_and_resolved() {
        let ev = events();
        assert_eq!(ev[0].kind.as_str(), "alert.prometheus.firing");
        assert_eq!(
            ev[0].time,
            "2026-11-27T09:58:30.123456789Z"
                .parse::<DateTime<Utc>>()
                .expect("t")
        );
        assert!(!ev[0].attributes.contains_key("ends_at"));
        assert_eq!(ev[1].kind.as_str(), "alert.prometheus.resolved");
        assert_eq!(
            ev[1].time,
            "2026-11-27T09:30:00Z".parse::<DateTime<Utc>>().expect("t")
        );
        assert_eq!(
            ev[1].attr_str("ends_at").as_deref(),
            Some("2026-11-27T09:30:00Z")
        );
        assert_eq!(ev[1].attr_str("alertname").as_deref(), Some("DiskSlow"));
        assert_eq!(ev[1].attr_str("summary").as_deref(), Some("disk slow"));
        // A recovery carries nothing the classifier would open an incident from.
        for k in CLASSIFYING_KEYS {
            assert!(
                !ev[1].attributes.contains_key(*k),
                "{k} on a resolved alert"
            );
        }
        assert_eq!(
            ev[1].id.timestamp_ms(),
            ev[1].time.timestamp_millis() as u64
        );
    }

    #[test]
    fn id_is_deterministic_per_alert_state() {
        let a = events();
        // A re-notification later (other receive time, other group) maps to the same ids.
        let hook = decode(PAYLOAD.as_bytes(), &Limits::default()).expect("decodes");
        let b = to_events(
            &hook,
            now() + chrono::Duration::hours(1),
            &Limits::default(),
        )
        .expect("maps");
        assert_eq!(a[0].id, b[0].id);
        assert_eq!(a[1].id, b[1].id);
        assert_ne!(a[0].id, a[1].id);
        assert_eq!(a[0].id.timestamp_ms(), a[0].time.timestamp_millis() as u64);

        let start = now();
        let end = Some(now() + chrono::Duration::minutes(5));
        let fp = "abc";
        let firing = event_id(fp, AlertStatus::Firing, start, None, start);
        assert_eq!(firing, event_id(fp, AlertStatus::Firing, start, end, start));
        assert_ne!(
            firing,
            event_id(
                fp,
                AlertStatus::Firing,
                start + chrono::Duration::seconds(1),
                None,
                start
            ),
            "a new firing (new startsAt) is a new signal"
        );
        assert_ne!(
            firing,
            event_id("abd", AlertStatus::Firing, start, None, start)
        );
        let resolved = event_id(fp, AlertStatus::Resolved, start, end, start);
        assert_ne!(firing, resolved);
        assert_ne!(
            resolved,
            event_id(fp, AlertStatus::Resolved, start, Some(start), start)
        );
    }

    #[test]
    fn future_time_is_clamped() {
        let hook = decode(
            PAYLOAD
                .replace("2026-11-27T09:58:30.123456789Z", "2027-01-01T00:00:00Z")
                .as_bytes(),
            &Limits::default(),
        )
        .expect("decodes");
        let ev = to_events(&hook, now(), &Limits::default()).expect("maps");
        assert_eq!(ev[0].time, now() + Limits::default().max_future_skew);
        // The id still follows the alert, not the receive time.
        let later = to_events(
            &hook,
            now() + chrono::Duration::minutes(1),
            &Limits::default(),
        )
        .expect("maps");
        assert_eq!(ev[0].id, later[0].id);
    }

    #[test]
    fn bad_version_names_version() {
        let e = decode(
            PAYLOAD
                .replace(r#""version": "4""#, r#""version": "3""#)
                .as_bytes(),
            &Limits::default(),
        )
        .expect_err("v3");
        assert_eq!(e.code, "unsupported_version");
        assert_eq!(e.field.as_deref(), Some("version"));
        assert!(e.message.contains("\"3\""), "{}", e.message);
        let e = decode(
            PAYLOAD
                .replace(r#""version": "4""#, r#""version": 4"#)
                .as_bytes(),
            &Limits::default(),
        )
        .expect_err("number");
        assert_eq!(e.field.as_deref(), Some("version"));
        let e = decode(
            PAYLOAD.replace(r#""version": "4","#, "").as_bytes(),
            &Limits::default(),
        )
        .expect_err("missing");
        assert_eq!(e.code, "missing_field");
        assert_eq!(e.field.as_deref(), Some("version"));
    }

    #[test]
    fn malformed_payloads_name_the_field() {
        let limits = Limits::default();
        let e = decode(
            PAYLOAD
                .replace("2026-11-27T09:00:00Z", "yesterday")
                .as_bytes(),
            &limits,
        )
        .expect_err("bad time");
        assert_eq!(e.code, "invalid_field");
        assert_eq!(e.field.as_deref(), Some("alerts[1].startsAt"));
        assert!(e.message.contains("\"yesterday\""), "{}", e.message);

        let e = decode(
            PAYLOAD
                .replacen(r#""status": "firing","#, r#""status": "burning","#, 2)
                .as_bytes(),
            &limits,
        )
        .expect_err("bad status");
        assert_eq!(e.field.as_deref(), Some("status"));
        assert!(e.message.contains("burning"), "{}", e.message);

        let e = decode(
            PAYLOAD
                .replace(r#""pod": "checkout-7d9f-x2x9q""#, r#""pod": 7"#)
                .as_bytes(),
            &limits,
        )
        .expect_err("number label");
        assert_eq!(e.field.as_deref(), Some("alerts[0].labels.pod"));

        let e = decode(
            PAYLOAD
                .replace(r#""receiver": "tapio""#, r#""receiver": """#)
                .as_bytes(),
            &limits,
        )
        .expect_err("empty receiver");
        assert_eq!(e.field.as_deref(), Some("receiver"));

        let e = decode(b"[]", &limits).expect_err("array");
        assert_eq!(e.code, "invalid_field");
        let e = decode(b"{\"version\":", &limits).expect_err("cut");
        assert_eq!(e.code, "malformed_json");

        // A resolved alert without an end time cannot be placed in time.
        let hook = decode(
            PAYLOAD
                .replace("2026-11-27T09:30:00Z", "0001-01-01T00:00:00Z")
                .as_bytes(),
            &limits,
        )
        .expect("decodes");
        let e = to_events(&hook, now(), &limits).expect_err("no end");
        assert_eq!(e.field.as_deref(), Some("alerts[1].endsAt"));

        let small = Limits {
            max_events_per_batch: 1,
            ..Limits::default()
        };
        let e = decode(PAYLOAD.as_bytes(), &small).expect_err("too many");
        assert_eq!(e.code, "too_many_events");
    }

    /// NUL and terminal escapes in labels and annotations never reach evidence (and so
    /// titles, terminals and pages); line breaks in annotations are kept. A year-0001 or
    /// 1970 `startsAt` is refused.
    #[test]
    fn control_characters_and_zero_times() {
        let body = PAYLOAD.replacen(
            r#""labels": {"alertname": "CheckoutErrors""#,
            r#""labels": {"alertname": "Check\u001b[2J\u0000out""#,
            1,
        );
        assert_ne!(body, PAYLOAD, "the test payload changed");
        let hook = decode(body.as_bytes(), &Limits::default()).expect("decodes");
        assert!(alert_has_control(&hook.alerts[0]));
        let ev = to_events(&hook, now(), &Limits::default()).expect("maps");
        let name = ev[0].attr_str("alertname").expect("alertname");
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert_eq!(clean("a\nb\u{1b}c", 100, true), "a\nb\u{fffd}c");
        assert_eq!(clean("a\nb", 100, false), "a\u{fffd}b");
        for zero in ["0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z"] {
            let mut hook = decode(PAYLOAD.as_bytes(), &Limits::default()).expect("decodes");
            hook.alerts[0].starts_at = zero.parse().expect("t");
            let e = to_events(&hook, now(), &Limits::default()).expect_err(zero);
            assert_eq!(e.field.as_deref(), Some("alerts[0].startsAt"), "{zero}");
        }
    }
}
