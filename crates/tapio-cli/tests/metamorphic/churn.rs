//! Transformation 4: routine churn, a healthy Deployment of its own scaled up and down.

use super::*;

// ---------------------------------------------------------------------------------------
// 4. Routine churn.
// ---------------------------------------------------------------------------------------

/// A healthy Deployment of two in a namespace of its own, scaled to three a third into
/// the scenario and back to two two thirds in, with its ReplicaSet, pods, Service,
/// EndpointSlice and the Normal events a real scale-up and scale-down produce. Its pods
/// run on a node the scenario does not have (so no scenario's node failure touches them).
// Kept whole (~300 lines): one timeline (already running, scale up, scale down) whose
// steps share the same app, clock and object versions, written in the order a real
// cluster emits them.
pub(crate) fn churn(sc: &Scenario) -> Option<Variant> {
    let batches = sc.batches();
    let times: Vec<DateTime<Utc>> = batches
        .iter()
        .flat_map(|b| events_of(b).filter_map(time_of).collect::<Vec<_>>())
        .collect();
    let (t_min, t_max) = (*times.iter().min()?, *times.iter().max()?);
    let span = t_max - t_min;
    if span < Duration::seconds(60) {
        return None;
    }
    for l in &sc.lines {
        assert!(
            !l.contains("10.254.") && !l.contains("mmchurn") && !l.contains("tidepool"),
            "{}: churn addresses or names collide with the scenario",
            sc.name
        );
    }
    let mut clusters: BTreeMap<&str, usize> = BTreeMap::new();
    for b in &batches {
        for ev in events_of(b) {
            if let Some(c) = s(ev, &["entity", "cluster"]) {
                *clusters.entry(c).or_default() += 1;
            }
        }
    }
    let cluster = clusters
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(c, _)| (*c).to_owned());
    let mut app = App {
        cluster,
        ns: "mmchurn".into(),
        name: "tidepool".into(),
        hash: "6b8f7c9d5".into(),
        image: "registry.example.com/mmchurn/tidepool:1.4.0".into(),
        created: t_min - Duration::days(3),
        cluster_ip: "10.254.255.10".into(),
        salt: 0x7EA5_0000_0000_0000,
        seq: 0,
    };
    let node = "mmchurn-node-1";
    let long_ago = t_min - Duration::days(2);
    let pods = [
        ("tidepool-6b8f7c9d5-k2xqv", "10.254.0.11"),
        ("tidepool-6b8f7c9d5-w7rzn", "10.254.0.12"),
        ("tidepool-6b8f7c9d5-q9mfs", "10.254.0.13"),
    ];
    let healthy = |app: &App, i: usize, since: DateTime<Utc>| {
        app.pod(
            &PodSpec {
                name: pods[i].0,
                node,
                ip: pods[i].1,
                phase: "Running",
                ready: true,
                restarts: 0,
                state: running(since),
                last_state: json!({}),
                deleting: None,
            },
            since,
        )
    };
    let ep = |i: usize, ready: bool, term: bool| (pods[i].0, node, pods[i].1, ready, term);
    let mut out: Vec<(DateTime<Utc>, Value)> = Vec::new();
    // Already running when the scenario starts.
    let t0 = t_min;
    let o = app.deployment(2, 2, 1);
    out.push(app.event("added", t0, o));
    let o = app.replicaset(2, 2, 1);
    out.push(app.event("added", t0, o));
    for i in 0..2 {
        let o = healthy(&app, i, long_ago);
        out.push(app.event("added", t0, o));
    }
    let o = app.service();
    out.push(app.event("added", t0, o));
    let o = app.endpointslice(&[ep(0, true, false), ep(1, true, false)], 1);
    out.push(app.event("added", t0, o));

    // Scale up to three.
    let up = t_min + span / 3;
    let sec = Duration::seconds;
    let new_pod = pods[2].0;
    let o = app.deployment(3, 2, 2);
    out.push(app.event("modified", up, o));
    let o = app.k8s_event(
        up,
        "Deployment",
        "tidepool",
        "Normal",
        "ScalingReplicaSet",
        "Scaled up replica set tidepool-6b8f7c9d5 to 3 from 2",
        1,
        up,
    );
    out.push(app.event("added", up, o));
    let o = app.replicaset(3, 2, 2);
    out.push(app.event("modified", up, o));
    let pending = app.pod(
        &PodSpec {
            name: new_pod,
            node,
            ip: "",
            phase: "Pending",
            ready: false,
            restarts: 0,
            state: json!({"waiting": {"reason": "ContainerCreating"}}),
            last_state: json!({}),
            deleting: None,
        },
        up,
    );
    out.push(app.event("added", up, pending));
    let rs = app.rs_name();
    let o = app.k8s_event(
        up,
        "ReplicaSet",
        &rs,
        "Normal",
        "SuccessfulCreate",
        &format!("Created pod: {new_pod}"),
        1,
        up,
    );
    out.push(app.event("added", up, o));
    let o = app.k8s_event(
        up + sec(1),
        "Pod",
        new_pod,
        "Normal",
        "Scheduled",
        &format!("Successfully assigned mmchurn/{new_pod} to {node}"),
        1,
        up + sec(1),
    );
    out.push(app.event("added", up + sec(1), o));
    let starting = app.pod(
        &PodSpec {
            name: new_pod,
            node,
            ip: pods[2].1,
            phase: "Running",
            ready: false,
            restarts: 0,
            state: running(up + sec(2)),
            last_state: json!({}),
            deleting: None,
        },
        up,
    );
    out.push(app.event("modified", up + sec(2), starting));
    for (reason, msg) in [
        (
            "Pulled",
            "Container image \"registry.example.com/mmchurn/tidepool:1.4.0\" already present on machine",
        ),
        ("Created", "Created container app"),
        ("Started", "Started container app"),
    ] {
        let o = app.k8s_event(
            up + sec(2),
            "Pod",
            new_pod,
            "Normal",
            reason,
            msg,
            1,
            up + sec(2),
        );
        out.push(app.event("added", up + sec(2), o));
    }
    let o = app.endpointslice(
        &[ep(0, true, false), ep(1, true, false), ep(2, false, false)],
        2,
    );
    out.push(app.event("modified", up + sec(2), o));
    let o = healthy(&app, 2, up + sec(2));
    out.push(app.event("modified", up + sec(7), o));
    let o = app.endpointslice(
        &[ep(0, true, false), ep(1, true, false), ep(2, true, false)],
        3,
    );
    out.push(app.event("modified", up + sec(7), o));
    let o = app.replicaset(3, 3, 2);
    out.push(app.event("modified", up + sec(7), o));
    let o = app.deployment(3, 3, 2);
    out.push(app.event("modified", up + sec(7), o));

    // Scale back down to two.
    let down = t_min + span * 2 / 3;
    let o = app.deployment(2, 3, 3);
    out.push(app.event("modified", down, o));
    let o = app.k8s_event(
        down,
        "Deployment",
        "tidepool",
        "Normal",
        "ScalingReplicaSet",
        "Scaled down replica set tidepool-6b8f7c9d5 to 2 from 3",
        1,
        down,
    );
    out.push(app.event("added", down, o));
    let o = app.replicaset(2, 3, 3);
    out.push(app.event("modified", down, o));
    let terminating = app.pod(
        &PodSpec {
            name: new_pod,
            node,
            ip: pods[2].1,
            phase: "Running",
            ready: true,
            restarts: 0,
            state: running(up + sec(2)),
            last_state: json!({}),
            deleting: Some(down + sec(30)),
        },
        up,
    );
    out.push(app.event("modified", down, terminating));
    let o = app.k8s_event(
        down,
        "ReplicaSet",
        &rs,
        "Normal",
        "SuccessfulDelete",
        &format!("Deleted pod: {new_pod}"),
        1,
        down,
    );
    out.push(app.event("added", down, o));
    let o = app.endpointslice(
        &[ep(0, true, false), ep(1, true, false), ep(2, false, true)],
        4,
    );
    out.push(app.event("modified", down, o));
    let o = app.k8s_event(
        down,
        "Pod",
        new_pod,
        "Normal",
        "Killing",
        "Stopping container app",
        1,
        down,
    );
    out.push(app.event("added", down, o));
    let stopped = app.pod(
        &PodSpec {
            name: new_pod,
            node,
            ip: pods[2].1,
            phase: "Running",
            ready: false,
            restarts: 0,
            state: json!({"terminated": {"exitCode": 0, "reason": "Completed",
                                          "startedAt": ts(up + sec(2)), "finishedAt": ts(down + sec(2))}}),
            last_state: json!({}),
            deleting: Some(down + sec(30)),
        },
        up,
    );
    out.push(app.event("modified", down + sec(2), stopped.clone()));
    out.push(app.event("deleted", down + sec(2), stopped));
    let o = app.endpointslice(&[ep(0, true, false), ep(1, true, false)], 5);
    out.push(app.event("modified", down + sec(2), o));
    let o = app.replicaset(2, 2, 3);
    out.push(app.event("modified", down + sec(2), o));
    let o = app.deployment(2, 2, 3);
    out.push(app.event("modified", down + sec(2), o));

    // Interleave: each churn event its own batch, before the first scenario batch that
    // starts after it.
    let mut merged = Vec::new();
    let mut pending = out.into_iter().peekable();
    let mut seq = 0;
    for b in batches {
        let start = events_of(&b).filter_map(time_of).min();
        while let Some((t, _)) = pending.peek() {
            if start.is_some_and(|s| *t < s) {
                let (_, ev) = pending.next().expect("peeked");
                seq += 1;
                merged.push(batch("kube-watch-churn", node, seq, vec![ev]));
            } else {
                break;
            }
        }
        merged.push(b);
    }
    for (_, ev) in pending {
        seq += 1;
        merged.push(batch("kube-watch-churn", node, seq, vec![ev]));
    }
    Some(Variant {
        batches: merged,
        expected: sc.expected.clone(),
        back: None,
    })
}
