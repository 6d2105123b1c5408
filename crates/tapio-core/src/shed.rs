//! Which evidence load shedding may drop.
//!
//! Every fact gets a rank from what it would do on its own: the incident severity it
//! classifies as, or, for plain evidence, its event severity. Shedding drops from the
//! bottom rank up as pressure (fill of the ingest queue, 0.0–1.0) rises:
//!
//! | rank | facts | shed when shedding is enabled and pressure ≥ |
//! |---|---|---|
//! | 0 | unclassified debug / info facts | 0.0 (always) |
//! | 1 | P4, unclassified warnings | 0.5 |
//! | 2 | P3, unclassified errors, `change.*` markers | 0.75 |
//! | 3 | P2, unclassified critical facts | 0.9 |
//! | 4 | P1 | never |

use tapio_proto::{Event, EventSeverity};

use crate::classify::classify;
use crate::incident::Severity;

/// The rank of P1-class facts: never shed. Defined in tapio-proto beside
/// [`tapio_proto::shed::is_never_shed`], the agent's copy of the P1 rule.
pub use tapio_proto::shed::NEVER_SHED;

pub fn rank(ev: &Event) -> u8 {
    if let Some(c) = classify(ev) {
        return match c.severity {
            Severity::P1 => 4,
            Severity::P2 => 3,
            Severity::P3 => 2,
            Severity::P4 => 1,
        };
    }
    if ev.kind.source() == "change" {
        return 2;
    }
    match ev.severity {
        EventSeverity::Critical => 3,
        EventSeverity::Error => 2,
        EventSeverity::Warning => 1,
        EventSeverity::Info | EventSeverity::Debug => 0,
    }
}

/// The lowest rank kept at this pressure when shedding is enabled.
pub fn min_kept_rank(pressure: f64) -> u8 {
    if pressure >= 0.9 {
        4
    } else if pressure >= 0.75 {
        3
    } else if pressure >= 0.5 {
        2
    } else {
        1
    }
}

/// True when this fact is to be dropped. P1-class facts (rank 4) are never dropped.
pub fn should_shed(ev: &Event, enabled: bool, pressure: f64) -> bool {
    if !enabled {
        return false;
    }
    let r = rank(ev);
    r < 4 && r < min_kept_rank(pressure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapio_proto::{AttrValue, Entity, EventType};

    fn ev(t: &str, sev: EventSeverity, attrs: &[(&str, AttrValue)]) -> Event {
        Event {
            id: ulid::Ulid::new(),
            time: "2026-11-27T10:00:00Z".parse().expect("time"),
            kind: EventType::parse(t).expect("type"),
            severity: sev,
            entity: Entity::default(),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            object: None,
        }
    }

    #[test]
    fn p1_is_never_shed_and_noise_goes_first() {
        let p1 = ev(
            "kubernetes.workload.unavailable",
            EventSeverity::Critical,
            &[],
        );
        let noise = ev("kernel.network.retransmit", EventSeverity::Info, &[]);
        let p3 = ev("kernel.container.oom_kill", EventSeverity::Critical, &[]);
        for pressure in [0.0, 0.5, 0.8, 0.95, 1.0] {
            assert!(!should_shed(&p1, true, pressure));
            assert!(should_shed(&noise, true, pressure));
        }
        assert!(!should_shed(&p3, true, 0.6));
        assert!(should_shed(&p3, true, 0.8));
        assert!(!should_shed(&noise, false, 1.0));
    }

    /// The agent decides the critical lane with `tapio_proto::shed::is_never_shed`, without
    /// the classifier: it must name exactly the facts ranked `NEVER_SHED` here.
    #[test]
    fn the_agents_p1_rule_agrees_with_the_rank() {
        use tapio_proto::shed::is_never_shed;
        let types = [
            "kubernetes.workload.unavailable",
            "kernel.security.exec",
            "falco.security.shell",
            "kernel.container.oom_kill",
            "kernel.network.connection_refused",
            "alert.prometheus.firing",
            "change.deploy.rollout",
            "node.pressure.cpu",
        ];
        let severities = [
            EventSeverity::Critical,
            EventSeverity::Error,
            EventSeverity::Warning,
            EventSeverity::Info,
        ];
        let attr_sets: Vec<Vec<(&str, AttrValue)>> = vec![
            vec![],
            vec![("priority", AttrValue::String(" p1 ".into()))],
            vec![("priority", AttrValue::String("P2".into()))],
            vec![("priority", AttrValue::String("urgent".into()))],
            vec![
                ("desired_replicas", AttrValue::Int(3)),
                ("available_replicas", AttrValue::Int(0)),
            ],
            vec![
                ("desired_replicas", AttrValue::Int(3)),
                ("available_replicas", AttrValue::Int(1)),
            ],
            vec![("error_ratio", AttrValue::Float(0.2))],
            vec![("error_ratio", AttrValue::Float(0.01))],
            vec![("error_ratio", AttrValue::Float(0.009))],
            vec![
                ("attempts", AttrValue::Int(20)),
                ("refused", AttrValue::Int(1)),
            ],
            vec![
                ("attempts", AttrValue::Int(19)),
                ("timed_out", AttrValue::Int(19)),
            ],
            vec![
                ("attempts", AttrValue::Int(1000)),
                ("timed_out", AttrValue::Int(9)),
            ],
            vec![("latency_seconds", AttrValue::Float(5.5))],
            vec![("p99_latency_seconds", AttrValue::String("7".into()))],
            vec![("latency_seconds", AttrValue::Float(5.0))],
        ];
        for t in types {
            for sev in severities {
                for attrs in &attr_sets {
                    let e = ev(t, sev, attrs);
                    assert_eq!(
                        is_never_shed(&e),
                        rank(&e) == NEVER_SHED,
                        "{t} {sev:?} {attrs:?}"
                    );
                }
            }
        }
    }
}
