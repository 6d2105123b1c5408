//! Kubernetes objects as the watcher sends them, for the transformations that add a
//! workload (routine churn) and for the synthetic replica pair.

use super::*;

// ---------------------------------------------------------------------------------------
// Kubernetes objects (routine churn, the synthetic replica pair).
// ---------------------------------------------------------------------------------------

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A ULID for `t` whose random part is `salt`.
pub(crate) fn ulid(t: DateTime<Utc>, salt: u128) -> String {
    let ms = u128::from(u64::try_from(t.timestamp_millis()).unwrap_or(0));
    let v = (ms << 80) | (salt & ((1u128 << 80) - 1));
    (0..26)
        .map(|i| CROCKFORD[((v >> (125 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// Builds watch events for one application: a Deployment, its ReplicaSet, pods, a
/// Service and its EndpointSlice, as the API server returns them.
pub(crate) struct App {
    pub(crate) cluster: Option<String>,
    pub(crate) ns: String,
    pub(crate) name: String,
    pub(crate) hash: String,
    pub(crate) image: String,
    pub(crate) created: DateTime<Utc>,
    pub(crate) cluster_ip: String,
    pub(crate) salt: u128,
    pub(crate) seq: u128,
}

pub(crate) struct PodSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) node: &'a str,
    pub(crate) ip: &'a str,
    pub(crate) phase: &'a str,
    pub(crate) ready: bool,
    pub(crate) restarts: u32,
    /// The container's state (`running`, `waiting`, `terminated` object).
    pub(crate) state: Value,
    pub(crate) last_state: Value,
    pub(crate) deleting: Option<DateTime<Utc>>,
}

/// FNV-1a: stable fake UIDs and event names.
pub(crate) fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

impl App {
    pub(crate) fn uid(&self, what: &str) -> String {
        let x = format!("{:016x}", fnv(&format!("{}/{}/{what}", self.ns, self.name)));
        format!(
            "{}-{}-4{}-8{}-{}a1b2c3d4",
            &x[..8],
            &x[8..12],
            &x[12..15],
            &x[13..16],
            &x[..4]
        )
    }

    pub(crate) fn labels(&self) -> Value {
        json!({"app": self.name, "app.kubernetes.io/name": self.name})
    }

    pub(crate) fn event(
        &mut self,
        verb: &str,
        t: DateTime<Utc>,
        obj: Value,
    ) -> (DateTime<Utc>, Value) {
        self.seq += 1;
        let mut entity = Map::new();
        if let Some(c) = &self.cluster {
            entity.insert("cluster".into(), json!(c));
        }
        entity.insert("namespace".into(), json!(self.ns));
        (
            t,
            json!({
                "id": ulid(t, self.salt + self.seq),
                "time": ts(t),
                "type": format!("kubernetes.watch.{verb}"),
                "severity": "info",
                "entity": entity,
                "object": obj,
            }),
        )
    }

    pub(crate) fn container(&self) -> Value {
        json!({
            "name": "app",
            "image": self.image,
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"},
                               "periodSeconds": 5, "timeoutSeconds": 1, "failureThreshold": 3}
        })
    }

    pub(crate) fn deployment(&self, replicas: u32, ready: u32, generation: u32) -> Value {
        let available = ready >= replicas.saturating_sub(replicas / 4).max(1);
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid("deploy"),
                         "resourceVersion": format!("{}", 900_000 + generation * 10 + ready),
                         "generation": generation, "creationTimestamp": ts(self.created),
                         "labels": self.labels(),
                         "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": self.name}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": self.labels()},
                                  "spec": {"containers": [self.container()]}}},
            "status": {"observedGeneration": generation, "replicas": replicas.max(ready),
                       "updatedReplicas": replicas.max(ready), "readyReplicas": ready,
                       "availableReplicas": ready,
                       "unavailableReplicas": replicas.saturating_sub(ready),
                       "conditions": [
                           {"type": "Available", "status": if available { "True" } else { "False" },
                            "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                            "message": if available { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
                            "lastUpdateTime": ts(self.created), "lastTransitionTime": ts(self.created)},
                           {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                            "message": format!("ReplicaSet \"{}-{}\" has successfully progressed.", self.name, self.hash),
                            "lastUpdateTime": ts(self.created), "lastTransitionTime": ts(self.created)}]}
        })
    }

    pub(crate) fn rs_name(&self) -> String {
        format!("{}-{}", self.name, self.hash)
    }

    pub(crate) fn replicaset(&self, replicas: u32, ready: u32, generation: u32) -> Value {
        let mut labels = self.labels();
        labels["pod-template-hash"] = json!(self.hash);
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": self.rs_name(), "namespace": self.ns, "uid": self.uid("rs"),
                         "resourceVersion": format!("{}", 800_000 + generation * 10 + ready),
                         "generation": generation, "creationTimestamp": ts(self.created),
                         "labels": labels,
                         "annotations": {"deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                                         "deployment.kubernetes.io/revision": "1"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": self.name, "uid": self.uid("deploy"),
                                              "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": {"app": self.name, "pod-template-hash": self.hash}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [self.container()]}}},
            "status": {"replicas": replicas.max(ready), "fullyLabeledReplicas": replicas.max(ready),
                       "readyReplicas": ready, "availableReplicas": ready,
                       "observedGeneration": generation}
        })
    }

    pub(crate) fn pod(&self, p: &PodSpec<'_>, started: DateTime<Utc>) -> Value {
        let mut labels = self.labels();
        labels["pod-template-hash"] = json!(self.hash);
        let ready = if p.ready { "True" } else { "False" };
        let mut cond_ready = json!({"type": "Ready", "status": ready, "lastProbeTime": null,
                                    "lastTransitionTime": ts(started)});
        let mut cond_cready = json!({"type": "ContainersReady", "status": ready,
                                     "lastProbeTime": null, "lastTransitionTime": ts(started)});
        if !p.ready {
            for c in [&mut cond_ready, &mut cond_cready] {
                c["reason"] = json!("ContainersNotReady");
                c["message"] = json!("containers with unready status: [app]");
            }
        }
        let mut meta = json!({"name": p.name, "namespace": self.ns, "uid": self.uid(p.name),
                              "resourceVersion": format!("{}", 700_000 + p.restarts),
                              "creationTimestamp": ts(started),
                              "generateName": format!("{}-", self.rs_name()),
                              "labels": labels,
                              "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                   "name": self.rs_name(), "uid": self.uid("rs"),
                                                   "controller": true, "blockOwnerDeletion": true}]});
        if let Some(d) = p.deleting {
            meta["deletionTimestamp"] = json!(ts(d));
            meta["deletionGracePeriodSeconds"] = json!(30);
        }
        let mut status = json!({
            "phase": p.phase, "qosClass": "Burstable",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts(started)},
                {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts(started)},
                cond_ready, cond_cready,
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts(started)}],
            "hostIP": "10.0.250.1", "hostIPs": [{"ip": "10.0.250.1"}],
            "startTime": ts(started),
            "containerStatuses": [{"name": "app", "image": self.image, "ready": p.ready,
                                   "restartCount": p.restarts, "started": p.ready,
                                   "state": p.state, "lastState": p.last_state}]
        });
        if !p.ip.is_empty() {
            status["podIP"] = json!(p.ip);
            status["podIPs"] = json!([{"ip": p.ip}]);
        }
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [self.container()], "restartPolicy": "Always",
                     "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                     "serviceAccountName": "default", "schedulerName": "default-scheduler",
                     "nodeName": p.node},
            "status": status
        })
    }

    pub(crate) fn service(&self) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid("svc"),
                         "resourceVersion": "600001", "creationTimestamp": ts(self.created),
                         "labels": self.labels()},
            "spec": {"type": "ClusterIP", "clusterIP": self.cluster_ip, "clusterIPs": [self.cluster_ip],
                     "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                     "sessionAffinity": "None", "selector": {"app": self.name},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}}
        })
    }

    /// Endpoints: (pod, node, ip, ready, terminating).
    pub(crate) fn endpointslice(
        &self,
        eps: &[(&str, &str, &str, bool, bool)],
        version: u32,
    ) -> Value {
        let endpoints: Vec<Value> = eps
            .iter()
            .map(|(pod, node, ip, ready, term)| {
                json!({"addresses": [ip],
                       "conditions": {"ready": ready, "serving": *ready || *term, "terminating": term},
                       "nodeName": node,
                       "targetRef": {"kind": "Pod", "name": pod, "namespace": self.ns, "uid": self.uid(pod)}})
            })
            .collect();
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{}-mq7xz", self.name), "namespace": self.ns,
                         "uid": self.uid("eps"), "resourceVersion": format!("{}", 500_000 + version),
                         "generation": version, "creationTimestamp": ts(self.created),
                         "generateName": format!("{}-", self.name),
                         "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                                    "kubernetes.io/service-name": self.name},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": self.name,
                                              "uid": self.uid("svc"), "controller": true, "blockOwnerDeletion": true}]},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        })
    }

    /// A core/v1 Event about one of the app's objects.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn k8s_event(
        &self,
        t: DateTime<Utc>,
        kind: &str,
        name: &str,
        typ: &str,
        reason: &str,
        message: &str,
        count: u32,
        first: DateTime<Utc>,
    ) -> Value {
        let api = if kind == "Pod" { "v1" } else { "apps/v1" };
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{:016x}", fnv(&format!("{}/{reason}/{count}", t.timestamp_millis()))),
                         "namespace": self.ns, "uid": self.uid(&format!("ev-{name}-{reason}")),
                         "resourceVersion": "400001", "creationTimestamp": ts(first)},
            "involvedObject": {"apiVersion": api, "kind": kind, "name": name, "namespace": self.ns,
                               "uid": self.uid(if kind == "Pod" { name } else if kind == "ReplicaSet" { "rs" } else { "deploy" })},
            "reason": reason, "message": message,
            "source": {"component": if kind == "Pod" { "kubelet" } else { "deployment-controller" }},
            "firstTimestamp": ts(first), "lastTimestamp": ts(t), "count": count, "type": typ,
            "eventTime": null
        })
    }
}

pub(crate) fn running(since: DateTime<Utc>) -> Value {
    json!({"running": {"startedAt": ts(since)}})
}
