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

/// The rank of P1-class facts: never shed.
pub const NEVER_SHED: u8 = 4;

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
}
