//! kube-prometheus end to end: a real Prometheus evaluates the real kube-prometheus
//! alerting rules (`shared/reference/kube-prometheus/`, loaded at test time) over metrics
//! the test serves exactly as kube-state-metrics, the kubelet (cAdvisor) and node-exporter
//! expose them; a real Alertmanager sends what fires to Tapio's receiver
//! (`POST /api/v1/alertmanager`), and the test asserts the incidents Tapio opens.
//! Kubernetes state reaches Tapio as the kube watcher sends it: `kubernetes.watch.*`
//! evidence carrying the objects (docs/scenarios.md), generated from the same model of the
//! cluster as the metrics.
//!
//! Needs the Debian packages `prometheus` and `prometheus-alertmanager` (`.ci/run`
//! installs them).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tapio_testkit::{Daemon, Receiver, Server, require, which};

/// Every rule's `for:` (and `keep_firing_for:`) becomes this, so that the test takes
/// seconds instead of the rules' 1 m – 4 h. It changes *when* an alert fires, not *which*
/// alerts fire, nor their labels or annotations.
const FOR: &str = "5s";
/// After the last awaited alert reached Tapio: time for stragglers of the same storm and
/// for the correlator, before the incidents are read.
const SETTLE: Duration = Duration::from_secs(6);
/// `entity.cluster` of the watch evidence (the watcher's `--cluster-name`).
const CLUSTER: &str = "prod";

mod cluster;
mod metrics;
mod objects;
mod rules;
mod stack;

use cluster::*;
use metrics::*;
use rules::*;
use stack::*;

// ---------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------

/// node-b dies: NotReady (Unknown), unreachable, its pods not Ready, its kubelet and
/// node-exporter down, checkout (both replicas on node-b) 100 % of targets down, replicas
/// missing in shop, payments and search. One incident, on the node, P1, opened less than
/// 30 s after the first alert reached Tapio.
///
/// The watcher's view (the Node Unknown and tainted, its pods not Ready, the
/// EndpointSlices and Deployments that follow) is posted when the node fails: with the
/// rules' real `for:` (10–15 min) it reaches Tapio long before any of these alerts.
#[test]
fn node_failure_storm_is_one_p1_incident_on_the_node() {
    node_failure_storm(true);
}

/// The same storm with the alerts first: the watcher's view is posted only once the
/// alerts opened an incident (or 35 s after the first alert), so the detection figure is
/// the alert path's alone (Tapio without cluster access, or a watch that lags).
#[test]
fn node_failure_storm_seen_through_alerts_first_is_one_p1_incident_on_the_node() {
    node_failure_storm(false);
}

fn node_failure_storm(watch_first: bool) {
    let case = if watch_first {
        "node failure (watch first)"
    } else {
        "node failure (alerts first)"
    };
    let mut st = Stack::start();
    let failed_at = Instant::now();
    let watch = st.cluster().fail_node("node-b");
    let mut watch = Some(watch);
    if watch_first && let Some(w) = watch.take() {
        st.post_watch(w);
    }

    // The first alert to reach Tapio, the first incident and the first notification:
    // polled side by side (50 ms), so the figures share one resolution.
    let mut first_alert: Option<Instant> = None;
    let mut first_incident: Option<Instant> = None;
    let mut first_note: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if first_alert.is_none()
            && st.tapio.metric("tapio_alertmanager_alerts_received_total") > 0.0
        {
            first_alert = Some(Instant::now());
        }
        if first_incident.is_none() && !st.incidents().is_empty() {
            first_incident = Some(Instant::now());
        }
        if first_note.is_none() && !st.hook.accepted().is_empty() {
            first_note = Some(Instant::now());
        }
        // Without an incident 30 s after the first alert the detection assertion has
        // failed; carry on to report what Tapio makes of the storm.
        let done = first_incident.is_some() && first_note.is_some();
        if first_alert.is_some_and(|t| done || t.elapsed() > Duration::from_secs(35)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let alert_at = first_alert.unwrap_or_else(|| {
        panic!(
            "no alert reached Tapio within 120 s of node-b failing; Prometheus alerts: {:#?}",
            st.prometheus_alerts()
        )
    });
    let secs = |t: Instant| {
        if t >= alert_at {
            (t - alert_at).as_secs_f64()
        } else {
            -(alert_at - t).as_secs_f64()
        }
    };
    eprintln!(
        "{case}: first alert at Tapio {:.1} s after node-b failed (rules' for: {FOR})",
        (alert_at - failed_at).as_secs_f64()
    );
    let detection = first_incident.map(secs);
    for (what, t) in [("incident", first_incident), ("notification", first_note)] {
        match t {
            Some(t) => eprintln!(
                "{case}: first {what} {:+.2} s from the first alert's arrival ({:.1} s after the failure)",
                secs(t),
                (t - failed_at).as_secs_f64()
            ),
            None => eprintln!("{case}: no {what} 35 s after the first alert reached Tapio"),
        }
    }
    if let Some(w) = watch.take() {
        st.post_watch(w);
    }

    // The storm: the node, checkout's targets, pods and replicas in three namespaces.
    st.wait_alert(90, "KubeNodeNotReady", &[("node", "node-b")]);
    st.wait_alert(
        90,
        "TargetDown",
        &[("namespace", "shop"), ("service", "checkout")],
    );
    for (ns, workload) in [
        ("shop", "checkout"),
        ("payments", "payments-api"),
        ("search", "search-api"),
    ] {
        st.wait_alert(
            90,
            "KubeDeploymentReplicasMismatch",
            &[("namespace", ns), ("workload", workload)],
        );
        st.wait_alert(90, "KubePodNotReady", &[("namespace", ns)]);
    }
    std::thread::sleep(SETTLE);
    st.assert_rules_healthy();
    st.report(case);

    let checkout_down = st
        .firing()
        .into_iter()
        .find(|ev| alert_matches(ev, "TargetDown", &[("service", "checkout")]));
    let desc = checkout_down
        .as_ref()
        .and_then(|ev| ev["attributes"]["description"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        desc.starts_with("100% of the checkout/checkout targets"),
        "TargetDown for checkout: {desc:?}"
    );

    let incidents = st.incidents();
    let open: Vec<&Value> = incidents.iter().filter(|i| is_open(i)).collect();
    assert_eq!(
        open.len(),
        1,
        "one open incident for the node failure, got:\n{}",
        open.iter()
            .map(|i| describe_incident(i))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let inc = open[0];
    assert_eq!(
        top_hypothesis(inc),
        ("node_failure", "Node/node-b"),
        "root cause of:\n{}",
        describe_incident(inc)
    );
    assert_eq!(inc["severity"], "P1", "{}", describe_incident(inc));
    let d = detection.expect("an incident within 35 s of the first alert");
    assert!(d < 30.0, "first incident {d:.1} s after the first alert");
}

/// A rollout of shop/frontend whose new pod crash-loops: the watcher sees the rollout
/// (new template, new ReplicaSet, new pod); the crash loop reaches Tapio only as
/// KubePodCrashLooping (the pod's later status updates are not posted).
#[test]
fn crash_looping_rollout_is_an_incident_on_the_deployment() {
    let mut st = Stack::start();
    let (watch, pod) = st.cluster().rollout(
        "shop",
        "frontend",
        "registry.example.com/shop/frontend:1.5.0",
        "node-c",
    );
    st.post_watch(watch);
    st.sync_targets();
    st.cluster().crash_loop("shop", &pod);

    st.wait_alert(
        90,
        "KubePodCrashLooping",
        &[("namespace", "shop"), ("pod", &pod)],
    );
    std::thread::sleep(SETTLE);
    st.assert_rules_healthy();
    st.report("crash-looping rollout");

    let incidents = st.incidents();
    let on_frontend = incidents.iter().find(|i| {
        is_open(i)
            && (top_hypothesis(i).1 == "Deployment/shop/frontend"
                || (i["identity"]["kind"] == "Deployment"
                    && i["identity"]["namespace"] == "shop"
                    && i["identity"]["name"] == "frontend"))
    });
    assert!(
        on_frontend.is_some(),
        "no open incident on Deployment/shop/frontend:\n{}",
        incidents
            .iter()
            .map(describe_incident)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// payments/data-postgres-0 down to 1.5 % free: KubePersistentVolumeFillingUp (critical).
#[test]
fn filling_volume_is_an_incident_on_the_claim() {
    let st = Stack::start();
    st.cluster()
        .fill_volume("payments", "data-postgres-0", 0.015);

    st.wait_alert(
        90,
        "KubePersistentVolumeFillingUp",
        &[
            ("namespace", "payments"),
            ("persistentvolumeclaim", "data-postgres-0"),
        ],
    );
    assert!(
        st.firing().iter().any(|ev| ev["severity"] == "critical"
            && alert_matches(ev, "KubePersistentVolumeFillingUp", &[])),
        "the critical KubePersistentVolumeFillingUp"
    );
    std::thread::sleep(SETTLE);
    st.assert_rules_healthy();
    st.report("volume filling up");

    let incidents = st.incidents();
    let on_claim = incidents.iter().find(|i| {
        is_open(i) && top_hypothesis(i).1 == "PersistentVolumeClaim/payments/data-postgres-0"
    });
    assert!(
        on_claim.is_some(),
        "no open incident whose cause is PersistentVolumeClaim/payments/data-postgres-0:\n{}",
        incidents
            .iter()
            .map(describe_incident)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// One of search-api's three pods stops answering its metrics scrape while it serves:
/// TargetDown at 33 % is capacity for monitoring lost, not an outage. No P1/P2.
#[test]
fn partial_target_down_does_not_page() {
    let st = Stack::start();
    let pod = {
        let mut c = st.cluster();
        let pod = c
            .pods
            .iter()
            .find(|p| p.workload == "search-api" && p.node == "node-c")
            .expect("search-api on node-c")
            .name
            .clone();
        c.break_metrics("search", &pod);
        pod
    };
    eprintln!("scrapes of search/{pod} fail");

    st.wait_alert(
        90,
        "TargetDown",
        &[("namespace", "search"), ("service", "search-api")],
    );
    std::thread::sleep(SETTLE);
    st.assert_rules_healthy();
    st.report("partial TargetDown");

    let down = st
        .firing()
        .into_iter()
        .find(|ev| alert_matches(ev, "TargetDown", &[("service", "search-api")]))
        .expect("TargetDown");
    assert!(
        down["attributes"]["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("33.33% of the search-api/search-api targets")),
        "{down}"
    );
    let incidents = st.incidents();
    let paging: Vec<String> = incidents
        .iter()
        .filter(|i| pages_at(i, &["P1", "P2"]))
        .map(describe_incident)
        .collect();
    assert!(
        paging.is_empty(),
        "P1/P2 from 1 of 3 targets down:\n{}",
        paging.join("\n")
    );
    let notes: Vec<Value> = st
        .hook
        .accepted()
        .into_iter()
        .filter(|n| ["P1", "P2"].iter().any(|p| n["incident"]["severity"] == *p))
        .collect();
    assert!(notes.is_empty(), "P1/P2 notifications: {notes:#?}");
}

/// shop/frontend's containers throttled in 70 % of CFS periods: CPUThrottlingHigh (info)
/// alone is no page: P4 or nothing.
#[test]
fn cpu_throttling_alone_does_not_page() {
    let st = Stack::start();
    st.cluster().throttle("shop", "frontend", 0.7);

    st.wait_alert(90, "CPUThrottlingHigh", &[("namespace", "shop")]);
    std::thread::sleep(SETTLE);
    st.assert_rules_healthy();
    st.report("CPU throttling");

    let incidents = st.incidents();
    let paging: Vec<String> = incidents
        .iter()
        .filter(|i| pages_at(i, &["P1", "P2", "P3"]))
        .map(describe_incident)
        .collect();
    assert!(
        paging.is_empty(),
        "P1–P3 from CPU throttling alone:\n{}",
        paging.join("\n")
    );
    let notes: Vec<Value> = st
        .hook
        .accepted()
        .into_iter()
        .filter(|n| {
            ["P1", "P2", "P3"]
                .iter()
                .any(|p| n["incident"]["severity"] == *p)
        })
        .collect();
    assert!(notes.is_empty(), "P1–P3 notifications: {notes:#?}");
}
