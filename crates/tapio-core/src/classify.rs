//! The runbook's P1–P4, applied to one fact at a time.
//!
//! Which single signals the runbook classifies on their own (load shedding ranks facts by
//! it; the correlation engine shares its thresholds). Each rule gives a severity, the
//! runbook reason with the numbers that decided it, a title, and the stable identity.
//! The table is documented in `docs/classification.md`; keep the two in step.

use tapio_proto::{Entity, Event, EventSeverity};

use crate::incident::{Identity, Severity};

/// Runbook thresholds.
pub const P2_ERROR_RATIO: f64 = 0.05;
pub const P3_ERROR_RATIO: f64 = 0.01;
pub const P2_LATENCY_SECONDS: f64 = 5.0;
/// A failure ratio from connect statistics is trusted only over this many attempts.
pub const MIN_ATTEMPTS_FOR_RATIO: f64 = 20.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub severity: Severity,
    pub reason: String,
    pub title: String,
    pub identity: Identity,
}

/// The subject an incident about this entity is keyed on: the workload when known (pods
/// come and go, the Deployment stays), else the pod, service, container or node.
fn subject(e: &Entity) -> (String, String) {
    if let Some(w) = &e.workload {
        (w.kind.clone(), w.name.clone())
    } else if let Some(p) = &e.pod {
        ("Pod".into(), p.clone())
    } else if let Some(s) = &e.service {
        ("Service".into(), s.clone())
    } else if let Some(c) = e.container_id.as_ref().or(e.container.as_ref()) {
        ("Container".into(), c.clone())
    } else if let Some(n) = &e.node {
        ("Node".into(), n.clone())
    } else {
        ("Cluster".into(), e.cluster.clone().unwrap_or_default())
    }
}

fn identity(ev: &Event, problem: &str) -> Identity {
    let (kind, name) = subject(&ev.entity);
    Identity {
        cluster: ev.entity.cluster.clone(),
        namespace: ev.entity.namespace.clone(),
        kind,
        name,
        problem: problem.to_owned(),
    }
}

fn pct(r: f64) -> String {
    format!("{:.1}%", r * 100.0)
}

fn ratio_rule(ratio: f64, what: &str) -> Option<(Severity, String)> {
    if ratio > P2_ERROR_RATIO {
        Some((
            Severity::P2,
            format!(
                "{what} {} > 5%: runbook P2 \"High error rate (>5%)\"",
                pct(ratio)
            ),
        ))
    } else if ratio >= P3_ERROR_RATIO {
        Some((
            Severity::P3,
            format!(
                "{what} {} within 1-5%: runbook P3 \"Moderate error rate (1-5%)\"",
                pct(ratio)
            ),
        ))
    } else {
        None
    }
}

/// Destination of a network fact: `dst_addr:dst_port`, or the service name.
fn destination(ev: &Event) -> String {
    match (ev.attr_str("dst_addr"), ev.attr_str("dst_port")) {
        (Some(a), Some(p)) => format!("{a}:{p}"),
        (Some(a), None) => a,
        _ => ev
            .entity
            .service
            .clone()
            .unwrap_or_else(|| "unknown destination".into()),
    }
}

fn destination_identity(ev: &Event, problem: &str) -> Identity {
    Identity {
        cluster: ev.entity.cluster.clone(),
        namespace: None,
        kind: "Destination".into(),
        name: destination(ev),
        problem: problem.to_owned(),
    }
}

/// Classify one fact. `None`: the fact is evidence only and opens nothing on its own.
///
/// One function on purpose: the numbered rules are tried in order and the first match
/// wins (the table in docs/classification.md), so it reads top to bottom like that table.
pub fn classify(ev: &Event) -> Option<Classification> {
    let who = ev.entity.display_name();
    let t = ev.kind.as_str();

    // 1. A producer that knows better (an alert rule with `priority: P1`, a person's
    //    declaration through the events API) states the priority itself.
    if let Some(p) = ev
        .attr_str("priority")
        .and_then(|p| p.parse::<Severity>().ok())
    {
        let problem = ev
            .attr_str("alertname")
            .unwrap_or_else(|| ev.kind.anomaly().to_owned());
        return Some(Classification {
            severity: p,
            reason: format!("priority {p} declared by the producer of {t}"),
            title: format!("{} on {who}", humanize(&problem)),
            identity: identity(ev, &problem),
        });
    }

    // 2. Complete unavailability: a workload with desired replicas and none available.
    let desired = ev.attr_f64("desired_replicas");
    let available = ev.attr_f64("available_replicas");
    if t == "kubernetes.workload.unavailable"
        || matches!((desired, available), (Some(d), Some(a)) if d > 0.0 && a == 0.0)
    {
        return Some(Classification {
            severity: Severity::P1,
            reason: format!(
                "0 of {} replicas available: runbook P1 \"Complete service unavailability\"",
                desired.map_or("?".into(), |d| d.to_string())
            ),
            title: format!("{who} is down: no replica available"),
            identity: identity(ev, "unavailable"),
        });
    }

    // 3. Measured error ratio or latency (from alerts, connect statistics, app signals).
    if let Some(r) = ev.attr_f64("error_ratio")
        && let Some((severity, reason)) = ratio_rule(r, "error rate")
    {
        return Some(Classification {
            severity,
            reason,
            title: format!("High error rate on {who}"),
            identity: identity(ev, "error_rate"),
        });
    }
    if let (Some(attempts), Some(failed)) = (ev.attr_f64("attempts"), failed_connects(ev))
        && attempts >= MIN_ATTEMPTS_FOR_RATIO
        && let Some((severity, reason)) = ratio_rule(
            failed / attempts,
            &format!(
                "connection failure rate to {} ({failed} of {attempts})",
                destination(ev)
            ),
        )
    {
        return Some(Classification {
            severity,
            reason,
            title: format!("Connections to {} failing", destination(ev)),
            identity: destination_identity(ev, "connect_failures"),
        });
    }
    if let Some(lat) = ev
        .attr_f64("latency_seconds")
        .or_else(|| ev.attr_f64("p99_latency_seconds"))
        && lat > P2_LATENCY_SECONDS
    {
        return Some(Classification {
            severity: Severity::P2,
            reason: format!("response time {lat:.1} s > 5 s: runbook P2 \"Slow response times\""),
            title: format!("Slow responses from {who}"),
            identity: identity(ev, "latency"),
        });
    }

    // 4. Named signals the runbook classifies on their own.
    let (severity, problem, reason, title) = match t {
        "kernel.container.oom_kill" | "kubernetes.pod.oom_killed" => (
            Severity::P3,
            "oom",
            format!(
                "container OOM-killed{}: runbook P3 \"Non-critical component failures\" / \"Resource usage warnings\"",
                ev.attr_str("comm").map(|c| format!(" ({c})")).unwrap_or_default()
            ),
            format!("OOM kills in {who}"),
        ),
        "kubernetes.pod.crash_loop" | "kubernetes.pod.crash_loop_backoff" => (
            Severity::P2,
            "crash_loop",
            format!(
                "container in CrashLoopBackOff{}: runbook P2 \"Partial functionality unavailable\"",
                ev.attr_str("restart_count")
                    .map(|c| format!(" after {c} restarts"))
                    .unwrap_or_default()
            ),
            format!("{who} is crash-looping"),
        ),
        "kernel.network.connection_refused" => (
            Severity::P3,
            "connection_refused",
            format!(
                "connections refused by {}; failure rate unknown: runbook P3 \"Some features intermittently unavailable\"",
                destination(ev)
            ),
            format!("Connections refused by {}", destination(ev)),
        ),
        "kernel.network.connection_timeout" => (
            Severity::P3,
            "connection_timeout",
            format!(
                "connections to {} timing out: runbook P3 \"Some features intermittently unavailable\"",
                destination(ev)
            ),
            format!("Connections to {} timing out", destination(ev)),
        ),
        "kubernetes.node.not_ready" => (
            Severity::P2,
            "node_not_ready",
            "node NotReady: its workloads are unavailable until rescheduled: runbook P2 \"Partial functionality unavailable\"".to_owned(),
            format!("{who} is NotReady"),
        ),
        "kernel.storage.io_error" => (
            Severity::P3,
            "io_error",
            format!(
                "block I/O errors{}: runbook P3 \"Non-critical component failures\"",
                ev.attr_str("device").map(|d| format!(" on {d}")).unwrap_or_default()
            ),
            format!("Disk I/O errors on {who}"),
        ),
        "alert.prometheus.firing" => {
            let name = ev.attr_str("alertname").unwrap_or_else(|| "alert".into());
            let (sev, why) = match ev.severity {
                EventSeverity::Critical => (Severity::P2, "critical alert"),
                EventSeverity::Error => (Severity::P2, "error alert"),
                EventSeverity::Warning => (Severity::P3, "warning alert"),
                EventSeverity::Info | EventSeverity::Debug => (Severity::P4, "informational alert"),
            };
            let mut id = identity(ev, &name);
            id.problem = format!("alert:{name}");
            return Some(Classification {
                severity: sev,
                reason: format!(
                    "{why} {name} firing (set label priority=P1 on alerts that mean complete unavailability)"
                ),
                title: format!("{name} firing on {who}"),
                identity: id,
            });
        }
        _ => {
            if ev.kind.domain() == "security" && ev.severity == EventSeverity::Critical {
                (
                    Severity::P1,
                    "security",
                    "critical security signal: runbook P1 \"Security breach with active threat\"".to_owned(),
                    format!("Security threat on {who}"),
                )
            } else {
                return None;
            }
        }
    };
    // Refusals, timeouts and connect statistics about one destination are one problem.
    let identity = if matches!(problem, "connection_refused" | "connection_timeout") {
        destination_identity(ev, "connect_failures")
    } else {
        identity(ev, problem)
    };
    Some(Classification {
        severity,
        reason,
        title,
        identity,
    })
}

fn failed_connects(ev: &Event) -> Option<f64> {
    let refused = ev.attr_f64("refused");
    let timed_out = ev.attr_f64("timed_out");
    match (refused, timed_out) {
        (None, None) => None,
        (r, t) => Some(r.unwrap_or(0.0) + t.unwrap_or(0.0)),
    }
}

fn humanize(s: &str) -> String {
    s.replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapio_proto::{AttrValue, EventType, WorkloadRef};

    fn ev(t: &str, sev: EventSeverity, attrs: &[(&str, AttrValue)]) -> Event {
        Event {
            id: ulid::Ulid::new(),
            time: "2026-11-27T10:00:00Z".parse().expect("time"),
            kind: EventType::parse(t).expect("type"),
            severity: sev,
            entity: Entity {
                namespace: Some("shop".into()),
                pod: Some("api-7d9f-abc".into()),
                workload: Some(WorkloadRef {
                    kind: "Deployment".into(),
                    name: "api".into(),
                }),
                ..Entity::default()
            },
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            object: None,
        }
    }

    #[test]
    fn kernel_and_kubernetes_oom_share_one_identity() {
        let a = classify(&ev(
            "kernel.container.oom_kill",
            EventSeverity::Critical,
            &[],
        ))
        .expect("oom classified");
        let b = classify(&ev("kubernetes.pod.oom_killed", EventSeverity::Error, &[]))
            .expect("oom classified");
        assert_eq!(a.severity, Severity::P3);
        assert_eq!(a.identity, b.identity);
        assert_eq!(a.identity.kind, "Deployment");
    }

    #[test]
    fn error_ratio_thresholds_follow_the_runbook() {
        let at = |r: f64| {
            classify(&ev(
                "app.http.errors",
                EventSeverity::Error,
                &[("error_ratio", r.into())],
            ))
            .map(|c| c.severity)
        };
        assert_eq!(at(0.06), Some(Severity::P2));
        assert_eq!(at(0.05), Some(Severity::P3));
        assert_eq!(at(0.01), Some(Severity::P3));
        assert_eq!(at(0.005), None);
    }

    #[test]
    fn connect_stats_need_enough_attempts() {
        let few = ev(
            "kernel.network.connect_stats",
            EventSeverity::Info,
            &[("attempts", 5i64.into()), ("refused", 5i64.into())],
        );
        assert!(classify(&few).is_none());
        let many = ev(
            "kernel.network.connect_stats",
            EventSeverity::Info,
            &[
                ("attempts", 100i64.into()),
                ("refused", 30i64.into()),
                ("dst_addr", "10.0.0.7".into()),
                ("dst_port", 5432i64.into()),
            ],
        );
        let c = classify(&many).expect("classified");
        assert_eq!(c.severity, Severity::P2);
        assert_eq!(c.identity.name, "10.0.0.7:5432");
        assert!(c.reason.contains("30.0%"), "{}", c.reason);
    }

    #[test]
    fn unavailable_workload_is_p1_and_declared_priority_wins() {
        let c = classify(&ev(
            "kubernetes.workload.replicas_changed",
            EventSeverity::Error,
            &[
                ("desired_replicas", 3i64.into()),
                ("available_replicas", 0i64.into()),
            ],
        ))
        .expect("classified");
        assert_eq!(c.severity, Severity::P1);
        let c = classify(&ev(
            "alert.prometheus.firing",
            EventSeverity::Warning,
            &[("priority", "P1".into()), ("alertname", "ApiDown".into())],
        ))
        .expect("classified");
        assert_eq!(c.severity, Severity::P1);
    }

    #[test]
    fn plain_facts_open_nothing() {
        assert!(classify(&ev("change.deployment.rollout", EventSeverity::Info, &[])).is_none());
        assert!(
            classify(&ev(
                "kernel.network.retransmit",
                EventSeverity::Warning,
                &[]
            ))
            .is_none()
        );
    }

    #[test]
    fn refused_connections_key_on_destination() {
        let mut a = ev(
            "kernel.network.connection_refused",
            EventSeverity::Error,
            &[
                ("dst_addr", "10.0.0.9".into()),
                ("dst_port", 6379i64.into()),
            ],
        );
        let ca = classify(&a).expect("classified");
        a.entity.pod = Some("other-pod".into());
        a.entity.workload = None;
        let cb = classify(&a).expect("classified");
        assert_eq!(ca.identity, cb.identity);
        assert_eq!(ca.identity.name, "10.0.0.9:6379");
        // Connect statistics about the same destination join the same incident.
        let stats = ev(
            "kernel.network.connect_stats",
            EventSeverity::Info,
            &[
                ("attempts", 100i64.into()),
                ("refused", 90i64.into()),
                ("dst_addr", "10.0.0.9".into()),
                ("dst_port", 6379i64.into()),
            ],
        );
        assert_eq!(classify(&stats).expect("classified").identity, ca.identity);
    }
}
