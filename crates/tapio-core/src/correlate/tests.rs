//! Engine behaviour at the runbook's boundaries, flap damping, live depth switching and
//! determinism. Scenario-level accuracy is measured by `tapio eval tests/scenarios`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tapio_proto::{AttrValue, Entity, Event, EventSeverity, EventType, WorkloadRef};
use ulid::Ulid;

use super::*;

fn t0() -> DateTime<Utc> {
    "2026-11-27T10:00:00Z".parse().expect("time")
}

fn ev(
    at: i64,
    kind: &str,
    sev: EventSeverity,
    entity: Entity,
    attrs: &[(&str, AttrValue)],
) -> Event {
    Event {
        id: Ulid::from_parts(
            (t0() + Duration::seconds(at)).timestamp_millis() as u64,
            at as u128 + 1,
        ),
        time: t0() + Duration::seconds(at),
        kind: EventType::parse(kind).expect("type"),
        severity: sev,
        entity,
        attributes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        object: None,
    }
}

fn watch(at: i64, verb: &str, obj: serde_json::Value) -> Event {
    let mut e = ev(
        at,
        &format!("kubernetes.watch.{verb}"),
        EventSeverity::Info,
        Entity::default(),
        &[],
    );
    e.id = Ulid::from_parts(e.time.timestamp_millis() as u64, (at as u128) << 20 | 7);
    e.object = Some(obj);
    e
}

fn workload(ns: &str, name: &str) -> Entity {
    Entity {
        namespace: Some(ns.into()),
        workload: Some(WorkloadRef {
            kind: "Deployment".into(),
            name: name.into(),
        }),
        ..Entity::default()
    }
}

fn alert(at: i64, ratio: f64) -> Event {
    ev(
        at,
        "alert.prometheus.firing",
        EventSeverity::Warning,
        Entity {
            namespace: Some("shop".into()),
            service: Some("checkout".into()),
            ..Entity::default()
        },
        &[
            ("alertname", AttrValue::String("HighErrorRate".into())),
            ("error_ratio", AttrValue::Float(ratio)),
        ],
    )
}

fn run(engine: &mut CorrelationEngine, evs: &[Event]) -> Vec<Incident> {
    for e in evs {
        engine.observe(e, e.time);
    }
    engine.incidents()
}

fn standard() -> CorrelationEngine {
    CorrelationEngine::with_defaults(CorrelationDepth::Standard)
}

#[test]
fn error_rate_boundaries_follow_the_runbook() {
    for (ratio, want) in [
        (0.05, Severity::P3),   // exactly 5 %: not "> 5 %"
        (0.0501, Severity::P2), // just above
        (0.01, Severity::P3),   // 1 %: P3 "1-5 %"
        (0.995, Severity::P1),  // all requests failing
    ] {
        let incs = run(&mut standard(), &[alert(0, ratio)]);
        assert_eq!(incs.len(), 1, "{ratio}");
        assert_eq!(
            incs[0].severity, want,
            "ratio {ratio}: {}",
            incs[0].severity_reason
        );
    }
}

#[test]
fn response_time_boundary_is_five_seconds() {
    for (lat, want) in [(5.0, Severity::P3), (5.01, Severity::P2)] {
        let e = ev(
            0,
            "alert.prometheus.firing",
            EventSeverity::Error,
            workload("shop", "checkout"),
            &[
                ("alertname", AttrValue::String("SlowCheckout".into())),
                ("p99_latency_seconds", AttrValue::Float(lat)),
            ],
        );
        let incs = run(&mut standard(), &[e]);
        assert_eq!(
            incs[0].severity, want,
            "latency {lat}: {}",
            incs[0].severity_reason
        );
    }
}

fn stats(at: i64, attempts: i64, refused: i64) -> Event {
    ev(
        at,
        "kernel.network.connect_stats",
        EventSeverity::Warning,
        Entity {
            node: Some("n1".into()),
            ..Entity::default()
        },
        &[
            ("dst_addr", AttrValue::String("10.0.0.9".into())),
            ("dst_port", AttrValue::Int(443)),
            ("attempts", AttrValue::Int(attempts)),
            ("refused", AttrValue::Int(refused)),
        ],
    )
}

#[test]
fn l4_ratios_need_traffic_and_must_be_sustained_for_p2() {
    // 3 of 10: a service with almost no traffic does not page.
    assert!(run(&mut standard(), &[stats(0, 10, 3)]).is_empty());
    // 30 of 100 once: not yet sustained (P3); twice: P2.
    let mut e = standard();
    let incs = run(&mut e, &[stats(0, 100, 30)]);
    assert_eq!(incs[0].severity, Severity::P3);
    let incs = run(&mut e, &[stats(10, 100, 30)]);
    assert_eq!(
        incs[0].severity,
        Severity::P2,
        "{}",
        incs[0].severity_reason
    );
    // The ratio falls: severity holds for the quiet period (no flapping page), then moves
    // down, and the move is on the timeline.
    let incs = run(&mut e, &[stats(20, 100, 2)]);
    assert_eq!(incs[0].severity, Severity::P2, "held");
    let incs = run(&mut e, &[stats(20 + 301, 100, 2)]);
    assert_eq!(
        incs[0].severity,
        Severity::P3,
        "{}",
        incs[0].severity_reason
    );
    assert_eq!(incs[0].peak_severity, Some(Severity::P2));
    assert!(
        incs[0]
            .timeline
            .iter()
            .any(|t| t.kind == TimelineKind::SeverityChanged && t.message.contains("P2 → P3"))
    );
}

fn oom(at: i64, name: &str) -> Event {
    ev(
        at,
        "kernel.container.oom_kill",
        EventSeverity::Critical,
        workload("shop", name),
        &[("memory_limit_bytes", AttrValue::Int(268_435_456))],
    )
}

#[test]
fn flap_damping_resolves_after_quiet_and_a_relapse_reopens_the_same_incident() {
    let mut e = standard();
    let first = run(&mut e, &[oom(0, "api")]);
    assert_eq!(first.len(), 1);
    let id = first[0].id;
    // Four minutes later: still open (quiet period is five).
    e.tick(t0() + Duration::minutes(4));
    assert_eq!(e.incidents()[0].status, Status::Open);
    // Six minutes: resolved.
    let changed = e.tick(t0() + Duration::minutes(6));
    assert_eq!(changed.len(), 1);
    assert_eq!(e.incidents()[0].status, Status::Resolved);
    // A relapse ten minutes later reopens the same incident.
    let again = run(&mut e, &[oom(16 * 60, "api")]);
    assert_eq!(again.len(), 1, "no second incident");
    assert_eq!(again[0].id, id);
    assert_eq!(again[0].status, Status::Open);
    assert!(
        again[0]
            .timeline
            .iter()
            .any(|t| t.message.starts_with("reopened"))
    );
    // Long after the reopen window, a new failure is a new incident.
    e.tick(t0() + Duration::minutes(30));
    let later = run(&mut e, &[oom(90 * 60, "api")]);
    assert!(later.iter().any(|i| i.id != id && i.status == Status::Open));
}

#[test]
fn an_incident_that_goes_quiet_resolves_without_a_downgrade_first() {
    // 30 % errors (P2 when sustained), then 2 % (P3: the downgrade waits for the quiet
    // period), then nothing: the tick that ends the quiet period resolves it at its
    // level. A "now P3" a second before "resolved" would only be one more page.
    let mut e = standard();
    let mut resolved = alert(130, 0.0);
    resolved.kind = EventType::parse("alert.prometheus.resolved").expect("type");
    run(
        &mut e,
        &[alert(0, 0.30), alert(60, 0.30), alert(120, 0.02), resolved],
    );
    let before = e.incidents()[0].severity;
    let changed = e.tick(t0() + Duration::seconds(120) + Duration::minutes(6));
    assert_eq!(changed.len(), 1, "one change: the resolution");
    assert_eq!(changed[0].incident().status, Status::Resolved);
    assert_eq!(
        changed[0].incident().severity,
        before,
        "no downgrade on the way out"
    );
    assert!(
        !changed[0].incident().timeline.iter().any(
            |t| t.kind == TimelineKind::SeverityChanged && t.at > t0() + Duration::seconds(120)
        ),
        "{:#?}",
        changed[0].incident().timeline
    );
}

/// checkout's EndpointSlice with its one endpoint ready or not (added at 0).
fn slice(at: i64, ready: bool) -> Event {
    watch(
        at,
        if at == 0 { "added" } else { "modified" },
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "checkout-abc", "namespace": "shop",
                         "labels": {"kubernetes.io/service-name": "checkout"}},
            "endpoints": [{"addresses": ["10.1.0.5"], "conditions": {"ready": ready}}]
        }),
    )
}

#[test]
fn a_condition_still_true_keeps_the_incident_open() {
    let mut e = standard();
    let incs = run(&mut e, &[slice(0, true), slice(10, false)]);
    assert!(
        incs.is_empty(),
        "an outage waits out its grace period first"
    );
    e.tick(t0() + Duration::seconds(45));
    let incs = e.incidents();
    assert_eq!(incs.len(), 1, "state: {:?}", e.state.slices);
    assert_eq!(
        incs[0].detected_at,
        t0() + Duration::seconds(45),
        "detected when the grace period ended, not before"
    );
    assert_eq!(
        incs[0].severity,
        Severity::P1,
        "{}",
        incs[0].severity_reason
    );
    e.tick(t0() + Duration::hours(1));
    assert_eq!(
        e.incidents()[0].status,
        Status::Open,
        "0 endpoints is still true"
    );
    // Endpoints back, and the last symptom long past: resolved at once.
    run(&mut e, &[slice(3700, true)]);
    e.tick(t0() + Duration::seconds(3710));
    assert_eq!(e.incidents()[0].status, Status::Resolved);
}

#[test]
fn an_outage_that_clears_within_its_grace_period_opens_nothing() {
    let mut e = standard();
    // A drain: the only endpoint goes, its replacement is ready 12 s later.
    run(&mut e, &[slice(0, true), slice(10, false), slice(22, true)]);
    e.tick(t0() + Duration::seconds(120));
    assert!(e.incidents().is_empty(), "{:?}", e.incidents());
    assert_eq!(e.damped, 1);
}

#[test]
fn depth_switches_live_basic_groups_without_causes() {
    let rollout = |at: i64, image: &str| {
        watch(
            at,
            if at == 0 { "added" } else { "modified" },
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "api", "namespace": "shop"},
                "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
                "status": {"availableReplicas": 2}
            }),
        )
    };
    let crash = |at: i64| {
        ev(
            at,
            "kubernetes.pod.crash_loop_backoff",
            EventSeverity::Error,
            workload("shop", "api"),
            &[],
        )
    };
    let mut e = CorrelationEngine::with_defaults(CorrelationDepth::Basic);
    let incs = run(
        &mut e,
        &[rollout(0, "api:1"), rollout(60, "api:2"), crash(90)],
    );
    assert_eq!(incs.len(), 1);
    assert!(incs[0].hypotheses.is_empty(), "basic: no causal inference");
    assert!(!incs[0].root_cause_confident);
    // Switched to standard while the incident is open: the next signal is explained.
    e.set_depth(CorrelationDepth::Standard);
    let incs = run(&mut e, &[crash(120)]);
    assert_eq!(incs.len(), 1);
    assert_eq!(incs[0].hypotheses[0].cause, "bad_rollout");
    assert!(incs[0].root_cause_confident);
    assert!(
        incs[0].hypotheses[0]
            .mitigations
            .contains(&"kubectl rollout undo deployment/api -n shop".to_owned())
    );
}

#[test]
fn the_same_stream_twice_gives_identical_incidents() {
    let evs: Vec<Event> = (0..20)
        .flat_map(|i| {
            [
                oom(i * 30, "api"),
                stats(i * 30 + 1, 100, 40),
                alert(i * 30 + 2, 0.2),
            ]
        })
        .collect();
    let a = run(&mut standard(), &evs);
    let b = run(&mut standard(), &evs);
    assert!(!a.is_empty());
    assert_eq!(
        serde_json::to_string(&a).expect("json"),
        serde_json::to_string(&b).expect("json")
    );
}

#[test]
fn a_weak_signal_alone_opens_nothing_three_do() {
    let exit = |at: i64| {
        ev(
            at,
            "kernel.container.abnormal_exit",
            EventSeverity::Warning,
            workload("batch", "job"),
            &[("exit_code", AttrValue::Int(1))],
        )
    };
    let mut e = standard();
    assert!(run(&mut e, &[exit(0)]).is_empty());
    assert!(
        run(&mut e, &[exit(700)]).is_empty(),
        "outside the window: still one"
    );
    assert!(run(&mut e, &[exit(710)]).is_empty());
    let incs = run(&mut e, &[exit(720)]);
    assert_eq!(incs.len(), 1);
    assert_eq!(
        incs[0].evidence_count, 3,
        "the earlier weak signals join the chain"
    );
}

// ---- common onset (alert storms) ----

/// A critical error-rate alert and a warning latency alert on one workload, the way a
/// RED-metrics rule set fires them.
fn red_alerts(at: i64, ns: &str, name: &str, ratio: f64, p99: f64) -> [Event; 2] {
    [
        ev(
            at,
            "alert.prometheus.firing",
            EventSeverity::Critical,
            workload(ns, name),
            &[
                ("alertname", AttrValue::String("HighErrorRate".into())),
                ("error_ratio", AttrValue::Float(ratio)),
            ],
        ),
        ev(
            at,
            "alert.prometheus.firing",
            EventSeverity::Warning,
            workload(ns, name),
            &[
                ("alertname", AttrValue::String("HighLatencyP99".into())),
                ("p99_latency_seconds", AttrValue::Float(p99)),
            ],
        ),
    ]
}

const SHOP: [(&str, f64, f64); 8] = [
    ("payments", 0.92, 8.5),
    ("checkout", 0.41, 6.2),
    ("orders", 0.27, 4.1),
    ("cart", 0.12, 2.3),
    ("frontend", 0.09, 3.4),
    ("shipping", 0.07, 1.9),
    ("recommendations", 0.04, 1.2),
    ("catalog", 0.03, 0.9),
];

fn storm(ns: &str, every: i64) -> Vec<Event> {
    SHOP.iter()
        .enumerate()
        .flat_map(|(i, (name, r, l))| red_alerts(i as i64 * every, ns, name, *r, *l))
        .collect()
}

fn open_incidents(incs: &[Incident]) -> Vec<&Incident> {
    incs.iter().filter(|i| i.merged_into.is_none()).collect()
}

#[test]
fn an_alert_storm_in_one_namespace_is_one_incident_with_the_first_and_worst_as_origin() {
    for depth in [CorrelationDepth::Standard, CorrelationDepth::Deep] {
        let mut e = CorrelationEngine::with_defaults(depth);
        let mut opened = 0;
        for x in storm("shop", 2) {
            opened += e
                .observe(&x, x.time)
                .iter()
                .filter(|c| matches!(c, IncidentChange::Opened(_)))
                .count();
        }
        assert_eq!(opened, 1, "{depth:?}: one incident is ever opened");
        let incs = e.incidents();
        let live = open_incidents(&incs);
        assert_eq!(live.len(), 1, "{depth:?}: {:#?}", live);
        let inc = live[0];
        let top = &inc.hypotheses[0];
        assert_eq!(top.cause, CASCADE_ORIGIN);
        assert_eq!(top.entity, "Deployment/shop/payments");
        assert!((top.confidence - 0.6).abs() < 1e-9, "{}", top.confidence);
        assert!(inc.root_cause_confident);
        assert!(
            top.explanation.contains("8 workloads in shop"),
            "{}",
            top.explanation
        );
        assert!(
            top.explanation.contains("first and worst"),
            "{}",
            top.explanation
        );
        assert!(
            top.explanation.contains("92 % errors"),
            "{}",
            top.explanation
        );
        assert_eq!(inc.severity, Severity::P2, "{}", inc.severity_reason);
        for (name, _, _) in SHOP {
            let d = format!("Deployment/shop/{name}");
            assert!(inc.affected.contains(&d), "{d} affected");
        }
        // The others exist only as merged records pointing at the survivor.
        assert_eq!(incs.len(), 1, "merged incidents are not held");
    }
}

#[test]
fn the_storm_severity_is_the_worst_members() {
    // The first workload is mildly hit; a later one fails completely (P1).
    let mut evs = storm("shop", 2);
    evs.extend(red_alerts(20, "shop", "ledger", 0.995, 1.0));
    let incs = run(&mut standard(), &evs);
    let live = open_incidents(&incs);
    assert_eq!(live.len(), 1);
    assert_eq!(
        live[0].severity,
        Severity::P1,
        "{}",
        live[0].severity_reason
    );
    // Payments is first but no longer the worst hit: a best guess, not a confident cause.
    let top = &live[0].hypotheses[0];
    assert_eq!(top.cause, CASCADE_ORIGIN);
    assert_eq!(top.entity, "Deployment/shop/payments");
    assert!(top.confidence < 0.5);
    assert!(!live[0].root_cause_confident);
}

#[test]
fn failures_far_apart_or_in_other_namespaces_stay_separate() {
    // Same namespace, five minutes apart: two incidents.
    let mut evs: Vec<Event> = red_alerts(0, "shop", "payments", 0.5, 6.0).into();
    evs.extend(red_alerts(300, "shop", "catalog", 0.3, 6.0));
    let incs = run(&mut standard(), &evs);
    assert_eq!(open_incidents(&incs).len(), 2);
    assert!(
        incs.iter()
            .all(|i| i.hypotheses.iter().all(|h| h.cause != CASCADE_ORIGIN))
    );
    // Same moment, different namespaces: two incidents.
    let mut evs: Vec<Event> = red_alerts(0, "shop", "payments", 0.5, 6.0).into();
    evs.extend(red_alerts(2, "billing", "invoices", 0.3, 6.0));
    let incs = run(&mut standard(), &evs);
    assert_eq!(open_incidents(&incs).len(), 2);
}

#[test]
fn a_workload_with_its_own_explanation_does_not_join_the_storm() {
    // api is OOM-killed at its limit (a rule explains it) while payments and checkout
    // fail without one: api stays its own incident.
    let mut evs: Vec<Event> = red_alerts(0, "shop", "payments", 0.9, 6.0).into();
    evs.push(oom(1, "api"));
    evs.push(oom(2, "api"));
    evs.extend(red_alerts(3, "shop", "checkout", 0.4, 6.0));
    let incs = run(&mut standard(), &evs);
    let live = open_incidents(&incs);
    let api = live
        .iter()
        .find(|i| i.identity.name == "api")
        .expect("api incident");
    assert!(api.root_cause_confident, "{:?}", api.hypotheses);
    assert_ne!(api.hypotheses[0].cause, CASCADE_ORIGIN);
    let group = live
        .iter()
        .find(|i| i.identity.name == "payments")
        .expect("payments incident");
    assert!(!group.affected.contains(&"Deployment/shop/api".to_owned()));
    assert!(
        group
            .affected
            .contains(&"Deployment/shop/checkout".to_owned())
    );
}

#[test]
fn basic_depth_groups_no_storm() {
    let incs = run(
        &mut CorrelationEngine::with_defaults(CorrelationDepth::Basic),
        &storm("shop", 2),
    );
    assert_eq!(open_incidents(&incs).len(), 8);
    assert!(incs.iter().all(|i| i.hypotheses.is_empty()));
}

#[test]
fn the_storm_group_is_bounded_by_the_onset_window() {
    // 8 workloads 20 s apart: the first four begin within 60 s of payments; the rest
    // form their own group (a cascade the window cannot prove).
    let incs = run(&mut standard(), &storm("shop", 20));
    let live = open_incidents(&incs);
    assert_eq!(
        live.len(),
        2,
        "{:#?}",
        live.iter().map(|i| &i.title).collect::<Vec<_>>()
    );
    let first = live
        .iter()
        .find(|i| i.identity.name == "payments")
        .expect("payments group");
    assert!(first.affected.contains(&"Deployment/shop/cart".to_owned()));
    assert!(
        !first
            .affected
            .contains(&"Deployment/shop/frontend".to_owned())
    );
}

#[test]
fn an_alert_storm_replayed_gives_identical_incidents() {
    let evs = storm("shop", 2);
    let a = run(&mut standard(), &evs);
    let b = run(&mut standard(), &evs);
    // Two empty answers would be "identical" too: the storm must have made incidents.
    assert!(!a.is_empty(), "the storm opened no incident");
    assert_eq!(
        serde_json::to_string(&a).expect("json"),
        serde_json::to_string(&b).expect("json")
    );
}

#[test]
fn a_storm_delivered_out_of_order_keeps_the_first_reported_incident_and_the_true_origin() {
    // Alertmanager delivers a group at once: the alerts arrive in no particular order.
    let mut evs = storm("shop", 2);
    evs.reverse();
    let mut e = standard();
    let mut opened = Vec::new();
    for x in &evs {
        for c in e.observe(x, x.time) {
            if let IncidentChange::Opened(i) = c {
                opened.push(i.id);
            }
        }
    }
    assert_eq!(opened.len(), 1, "only the first incident is ever reported");
    let incs = e.incidents();
    let live = open_incidents(&incs);
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, opened[0]);
    assert_eq!(live[0].hypotheses[0].cause, CASCADE_ORIGIN);
    assert_eq!(live[0].hypotheses[0].entity, "Deployment/shop/payments");
}

#[test]
fn host_network_pods_sharing_a_node_ip_are_told_apart_by_port() {
    let pod = |name: &str, owner: &str, port: i64| {
        watch(
            0,
            "added",
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "infra", "uid": name,
                             "ownerReferences": [{"kind": "DaemonSet", "name": owner, "controller": true}]},
                "spec": {"nodeName": "node-b", "hostNetwork": true,
                         "containers": [{"name": "c", "ports": [{"containerPort": port, "hostPort": port}]}]},
                "status": {"phase": "Running", "podIP": "10.0.2.17", "hostIP": "10.0.2.17"}
            }),
        )
    };
    let mut e = standard();
    run(
        &mut e,
        &[
            pod("ingress-abc", "ingress-nginx", 10254),
            pod("node-exporter-xyz", "node-exporter", 9100),
        ],
    );
    assert_eq!(
        e.state.who_is("10.0.2.17", Some(10254)),
        Some(EntityKey::ns("DaemonSet", "infra", "ingress-nginx"))
    );
    assert_eq!(
        e.state.who_is("10.0.2.17", Some(9100)),
        Some(EntityKey::ns("DaemonSet", "infra", "node-exporter")),
        "not whichever pod was indexed last"
    );
    assert_eq!(
        e.state.who_is("10.0.2.17", Some(80)),
        None,
        "nobody known to listen there: no guess"
    );
}

fn on_node(node: &str) -> Entity {
    Entity {
        node: Some(node.into()),
        ..Entity::default()
    }
}

#[test]
fn a_full_conntrack_table_is_the_nodes_resource_exhaustion_and_throttling_alone_pages_no_one() {
    let mut e = standard();
    let incs = run(
        &mut e,
        &[ev(
            10,
            "node.limits.conntrack",
            EventSeverity::Error,
            on_node("node-a"),
            &[
                ("used", AttrValue::Int(262_144)),
                ("max", AttrValue::Int(262_144)),
                ("ratio", AttrValue::Float(1.0)),
                ("dropping", AttrValue::Bool(true)),
                (
                    "message",
                    AttrValue::String("nf_conntrack: table full, dropping packet".into()),
                ),
            ],
        )],
    );
    assert_eq!(incs.len(), 1, "{incs:?}");
    let h = &incs[0].hypotheses[0];
    assert_eq!(
        (h.cause.as_str(), h.entity.as_str()),
        ("node_resource_exhaustion", "Node/node-a")
    );
    assert_eq!(
        incs[0].severity,
        Severity::P3,
        "{}",
        incs[0].severity_reason
    );

    // CPU throttling of a container, however often: no incident of its own.
    let mut e = standard();
    let throttled: Vec<Event> = (0..6)
        .map(|i| {
            ev(
                i * 30,
                "kernel.container.cpu_throttled",
                EventSeverity::Warning,
                workload("shop", "frontend"),
                &[
                    ("ratio", AttrValue::Float(0.6)),
                    ("nr_periods", AttrValue::Int(300)),
                    ("nr_throttled", AttrValue::Int(180)),
                ],
            )
        })
        .collect();
    let incs = run(&mut e, &throttled);
    assert!(incs.is_empty(), "CPU throttling alone opened: {incs:?}");
}

#[test]
fn a_soft_lockup_and_filesystem_errors_are_node_symptoms() {
    let mut e = standard();
    let incs = run(
        &mut e,
        &[
            ev(
                0,
                "node.kernel.soft_lockup",
                EventSeverity::Error,
                on_node("node-c"),
                &[
                    ("cpu", AttrValue::Int(3)),
                    ("stuck_seconds", AttrValue::Int(22)),
                    ("comm", AttrValue::String("kworker/3:1".into())),
                ],
            ),
            ev(
                5,
                "node.kernel.fs_error",
                EventSeverity::Error,
                on_node("node-c"),
                &[
                    ("device", AttrValue::String("nvme0n1p1".into())),
                    (
                        "message",
                        AttrValue::String("EXT4-fs error (device nvme0n1p1): ext4_journal_check_start:83: Detected aborted journal".into()),
                    ),
                ],
            ),
        ],
    );
    let live: Vec<&Incident> = incs.iter().filter(|i| i.merged_into.is_none()).collect();
    assert_eq!(live.len(), 1, "one node chain: {live:?}");
    assert!(live[0].affected.contains(&"Node/node-c".to_owned()));
    assert!(
        live[0]
            .hypotheses
            .iter()
            .any(|h| h.cause == "disk_failure" && h.entity == "Node/node-c"),
        "{:?}",
        live[0].hypotheses
    );
}

/// 40 workloads each fail to reach 75 distinct addresses nobody in the cluster owns (3,000
/// in two minutes), and halfway every caller of `shop/checkout` sees all its connects fail.
fn storm_with_an_outage() -> Vec<Event> {
    let mut evs = vec![watch(
        0,
        "added",
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}}),
    )];
    for i in 0..3_000i64 {
        let at = 1 + i / 25;
        let caller = workload(&format!("ns-{}", i % 40), &format!("app-{}", i % 40));
        let mut e = ev(
            at,
            "kernel.network.connection_refused",
            EventSeverity::Warning,
            caller,
            &[
                (
                    "dst_addr",
                    AttrValue::String(format!("172.16.{}.{}", i / 250, i % 250)),
                ),
                ("dst_port", AttrValue::Int(1024 + i)),
                ("count", AttrValue::Int(5)),
            ],
        );
        e.id = Ulid::from_parts(e.time.timestamp_millis() as u64, (i as u128) << 8 | 1);
        evs.push(e);
        if i == 1_500 {
            for c in 0..8i64 {
                let mut s = ev(
                    at,
                    "kernel.network.connect_stats",
                    EventSeverity::Warning,
                    workload("web", &format!("frontend-{}", c % 2)),
                    &[
                        ("dst_addr", AttrValue::String("10.96.0.10".into())),
                        ("dst_port", AttrValue::Int(80)),
                        ("attempts", AttrValue::Int(100)),
                        ("refused", AttrValue::Int(100)),
                        ("interval_seconds", AttrValue::Int(10)),
                    ],
                );
                s.id = Ulid::from_parts(s.time.timestamp_millis() as u64, (c as u128) << 40 | 3);
                evs.push(s);
            }
        }
    }
    evs
}

#[test]
fn a_storm_of_distinct_destinations_is_a_few_incidents_and_a_p1_still_opens_its_own() {
    let mut engine = standard();
    let incs = run(&mut engine, &storm_with_an_outage());
    let open = open_incidents(&incs);
    // One incident per caller at most (its destinations beyond the first few join it),
    // not one per address.
    assert!(
        open.len() <= 40 * (FANOUT_DESTINATIONS as usize + 1) + 2,
        "{} incidents for a storm from 40 callers",
        open.len()
    );
    assert!(
        engine.storm_grouped > 2_000,
        "grouped {}",
        engine.storm_grouped
    );
    let pages: Vec<_> = open
        .iter()
        .filter(|i| i.severity <= Severity::P2)
        .map(|i| format!("{} {} ({})", i.severity, i.title, i.severity_reason))
        .collect();
    assert_eq!(pages.len(), 1, "exactly the outage pages: {pages:#?}");
    assert!(
        pages[0].starts_with("P1") && pages[0].contains("Service/shop/checkout"),
        "{pages:#?}"
    );
}

#[test]
fn a_storm_past_the_opening_rate_goes_to_one_bucket_that_merges_with_nothing() {
    // 1,000 callers each failing to reach one distinct unknown address: no caller fans out,
    // so the opening rate bounds them.
    let mut engine = standard();
    let mut evs = Vec::new();
    for i in 0..1_000i64 {
        let mut e = ev(
            i / 10,
            "kernel.network.connection_refused",
            EventSeverity::Warning,
            workload(&format!("ns-{i}"), &format!("app-{i}")),
            &[
                (
                    "dst_addr",
                    AttrValue::String(format!("172.17.{}.{}", i / 250, i % 250)),
                ),
                ("dst_port", AttrValue::Int(443)),
                ("count", AttrValue::Int(5)),
            ],
        );
        e.id = Ulid::from_parts(e.time.timestamp_millis() as u64, (i as u128) << 8 | 5);
        evs.push(e);
    }
    // An OOM kill during the storm is another symptom: its own incident, not the bucket.
    let mut oom_kill = oom(60, "billing");
    oom_kill.entity.namespace = Some("pay".into());
    evs.push(oom_kill);
    evs.sort_by_key(|e| e.time);
    let incs = run(&mut engine, &evs);
    let open = open_incidents(&incs);
    assert!(open.len() <= STORM_OPENS + 2, "{} incidents", open.len());
    assert!(
        open.iter()
            .any(|i| i.title.contains("billing") && !i.identity.name.starts_with(STORM_ANCHOR)),
        "the OOM kill has its own incident"
    );
    let bucket: Vec<_> = open
        .iter()
        .filter(|i| i.identity.name.starts_with(STORM_ANCHOR))
        .collect();
    assert_eq!(bucket.len(), 1);
    assert!(
        bucket[0].evidence_count >= 700,
        "{}",
        bucket[0].evidence_count
    );
    assert!(
        bucket[0].severity >= Severity::P3,
        "a storm of refusals pages no one"
    );
}

#[test]
fn at_the_active_cap_the_longest_quiet_incidents_are_closed_and_reported_once() {
    let cfg = EngineConfig {
        max_active: 100,
        ..EngineConfig::default()
    };
    let mut engine =
        CorrelationEngine::new(cfg, rules::default_rules(), CorrelationDepth::Standard);
    let mut reported_closed = 0;
    for i in 0..150i64 {
        let mut e = oom(i, &format!("app-{i}"));
        e.entity.namespace = Some(format!("ns-{i}"));
        for c in engine.observe(&e, e.time) {
            if c.incident().status == Status::Resolved
                && c.incident()
                    .timeline
                    .iter()
                    .any(|t| t.message.contains("(the cap)"))
            {
                reported_closed += 1;
            }
        }
    }
    assert!(engine.active_count() <= 100);
    assert_eq!(
        engine.evicted, reported_closed,
        "each closed incident is reported"
    );
    assert!(reported_closed >= 50);
}
