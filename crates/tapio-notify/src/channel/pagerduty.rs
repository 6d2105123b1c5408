//! PagerDuty: Events API v2 events (trigger, acknowledge, resolve) on one dedup key per
//! incident, posted to the events endpoint.

use serde_json::{Value, json};
use tapio_core::{Incident, Severity, Status};
use tapio_proto::text::cut_chars;

use super::http::post_json;
use super::{Sent, one_line};
use crate::templates::{NotificationKind, rfc3339_full, root_cause, root_cause_text, top};

/// PagerDuty Events API v2 `payload.summary` limit.
pub const PAGERDUTY_SUMMARY_MAX: usize = 1024;

/// PagerDuty's severity for a runbook level.
pub fn pagerduty_severity(s: Severity) -> &'static str {
    match s {
        Severity::P1 => "critical",
        Severity::P2 => "error",
        Severity::P3 => "warning",
        Severity::P4 => "info",
    }
}

/// The Events API v2 action for the incident's status: resolved → `resolve`,
/// acknowledged or mitigated → `acknowledge`, open → `trigger`.
pub fn pagerduty_action(s: Status) -> &'static str {
    match s {
        Status::Resolved => "resolve",
        Status::Acknowledged | Status::Mitigated => "acknowledge",
        Status::Open => "trigger",
    }
}

/// The PagerDuty dedup key: stable for the incident's whole life, so its trigger,
/// acknowledge and resolve events land on one alert.
pub fn pagerduty_dedup_key(inc: &Incident) -> String {
    format!("tapio-{}", inc.id)
}

/// A PagerDuty Events API v2 event. The action follows the incident's status
/// ([`pagerduty_action`]); `acknowledge` and `resolve` carry exactly `routing_key`,
/// `event_action` and `dedup_key` (PagerDuty ignores anything else there). A `trigger`
/// carries the payload. `kind` is reported in `custom_details.notification`.
/// [`payload_with_link`] adds the incident's link.
pub fn payload(kind: NotificationKind, inc: &Incident, routing_key: &str, source: &str) -> Value {
    payload_with_link(kind, inc, routing_key, source, None)
}

/// [`payload`], and when `link` is given a trigger also carries it in
/// `custom_details.link` and `links: [{href, text}]`.
pub fn payload_with_link(
    kind: NotificationKind,
    inc: &Incident,
    routing_key: &str,
    source: &str,
    link: Option<&str>,
) -> Value {
    let action = pagerduty_action(inc.status);
    let dedup_key = pagerduty_dedup_key(inc);
    if action != "trigger" {
        return json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
        });
    }
    let link = link.map(str::trim).filter(|l| !l.is_empty());
    let component = top(inc)
        .map(|h| h.entity.clone())
        .filter(|e| !e.is_empty())
        .or_else(|| inc.affected.first().cloned())
        .unwrap_or_else(|| format!("{}/{}", inc.identity.kind, inc.identity.name));
    // The class is the type of event: the confident cause, else the normalised problem.
    let class = root_cause(inc)
        .map(|h| h.cause.clone())
        .or_else(|| Some(inc.identity.problem.clone()))
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    let mitigations: Vec<&str> = top(inc)
        .map(|h| h.mitigations.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut details = json!({
        "incident_id": inc.id.to_string(),
        "notification": kind.as_str(),
        "severity": inc.severity.as_str(),
        "severity_reason": inc.severity_reason,
        "status": inc.status.as_str(),
        "root_cause": root_cause_text(inc),
        "mitigations": mitigations,
        "affected": inc.affected,
    });
    if let Some(l) = link {
        details["link"] = json!(l);
    }
    let mut payload = json!({
        "summary": cut_chars(
            &format!("[{}] {}", inc.severity, one_line(&inc.title)),
            PAGERDUTY_SUMMARY_MAX,
        ),
        "source": source,
        "severity": pagerduty_severity(inc.severity),
        "timestamp": rfc3339_full(inc.detected_at),
        "component": component,
        "class": class,
        "custom_details": details,
    });
    if let Some(ns) = &inc.namespace {
        payload["group"] = json!(ns);
    }
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key,
        "payload": payload,
    });
    if let Some(l) = link {
        event["links"] = json!([{"href": l, "text": format!("Tapio incident {}", inc.id)}]);
    }
    event
}

/// Post the event for this notification to the Events API at `url`.
pub fn send(
    agent: &ureq::Agent,
    url: &str,
    kind: NotificationKind,
    inc: &Incident,
    routing_key: &str,
    link: Option<&str>,
) -> Sent {
    let event = payload_with_link(kind, inc, routing_key, "tapio", link);
    post_json(agent, url, &event, &[])
}

#[cfg(test)]
mod tests {
    // Test code: unwrap failures are the test failing.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::fixtures::*;

    #[test]
    fn pagerduty_actions_follow_the_status() {
        let mut inc = confident();
        for (status, action) in [
            (Status::Open, "trigger"),
            (Status::Acknowledged, "acknowledge"),
            (Status::Mitigated, "acknowledge"),
            (Status::Resolved, "resolve"),
        ] {
            inc.status = status;
            let p = payload(NotificationKind::Update, &inc, "R0UT1NG", "tapio");
            assert_eq!(p["event_action"], action);
            assert_eq!(p["dedup_key"], json!(format!("tapio-{}", inc.id)));
            if action != "trigger" {
                assert_eq!(
                    p,
                    json!({
                        "routing_key": "R0UT1NG",
                        "event_action": action,
                        "dedup_key": format!("tapio-{}", inc.id),
                    })
                );
            }
        }
    }

    #[test]
    fn pagerduty_trigger_payload() {
        let mut inc = confident();
        inc.status = Status::Open;
        inc.title = "y".repeat(2000);
        let link = "https://tapio.example.com/api/v1/incidents/x";
        let p = payload_with_link(
            NotificationKind::Initial,
            &inc,
            "R0UT1NG",
            "tapio-server.prod",
            Some(link),
        );
        let payload = &p["payload"];
        assert_eq!(payload["severity"], "critical");
        assert_eq!(payload["source"], "tapio-server.prod");
        assert_eq!(payload["timestamp"], "2026-01-01T10:00:30Z");
        assert_eq!(payload["component"], "Deployment/shop/checkout");
        assert_eq!(payload["group"], "shop");
        assert_eq!(payload["class"], "memory limit too low after rollout");
        let summary = payload["summary"].as_str().unwrap();
        assert_eq!(summary.chars().count(), PAGERDUTY_SUMMARY_MAX);
        assert!(summary.starts_with("[P1] yyy") && summary.ends_with('…'));
        let d = &payload["custom_details"];
        assert_eq!(d["link"], link);
        assert_eq!(
            d["mitigations"][0],
            "kubectl rollout undo deployment/checkout -n shop"
        );
        assert_eq!(
            d["root_cause"],
            "rollout v42 raised memory use past the 512Mi limit"
        );
        assert_eq!(
            p["links"],
            json!([{"href": link, "text": format!("Tapio incident {}", inc.id)}])
        );

        // Same incident later: same dedup key. Without a link: no links.
        let again = super::payload(NotificationKind::Update, &inc, "R0UT1NG", "x");
        assert_eq!(again["dedup_key"], p["dedup_key"]);
        assert!(again.get("links").is_none());

        // Severity mapping; no namespace → no group; unsure → the problem as class.
        let mut inc = unsure();
        inc.namespace = None;
        for (sev, pd) in [
            (Severity::P1, "critical"),
            (Severity::P2, "error"),
            (Severity::P3, "warning"),
            (Severity::P4, "info"),
        ] {
            inc.severity = sev;
            let p = super::payload(NotificationKind::Initial, &inc, "k", "s");
            assert_eq!(p["payload"]["severity"], pd);
            assert!(p["payload"].get("group").is_none());
            assert_eq!(p["payload"]["class"], "oom");
        }
    }
}
