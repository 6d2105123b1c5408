//! Applying one Kubernetes object from `kubernetes.watch.*` to the cluster state: nodes,
//! pods, workloads, services, endpoints, volumes, webhooks and configuration. Each object
//! is compared with the version held, so a transition yields its signal once.

use super::*;

impl ClusterState {
    /// Apply one watch event. Returns what changed in meaning.
    pub fn apply(&mut self, verb: &str, obj: &Value, at: DateTime<Utc>, id: Ulid) -> Vec<Derived> {
        let mut cx = Ctx {
            at,
            id,
            out: Vec::new(),
        };
        let kind = s(obj, &["kind"]).unwrap_or("");
        let name = s(obj, &["metadata", "name"]).unwrap_or("");
        let ns = s(obj, &["metadata", "namespace"]).unwrap_or("");
        if name.is_empty() && kind != "Event" {
            return cx.out;
        }
        let deleted = verb == "deleted";
        match kind {
            "Node" => self.node(&mut cx, name, obj, deleted),
            "Pod" => self.pod(&mut cx, ns, name, obj, deleted),
            "ReplicaSet" => {
                let key = EntityKey::ns("ReplicaSet", ns, name);
                if deleted {
                    self.rs_owner.remove(&key);
                } else if let Some(o) =
                    self.owner_of(ns, arr(obj, &["metadata", "ownerReferences"]))
                {
                    self.rs_owner.insert(key, o);
                }
            }
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => {
                if kind == "Job" {
                    self.job(&mut cx, ns, name, obj, deleted);
                }
                self.workload(&mut cx, kind, ns, name, obj, deleted)
            }
            "HorizontalPodAutoscaler" => {
                let key = EntityKey::ns(kind, ns, name);
                let target = s(obj, &["spec", "scaleTargetRef", "kind"])
                    .zip(s(obj, &["spec", "scaleTargetRef", "name"]))
                    .map(|(k, n)| EntityKey::ns(k, ns, n));
                match target {
                    Some(t) if !deleted && self.hpa_targets.len() < MAX_OBJECTS => {
                        self.hpa_targets.insert(key, t);
                    }
                    _ => {
                        self.hpa_targets.remove(&key);
                    }
                }
            }
            "Service" => self.service(&mut cx, ns, name, obj, deleted),
            "EndpointSlice" | "Endpoints" => self.endpoints(&mut cx, kind, ns, name, obj, deleted),
            "PersistentVolumeClaim" => {
                let key = EntityKey::ns(kind, ns, name);
                if deleted {
                    self.claim_classes.remove(&key);
                } else {
                    if let Some(sc) = s(obj, &["spec", "storageClassName"])
                        && (self.claim_classes.len() < MAX_OBJECTS
                            || self.claim_classes.contains_key(&key))
                    {
                        self.claim_classes.insert(key.clone(), sc.to_owned());
                    }
                    if let Some(pv) = s(obj, &["spec", "volumeName"])
                        && (self.pv_claims.len() < MAX_OBJECTS || self.pv_claims.contains_key(pv))
                    {
                        self.pv_claims.insert(pv.to_owned(), key);
                    }
                }
            }
            "PersistentVolume" => {
                if deleted {
                    self.pv_claims.remove(name);
                } else if let (Some(cns), Some(cname)) = (
                    s(obj, &["spec", "claimRef", "namespace"]),
                    s(obj, &["spec", "claimRef", "name"]),
                ) && (self.pv_claims.len() < MAX_OBJECTS
                    || self.pv_claims.contains_key(name))
                {
                    self.pv_claims.insert(
                        name.to_owned(),
                        EntityKey::ns("PersistentVolumeClaim", cns, cname),
                    );
                }
            }
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration" => {
                let key = EntityKey::new(kind, None, name);
                self.webhooks.retain(|_, v| *v != key);
                if !deleted {
                    for wh in arr(obj, &["webhooks"]).iter().take(64) {
                        if let Some(n) = wh.get("name").and_then(Value::as_str)
                            && self.webhooks.len() < MAX_OBJECTS
                        {
                            self.webhooks.insert(n.to_owned(), key.clone());
                        }
                    }
                }
            }
            "ConfigMap" | "Secret" => {
                let key = EntityKey::ns(kind, ns, name);
                if deleted {
                    self.configs.remove(&key);
                } else {
                    let h = data_hash(obj);
                    match self.configs.insert(key.clone(), h.clone()) {
                        Some(old) if old != h => cx.change(
                            key.clone(),
                            "config",
                            format!("{key} data changed (content hash {old} → {h})"),
                        ),
                        _ => {}
                    }
                }
            }
            "Event" => self.event(&mut cx, obj),
            _ => {}
        }
        cx.out
    }

    /// A Job: a newly failed one is a signal on its owner (the CronJob); its CronJob is
    /// remembered.
    fn job(&mut self, cx: &mut Ctx, ns: &str, name: &str, obj: &Value, deleted: bool) {
        if !deleted {
            let key = EntityKey::ns("Job", ns, name);
            let failed = arr(obj, &["status", "conditions"]).iter().find(|c| {
                c.get("type").and_then(Value::as_str) == Some("Failed")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            });
            let was_failed = self.failed_jobs.contains(&key);
            if let Some(c) = failed
                && !was_failed
            {
                if self.failed_jobs.len() < MAX_OBJECTS {
                    self.failed_jobs.insert(key.clone());
                }
                let subject = self.job_owner(&key).unwrap_or(key.clone());
                let reason = c.get("reason").and_then(Value::as_str).unwrap_or("Failed");
                cx.signal(
                    Symptom::JobFailed,
                    subject,
                    None,
                    format!("{key} failed ({reason})"),
                    true,
                    reason.to_owned(),
                );
            }
        }
        // The CronJob it belongs to, remembered (or forgotten) either way.
        {
            let key = EntityKey::ns("Job", ns, name);
            let cron = arr(obj, &["metadata", "ownerReferences"])
                .iter()
                .find(|o| o.get("kind").and_then(Value::as_str) == Some("CronJob"))
                .and_then(|o| o.get("name")?.as_str())
                .map(|c| EntityKey::ns("CronJob", ns, c));
            match cron {
                Some(c) if !deleted && self.job_owners.len() < MAX_OBJECTS => {
                    self.job_owners.insert(key, c);
                }
                _ => {
                    self.job_owners.remove(&key);
                }
            }
        }
    }

    /// A Service: its cluster IP, its selector and the workloads behind it; deleting one
    /// is a change (its name no longer resolves).
    fn service(&mut self, cx: &mut Ctx, ns: &str, name: &str, obj: &Value, deleted: bool) {
        let key = EntityKey::ns("Service", ns, name);
        if let Some(old) = self.services.get(&key)
            && let Some(ip) = &old.cluster_ip
        {
            self.ip_index.remove(ip);
        }
        if deleted {
            if self.services.remove(&key).is_some() {
                // Removing (or renaming) a Service changes what its callers reach.
                cx.change(
                    key.clone(),
                    "config",
                    format!("{key} deleted: its name no longer resolves"),
                );
            }
            self.svc_workloads.remove(&key);
            if let Some(set) = self.services_by_ns.get_mut(ns) {
                set.remove(&key);
            }
        } else if self.services.len() < MAX_OBJECTS || self.services.contains_key(&key) {
            if let Some(ip) =
                s(obj, &["spec", "clusterIP"]).filter(|ip| *ip != "None" && !ip.is_empty())
            {
                self.ip_index.insert(ip.to_owned(), key.clone());
            }
            self.services_by_ns
                .entry(ns.to_owned())
                .or_default()
                .insert(key.clone());
            let selector = labels(obj, &["spec", "selector"]);
            let mut behind = BTreeSet::new();
            if !selector.is_empty() {
                for pk in self.pods_by_ns.get(ns).into_iter().flatten() {
                    if let Some(p) = self.pods.get(pk)
                        && let Some(o) = &p.owner
                        && selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
                    {
                        behind.insert(o.clone());
                    }
                }
            }
            self.svc_workloads.insert(key.clone(), behind);
            let ports = arr(obj, &["spec", "ports"])
                .iter()
                .filter_map(|p| p.get("port")?.as_i64())
                .collect();
            self.services.insert(
                key,
                ServiceState {
                    selector: labels(obj, &["spec", "selector"]),
                    cluster_ip: s(obj, &["spec", "clusterIP"])
                        .filter(|ip| *ip != "None")
                        .map(str::to_owned),
                    ports,
                },
            );
        } else {
            self.refused_objects += 1;
        }
    }

    fn node(&mut self, cx: &mut Ctx, name: &str, obj: &Value, deleted: bool) {
        let key = EntityKey::node(name);
        if deleted {
            self.nodes.remove(name);
            return;
        }
        if !self.nodes.contains_key(name) && self.nodes.len() >= MAX_OBJECTS {
            self.refused_objects += 1;
            return;
        }
        let old = self.nodes.get(name).cloned();
        let mut st = NodeState::default();
        for c in arr(obj, &["status", "conditions"]) {
            let t = c.get("type").and_then(Value::as_str).unwrap_or("");
            let status = c.get("status").and_then(Value::as_str).unwrap_or("");
            match t {
                "Ready" => st.ready = Some(status == "True"),
                "MemoryPressure" | "DiskPressure" | "PIDPressure" if status == "True" => {
                    st.pressure.insert(t.to_owned());
                }
                // node-problem-detector and cloud conditions: a problem when True.
                _ if status == "True" && problem_condition(t).is_some() => {
                    st.problems.insert(t.to_owned());
                }
                _ => {}
            }
        }
        let node_labels = labels(obj, &["metadata", "labels"]);
        let pick = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| node_labels.get(*k))
                .filter(|v| !v.is_empty() && !v.contains('/') && v.len() <= 253)
                .cloned()
        };
        if let Some(g) = pick(NODE_GROUP_LABELS) {
            st.factors.push(("NodeGroup", g));
        }
        if let Some(z) = pick(ZONE_LABELS) {
            st.factors.push(("Zone", z));
        }
        st.addresses = arr(obj, &["status", "addresses"])
            .iter()
            .filter_map(|a| a.get("address")?.as_str().map(str::to_owned))
            .take(8)
            .collect();
        for t in arr(obj, &["spec", "taints"]) {
            if let Some(k) = t.get("key").and_then(Value::as_str) {
                let eff = t.get("effect").and_then(Value::as_str).unwrap_or("");
                st.taints.insert(format!("{k}:{eff}"));
            }
        }
        let was = old.clone().unwrap_or_default();
        // NotReady when it becomes so, or when first seen so. A cordoned node (drain,
        // scale-down) going away is planned: a weak signal.
        let cordoned = obj
            .get("spec")
            .and_then(|s| s.get("unschedulable"))
            .and_then(Value::as_bool)
            == Some(true)
            || st.taints.iter().any(|t| {
                t.starts_with("node.kubernetes.io/unschedulable")
                    || t.starts_with("ToBeDeletedByClusterAutoscaler")
                    // Spot/preemption notices: the node is about to go, by plan.
                    || t.starts_with("karpenter.sh/disrupt")
                    || t.starts_with("aws-node-termination-handler/")
                    || t.starts_with("cloud.google.com/impending-node-termination")
            });
        st.cordoned = cordoned;
        // A node first seen NotReady is booting (a new node from the autoscaler): weak.
        if st.ready == Some(false) && (was.ready != Some(false) || old.is_none()) {
            cx.signal(
                Symptom::NodeNotReady,
                key.clone(),
                Some(name.into()),
                format!(
                    "node {name} NotReady{}",
                    if cordoned { " (cordoned)" } else { "" }
                ),
                !cordoned && old.is_some(),
                String::new(),
            );
            if cordoned && let Some(Derived::Signal(s)) = cx.out.last_mut() {
                s.joins_only = true;
            }
        }
        if st.ready == Some(true) && was.ready == Some(false) {
            cx.recovery(key.clone(), Symptom::NodeNotReady);
        }
        for p in &st.pressure {
            if !was.pressure.contains(p) {
                let sym = match p.as_str() {
                    "MemoryPressure" => Symptom::NodeMemoryPressure,
                    "DiskPressure" => Symptom::NodeDiskPressure,
                    _ => Symptom::NodePidPressure,
                };
                cx.signal(
                    sym,
                    key.clone(),
                    Some(name.into()),
                    format!("node {name} {p}"),
                    true,
                    String::new(),
                );
            }
        }
        for p in &st.problems {
            if !was.problems.contains(p)
                && let Some(sym) = problem_condition(p)
            {
                cx.signal(
                    sym,
                    key.clone(),
                    Some(name.into()),
                    format!("node {name} condition {p}=True"),
                    true,
                    String::new(),
                );
            }
        }
        for p in &was.problems {
            if !st.problems.contains(p)
                && let Some(sym) = problem_condition(p)
            {
                cx.recovery(key.clone(), sym);
            }
        }
        for p in &was.pressure {
            if !st.pressure.contains(p) {
                let sym = match p.as_str() {
                    "MemoryPressure" => Symptom::NodeMemoryPressure,
                    "DiskPressure" => Symptom::NodeDiskPressure,
                    _ => Symptom::NodePidPressure,
                };
                cx.recovery(key.clone(), sym);
            }
        }
        if old.is_some() {
            for t in st.taints.difference(&was.taints) {
                cx.change(
                    key.clone(),
                    "node",
                    format!("taint {t} added to node {name}"),
                );
            }
        }
        self.nodes.insert(name.to_owned(), st);
    }

    fn pod(&mut self, cx: &mut Ctx, ns: &str, name: &str, obj: &Value, deleted: bool) {
        let key = EntityKey::ns("Pod", ns, name);
        if deleted {
            let old = self.pods.remove(&key);
            self.unindex_pod(&key, old.as_ref());
            return;
        }
        if !self.pods.contains_key(&key) && self.pods.len() >= MAX_OBJECTS {
            self.refused_objects += 1;
            return;
        }
        // Taken out while it is compared with the new version (no clone), put back below.
        let old = self.pods.remove(&key);
        let owner = self.owner_of(ns, arr(obj, &["metadata", "ownerReferences"]));
        let subject = owner.clone().unwrap_or_else(|| key.clone());
        let node = s(obj, &["spec", "nodeName"]).map(str::to_owned);
        let mut st = read_pod(ns, obj, owner, node.clone());
        let empty = PodState::default();
        let was = old.as_ref().unwrap_or(&empty);
        st.was_ready = was.was_ready || st.ready == Some(true);
        pod_transitions(cx, name, &subject, node.as_ref(), &st, was, obj);
        let moved = old
            .as_ref()
            .is_none_or(|o| o.owner != st.owner || o.ip != st.ip || o.labels != st.labels);
        if moved {
            self.unindex_pod(&key, old.as_ref());
            self.index_pod(&key, &st);
            if let (Some(o), Some(ns)) = (&st.owner, &key.namespace) {
                let svcs: Vec<EntityKey> = self
                    .services_by_ns
                    .get(ns)
                    .into_iter()
                    .flatten()
                    .filter(|k| {
                        self.services.get(*k).is_some_and(|svc| {
                            !svc.selector.is_empty()
                                && svc
                                    .selector
                                    .iter()
                                    .all(|(sk, sv)| st.labels.get(sk) == Some(sv))
                        })
                    })
                    .cloned()
                    .collect();
                for svc in svcs {
                    self.svc_workloads.entry(svc).or_default().insert(o.clone());
                }
            }
        }
        self.pods.insert(key, st);
    }

    fn workload(
        &mut self,
        cx: &mut Ctx,
        kind: &str,
        ns: &str,
        name: &str,
        obj: &Value,
        deleted: bool,
    ) {
        let key = EntityKey::ns(kind, ns, name);
        if deleted {
            self.workloads.remove(&key);
            self.dns_workloads.remove(&key);
            return;
        }
        if ns == "kube-system" && name.contains("dns") {
            self.dns_workloads.insert(key.clone());
        }
        if !self.workloads.contains_key(&key) && self.workloads.len() >= MAX_OBJECTS {
            self.refused_objects += 1;
            return;
        }
        let images: Vec<String> = arr(obj, &["spec", "template", "spec", "containers"])
            .iter()
            .filter_map(|c| c.get("image")?.as_str().map(str::to_owned))
            .collect();
        let hash = |t: &Value| {
            use sha2::{Digest, Sha256};
            let d = Sha256::digest(t.to_string().as_bytes());
            d[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let tmpl = get(obj, &["spec", "template"]).map(hash);
        let spec_hash = get(obj, &["spec", "template"]).map(|t| {
            let mut t = t.clone();
            if let Some(a) = t
                .get_mut("metadata")
                .and_then(|m| m.get_mut("annotations"))
                .and_then(Value::as_object_mut)
            {
                a.remove("kubectl.kubernetes.io/restartedAt");
            }
            hash(&t)
        });
        let st = WorkloadState {
            desired: int(obj, &["spec", "replicas"])
                .or_else(|| int(obj, &["status", "desiredNumberScheduled"])),
            available: int(obj, &["status", "availableReplicas"])
                .or_else(|| int(obj, &["status", "numberAvailable"]))
                .or_else(|| int(obj, &["status", "readyReplicas"])),
            images: images.clone(),
            template_hash: tmpl,
            spec_hash,
            revision: s(
                obj,
                &[
                    "metadata",
                    "annotations",
                    "deployment.kubernetes.io/revision",
                ],
            )
            .map(str::to_owned),
        };
        if let Some(old) = self.workloads.get(&key) {
            if old.template_hash.is_some()
                && old.template_hash != st.template_hash
                && old.spec_hash == st.spec_hash
            {
                // New pods, same spec: a restart is weaker evidence than a new image or
                // config, and no rule takes it for a rollout.
                cx.change(
                    key.clone(),
                    "restart",
                    format!("restart of {key} (no change to its pod spec)"),
                );
            } else if old.template_hash.is_some() && old.template_hash != st.template_hash {
                let what = if old.images != st.images {
                    format!(
                        "rollout of {key}: image {} → {}",
                        old.images.join(","),
                        st.images.join(",")
                    )
                } else {
                    format!(
                        "rollout of {key}: pod template changed{}",
                        st.revision
                            .as_deref()
                            .map(|r| format!(" (revision {r})"))
                            .unwrap_or_default()
                    )
                };
                cx.change(key.clone(), "rollout", what);
            } else if old.desired != st.desired && old.desired.is_some() {
                cx.change(
                    key.clone(),
                    "scale",
                    format!(
                        "{key} scaled {} → {}",
                        old.desired.unwrap_or(0),
                        st.desired.unwrap_or(0)
                    ),
                );
            }
            let was_down = matches!((old.desired, old.available), (Some(d), a) if d > 0 && a.unwrap_or(0) == 0);
            let is_down =
                matches!((st.desired, st.available), (Some(d), a) if d > 0 && a.unwrap_or(0) == 0);
            if is_down && !was_down {
                cx.signal(
                    Symptom::WorkloadUnavailable,
                    key.clone(),
                    None,
                    format!("{key}: 0 of {} replicas available", st.desired.unwrap_or(0)),
                    true,
                    String::new(),
                );
            } else if was_down && !is_down {
                cx.recovery(key.clone(), Symptom::WorkloadUnavailable);
            }
        }
        self.workloads.insert(key, st);
    }

    fn endpoints(
        &mut self,
        cx: &mut Ctx,
        kind: &str,
        ns: &str,
        name: &str,
        obj: &Value,
        deleted: bool,
    ) {
        let slice_key = EntityKey::ns(kind, ns, name);
        let svc_name = if kind == "EndpointSlice" {
            obj.get("metadata")
                .and_then(|m| m.get("labels"))
                .and_then(|l| l.get("kubernetes.io/service-name"))
                .and_then(Value::as_str)
                .unwrap_or(name)
                .to_owned()
        } else {
            name.to_owned()
        };
        let svc = EntityKey::ns("Service", ns, &svc_name);
        let before = self.ready_endpoints(&svc);
        if let Some((_, _, _, old)) = self.slices.get(&slice_key) {
            for a in old.clone() {
                if self.ip_index.get(&a) == Some(&svc) {
                    self.ip_index.remove(&a);
                }
            }
        }
        if deleted {
            self.slices.remove(&slice_key);
        } else {
            let mut ready = Vec::new();
            let mut every: Vec<String> = Vec::new();
            let mut all = 0;
            if kind == "EndpointSlice" {
                for e in arr(obj, &["endpoints"]) {
                    let addrs: Vec<String> = arr(e, &["addresses"])
                        .iter()
                        .filter_map(|a| a.as_str().map(str::to_owned))
                        .collect();
                    all += addrs.len().max(1);
                    every.extend(addrs.iter().cloned());
                    // `ready` absent means ready (API semantics).
                    if get(e, &["conditions", "ready"]).and_then(Value::as_bool) != Some(false) {
                        ready.extend(addrs);
                    }
                }
            } else {
                for sub in arr(obj, &["subsets"]) {
                    for a in arr(sub, &["addresses"]) {
                        if let Some(ip) = a.get("ip").and_then(Value::as_str) {
                            ready.push(ip.to_owned());
                            every.push(ip.to_owned());
                            all += 1;
                        }
                    }
                    for a in arr(sub, &["notReadyAddresses"]) {
                        if let Some(ip) = a.get("ip").and_then(Value::as_str) {
                            every.push(ip.to_owned());
                        }
                        all += 1;
                    }
                }
            }
            if !self.slices.contains_key(&slice_key) && self.slices.len() >= MAX_OBJECTS {
                self.refused_objects += 1;
                return;
            }
            for a in &every {
                self.ip_index.insert(a.clone(), svc.clone());
            }
            self.slices
                .insert(slice_key, (svc.clone(), ready, all, every));
        }
        let after = self.ready_endpoints(&svc);
        let had = before.map(|(r, _)| r).unwrap_or(0);
        let has = after.map(|(r, _)| r).unwrap_or(0);
        if before.is_some() && had > 0 && has == 0 {
            let total = after.map(|(_, t)| t).unwrap_or(0);
            cx.signal(
                Symptom::NoReadyEndpoints,
                svc.clone(),
                None,
                format!("{svc}: 0 ready endpoints (of {total})"),
                true,
                String::new(),
            );
        } else if had == 0 && has > 0 && before.is_some() {
            cx.recovery(svc, Symptom::NoReadyEndpoints);
        }
    }
}

/// A pod object read into what correlation keeps: placement, owner, address, labels,
/// ports, the configuration and claims it uses, readiness, and each container's state.
fn read_pod(ns: &str, obj: &Value, owner: Option<EntityKey>, node: Option<String>) -> PodState {
    let host_network = get(obj, &["spec", "hostNetwork"]).and_then(Value::as_bool) == Some(true);
    let mut ports: Vec<i64> = Vec::new();
    for c in arr(obj, &["spec", "containers"]) {
        for p in arr(c, &["ports"]) {
            for k in ["containerPort", "hostPort"] {
                if let Some(n) = p.get(k).and_then(Value::as_i64)
                    && !ports.contains(&n)
                {
                    ports.push(n);
                }
            }
        }
    }
    let mut st = PodState {
        uid: s(obj, &["metadata", "uid"]).unwrap_or("").to_owned(),
        node,
        owner,
        ip: s(obj, &["status", "podIP"]).map(str::to_owned),
        labels: labels(obj, &["metadata", "labels"]),
        host_network,
        ports,
        ..PodState::default()
    };
    let mut limits: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for c in arr(obj, &["spec", "containers"]) {
        if let Some(n) = c.get("name").and_then(Value::as_str) {
            limits.insert(
                n.to_owned(),
                (
                    memory_limit(c),
                    c.get("image").and_then(Value::as_str).map(str::to_owned),
                ),
            );
        }
        for e in arr(c, &["envFrom"]) {
            if let Some(n) = s(e, &["configMapRef", "name"]) {
                st.configs.insert(EntityKey::ns("ConfigMap", ns, n));
            }
            if let Some(n) = s(e, &["secretRef", "name"]) {
                st.configs.insert(EntityKey::ns("Secret", ns, n));
            }
        }
        for e in arr(c, &["env"]) {
            if let Some(n) = s(e, &["valueFrom", "configMapKeyRef", "name"]) {
                st.configs.insert(EntityKey::ns("ConfigMap", ns, n));
            }
            if let Some(n) = s(e, &["valueFrom", "secretKeyRef", "name"]) {
                st.configs.insert(EntityKey::ns("Secret", ns, n));
            }
        }
    }
    for v in arr(obj, &["spec", "volumes"]) {
        if let Some(n) = s(v, &["persistentVolumeClaim", "claimName"]) {
            st.claims
                .insert(EntityKey::ns("PersistentVolumeClaim", ns, n));
        }
        if let Some(n) = s(v, &["configMap", "name"]) {
            st.configs.insert(EntityKey::ns("ConfigMap", ns, n));
        }
        if let Some(n) = s(v, &["secret", "secretName"]) {
            st.configs.insert(EntityKey::ns("Secret", ns, n));
        }
    }
    for c in arr(obj, &["status", "conditions"]) {
        let t = c.get("type").and_then(Value::as_str).unwrap_or("");
        let status = c.get("status").and_then(Value::as_str).unwrap_or("");
        if t == "Ready" {
            st.ready = Some(status == "True");
        }
        if t == "PodScheduled"
            && status == "False"
            && c.get("reason").and_then(Value::as_str) == Some("Unschedulable")
        {
            st.unschedulable = Some(
                c.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("Unschedulable")
                    .to_owned(),
            );
        }
    }
    if s(obj, &["status", "reason"]) == Some("Evicted") {
        st.evicted = true;
    }
    for cs in arr(obj, &["status", "containerStatuses"]) {
        let Some(cname) = cs.get("name").and_then(Value::as_str) else {
            continue;
        };
        let (limit, image) = limits.get(cname).cloned().unwrap_or_default();
        st.containers.insert(
            cname.to_owned(),
            ContainerState {
                restarts: int(cs, &["restartCount"]).unwrap_or(0),
                waiting: s(cs, &["state", "waiting", "reason"]).map(str::to_owned),
                last_terminated: s(cs, &["lastState", "terminated", "reason"]).map(str::to_owned),
                last_exit_code: int(cs, &["lastState", "terminated", "exitCode"]),
                memory_limit: limit,
                image: image.or_else(|| s(cs, &["image"]).map(str::to_owned)),
            },
        );
    }
    st
}

/// What changed between the pod held (`was`) and its new version (`st`), as signals on
/// `subject` (the pod's owner, else the pod): a lookup of a name that does not exist,
/// OOM kills and restarts, waiting reasons, unschedulable, evicted, ready again.
fn pod_transitions(
    cx: &mut Ctx,
    name: &str,
    subject: &EntityKey,
    node: Option<&String>,
    st: &PodState,
    was: &PodState,
    obj: &Value,
) {
    // A lookup that failed because the name does not exist (NXDOMAIN), read from the
    // container's last termination message: the Service it names is gone.
    for cs in arr(obj, &["status", "containerStatuses"]) {
        let msg = s(cs, &["lastState", "terminated", "message"]).unwrap_or("");
        let restarts = int(cs, &["restartCount"]).unwrap_or(0);
        let cname = cs.get("name").and_then(Value::as_str).unwrap_or("");
        let prev = was.containers.get(cname).map_or(0, |c| c.restarts);
        let lower = msg.to_ascii_lowercase();
        if restarts > prev
            && NO_SUCH_NAME.iter().any(|m| lower.contains(m))
            && let Some(svc) = looked_up_service(msg)
        {
            let cut: String = msg.chars().take(200).collect();
            cx.signal_to(
                Symptom::DnsFailure,
                subject.clone(),
                node.cloned(),
                svc.clone(),
                format!("pod {name} cannot resolve {svc}: {cut}"),
            );
        }
    }
    // Derive transitions (each observed once).
    for (cname, c) in &st.containers {
        let prev = was.containers.get(cname).cloned().unwrap_or_default();
        let restarted = c.restarts > prev.restarts;
        if restarted && c.last_terminated.as_deref() == Some("OOMKilled") {
            let lim = c
                .memory_limit
                .as_deref()
                .map(|l| format!(" (limit {l})"))
                .unwrap_or_default();
            cx.signal(
                Symptom::OomKilled,
                subject.clone(),
                node.cloned(),
                format!("container {cname} of pod {name} OOMKilled{lim}"),
                true,
                c.memory_limit.clone().unwrap_or_default(),
            );
        } else if restarted {
            let code = c
                .last_exit_code
                .map(|x| format!(" exit code {x}"))
                .unwrap_or_default();
            cx.signal(
                Symptom::Restarted,
                subject.clone(),
                node.cloned(),
                format!("container {cname} of pod {name} restarted{code}"),
                false,
                String::new(),
            );
        }
        if c.waiting != prev.waiting {
            match c.waiting.as_deref() {
                Some("CrashLoopBackOff") => cx.signal(
                    Symptom::CrashLoop,
                    subject.clone(),
                    node.cloned(),
                    format!(
                        "container {cname} of pod {name} in CrashLoopBackOff after {} restarts",
                        c.restarts
                    ),
                    true,
                    c.last_terminated.clone().unwrap_or_default(),
                ),
                Some(r @ ("ImagePullBackOff" | "ErrImagePull" | "InvalidImageName")) => cx.signal(
                    Symptom::ImagePullFailed,
                    subject.clone(),
                    node.cloned(),
                    format!(
                        "container {cname} of pod {name}: {r} ({})",
                        c.image.clone().unwrap_or_default()
                    ),
                    true,
                    c.image.clone().unwrap_or_default(),
                ),
                Some(r @ ("CreateContainerConfigError" | "CreateContainerError")) => cx.signal(
                    Symptom::ConfigError,
                    subject.clone(),
                    node.cloned(),
                    format!("container {cname} of pod {name}: {r}"),
                    true,
                    String::new(),
                ),
                _ => {}
            }
        }
    }
    if st.unschedulable.is_some() && was.unschedulable.is_none() {
        let msg = st.unschedulable.clone().unwrap_or_default();
        // Pending for a moment is normal (the autoscaler adds a node); a pod that
        // stays unschedulable repeats the signal.
        cx.signal(
            Symptom::Unschedulable,
            subject.clone(),
            None,
            format!("pod {name} unschedulable: {msg}"),
            false,
            msg,
        );
    }
    if st.evicted && !was.evicted {
        cx.signal(
            Symptom::Evicted,
            subject.clone(),
            node.cloned(),
            format!(
                "pod {name} evicted from {}",
                node.cloned().unwrap_or_default()
            ),
            true,
            String::new(),
        );
    }
    if st.ready == Some(true) && was.ready == Some(false) {
        cx.recovery(subject.clone(), Symptom::CrashLoop);
    }
}
