//! Directional pair 8: one crash-looping replica of three against all three.

use super::*;

// ---------------------------------------------------------------------------------------
// 8. One failing replica of three vs all three.
// ---------------------------------------------------------------------------------------

/// A Deployment `web` of three behind a Service, healthy for two minutes; then `failing`
/// of its pods crash-loop for eight minutes (state, BackOff events, endpoints, the
/// Deployment's availability), no rollout or config change.
pub(crate) fn replica_pair_stream(failing: usize) -> Vec<Value> {
    let t0: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
        .expect("time")
        .with_timezone(&Utc);
    let sec = Duration::seconds;
    let mut app = App {
        cluster: Some("prod".into()),
        ns: "storefront".into(),
        name: "web".into(),
        hash: "5f7c9d8b6".into(),
        image: "registry.example.com/storefront/web:3.2.0".into(),
        created: t0 - Duration::days(10),
        cluster_ip: "10.96.40.10".into(),
        salt: 0x5EED_0000_0000,
        seq: 0,
    };
    let pods = [
        ("web-5f7c9d8b6-a1b2c", "node-a", "10.1.0.21"),
        ("web-5f7c9d8b6-d3e4f", "node-b", "10.1.1.22"),
        ("web-5f7c9d8b6-g5h6j", "node-c", "10.1.2.23"),
    ];
    let since = t0 - Duration::days(2);
    let mut out: Vec<(DateTime<Utc>, Value)> = Vec::new();
    for (i, (node, ip)) in [
        ("node-a", "10.0.1.21"),
        ("node-b", "10.0.2.34"),
        ("node-c", "10.0.3.47"),
    ]
    .iter()
    .enumerate()
    {
        let conds: Vec<Value> = ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
            .iter()
            .map(|c| {
                json!({"type": c, "status": if *c == "Ready" { "True" } else { "False" },
                       "lastHeartbeatTime": ts(since), "lastTransitionTime": ts(since)})
            })
            .collect();
        let o = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node, "uid": app.uid(node), "resourceVersion": "100001",
                         "creationTimestamp": ts(since - Duration::days(20)),
                         "labels": {"kubernetes.io/hostname": node,
                                    "topology.kubernetes.io/zone": format!("eu-west-1{}", ["a", "b", "c"][i])}},
            "spec": {"podCIDR": format!("10.1.{i}.0/24")},
            "status": {"capacity": {"cpu": "8", "memory": "33554432Ki", "pods": "110"},
                       "allocatable": {"cpu": "7910m", "memory": "31879168Ki", "pods": "110"},
                       "conditions": conds,
                       "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": node}]}
        });
        let (t, mut e) = app.event("added", t0, o);
        e["entity"] = json!({"cluster": "prod", "node": node});
        out.push((t, e));
    }
    let o = app.deployment(3, 3, 1);
    out.push(app.event("added", t0, o));
    let o = app.replicaset(3, 3, 1);
    out.push(app.event("added", t0, o));
    let pod = |app: &App, i: usize, restarts: u32, t: DateTime<Utc>, crashing: bool| {
        let (name, node, ip) = pods[i];
        let (state, last, ready) = if crashing {
            (
                json!({"waiting": {"reason": "CrashLoopBackOff",
                                   "message": format!("back-off {}s restarting failed container=app pod={name}_storefront({})",
                                                      (10u32 << restarts.min(5)).min(300), app.uid(name))}}),
                json!({"terminated": {"exitCode": 1, "reason": "Error",
                                      "startedAt": ts(t - sec(8)), "finishedAt": ts(t - sec(1))}}),
                false,
            )
        } else {
            (running(since), json!({}), true)
        };
        app.pod(
            &PodSpec {
                name,
                node,
                ip,
                phase: "Running",
                ready,
                restarts,
                state,
                last_state: last,
                deleting: None,
            },
            since,
        )
    };
    for i in 0..3 {
        let o = pod(&app, i, 0, t0, false);
        out.push(app.event("added", t0, o));
    }
    let o = app.service();
    out.push(app.event("added", t0, o));
    let eps = |ready: &[bool]| -> Vec<(&str, &str, &str, bool, bool)> {
        pods.iter()
            .zip(ready)
            .map(|((n, node, ip), r)| (*n, *node, *ip, *r, false))
            .collect()
    };
    let o = app.endpointslice(&eps(&[true, true, true]), 1);
    out.push(app.event("added", t0, o));
    // Callers reach the Service all along; what fails is what the endpoints say.
    let fail_at = t0 + sec(120);
    let ready: Vec<bool> = (0..3).map(|i| i >= failing).collect();
    let healthy = 3 - failing as u32;
    for step in 0..16u32 {
        let t = fail_at + sec(30 * i64::from(step));
        for (i, (name, _, _)) in pods.iter().enumerate().take(failing) {
            let o = pod(&app, i, step + 1, t, true);
            out.push(app.event("modified", t, o));
            let o = app.k8s_event(
                t,
                "Pod",
                name,
                "Warning",
                "BackOff",
                &format!(
                    "Back-off restarting failed container app in pod {name}_storefront({})",
                    app.uid(name)
                ),
                step + 1,
                fail_at,
            );
            out.push(app.event(if step == 0 { "added" } else { "modified" }, t, o));
        }
        if step == 0 {
            let o = app.endpointslice(&eps(&ready), 2);
            out.push(app.event("modified", t, o));
            let o = app.replicaset(3, healthy, 1);
            out.push(app.event("modified", t, o));
            let o = app.deployment(3, healthy, 1);
            out.push(app.event("modified", t, o));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out.into_iter()
        .enumerate()
        .map(|(i, (_, e))| batch("kube-watch", "node-a", i + 1, vec![e]))
        .collect()
}

pub(crate) fn pair_expected(severity: Severity) -> Expected {
    serde_json::from_value(json!({
        "description": "metamorphic pair: crash-looping replicas of storefront/web",
        "incidents": [{
            "severity": severity,
            "cause": "none",
            "entity": "Deployment/storefront/web",
            "involves": ["Service/storefront/web"]
        }]
    }))
    .expect("expected")
}
