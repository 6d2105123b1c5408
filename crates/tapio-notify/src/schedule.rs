//! Notifications driven by time rather than by changes: escalation when an incident is not
//! acknowledged within its severity's response time, and the runbook's regular updates
//! while a P1/P2 is open. Pure (the clock is passed in) and idempotent: each escalation
//! and each cadence step has its own outbox key, so evaluating again enqueues nothing.

use chrono::{DateTime, Utc};
use tapio_core::{Incident, Severity, Status};
use tapio_store::OutboxItem;
use ulid::Ulid;

use crate::config::NotifyConfig;

#[derive(Debug, Default)]
pub struct Scheduled {
    pub items: Vec<OutboxItem>,
    /// (incident, escalation receiver, timeline note) for each escalation item.
    pub escalations: Vec<(Ulid, String, String)>,
    /// Per item: the timeline note to record if it is new (escalations).
    pub notes: Vec<Option<String>>,
}

fn fmt(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

pub fn scheduled(incidents: &[Incident], cfg: &NotifyConfig, now: DateTime<Utc>) -> Scheduled {
    let mut out = Scheduled::default();
    for inc in incidents {
        if inc.merged_into.is_some() || inc.status == Status::Resolved {
            continue;
        }
        let Ok(body) = serde_json::to_string(inc) else {
            continue;
        };
        let level = inc.peak_severity.unwrap_or(inc.severity).min(inc.severity);
        let routed = cfg.route(level, inc);
        let age = (now - inc.detected_at).to_std().unwrap_or_default();
        // Escalation: nobody acknowledged within the response time.
        let deadline = cfg.response_time(inc.severity);
        if inc.status == Status::Open && inc.acknowledged_at.is_none() && age >= deadline {
            for r in &routed {
                let Some(to) = &r.escalate_to else {
                    continue;
                };
                let key = format!("{}:escalation:{}:{to}", inc.id, inc.severity.as_str());
                if out.items.iter().any(|i| i.key == key) {
                    continue;
                }
                let note = format!(
                    "escalated to {to}: not acknowledged within {} ({} response time)",
                    fmt(deadline),
                    inc.severity
                );
                out.items.push(OutboxItem {
                    key,
                    incident: inc.id,
                    receiver: to.clone(),
                    kind: "escalation".into(),
                    body: body.clone(),
                    created_at: now,
                });
                out.notes.push(Some(note.clone()));
                out.escalations.push((inc.id, to.clone(), note));
            }
        }
        // Cadence: chat and email receivers hear about an open P1/P2 every `update_every`
        // (pagers page once per state; the Jira issue records state changes only).
        if matches!(inc.severity, Severity::P1 | Severity::P2) {
            let step = cfg.update_every.as_secs().max(1);
            let n = age.as_secs() / step;
            if n >= 1 {
                for r in routed.iter().filter(|r| r.kind.gets_cadence()) {
                    out.items.push(OutboxItem {
                        key: format!("{}:cadence:{n}:{}", inc.id, r.name),
                        incident: inc.id,
                        receiver: r.name.clone(),
                        kind: "update".into(),
                        body: body.clone(),
                        created_at: now,
                    });
                    out.notes.push(None);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapio_core::lifecycle::{Action, Declare, apply, declare};

    const CFG: &str = r#"
[dispatch]
update_every = "15m"
[escalation]
P1 = "5m"
[[receiver]]
name = "pd"
kind = "pagerduty"
routing_key = "k"
escalate_to = "manager"
[[receiver]]
name = "manager"
kind = "webhook"
url = "http://127.0.0.1:9/m"
[[receiver]]
name = "slack"
kind = "slack"
url = "http://127.0.0.1:9/s"
[[route]]
receivers = ["pd", "slack"]
"#;

    fn p1(at: DateTime<Utc>) -> Incident {
        declare(
            &Declare {
                severity: Severity::P1,
                title: "Checkout down".into(),
                by: Some("alice".into()),
                namespace: Some("shop".into()),
                service: None,
                description: None,
            },
            at,
            Ulid::from_parts(5, 5),
        )
        .expect("valid")
    }

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + min * 60, 0).expect("time")
    }

    #[test]
    fn an_unacknowledged_p1_escalates_after_five_minutes_once() {
        let cfg = crate::config::parse(CFG, "n").expect("config");
        let inc = p1(t(0));
        assert!(
            scheduled(std::slice::from_ref(&inc), &cfg, t(4))
                .escalations
                .is_empty()
        );
        let s = scheduled(std::slice::from_ref(&inc), &cfg, t(5));
        assert_eq!(s.escalations.len(), 1);
        assert_eq!(s.escalations[0].1, "manager");
        assert!(
            s.escalations[0].2.contains("5 min"),
            "{}",
            s.escalations[0].2
        );
        let later = scheduled(std::slice::from_ref(&inc), &cfg, t(9));
        assert_eq!(
            s.items[0].key, later.items[0].key,
            "the same escalation: one outbox key"
        );
        // Acknowledged in time: no escalation.
        let mut acked = p1(t(0));
        apply(&mut acked, &Action::Ack, "bob", t(3)).expect("ack");
        assert!(scheduled(&[acked], &cfg, t(10)).escalations.is_empty());
    }

    #[test]
    fn open_p1s_get_an_update_every_fifteen_minutes_on_chat_only() {
        let cfg = crate::config::parse(CFG, "n").expect("config");
        let mut inc = p1(t(0));
        apply(&mut inc, &Action::Ack, "bob", t(1)).expect("ack");
        assert!(
            scheduled(std::slice::from_ref(&inc), &cfg, t(14))
                .items
                .is_empty()
        );
        let at15 = scheduled(std::slice::from_ref(&inc), &cfg, t(15));
        assert_eq!(at15.items.len(), 1, "slack only, not the pager");
        assert_eq!(at15.items[0].receiver, "slack");
        let at29 = scheduled(std::slice::from_ref(&inc), &cfg, t(29));
        assert_eq!(at15.items[0].key, at29.items[0].key);
        let at30 = scheduled(std::slice::from_ref(&inc), &cfg, t(30));
        assert_ne!(at15.items[0].key, at30.items[0].key);
        apply(&mut inc, &Action::Resolve, "bob", t(31)).expect("resolve");
        assert!(scheduled(&[inc], &cfg, t(45)).items.is_empty());
    }
}
