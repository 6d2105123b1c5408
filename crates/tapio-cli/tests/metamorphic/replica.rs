//! Transformation 5: one healthy replica more for a Deployment that plays no part in the
//! answer.

use super::*;

// ---------------------------------------------------------------------------------------
// 5. A healthy replica more.
// ---------------------------------------------------------------------------------------

/// Whether `text` names `name` as a whole token (after a character that is not
/// alphanumeric — nor `-` unless `after_dash` — and before one that is not alphanumeric).
pub(crate) fn mentions(text: &str, name: &str, after_dash: bool) -> bool {
    let b = text.as_bytes();
    text.match_indices(name).any(|(i, _)| {
        let prev_ok = i == 0 || !(is_alnum(b[i - 1]) || (!after_dash && b[i - 1] == b'-'));
        let end = i + name.len();
        prev_ok && (end == b.len() || !is_alnum(b[end]))
    })
}

pub(crate) fn num(v: &Value, path: &str) -> Option<u64> {
    v.pointer(path).and_then(Value::as_u64)
}

/// Whether a pod object is running, ready, never restarted and not going away.
pub(crate) fn pod_healthy(o: &Value) -> bool {
    s(o, &["status", "phase"]) == Some("Running")
        && o.pointer("/metadata/deletionTimestamp").is_none()
        && o.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| s(c, &["type"]) == Some("Ready") && s(c, &["status"]) == Some("True"))
            })
        && o.pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                !cs.is_empty()
                    && cs.iter().all(|c| {
                        c.get("ready") == Some(&json!(true)) && num(c, "/restartCount") == Some(0)
                    })
            })
}

pub(crate) fn node_healthy(o: &Value) -> bool {
    let conds_ok = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().all(|c| match s(c, &["type"]) {
                Some("Ready") => s(c, &["status"]) == Some("True"),
                _ => s(c, &["status"]) != Some("True"),
            })
        });
    conds_ok
        && o.pointer("/spec/unschedulable").is_none()
        && o.pointer("/spec/taints")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
}

/// For the first Deployment (by name) that plays no part in the scenario's answer — not
/// in expected.json, in no incident the engine produces, named by no fact, alert, change
/// marker or object other than its own (Deployment, ReplicaSet, pods, Service,
/// EndpointSlice, events), with a single ReplicaSet — one more ready replica from the
/// start: a pod like its first healthy one (another name, UID and IP) on a node that stays
/// healthy and that no node-level fact names, one more (ready) replica in every version
/// of the Deployment and ReplicaSet, one more ready endpoint in every version of each
/// EndpointSlice that lists its pods.
pub(crate) fn healthy_replica(sc: &Scenario) -> Option<Variant> {
    let batches = sc.batches();
    let expected = parse_expected(&sc.name, &sc.expected);
    let events = decode_lines(&sc.name, sc.lines.iter().map(String::as_str));
    let answer = serde_json::to_string(&run(&sc.name, &events, &expected).incidents)
        .expect("incidents as JSON");
    let expected_text = sc.expected.to_string();
    let watch = |ev: &Value| -> Option<(String, String)> {
        let t = s(ev, &["type"])?;
        t.starts_with("kubernetes.watch.").then_some(())?;
        let o = ev.get("object")?;
        Some((
            s(o, &["kind"])?.to_owned(),
            t.trim_start_matches("kubernetes.watch.").to_owned(),
        ))
    };
    // Candidates: Deployments in application namespaces that no answer names.
    let mut deps: BTreeSet<(String, String)> = BTreeSet::new();
    for b in &batches {
        for ev in events_of(b) {
            if let Some((k, _)) = watch(ev)
                && k == "Deployment"
            {
                let o = &ev["object"];
                let (Some(ns), Some(n)) = (
                    s(o, &["metadata", "namespace"]),
                    s(o, &["metadata", "name"]),
                ) else {
                    continue;
                };
                if !KEPT_NAMESPACES.contains(&ns)
                    && !mentions(&expected_text, n, false)
                    && !mentions(&answer, n, false)
                {
                    deps.insert((ns.to_owned(), n.to_owned()));
                }
            }
        }
    }
    // Everything but workloads' own objects, Kubernetes events and connect statistics
    // (alerts, agent facts, change markers, other kinds); and what is about a node itself.
    let mut others: Vec<String> = Vec::new();
    let mut about_nodes: Vec<String> = Vec::new();
    for b in &batches {
        for ev in events_of(b) {
            let w = watch(ev);
            let own = match &w {
                Some((k, _)) => matches!(
                    k.as_str(),
                    "Deployment"
                        | "ReplicaSet"
                        | "Pod"
                        | "Service"
                        | "EndpointSlice"
                        | "Node"
                        | "Event"
                ),
                None => s(ev, &["type"]) == Some("kernel.network.connect_stats"),
            };
            let node_level = match &w {
                Some((k, _)) => {
                    k == "Event"
                        && s(&ev["object"], &["involvedObject", "kind"]) == Some("Node")
                        && s(&ev["object"], &["type"]) != Some("Normal")
                }
                None => ev.pointer("/entity/pod").is_none(),
            };
            if !own || node_level {
                let text = ev.to_string();
                if node_level {
                    about_nodes.push(text.clone());
                }
                if !own {
                    others.push(text);
                }
            }
        }
    }
    let all_text = sc.lines.join("\n");
    for (ns, dep) in deps {
        if others.iter().any(|l| mentions(l, &dep, false)) {
            continue;
        }
        let mut rs_names = BTreeSet::new();
        let mut model: Option<Value> = None;
        for b in &batches {
            for ev in events_of(b) {
                let Some((k, verb)) = watch(ev) else { continue };
                let o = &ev["object"];
                if s(o, &["metadata", "namespace"]) != Some(ns.as_str()) {
                    continue;
                }
                let name = s(o, &["metadata", "name"]).unwrap_or_default();
                let owner = o
                    .pointer("/metadata/ownerReferences/0/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match k.as_str() {
                    "ReplicaSet" if owner == dep => {
                        rs_names.insert(name.to_owned());
                    }
                    "Pod"
                        if model.is_none()
                            && verb == "added"
                            && pod_healthy(o)
                            && owner
                                .strip_prefix(dep.as_str())
                                .is_some_and(|r| r.starts_with('-')) =>
                    {
                        model = Some(o.clone());
                    }
                    _ => {}
                }
            }
        }
        let Some(model) = model else { continue };
        if rs_names.len() != 1 {
            continue;
        }
        let node = s(&model, &["spec", "nodeName"])
            .unwrap_or_default()
            .to_owned();
        if node.is_empty() || about_nodes.iter().any(|l| mentions(l, &node, true)) {
            continue;
        }
        let node_ok = batches.iter().flat_map(events_of).all(|ev| {
            let o = &ev["object"];
            !(watch(ev).is_some_and(|(k, _)| k == "Node")
                && s(o, &["metadata", "name"]) == Some(&node))
                || (node_healthy(o) && s(ev, &["type"]) != Some("kubernetes.watch.deleted"))
        });
        if !node_ok {
            continue;
        }
        // An address no one uses.
        let Some(new_ip) = (1..250)
            .map(|i| format!("10.253.{i}.77"))
            .find(|ip| !all_text.contains(&format!("\"{ip}\"")))
        else {
            continue;
        };
        eprintln!("{}: one replica more for Deployment/{ns}/{dep}", sc.name);
        return Some(add_replica(sc, batches, &ns, &dep, model, &new_ip));
    }
    None
}

pub(crate) fn add_replica(
    sc: &Scenario,
    batches: Vec<Value>,
    ns: &str,
    dep: &str,
    model: Value,
    new_ip: &str,
) -> Variant {
    let rs = model
        .pointer("/metadata/ownerReferences/0/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let model_name = s(&model, &["metadata", "name"])
        .unwrap_or_default()
        .to_owned();
    let node = s(&model, &["spec", "nodeName"])
        .unwrap_or_default()
        .to_owned();
    // The model's zone, as an endpoint of it says.
    let zone: Option<String> = batches
        .iter()
        .flat_map(events_of)
        .filter_map(|ev| ev.pointer("/object/endpoints").and_then(Value::as_array))
        .flatten()
        .find(|e| s(e, &["targetRef", "name"]) == Some(&model_name))
        .and_then(|e| s(e, &["zone"]))
        .map(str::to_owned);
    let new_name = format!("{rs}-mmzqx");
    let new_uid = format!(
        "00000000-0000-4000-8000-{:012x}",
        fnv(&new_name) & 0xffff_ffff_ffff
    );
    let mut pod = model.clone();
    pod["metadata"]["name"] = json!(new_name);
    pod["metadata"]["uid"] = json!(new_uid);
    pod["status"]["podIP"] = json!(new_ip);
    pod["status"]["podIPs"] = json!([{"ip": new_ip}]);
    let bump = |v: &mut Value, path: &str| {
        if let Some(x) = v.pointer_mut(path)
            && let Some(n) = x.as_u64()
        {
            *x = json!(n + 1);
        }
    };
    let mut out = Vec::with_capacity(batches.len());
    let mut added = false;
    let mut salt = 0u128;
    for mut b in batches {
        // (position in the batch, the new pod's event) to insert after the model's.
        let mut extra: Option<(usize, Value)> = None;
        for (pos, ev) in events_mut(&mut b).enumerate() {
            let verb = s(ev, &["type"]).unwrap_or_default().to_owned();
            let Some(o) = ev.get_mut("object") else {
                continue;
            };
            if s(o, &["metadata", "namespace"]) != Some(ns) {
                continue;
            }
            let kind = s(o, &["kind"]).unwrap_or_default().to_owned();
            let name = s(o, &["metadata", "name"]).unwrap_or_default().to_owned();
            match kind.as_str() {
                "Deployment" if name == dep => {
                    for p in [
                        "/spec/replicas",
                        "/status/replicas",
                        "/status/updatedReplicas",
                        "/status/readyReplicas",
                        "/status/availableReplicas",
                    ] {
                        bump(o, p);
                    }
                }
                "ReplicaSet" if name == rs => {
                    for p in [
                        "/spec/replicas",
                        "/status/replicas",
                        "/status/fullyLabeledReplicas",
                        "/status/readyReplicas",
                        "/status/availableReplicas",
                    ] {
                        bump(o, p);
                    }
                    if let Some(Value::String(d)) = o.pointer_mut(
                        "/metadata/annotations/deployment.kubernetes.io~1desired-replicas",
                    ) && let Ok(n) = d.parse::<u64>()
                    {
                        *d = (n + 1).to_string();
                    }
                }
                "Pod" if name == model_name && verb == "kubernetes.watch.added" && !added => {
                    added = true;
                    let mut e = ev.clone();
                    let t = time_of(&e).unwrap_or_default();
                    salt += 1;
                    e["id"] = json!(ulid(t, 0x0AD0_0000_0000 + salt));
                    e["object"] = pod.clone();
                    if let Some(ent) = e.get_mut("entity").and_then(Value::as_object_mut)
                        && ent.contains_key("pod")
                    {
                        ent.insert("pod".into(), json!(new_name));
                    }
                    extra = Some((pos + 1, e));
                }
                "EndpointSlice" => {
                    let Some(eps) = o.get_mut("endpoints").and_then(Value::as_array_mut) else {
                        continue;
                    };
                    if let Some(m) = eps
                        .iter()
                        .find(|e| {
                            s(e, &["targetRef", "name"])
                                .is_some_and(|n| n.starts_with(&format!("{rs}-")))
                        })
                        .cloned()
                    {
                        let mut e = m;
                        e["nodeName"] = json!(node);
                        if let Some(z) = &zone {
                            e["zone"] = json!(z);
                        }
                        e["addresses"] = json!([new_ip]);
                        e["targetRef"]["name"] = json!(new_name);
                        e["targetRef"]["uid"] = json!(new_uid);
                        e["conditions"] =
                            json!({"ready": true, "serving": true, "terminating": false});
                        eps.push(e);
                    }
                }
                _ => {}
            }
        }
        if let Some((pos, e)) = extra
            && let Some(a) = b.get_mut("events").and_then(Value::as_array_mut)
        {
            a.insert(pos, e);
        }
        out.push(b);
    }
    assert!(added, "{}: the model pod was never added", sc.name);
    Variant {
        batches: out,
        expected: sc.expected.clone(),
        back: None,
    }
}
