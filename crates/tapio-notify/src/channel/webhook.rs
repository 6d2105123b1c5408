//! Tapio's generic webhook: a versioned JSON body posted with the outbox key as
//! `idempotency-key`, so a receiver can drop a repeat.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tapio_core::Incident;

use super::Sent;
use super::http::post_json;
use crate::templates::{NotificationKind, rfc3339_full, root_cause};

/// Tapio's generic webhook body (version "1"): the kind, the incident's essentials with the
/// root cause (`null` when there is no confident one), and the rendered text.
pub fn payload(kind: NotificationKind, inc: &Incident, text: &str) -> Value {
    let t = |t: Option<DateTime<Utc>>| t.map(rfc3339_full);
    let root_cause = root_cause(inc).map_or(Value::Null, |h| {
        json!({
            "cause": h.cause,
            "entity": h.entity,
            "confidence": h.confidence,
            "explanation": h.explanation,
            "mitigations": h.mitigations,
        })
    });
    json!({
        "version": "1",
        "kind": kind,
        "incident": {
            "id": inc.id.to_string(),
            "title": inc.title,
            "severity": inc.severity,
            "status": inc.status,
            "severity_reason": inc.severity_reason,
            "started_at": rfc3339_full(inc.started_at),
            "detected_at": rfc3339_full(inc.detected_at),
            "acknowledged_at": t(inc.acknowledged_at),
            "mitigated_at": t(inc.mitigated_at),
            "resolved_at": t(inc.resolved_at),
            "namespace": inc.namespace,
            "affected": inc.affected,
            "root_cause": root_cause,
        },
        "text": text,
    })
}

/// Post the webhook body for this notification to `url`, with `idempotency_key`.
pub fn send(
    agent: &ureq::Agent,
    url: &str,
    kind: NotificationKind,
    inc: &Incident,
    text: &str,
    idempotency_key: &str,
) -> Sent {
    post_json(
        agent,
        url,
        &payload(kind, inc, text),
        &[("idempotency-key", idempotency_key)],
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::fixtures::*;

    #[test]
    fn webhook_payload_shape() {
        let inc = confident();
        let p = payload(NotificationKind::Update, &inc, "hello");
        assert_eq!(p["version"], "1");
        assert_eq!(p["kind"], "update");
        assert_eq!(p["text"], "hello");
        let i = &p["incident"];
        assert_eq!(i["id"], json!(inc.id.to_string()));
        assert_eq!(i["severity"], "P1");
        assert_eq!(i["status"], "acknowledged");
        assert_eq!(i["started_at"], "2026-01-01T10:00:00Z");
        assert_eq!(i["acknowledged_at"], "2026-01-01T10:04:00Z");
        assert_eq!(i["resolved_at"], Value::Null);
        assert_eq!(i["namespace"], "shop");
        assert_eq!(i["root_cause"]["entity"], "Deployment/shop/checkout");
        assert_eq!(i["root_cause"]["confidence"], 0.9);
        let p = payload(NotificationKind::Initial, &unsure(), "");
        assert_eq!(p["incident"]["root_cause"], Value::Null);
    }
}
