//! The cluster's metrics as kube-state-metrics, the kubelet (cAdvisor) and node-exporter
//! expose them, the scrape targets, and the loopback server that answers the scrapes.

use tapio_testkit::fake_http::{self, Reply};

use super::*;

impl Cluster {
    // --- metrics, as the exporters expose them ------------------------------------------

    /// The body for a scrape of `path`, or `None` when that target does not answer.
    pub(crate) fn scrape(&self, path: &str) -> Option<String> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let node_up = |n: &str| self.nodes.iter().any(|x| x.name == n && x.ready);
        match parts.as_slice() {
            ["ksm", "metrics"] => Some(self.kube_state_metrics()),
            ["kubelet", n, "metrics"] if node_up(n) => Some(self.kubelet(n)),
            ["kubelet", n, "metrics", "cadvisor"] if node_up(n) => Some(self.cadvisor(n)),
            ["node-exporter", n, "metrics"] if node_up(n) => Some(self.node_exporter()),
            ["control-plane", _, "metrics"] => Some(String::new()),
            ["pod", ns, name, "metrics"] => {
                let p = self.pods.iter().find(|p| p.ns == *ns && p.name == *name)?;
                (node_up(&p.node) && p.metrics_ok && p.waiting.is_none()).then(|| {
                    let mut o = Text::default();
                    o.m(
                        "http_requests_total",
                        &[("code", "200"), ("method", "GET")],
                        (self.t() * 20.0).floor(),
                    );
                    o.0
                })
            }
            _ => None,
        }
    }

    // Long (~300 lines) and kept whole: one metric family after another, per object kind,
    // in the order kube-state-metrics writes them; each block mirrors one family of the
    // exporter, and reading it top to bottom is reading the exporter's output.
    pub(crate) fn kube_state_metrics(&self) -> String {
        let mut o = Text::default();
        for n in &self.nodes {
            let node = n.name.as_str();
            o.m(
                "kube_node_info",
                &[
                    ("node", node),
                    ("internal_ip", &n.ip),
                    ("kubelet_version", "v1.30.6"),
                    ("kubeproxy_version", "deprecated"),
                    ("container_runtime_version", "containerd://1.7.23"),
                    ("kernel_version", "6.1.112-124.190.amzn2023.x86_64"),
                    ("os_image", "Amazon Linux 2023.6.20241111"),
                    (
                        "provider_id",
                        &format!("aws:///{}/i-0{:x}", n.zone, fnv(node)),
                    ),
                    ("system_uuid", &uuid(node)),
                ],
                1.0,
            );
            for cond in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
                let actual = match (n.ready, cond) {
                    (false, _) => "unknown",
                    (true, "Ready") => "true",
                    _ => "false",
                };
                for st in ["true", "false", "unknown"] {
                    o.m(
                        "kube_node_status_condition",
                        &[("node", node), ("condition", cond), ("status", st)],
                        f64::from(u8::from(st == actual)),
                    );
                }
            }
            o.m("kube_node_spec_unschedulable", &[("node", node)], 0.0);
            if !n.ready {
                for effect in ["NoSchedule", "NoExecute"] {
                    o.m(
                        "kube_node_spec_taint",
                        &[
                            ("node", node),
                            ("key", "node.kubernetes.io/unreachable"),
                            ("value", ""),
                            ("effect", effect),
                        ],
                        1.0,
                    );
                }
            }
            for (resource, unit, capacity, allocatable) in [
                ("cpu", "core", 4.0, 3.92),
                ("memory", "byte", 16.0 * GI, 15.2 * GI),
                ("pods", "integer", 110.0, 110.0),
            ] {
                let l = [("node", node), ("resource", resource), ("unit", unit)];
                o.m("kube_node_status_capacity", &l, capacity);
                o.m("kube_node_status_allocatable", &l, allocatable);
            }
        }
        for w in &self.workloads {
            let pods: Vec<&Pod> = self.pods_of(w).collect();
            let ready = pods.iter().filter(|p| p.ready).count() as f64;
            let updated = pods.iter().filter(|p| p.revision == w.revision()).count() as f64;
            let replicas = f64::from(w.replicas);
            let total = pods.len() as f64;
            let generation = f64::from(w.generation());
            match w.kind {
                Kind::Deployment => {
                    let l = [
                        ("namespace", w.ns.as_str()),
                        ("deployment", w.name.as_str()),
                    ];
                    for (name, v) in [
                        ("kube_deployment_spec_replicas", replicas),
                        ("kube_deployment_status_replicas", total),
                        ("kube_deployment_status_replicas_available", ready),
                        ("kube_deployment_status_replicas_ready", ready),
                        (
                            "kube_deployment_status_replicas_unavailable",
                            (replicas - ready).max(0.0),
                        ),
                        ("kube_deployment_status_replicas_updated", updated),
                        ("kube_deployment_status_observed_generation", generation),
                        ("kube_deployment_metadata_generation", generation),
                        ("kube_deployment_spec_paused", 0.0),
                    ] {
                        o.m(name, &l, v);
                    }
                    let available = ready >= replicas - (replicas * 0.25).floor();
                    for (cond, actual) in [("Available", available), ("Progressing", true)] {
                        for st in ["true", "false", "unknown"] {
                            let want = if actual { "true" } else { "false" };
                            o.m(
                                "kube_deployment_status_condition",
                                &[
                                    ("namespace", &w.ns),
                                    ("deployment", &w.name),
                                    ("condition", cond),
                                    ("status", st),
                                ],
                                f64::from(u8::from(st == want)),
                            );
                        }
                    }
                    for rev in 1..=w.revision() {
                        let rs = w.rs(rev);
                        let of_rev: Vec<&&Pod> =
                            pods.iter().filter(|p| p.revision == rev).collect();
                        let l = [("namespace", w.ns.as_str()), ("replicaset", rs.as_str())];
                        o.m(
                            "kube_replicaset_owner",
                            &[
                                ("namespace", &w.ns),
                                ("replicaset", &rs),
                                ("owner_kind", "Deployment"),
                                ("owner_name", &w.name),
                                ("owner_is_controller", "true"),
                            ],
                            1.0,
                        );
                        o.m("kube_replicaset_spec_replicas", &l, of_rev.len() as f64);
                        o.m(
                            "kube_replicaset_status_ready_replicas",
                            &l,
                            of_rev.iter().filter(|p| p.ready).count() as f64,
                        );
                    }
                }
                Kind::StatefulSet => {
                    let l = [
                        ("namespace", w.ns.as_str()),
                        ("statefulset", w.name.as_str()),
                    ];
                    for (name, v) in [
                        ("kube_statefulset_replicas", replicas),
                        ("kube_statefulset_status_replicas", total),
                        ("kube_statefulset_status_replicas_ready", ready),
                        ("kube_statefulset_status_replicas_available", ready),
                        ("kube_statefulset_status_replicas_current", updated),
                        ("kube_statefulset_status_replicas_updated", updated),
                        ("kube_statefulset_status_observed_generation", generation),
                        ("kube_statefulset_metadata_generation", generation),
                    ] {
                        o.m(name, &l, v);
                    }
                    let rev = w.rs(w.revision());
                    for name in [
                        "kube_statefulset_status_current_revision",
                        "kube_statefulset_status_update_revision",
                    ] {
                        o.m(
                            name,
                            &[
                                ("namespace", &w.ns),
                                ("statefulset", &w.name),
                                ("revision", &rev),
                            ],
                            1.0,
                        );
                    }
                }
            }
        }
        for p in &self.pods {
            let w = self.workload(&p.ns, &p.workload);
            let uid = p.uid();
            let (owner_kind, owner) = match w.kind {
                Kind::Deployment => ("ReplicaSet", w.rs(p.revision)),
                Kind::StatefulSet => ("StatefulSet", w.name.clone()),
            };
            let host_ip = &self.node(&p.node).ip;
            let pl = [
                ("namespace", p.ns.as_str()),
                ("pod", p.name.as_str()),
                ("uid", uid.as_str()),
            ];
            o.m(
                "kube_pod_info",
                &[
                    ("namespace", &p.ns),
                    ("pod", &p.name),
                    ("uid", &uid),
                    ("host_ip", host_ip),
                    ("pod_ip", &p.ip),
                    ("node", &p.node),
                    ("created_by_kind", owner_kind),
                    ("created_by_name", &owner),
                    ("priority_class", ""),
                    ("host_network", "false"),
                ],
                1.0,
            );
            o.m(
                "kube_pod_owner",
                &[
                    ("namespace", &p.ns),
                    ("pod", &p.name),
                    ("uid", &uid),
                    ("owner_kind", owner_kind),
                    ("owner_name", &owner),
                    ("owner_is_controller", "true"),
                ],
                1.0,
            );
            for phase in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
                let mut l = pl.to_vec();
                l.push(("phase", phase));
                o.m(
                    "kube_pod_status_phase",
                    &l,
                    f64::from(u8::from(phase == "Running")),
                );
            }
            for cond in ["true", "false", "unknown"] {
                let mut l = pl.to_vec();
                l.push(("condition", cond));
                let want = if p.ready { "true" } else { "false" };
                o.m(
                    "kube_pod_status_ready",
                    &l,
                    f64::from(u8::from(cond == want)),
                );
            }
            let mut cl = pl.to_vec();
            cl.push(("container", p.container()));
            let image = &w.images[p.revision as usize - 1];
            let cid = format!("containerd://{}", p.container_id());
            let mut info = cl.clone();
            info.extend([
                ("image", image.as_str()),
                ("image_spec", image.as_str()),
                ("container_id", cid.as_str()),
            ]);
            o.m("kube_pod_container_info", &info, 1.0);
            for (name, v) in [
                (
                    "kube_pod_container_status_ready",
                    u8::from(p.containers_ready),
                ),
                (
                    "kube_pod_container_status_running",
                    u8::from(p.waiting.is_none()),
                ),
                (
                    "kube_pod_container_status_waiting",
                    u8::from(p.waiting.is_some()),
                ),
                ("kube_pod_container_status_terminated", 0),
            ] {
                o.m(name, &cl, f64::from(v));
            }
            o.m(
                "kube_pod_container_status_restarts_total",
                &cl,
                f64::from(p.restarts),
            );
            if let Some(reason) = p.waiting {
                let mut l = cl.clone();
                l.push(("reason", reason));
                o.m("kube_pod_container_status_waiting_reason", &l, 1.0);
            }
            for (kind, cpu, mem) in [("requests", 0.25, 0.25 * GI), ("limits", 0.5, 0.5 * GI)] {
                for (resource, unit, v) in [("cpu", "core", cpu), ("memory", "byte", mem)] {
                    let mut l = cl.clone();
                    l.extend([
                        ("node", p.node.as_str()),
                        ("resource", resource),
                        ("unit", unit),
                    ]);
                    o.m(&format!("kube_pod_container_resource_{kind}"), &l, v);
                }
            }
        }
        for v in &self.pvcs {
            let volume = format!("pvc-{}", uuid(&format!("pvc/{}/{}", v.ns, v.name)));
            let l = [
                ("namespace", v.ns.as_str()),
                ("persistentvolumeclaim", v.name.as_str()),
            ];
            let mut info = l.to_vec();
            info.extend([("storageclass", "gp3"), ("volumename", volume.as_str())]);
            o.m("kube_persistentvolumeclaim_info", &info, 1.0);
            let mut mode = l.to_vec();
            mode.push(("access_mode", "ReadWriteOnce"));
            o.m("kube_persistentvolumeclaim_access_mode", &mode, 1.0);
            for phase in ["Bound", "Lost", "Pending"] {
                let mut ph = l.to_vec();
                ph.push(("phase", phase));
                o.m(
                    "kube_persistentvolumeclaim_status_phase",
                    &ph,
                    f64::from(u8::from(phase == "Bound")),
                );
            }
            o.m(
                "kube_persistentvolumeclaim_resource_requests_storage_bytes",
                &l,
                v.capacity,
            );
            for phase in ["Available", "Bound", "Released", "Failed", "Pending"] {
                o.m(
                    "kube_persistentvolume_status_phase",
                    &[("persistentvolume", &volume), ("phase", phase)],
                    f64::from(u8::from(phase == "Bound")),
                );
            }
        }
        o.0
    }

    /// The kubelet's own `/metrics` (job kubelet, metrics_path /metrics).
    pub(crate) fn kubelet(&self, node: &str) -> String {
        let mut o = Text::default();
        o.m("kubelet_node_name", &[("node", node)], 1.0);
        let pods = self.pods.iter().filter(|p| p.node == node).count() as f64;
        o.m("kubelet_running_pods", &[], pods);
        o.m("kubelet_certificate_manager_client_ttl_seconds", &[], 2.6e7);
        o.m("kubelet_certificate_manager_server_ttl_seconds", &[], 2.6e7);
        let t = self.t();
        for v in self.pvcs.iter().filter(|v| v.node == node) {
            let l = [
                ("namespace", v.ns.as_str()),
                ("persistentvolumeclaim", v.name.as_str()),
            ];
            let free = v.free_at(t).floor();
            let inodes = 1_310_720.0;
            for (name, val) in [
                ("kubelet_volume_stats_capacity_bytes", v.capacity),
                ("kubelet_volume_stats_available_bytes", free),
                ("kubelet_volume_stats_used_bytes", v.capacity - free),
                ("kubelet_volume_stats_inodes", inodes),
                ("kubelet_volume_stats_inodes_free", inodes - 4_211.0),
                ("kubelet_volume_stats_inodes_used", 4_211.0),
            ] {
                o.m(name, &l, val);
            }
        }
        o.0
    }

    /// cAdvisor (job kubelet, metrics_path /metrics/cadvisor): one series set per container.
    pub(crate) fn cadvisor(&self, node: &str) -> String {
        let mut o = Text::default();
        let t = self.t();
        for p in self.pods.iter().filter(|p| p.node == node) {
            let w = self.workload(&p.ns, &p.workload);
            let cid = p.container_id();
            let id = format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{cid}.scope",
                p.uid().replace('-', "_")
            );
            let l = [
                ("container", p.container()),
                ("id", id.as_str()),
                ("image", w.images[p.revision as usize - 1].as_str()),
                ("name", cid.as_str()),
                ("namespace", p.ns.as_str()),
                ("pod", p.name.as_str()),
            ];
            let periods = (10.0 * t).floor();
            o.m("container_cpu_cfs_periods_total", &l, periods);
            o.m(
                "container_cpu_cfs_throttled_periods_total",
                &l,
                p.throttled(t).floor(),
            );
            o.m(
                "container_cpu_usage_seconds_total",
                &l,
                (0.12 * t * 1000.0).round() / 1000.0,
            );
            o.m("container_memory_working_set_bytes", &l, 2.1e8);
        }
        o.0
    }

    /// node-exporter (the same healthy figures on every node).
    pub(crate) fn node_exporter(&self) -> String {
        let mut o = Text::default();
        let t = self.t();
        let fs = [
            ("device", "/dev/nvme0n1p1"),
            ("fstype", "xfs"),
            ("mountpoint", "/"),
        ];
        for (name, v) in [
            ("node_filesystem_size_bytes", 100.0 * GI),
            ("node_filesystem_avail_bytes", 61.5 * GI),
            ("node_filesystem_files", 52_428_800.0),
            ("node_filesystem_files_free", 51_900_000.0),
            ("node_filesystem_readonly", 0.0),
        ] {
            o.m(name, &fs, v);
        }
        for cpu in ["0", "1", "2", "3"] {
            for (mode, share) in [
                ("idle", 0.85),
                ("user", 0.1),
                ("system", 0.04),
                ("iowait", 0.01),
            ] {
                o.m(
                    "node_cpu_seconds_total",
                    &[("cpu", cpu), ("mode", mode)],
                    (share * t * 100.0).round() / 100.0,
                );
            }
        }
        let eth = [("device", "eth0")];
        for (name, v) in [
            ("node_network_up", 1.0),
            ("node_network_receive_errs_total", 0.0),
            ("node_network_transmit_errs_total", 0.0),
            ("node_network_receive_packets_total", (900.0 * t).floor()),
            ("node_network_transmit_packets_total", (800.0 * t).floor()),
        ] {
            o.m(name, &eth, v);
        }
        for (name, v) in [
            ("node_load1", 0.7),
            ("node_memory_MemTotal_bytes", 16.0 * GI),
            ("node_memory_MemAvailable_bytes", 9.3 * GI),
            ("node_vmstat_pgmajfault", (0.5 * t).floor()),
            ("node_timex_offset_seconds", 0.000_21),
            ("node_timex_sync_status", 1.0),
            ("node_timex_maxerror_seconds", 0.012),
            ("node_nf_conntrack_entries", 3_100.0),
            ("node_nf_conntrack_entries_limit", 262_144.0),
            ("node_filefd_allocated", 2_976.0),
            ("node_filefd_maximum", 9.223_372_036_854_776e18),
            ("node_textfile_scrape_error", 0.0),
        ] {
            o.m(name, &[], v);
        }
        o.0
    }

    /// Scrape targets per job, as kube-prometheus's ServiceMonitors label them (the
    /// `__metrics_path__` selects what this test's server answers).
    pub(crate) fn targets(&self, port: u16) -> BTreeMap<String, Vec<Value>> {
        let addr = format!("127.0.0.1:{port}");
        let target = |path: String, mut labels: Value| {
            labels["__metrics_path__"] = json!(path);
            json!({"targets": [addr], "labels": labels})
        };
        let mut jobs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        // kube-prometheus drops the pod/service/endpoint/namespace target labels of
        // kube-state-metrics (its series carry their own).
        jobs.insert(
            "kube-state-metrics".into(),
            vec![target(
                "/ksm/metrics".into(),
                json!({"instance": "10.244.0.5:8443", "container": "kube-rbac-proxy-main"}),
            )],
        );
        let mut kubelet = Vec::new();
        let mut node_exporter = Vec::new();
        for n in &self.nodes {
            for (metrics_path, path) in [
                ("/metrics", format!("/kubelet/{}/metrics", n.name)),
                (
                    "/metrics/cadvisor",
                    format!("/kubelet/{}/metrics/cadvisor", n.name),
                ),
            ] {
                kubelet.push(target(
                    path,
                    json!({"instance": format!("{}:10250", n.ip), "node": n.name,
                           "metrics_path": metrics_path, "namespace": "kube-system",
                           "service": "kubelet", "endpoint": "https-metrics"}),
                ));
            }
            // kube-prometheus sets node-exporter's instance to the node name.
            node_exporter.push(target(
                format!("/node-exporter/{}/metrics", n.name),
                json!({"instance": n.name, "namespace": "monitoring",
                       "service": "node-exporter", "endpoint": "https",
                       "pod": format!("node-exporter-{}", suffix(&n.name, 5)),
                       "container": "kube-rbac-proxy"}),
            ));
        }
        jobs.insert("kubelet".into(), kubelet);
        jobs.insert("node-exporter".into(), node_exporter);
        for (job, ns, service, instance) in [
            ("apiserver", "default", "kubernetes", "10.0.1.2:443"),
            (
                "kube-scheduler",
                "kube-system",
                "kube-scheduler",
                "10.0.1.2:10259",
            ),
            (
                "kube-controller-manager",
                "kube-system",
                "kube-controller-manager",
                "10.0.1.2:10257",
            ),
        ] {
            jobs.insert(
                job.into(),
                vec![target(
                    format!("/control-plane/{job}/metrics"),
                    json!({"instance": instance, "namespace": ns, "service": service,
                           "endpoint": "https"}),
                )],
            );
        }
        // The applications' ServiceMonitors: every endpoint of the Service, ready or not.
        for w in &self.workloads {
            let list = self
                .pods_of(w)
                .map(|p| {
                    target(
                        format!("/pod/{}/{}/metrics", p.ns, p.name),
                        json!({"instance": format!("{}:{}", p.ip, w.port),
                               "namespace": p.ns, "service": w.name, "pod": p.name,
                               "container": p.container(), "endpoint": "http-metrics"}),
                    )
                })
                .collect();
            jobs.insert(w.name.clone(), list);
        }
        jobs
    }
}

/// A body in the Prometheus text format.
#[derive(Default)]
pub(crate) struct Text(pub(crate) String);

impl Text {
    /// One sample.
    pub(crate) fn m(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        let o = &mut self.0;
        o.push_str(name);
        if !labels.is_empty() {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            let _ = write!(o, "{{{}}}", l.join(","));
        }
        let _ = writeln!(o, " {v}");
    }
}

/// The exporters: one loopback HTTP server answering every target's scrape from the model.
/// A target that is down (its node dead, its process not running) closes the connection
/// without an answer, as a dead host's port would.
pub(crate) fn serve_metrics(cluster: Arc<Mutex<Cluster>>) -> u16 {
    fake_http::serve_concurrent(move |req| {
        let body = cluster.lock().expect("lock").scrape(&req.path)?;
        Some(Reply::with_type(200, "text/plain; version=0.0.4", body))
    })
}
