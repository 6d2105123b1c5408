//! Silences and maintenance windows: matchers on namespace, workload, severity and cause.
//! A silenced incident is still detected and recorded; only its notifications are held.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::incident::{Incident, Severity};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matchers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A workload (or Service) name, e.g. `checkout`, or `deployment/checkout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Severities matched (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<Severity>,
    /// Root-cause kind (e.g. `node_failure` during node maintenance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: Ulid,
    pub matchers: Matchers,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<DateTime<Utc>>,
}

impl Matchers {
    /// At least one matcher: a silence of everything must be explicit, not an accident.
    pub fn validate(&self) -> Result<(), String> {
        if self.namespace.is_none()
            && self.workload.is_none()
            && self.severity.is_empty()
            && self.cause.is_none()
        {
            return Err(
                "a silence needs at least one matcher: namespace, workload, severity or cause"
                    .into(),
            );
        }
        Ok(())
    }
}

impl Silence {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.expired_at.is_none() && self.starts_at <= now && now < self.ends_at
    }

    /// Whether this silence covers the incident (every given matcher must hold).
    pub fn matches(&self, inc: &Incident) -> bool {
        let m = &self.matchers;
        if let Some(ns) = &m.namespace {
            let in_ns = inc.namespace.as_deref() == Some(ns.as_str())
                || inc.affected.iter().any(|a| {
                    let p: Vec<&str> = a.split('/').collect();
                    p.len() == 3 && p[1] == ns
                });
            if !in_ns {
                return false;
            }
        }
        if let Some(w) = &m.workload
            && !involves_workload(inc, w)
        {
            return false;
        }
        if !m.severity.is_empty() && !m.severity.contains(&inc.severity) {
            return false;
        }
        if let Some(c) = &m.cause
            && confident_cause(inc) != Some(c.as_str())
        {
            return false;
        }
        true
    }
}

/// Whether the incident is about, or affects, workload `w` (`name` or `kind/name`, the
/// kind case-insensitive: `checkout`, `deployment/checkout`).
pub fn involves_workload(inc: &Incident, w: &str) -> bool {
    let (kind, name) = match w.split_once('/') {
        Some((k, n)) => (Some(k.to_ascii_lowercase()), n),
        None => (None, w),
    };
    let hit = |entity: &str| {
        let p: Vec<&str> = entity.split('/').collect();
        let (ek, en) = (
            p.first().copied().unwrap_or(""),
            p.last().copied().unwrap_or(""),
        );
        en == name && kind.as_deref().is_none_or(|k| ek.eq_ignore_ascii_case(k))
    };
    let identity = format!("{}/{}", inc.identity.kind, inc.identity.name);
    hit(&identity) || inc.affected.iter().any(|a| hit(a))
}

/// The root-cause kind, when the engine is confident of it.
pub fn confident_cause(inc: &Incident) -> Option<&str> {
    inc.hypotheses
        .first()
        .filter(|_| inc.root_cause_confident)
        .map(|h| h.cause.as_str())
}

/// The first active silence covering the incident.
pub fn silenced_by<'a>(
    silences: &'a [Silence],
    inc: &Incident,
    now: DateTime<Utc>,
) -> Option<&'a Silence> {
    silences.iter().find(|s| s.active(now) && s.matches(inc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{Declare, declare};

    fn t(m: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + m * 60, 0).expect("time")
    }

    fn inc(ns: &str, sev: Severity) -> Incident {
        let mut i = declare(
            &Declare {
                severity: sev,
                title: "x".into(),
                by: None,
                namespace: Some(ns.into()),
                service: Some("checkout".into()),
                description: None,
            },
            t(0),
            Ulid::from_parts(1, 1),
        )
        .expect("valid");
        i.affected.push(format!("Deployment/{ns}/checkout"));
        i
    }

    fn silence(m: Matchers) -> Silence {
        Silence {
            id: Ulid::from_parts(2, 2),
            matchers: m,
            starts_at: t(0),
            ends_at: t(60),
            created_by: "alice".into(),
            comment: "node maintenance".into(),
            expired_at: None,
        }
    }

    #[test]
    fn every_matcher_must_hold_and_only_while_active() {
        let s = silence(Matchers {
            namespace: Some("shop".into()),
            severity: vec![Severity::P3, Severity::P4],
            ..Matchers::default()
        });
        assert!(s.matches(&inc("shop", Severity::P3)));
        assert!(
            !s.matches(&inc("shop", Severity::P1)),
            "severity must match"
        );
        assert!(
            !s.matches(&inc("payments", Severity::P3)),
            "namespace must match"
        );
        let list = [s];
        assert!(silenced_by(&list, &inc("shop", Severity::P3), t(30)).is_some());
        assert!(
            silenced_by(&list, &inc("shop", Severity::P3), t(61)).is_none(),
            "ended"
        );
        let mut expired = list[0].clone();
        expired.expired_at = Some(t(10));
        assert!(!expired.active(t(20)));
    }

    #[test]
    fn workload_matches_by_name_or_kind_and_name() {
        let i = inc("shop", Severity::P2);
        for (w, hit) in [
            ("checkout", true),
            ("deployment/checkout", true),
            ("Service/checkout", true),
            ("statefulset/checkout", false),
            ("cart", false),
        ] {
            let s = silence(Matchers {
                workload: Some(w.into()),
                ..Matchers::default()
            });
            assert_eq!(s.matches(&i), hit, "{w}");
        }
    }

    #[test]
    fn a_silence_without_matchers_is_refused() {
        assert!(Matchers::default().validate().is_err());
    }
}
