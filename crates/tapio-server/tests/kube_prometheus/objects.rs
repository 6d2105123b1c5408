//! The cluster's Kubernetes objects as the API server returns them (what the kube
//! watcher sends as `kubernetes.watch.*` evidence).

use super::*;

impl Cluster {
    // --- Kubernetes objects, as the API server returns them ----------------------------

    /// Everything, as the watcher's initial list sends it.
    pub(crate) fn snapshot(&self) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        for n in &self.nodes {
            out.push(self.node_object(n, CREATED));
        }
        for w in &self.workloads {
            out.extend(self.workload_objects(w));
        }
        for p in &self.pods {
            out.push(self.pod_object(p, CREATED));
        }
        for w in &self.workloads {
            out.push(self.service(w));
            out.push(self.endpoint_slice(w));
        }
        out.into_iter().map(|o| ("added", o)).collect()
    }

    pub(crate) fn node_object(&self, n: &Node, at: &str) -> Value {
        let conditions: Vec<Value> = [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID"),
            ("Ready", "True", "KubeletReady"),
        ]
        .iter()
        .map(|(ty, st, reason)| {
            if n.ready {
                json!({"type": ty, "status": st, "reason": reason,
                       "lastHeartbeatTime": at, "lastTransitionTime": CREATED})
            } else {
                json!({"type": ty, "status": "Unknown", "reason": "NodeStatusUnknown",
                       "message": "Kubelet stopped posting node status.",
                       "lastHeartbeatTime": CREATED, "lastTransitionTime": at})
            }
        })
        .collect();
        let mut spec = json!({"providerID": format!("aws:///{}/i-0{:x}", n.zone, fnv(&n.name))});
        if !n.ready {
            spec["taints"] = json!([
                {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": at},
                {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": at}
            ]);
        }
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n.name, "uid": uuid(&n.name), "creationTimestamp": CREATED,
                         "labels": {"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux",
                                    "node.kubernetes.io/instance-type": "m6i.xlarge",
                                    "topology.kubernetes.io/zone": n.zone}},
            "spec": spec,
            "status": {
                "capacity": {"cpu": "4", "memory": "16777216Ki", "pods": "110"},
                "allocatable": {"cpu": "3920m", "memory": "15938355Ki", "pods": "110"},
                "conditions": conditions,
                "addresses": [{"type": "InternalIP", "address": n.ip},
                              {"type": "Hostname", "address": n.name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"kubeletVersion": "v1.30.6", "containerRuntimeVersion": "containerd://1.7.23",
                             "osImage": "Amazon Linux 2023.6.20241111", "architecture": "amd64",
                             "operatingSystem": "linux"}
            }
        })
    }

    pub(crate) fn template(&self, w: &Workload, rev: u32) -> Value {
        let mut labels = json!({"app": w.name});
        if w.kind == Kind::Deployment {
            labels["pod-template-hash"] = json!(w.hash(rev));
        }
        json!({
            "metadata": {"labels": labels},
            "spec": {"containers": [{
                "name": if w.name == "postgres" { "postgres" } else { "app" },
                "image": w.images[rev as usize - 1],
                "ports": [{"name": "http", "containerPort": w.port, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                              "limits": {"cpu": "500m", "memory": "512Mi"}}
            }]}
        })
    }

    /// The Deployment and its ReplicaSets, or the StatefulSet. Zero counts are left out of
    /// `status`, as the API server does.
    pub(crate) fn workload_objects(&self, w: &Workload) -> Vec<Value> {
        let pods: Vec<&Pod> = self.pods_of(w).collect();
        let ready = pods.iter().filter(|p| p.ready).count();
        let updated = pods.iter().filter(|p| p.revision == w.revision()).count();
        let mut status = serde_json::Map::new();
        status.insert("observedGeneration".into(), json!(w.generation()));
        let counts = [
            ("replicas", pods.len()),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
        ];
        for (k, v) in counts {
            if v > 0 {
                status.insert(k.into(), json!(v));
            }
        }
        let meta = json!({"name": w.name, "namespace": w.ns, "uid": uuid(&format!("{}/{}", w.ns, w.name)),
                          "generation": w.generation(), "creationTimestamp": CREATED,
                          "labels": {"app": w.name}});
        match w.kind {
            Kind::Deployment => {
                let unavailable = (w.replicas as usize).saturating_sub(ready);
                if unavailable > 0 {
                    status.insert("unavailableReplicas".into(), json!(unavailable));
                }
                let available =
                    ready as f64 >= f64::from(w.replicas) - (f64::from(w.replicas) * 0.25).floor();
                status.insert(
                    "conditions".into(),
                    json!([
                        if available {
                            json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                                   "message": "Deployment has minimum availability."})
                        } else {
                            json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                                   "message": "Deployment does not have minimum availability."})
                        },
                        if updated == w.replicas as usize && pods.len() == updated {
                            json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                                   "message": format!("ReplicaSet \"{}\" has successfully progressed.", w.rs(w.revision()))})
                        } else {
                            json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                                   "message": format!("ReplicaSet \"{}\" is progressing.", w.rs(w.revision()))})
                        }
                    ]),
                );
                let mut meta = meta;
                meta["annotations"] =
                    json!({"deployment.kubernetes.io/revision": w.revision().to_string()});
                let mut out = vec![json!({
                    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                    "spec": {"replicas": w.replicas, "selector": {"matchLabels": {"app": w.name}},
                             "strategy": {"type": "RollingUpdate",
                                          "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                             "template": self.template(w, w.revision())},
                    "status": status
                })];
                for rev in 1..=w.revision() {
                    out.push(self.replicaset_object(w, rev));
                }
                out
            }
            Kind::StatefulSet => {
                let rev = w.rs(w.revision());
                status.insert("currentReplicas".into(), json!(updated));
                status.insert("currentRevision".into(), json!(rev));
                status.insert("updateRevision".into(), json!(rev));
                vec![json!({
                    "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta,
                    "spec": {"replicas": w.replicas, "serviceName": w.name,
                             "selector": {"matchLabels": {"app": w.name}},
                             "template": self.template(w, w.revision()),
                             "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                 "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3",
                                          "resources": {"requests": {"storage": "20Gi"}}}}]},
                    "status": status
                })]
            }
        }
    }

    pub(crate) fn replicaset_object(&self, w: &Workload, rev: u32) -> Value {
        let of_rev: Vec<&Pod> = self.pods_of(w).filter(|p| p.revision == rev).collect();
        let ready = of_rev.iter().filter(|p| p.ready).count();
        let mut status = json!({"replicas": of_rev.len(), "fullyLabeledReplicas": of_rev.len(),
                                "observedGeneration": 1});
        if ready > 0 {
            status["readyReplicas"] = json!(ready);
            status["availableReplicas"] = json!(ready);
        }
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": w.rs(rev), "namespace": w.ns,
                         "uid": uuid(&format!("{}/{}", w.ns, w.rs(rev))),
                         "creationTimestamp": CREATED,
                         "labels": {"app": w.name, "pod-template-hash": w.hash(rev)},
                         "annotations": {"deployment.kubernetes.io/revision": rev.to_string()},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name,
                                              "uid": uuid(&format!("{}/{}", w.ns, w.name)),
                                              "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"replicas": of_rev.len(), "selector": {"matchLabels": {"app": w.name, "pod-template-hash": w.hash(rev)}},
                     "template": self.template(w, rev)},
            "status": status
        })
    }

    pub(crate) fn pod_object(&self, p: &Pod, at: &str) -> Value {
        let w = self.workload(&p.ns, &p.workload);
        let (owner_kind, owner, owner_uid) = match w.kind {
            Kind::Deployment => (
                "ReplicaSet",
                w.rs(p.revision),
                uuid(&format!("{}/{}", w.ns, w.rs(p.revision))),
            ),
            Kind::StatefulSet => (
                "StatefulSet",
                w.name.clone(),
                uuid(&format!("{}/{}", w.ns, w.name)),
            ),
        };
        let mut labels = json!({"app": w.name});
        match w.kind {
            Kind::Deployment => labels["pod-template-hash"] = json!(w.hash(p.revision)),
            Kind::StatefulSet => {
                labels["controller-revision-hash"] = json!(w.rs(p.revision));
                labels["statefulset.kubernetes.io/pod-name"] = json!(p.name);
            }
        }
        let mut spec = self.template(w, p.revision)["spec"].clone();
        spec["nodeName"] = json!(p.node);
        if let Some(claim) = &p.pvc {
            spec["volumes"] =
                json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]);
        }
        let b = |v: bool| if v { "True" } else { "False" };
        let state = match p.waiting {
            Some(reason) => json!({"waiting": {"reason": reason}}),
            None => json!({"running": {"startedAt": p.created}}),
        };
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p.name, "namespace": p.ns, "uid": p.uid(), "labels": labels,
                         "creationTimestamp": p.created,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner,
                                              "uid": owner_uid, "controller": true, "blockOwnerDeletion": true}]},
            "spec": spec,
            "status": {
                "phase": "Running", "hostIP": self.node(&p.node).ip, "podIP": p.ip,
                "podIPs": [{"ip": p.ip}], "startTime": p.created, "qosClass": "Burstable",
                "conditions": [
                    {"type": "Initialized", "status": "True", "lastTransitionTime": p.created},
                    {"type": "Ready", "status": b(p.ready), "lastTransitionTime": if p.ready { p.created.as_str() } else { at }},
                    {"type": "ContainersReady", "status": b(p.containers_ready), "lastTransitionTime": p.created},
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": p.created}
                ],
                "containerStatuses": [{
                    "name": p.container(), "image": w.images[p.revision as usize - 1],
                    "containerID": format!("containerd://{}", p.container_id()),
                    "ready": p.containers_ready, "started": p.waiting.is_none(),
                    "restartCount": p.restarts, "state": state
                }]
            }
        })
    }

    pub(crate) fn service(&self, w: &Workload) -> Value {
        let i = self
            .workloads
            .iter()
            .position(|x| x.ns == w.ns && x.name == w.name)
            .expect("workload");
        let ip = format!("10.96.{}.{}", 10 + i, 20 + i);
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": w.name, "namespace": w.ns, "uid": uuid(&format!("svc/{}/{}", w.ns, w.name)),
                         "creationTimestamp": CREATED, "labels": {"app": w.name}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                     "selector": {"app": w.name},
                     "ports": [{"name": "http", "port": if w.port == 8080 { 80 } else { w.port },
                                "targetPort": w.port, "protocol": "TCP"}]}
        })
    }

    pub(crate) fn endpoint_slice(&self, w: &Workload) -> Value {
        let endpoints: Vec<Value> = self
            .pods_of(w)
            .map(|p| {
                json!({"addresses": [p.ip],
                       "conditions": {"ready": p.ready, "serving": p.ready, "terminating": false},
                       "nodeName": p.node, "zone": self.node(&p.node).zone,
                       "targetRef": {"kind": "Pod", "name": p.name, "namespace": p.ns, "uid": p.uid()}})
            })
            .collect();
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{}-{}", w.name, suffix(&w.name, 5)), "namespace": w.ns,
                         "uid": uuid(&format!("eps/{}/{}", w.ns, w.name)), "creationTimestamp": CREATED,
                         "labels": {"kubernetes.io/service-name": w.name,
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": w.name,
                                              "uid": uuid(&format!("svc/{}/{}", w.ns, w.name)),
                                              "controller": true, "blockOwnerDeletion": true}]},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "http", "port": w.port, "protocol": "TCP"}]
        })
    }
}
