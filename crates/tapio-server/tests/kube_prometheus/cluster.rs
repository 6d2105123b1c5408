//! The cluster model, one source for the metrics and for the watch evidence: nodes,
//! workloads, pods, claims, and what happens to them (a node fails, a rollout crash-loops,
//! a volume fills, ...).

use super::*;

// ---------------------------------------------------------------------------------------
// The cluster model: one source for the metrics and for the watch evidence
// ---------------------------------------------------------------------------------------

pub(crate) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A generated name suffix (`7d9f8b6c5`, `x2x9q`) in Kubernetes' alphabet, stable per seed.
pub(crate) fn suffix(seed: &str, n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..n)
        .map(|i| ALPHABET[(fnv(&format!("{seed}#{i}")) % 27) as usize] as char)
        .collect()
}

pub(crate) fn uuid(seed: &str) -> String {
    let (a, b) = (fnv(seed), fnv(&format!("{seed}!")));
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

pub(crate) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) const CREATED: &str = "2026-01-05T09:00:00Z";

#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Kind {
    Deployment,
    StatefulSet,
}

pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) ip: String,
    pub(crate) zone: String,
    pub(crate) ready: bool,
}

pub(crate) struct Workload {
    pub(crate) kind: Kind,
    pub(crate) ns: String,
    pub(crate) name: String,
    pub(crate) replicas: u32,
    /// Image of each revision (1-based: `images[r - 1]`); the last is the current one.
    pub(crate) images: Vec<String>,
    pub(crate) port: u16,
}

impl Workload {
    pub(crate) fn revision(&self) -> u32 {
        self.images.len() as u32
    }
    pub(crate) fn generation(&self) -> u32 {
        self.revision()
    }
    /// `pod-template-hash` (Deployment) or `controller-revision-hash` (StatefulSet).
    pub(crate) fn hash(&self, rev: u32) -> String {
        let n = if self.kind == Kind::Deployment { 9 } else { 10 };
        suffix(&format!("{}/{}/{rev}", self.ns, self.name), n)
    }
    /// The ReplicaSet (or ControllerRevision) of a revision.
    pub(crate) fn rs(&self, rev: u32) -> String {
        format!("{}-{}", self.name, self.hash(rev))
    }
}

pub(crate) struct Pod {
    pub(crate) ns: String,
    pub(crate) name: String,
    pub(crate) workload: String,
    pub(crate) revision: u32,
    pub(crate) node: String,
    pub(crate) ip: String,
    /// The Ready condition.
    pub(crate) ready: bool,
    /// The containers' own readiness (a dead node's pods keep what the kubelet last said).
    pub(crate) containers_ready: bool,
    pub(crate) waiting: Option<&'static str>,
    pub(crate) restarts: u32,
    /// Its `/metrics` answers (while it runs and its node is up).
    pub(crate) metrics_ok: bool,
    pub(crate) pvc: Option<String>,
    pub(crate) created: String,
    /// CPU throttling: fraction of CFS periods throttled since `throttle_since`
    /// (seconds of model time), and the throttled-periods counter at that moment.
    pub(crate) throttle: f64,
    pub(crate) throttle_since: f64,
    pub(crate) throttled_at_since: f64,
}

impl Pod {
    pub(crate) fn uid(&self) -> String {
        uuid(&format!("pod/{}/{}", self.ns, self.name))
    }
    pub(crate) fn container_id(&self) -> String {
        format!(
            "{:016x}{:016x}",
            fnv(&self.uid()),
            fnv(&format!("{}/{}", self.uid(), self.restarts))
        )
    }
    pub(crate) fn container(&self) -> &'static str {
        if self.workload == "postgres" {
            "postgres"
        } else {
            "app"
        }
    }
    pub(crate) fn throttled(&self, t: f64) -> f64 {
        self.throttled_at_since + self.throttle * 10.0 * (t - self.throttle_since)
    }
}

pub(crate) struct Pvc {
    pub(crate) ns: String,
    pub(crate) name: String,
    pub(crate) node: String,
    pub(crate) capacity: f64,
    /// Free bytes at `since` (model time), shrinking by `drain` bytes per second.
    pub(crate) free: f64,
    pub(crate) drain: f64,
    pub(crate) since: f64,
}

impl Pvc {
    pub(crate) fn free_at(&self, t: f64) -> f64 {
        (self.free - self.drain * (t - self.since)).max(0.0)
    }
}

pub(crate) struct Cluster {
    pub(crate) start: Instant,
    pub(crate) nodes: Vec<Node>,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) pods: Vec<Pod>,
    pub(crate) pvcs: Vec<Pvc>,
}

pub(crate) const GI: f64 = 1024.0 * 1024.0 * 1024.0;

/// A workload of the model: kind, namespace, name, image, port, the nodes of its pods.
pub(crate) type Placement = (
    Kind,
    &'static str,
    &'static str,
    String,
    u16,
    &'static [&'static str],
);

impl Cluster {
    /// Three nodes; shop, payments and search. checkout's two replicas both run on node-b.
    pub(crate) fn new() -> Self {
        let mut c = Self {
            start: Instant::now(),
            nodes: ["a", "b", "c"]
                .iter()
                .enumerate()
                .map(|(i, x)| Node {
                    name: format!("node-{x}"),
                    ip: format!("10.0.1.{}", 10 + i),
                    zone: format!("eu-west-1{x}"),
                    ready: true,
                })
                .collect(),
            workloads: Vec::new(),
            pods: Vec::new(),
            pvcs: Vec::new(),
        };
        let reg = "registry.example.com";
        let spec: [Placement; 6] = [
            (
                Kind::Deployment,
                "shop",
                "checkout",
                format!("{reg}/shop/checkout:2.8.0"),
                8080,
                &["node-b", "node-b"],
            ),
            (
                Kind::Deployment,
                "shop",
                "frontend",
                format!("{reg}/shop/frontend:1.4.0"),
                8080,
                &["node-a", "node-c"],
            ),
            (
                Kind::Deployment,
                "shop",
                "cart",
                format!("{reg}/shop/cart:3.1.2"),
                8080,
                &["node-a", "node-c"],
            ),
            (
                Kind::Deployment,
                "payments",
                "payments-api",
                format!("{reg}/payments/api:5.0.3"),
                8080,
                &["node-a", "node-b", "node-c"],
            ),
            (
                Kind::StatefulSet,
                "payments",
                "postgres",
                "docker.io/library/postgres:16.4".to_owned(),
                5432,
                &["node-c"],
            ),
            (
                Kind::Deployment,
                "search",
                "search-api",
                format!("{reg}/search/api:0.9.7"),
                8080,
                &["node-a", "node-b", "node-c"],
            ),
        ];
        for (kind, ns, name, image, port, nodes) in spec {
            c.workloads.push(Workload {
                kind,
                ns: ns.to_owned(),
                name: name.to_owned(),
                replicas: nodes.len() as u32,
                images: vec![image],
                port,
            });
            for (i, node) in nodes.iter().enumerate() {
                c.add_pod(ns, name, node, i, CREATED.to_owned());
            }
        }
        c.pods
            .iter_mut()
            .filter(|p| p.workload == "postgres")
            .for_each(|p| p.pvc = Some("data-postgres-0".into()));
        c.pvcs.push(Pvc {
            ns: "payments".into(),
            name: "data-postgres-0".into(),
            node: "node-c".into(),
            capacity: 20.0 * GI,
            free: 12.4 * GI,
            drain: 0.0,
            since: 0.0,
        });
        c
    }

    /// Model time: seconds since start, plus a day of uptime for the counters.
    pub(crate) fn t(&self) -> f64 {
        86_400.0 + self.start.elapsed().as_secs_f64()
    }

    pub(crate) fn workload(&self, ns: &str, name: &str) -> &Workload {
        self.workloads
            .iter()
            .find(|w| w.ns == ns && w.name == name)
            .unwrap_or_else(|| panic!("no workload {ns}/{name}"))
    }

    pub(crate) fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    pub(crate) fn pod_mut(&mut self, ns: &str, name: &str) -> &mut Pod {
        self.pods
            .iter_mut()
            .find(|p| p.ns == ns && p.name == name)
            .unwrap_or_else(|| panic!("no pod {ns}/{name}"))
    }

    pub(crate) fn pods_of<'a>(&'a self, w: &'a Workload) -> impl Iterator<Item = &'a Pod> + 'a {
        self.pods
            .iter()
            .filter(move |p| p.ns == w.ns && p.workload == w.name)
    }

    pub(crate) fn add_pod(
        &mut self,
        ns: &str,
        workload: &str,
        node: &str,
        ordinal: usize,
        created: String,
    ) {
        let w = self.workload(ns, workload);
        let rev = w.revision();
        let name = match w.kind {
            Kind::Deployment => format!(
                "{}-{}",
                w.rs(rev),
                suffix(&format!("{ns}/{workload}/{rev}/{ordinal}"), 5)
            ),
            Kind::StatefulSet => format!("{workload}-{ordinal}"),
        };
        let n = self
            .nodes
            .iter()
            .position(|x| x.name == node)
            .expect("node");
        let ip = format!(
            "10.244.{n}.{}",
            10 + self.pods.iter().filter(|p| p.node == node).count()
        );
        self.pods.push(Pod {
            ns: ns.to_owned(),
            name,
            workload: workload.to_owned(),
            revision: rev,
            node: node.to_owned(),
            ip,
            ready: true,
            containers_ready: true,
            waiting: None,
            restarts: 0,
            metrics_ok: true,
            pvc: None,
            created,
            throttle: 0.02,
            throttle_since: 0.0,
            throttled_at_since: 1_700.0,
        });
    }

    // --- what happens to the cluster ---------------------------------------------------

    /// The node stops responding: its kubelet and everything on it stop answering, the
    /// node controller turns its conditions Unknown, taints it unreachable and marks its
    /// pods not Ready. Returns what the kube watcher then sees.
    pub(crate) fn fail_node(&mut self, node: &str) -> Vec<(&'static str, Value)> {
        let t = now();
        for n in self.nodes.iter_mut().filter(|n| n.name == node) {
            n.ready = false;
        }
        let mut touched: Vec<(String, String)> = Vec::new();
        for p in self.pods.iter_mut().filter(|p| p.node == node) {
            p.ready = false;
            if !touched.contains(&(p.ns.clone(), p.workload.clone())) {
                touched.push((p.ns.clone(), p.workload.clone()));
            }
        }
        let mut out = vec![("modified", self.node_object(self.node(node), &t))];
        for p in self.pods.iter().filter(|p| p.node == node) {
            out.push(("modified", self.pod_object(p, &t)));
        }
        for (ns, name) in &touched {
            let w = self.workload(ns, name);
            out.extend(
                self.workload_objects(w)
                    .into_iter()
                    .map(|o| ("modified", o)),
            );
            out.push(("modified", self.endpoint_slice(w)));
        }
        out
    }

    /// A new revision of a Deployment: its new ReplicaSet's first pod goes to `node`.
    /// Returns what the watcher sees at once (the Deployment, the new ReplicaSet, the new
    /// pod) and the pod's name.
    pub(crate) fn rollout(
        &mut self,
        ns: &str,
        name: &str,
        image: &str,
        node: &str,
    ) -> (Vec<(&'static str, Value)>, String) {
        let t = now();
        let w = self
            .workloads
            .iter_mut()
            .find(|w| w.ns == ns && w.name == name)
            .expect("workload");
        w.images.push(image.to_owned());
        self.add_pod(ns, name, node, 0, t.clone());
        let pod = self.pods.last_mut().expect("pod");
        pod.ready = false;
        pod.containers_ready = false;
        let pod_name = pod.name.clone();
        let w = self.workload(ns, name);
        let objs = self.workload_objects(w);
        let mut out = vec![("modified", objs[0].clone())];
        out.push(("added", self.replicaset_object(w, w.revision())));
        out.push(("added", self.pod_object(self.pods.last().expect("pod"), &t)));
        out.push(("modified", self.endpoint_slice(w)));
        (out, pod_name)
    }

    pub(crate) fn crash_loop(&mut self, ns: &str, pod: &str) {
        let p = self.pod_mut(ns, pod);
        p.waiting = Some("CrashLoopBackOff");
        p.restarts = 4;
    }

    pub(crate) fn fill_volume(&mut self, ns: &str, pvc: &str, free_fraction: f64) {
        let t = self.t();
        let v = self
            .pvcs
            .iter_mut()
            .find(|v| v.ns == ns && v.name == pvc)
            .expect("pvc");
        v.free = v.capacity * free_fraction;
        v.drain = v.capacity * 1e-5;
        v.since = t;
    }

    pub(crate) fn break_metrics(&mut self, ns: &str, pod: &str) {
        self.pod_mut(ns, pod).metrics_ok = false;
    }

    pub(crate) fn throttle(&mut self, ns: &str, workload: &str, fraction: f64) {
        let t = self.t();
        for p in self
            .pods
            .iter_mut()
            .filter(|p| p.ns == ns && p.workload == workload)
        {
            p.throttled_at_since = p.throttled(t);
            p.throttle_since = t;
            p.throttle = fraction;
        }
    }
}
