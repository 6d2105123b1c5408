//! The cluster as the evidence stream describes it: Kubernetes objects from
//! `kubernetes.watch.*` events, trimmed to what correlation needs, and the entity graph
//! (container → pod → owner → node; service → ready endpoints → pods; addresses → who).
//!
//! Applying an object returns what its change means (signals, changes, recoveries), so
//! a state transition is observed once, however often the object is re-sent.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use ulid::Ulid;

use super::entity::{EntityKey, FastMap};
use super::signal::{Change, Derived, Recovery, Signal, Symptom};

/// Objects kept per kind at most; beyond it the state stops growing and counts refusals.
pub const MAX_OBJECTS: usize = 200_000;

#[derive(Debug, Clone, Default)]
pub struct NodeState {
    pub ready: Option<bool>,
    pub pressure: BTreeSet<String>,
    pub taints: BTreeSet<String>,
    /// `status.addresses` (InternalIP, ExternalIP, Hostname): alerts name a node by address.
    pub addresses: Vec<String>,
    /// What the node shares with others and could fail with them: its node group (pool)
    /// and zone from the well-known labels, `(kind, value)` with kind `NodeGroup` / `Zone`.
    pub factors: Vec<(&'static str, String)>,
    /// Cordoned (drain, upgrade, scale-down, spot notice): disruption here is planned.
    pub cordoned: bool,
    /// Problem conditions that are True (`KernelDeadlock`, `ReadonlyFilesystem`, ...).
    pub problems: BTreeSet<String>,
}

/// What a node condition other than Ready and the pressures means when True
/// (node-problem-detector's defaults, the cloud's NetworkUnavailable).
pub fn problem_condition(t: &str) -> Option<Symptom> {
    Some(match t {
        "KernelDeadlock" | "KernelHung" | "TaskHung" => Symptom::HungTask,
        "ReadonlyFilesystem" | "CorruptDockerOverlay2" | "DiskIOError" | "FilesystemCorruption" => {
            Symptom::DiskError
        }
        "FrequentContainerdRestart"
        | "FrequentDockerRestart"
        | "FrequentKubeletRestart"
        | "ContainerRuntimeUnhealthy"
        | "ContainerRuntimeProblem"
        | "KubeletUnhealthy" => Symptom::RuntimeFailed,
        "NetworkUnavailable" => Symptom::NetworkDegraded,
        _ => return None,
    })
}

/// Labels that name a node's group (pool), by provider.
const NODE_GROUP_LABELS: &[&str] = &[
    "eks.amazonaws.com/nodegroup",
    "alpha.eksctl.io/nodegroup-name",
    "cloud.google.com/gke-nodepool",
    "kubernetes.azure.com/agentpool",
    "karpenter.sh/nodepool",
    "node.kubernetes.io/pool",
    "nodepool",
    "agentpool",
];
const ZONE_LABELS: &[&str] = &[
    "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/zone",
];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerState {
    pub restarts: i64,
    pub waiting: Option<String>,
    pub last_terminated: Option<String>,
    pub last_exit_code: Option<i64>,
    pub memory_limit: Option<String>,
    pub image: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PodState {
    pub uid: String,
    pub node: Option<String>,
    pub owner: Option<EntityKey>,
    pub ip: Option<String>,
    pub ready: Option<bool>,
    pub unschedulable: Option<String>,
    pub evicted: bool,
    pub labels: BTreeMap<String, String>,
    pub containers: BTreeMap<String, ContainerState>,
    /// ConfigMaps and Secrets the pod mounts or reads (`ConfigMap/ns/name`).
    pub configs: BTreeSet<EntityKey>,
    /// PersistentVolumeClaims the pod mounts.
    pub claims: BTreeSet<EntityKey>,
    /// Ready at least once: readiness failures before that are a pod warming up.
    pub was_ready: bool,
    /// `hostNetwork: true`: its IP is the node's, shared with every other such pod there.
    pub host_network: bool,
    /// Ports it listens on (`containerPort`, and `hostPort` where set).
    pub ports: Vec<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct WorkloadState {
    pub desired: Option<i64>,
    pub available: Option<i64>,
    pub images: Vec<String>,
    pub template_hash: Option<String>,
    /// The template without `kubectl.kubernetes.io/restartedAt`: unchanged by a plain
    /// `kubectl rollout restart`, which changes nothing a pod runs.
    pub spec_hash: Option<String>,
    pub revision: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ServiceState {
    pub selector: BTreeMap<String, String>,
    pub cluster_ip: Option<String>,
    pub ports: Vec<i64>,
}

#[derive(Debug, Default)]
pub struct ClusterState {
    pub nodes: FastMap<String, NodeState>,
    pub pods: FastMap<EntityKey, PodState>,
    pub rs_owner: FastMap<EntityKey, EntityKey>,
    pub workloads: FastMap<EntityKey, WorkloadState>,
    pub services: FastMap<EntityKey, ServiceState>,
    /// EndpointSlice → (service, ready addresses, all addresses).
    pub slices: FastMap<EntityKey, (EntityKey, Vec<String>, usize, Vec<String>)>,
    pub configs: FastMap<EntityKey, String>,
    pub refused_objects: u64,
    /// Address → who answers there (Service ClusterIPs and endpoints, pod IPs → owner).
    ip_index: FastMap<String, EntityKey>,
    /// Addresses shared by several owners (a node's IP with hostNetwork pods): port →
    /// owner, per pod, so a connect is attributed by address *and* port, never to
    /// whichever pod was indexed last.
    host_ports: FastMap<String, Vec<(i64, EntityKey, EntityKey)>>,
    /// Owner → its pods; namespace → pods / services (so lookups never scan the cluster).
    pods_by_owner: FastMap<EntityKey, BTreeSet<EntityKey>>,
    pods_by_ns: FastMap<String, BTreeSet<EntityKey>>,
    services_by_ns: FastMap<String, BTreeSet<EntityKey>>,
    /// Service → the workloads whose pods its selector matches (maintained as pods and
    /// services change, so lookups never scan).
    svc_workloads: FastMap<EntityKey, BTreeSet<EntityKey>>,
    /// The cluster DNS workloads (kube-system, name with "dns").
    pub dns_workloads: BTreeSet<EntityKey>,
    /// HorizontalPodAutoscaler → its scale target.
    pub hpa_targets: FastMap<EntityKey, EntityKey>,
    /// Job → the CronJob that created it.
    pub job_owners: FastMap<EntityKey, EntityKey>,
    /// Jobs seen Failed (each failure is derived once).
    pub failed_jobs: BTreeSet<EntityKey>,
    /// PersistentVolumeClaim → its StorageClass.
    pub claim_classes: FastMap<EntityKey, String>,
    /// PersistentVolume name → the claim bound to it.
    pub pv_claims: FastMap<String, EntityKey>,
    /// Admission webhook name (`webhooks[].name`) → its Validating/Mutating configuration.
    pub webhooks: FastMap<String, EntityKey>,
}

/// Container runtime failures in kubelet events (containerd, CRI-O, runc, overlayfs).
const RUNTIME_ERRORS: &[&str] = &[
    "failed to create containerd task",
    "failed to reserve sandbox name",
    "failed to reserve container name",
    "error creating overlay mount",
    "failed to mount rootfs",
    "oci runtime create failed",
    "runc create failed",
    "too many open files",
    "context deadline exceeded: unknown",
];

/// Container network (CNI) daemons by DaemonSet name: a pod network that cannot be set
/// up on a node is theirs to explain.
pub const CNI_DAEMONS: &[&str] = &[
    "aws-node",
    "calico-node",
    "cilium",
    "kube-flannel-ds",
    "kube-flannel",
    "flannel",
    "weave-net",
    "canal",
    "antrea-agent",
    "kube-router",
    "ovnkube-node",
    "kube-multus-ds",
    "azure-cns",
    "azure-cni",
    "gke-metadata-server",
];

/// A quoted name after `prefix` in `msg` (`failed calling webhook "x"` → x).
fn quoted_after<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let lower = msg.to_ascii_lowercase();
    let i = lower.find(prefix)? + prefix.len();
    let rest = msg[i..].trim_start().trim_start_matches('\\');
    let rest = rest.strip_prefix('"')?;
    let end = rest.find(['"', '\\'])?;
    Some(&rest[..end]).filter(|n| !n.is_empty() && n.len() <= 253)
}

/// The word after `prefix` (`exceeded quota: compute-resources,` → compute-resources).
fn word_after<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let lower = msg.to_ascii_lowercase();
    let i = lower.find(prefix)? + prefix.len();
    let rest = msg[i..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|n| !n.is_empty() && n.len() <= 253)
}

/// The in-cluster Service a failed lookup names: the first `<svc>.<ns>.svc[...]` host in
/// the message (`lookup db.shop.svc.cluster.local`, `could not translate host name
/// "db.shop.svc.cluster.local"`); `None` for names outside the cluster.
pub fn looked_up_service(msg: &str) -> Option<EntityKey> {
    let lower = msg.to_ascii_lowercase();
    lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .find_map(|host| {
            let mut parts = host.split('.');
            let svc = parts.next()?;
            let ns = parts.next()?;
            (parts.next() == Some("svc") && !svc.is_empty() && !ns.is_empty())
                .then(|| EntityKey::ns("Service", ns, svc))
        })
}

/// How applications say a name does not exist (NXDOMAIN), across runtimes.
const NO_SUCH_NAME: &[&str] = &[
    "no such host",
    "nxdomain",
    "could not translate host name",
    "name or service not known",
    "nodename nor servname",
    "unknownhostexception",
    "getaddrinfo enotfound",
    "name does not resolve",
    "could not resolve host",
];

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path)?.as_str()
}
fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    Some(cur)
}
fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}
fn int(v: &Value, path: &[&str]) -> Option<i64> {
    get(v, path)?.as_i64()
}
fn labels(v: &Value, path: &[&str]) -> BTreeMap<String, String> {
    get(v, path)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Context of one applied object: the evidence it came from.
struct Ctx {
    at: DateTime<Utc>,
    id: Ulid,
    out: Vec<Derived>,
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    fn signal(
        &mut self,
        symptom: Symptom,
        subject: EntityKey,
        node: Option<String>,
        detail: String,
        strong: bool,
        message: String,
    ) {
        self.out.push(Derived::Signal(Signal {
            at: self.at,
            evidence: self.id,
            symptom,
            subject,
            node,
            target: None,
            detail,
            strong,
            ratio: None,
            latency_s: None,
            priority: None,
            message,
            fraction: None,
            monitoring: false,
            joins_only: false,
            source: "",
        }));
    }
    /// A signal about reaching something (a Service a lookup names).
    fn signal_to(
        &mut self,
        symptom: Symptom,
        subject: EntityKey,
        node: Option<String>,
        target: EntityKey,
        detail: String,
    ) {
        self.signal(symptom, subject, node, detail, true, String::new());
        if let Some(Derived::Signal(s)) = self.out.last_mut() {
            s.target = Some(target);
        }
    }

    fn change(&mut self, entity: EntityKey, kind: &str, description: String) {
        self.out.push(Derived::Change(Change {
            at: self.at,
            evidence: self.id,
            entity,
            kind: kind.into(),
            description,
        }));
    }
    fn recovery(&mut self, subject: EntityKey, symptom: Symptom) {
        self.out.push(Derived::Recovery(Recovery {
            at: self.at,
            subject,
            symptom,
        }));
    }
}

fn memory_limit(c: &Value) -> Option<String> {
    s(c, &["resources", "limits", "memory"]).map(str::to_owned)
}

/// Short hash of a config object's data (keys and values), never keeping the values. A
/// Secret seen as metadata only (the live watcher never reads Secret data) is versioned
/// by its resourceVersion instead.
fn data_hash(obj: &Value) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let has_data = ["data", "binaryData", "stringData"]
        .iter()
        .any(|f| obj.get(*f).is_some());
    if !has_data && obj.get("kind").and_then(Value::as_str) == Some("Secret") {
        h.update(b"resourceVersion\0");
        h.update(
            s(obj, &["metadata", "resourceVersion"])
                .unwrap_or_default()
                .as_bytes(),
        );
    }
    for field in ["data", "binaryData", "stringData"] {
        if let Some(m) = obj.get(field).and_then(Value::as_object) {
            let sorted: BTreeMap<_, _> = m.iter().collect();
            for (k, v) in sorted {
                h.update(k.as_bytes());
                h.update([0]);
                h.update(v.to_string().as_bytes());
                h.update([1]);
            }
        }
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ClusterState {
    /// Whether the Kubernetes state (not only evidence) knows this entity: what a storm
    /// of made-up or external names cannot create.
    pub fn knows(&self, k: &EntityKey) -> bool {
        match k.kind.as_str() {
            "Node" => self.nodes.contains_key(&k.name),
            "Service" => self.services.contains_key(k),
            "Pod" => self.pods.contains_key(k),
            "Cluster" | "NodeGroup" | "Zone" => true,
            _ => self.workloads.contains_key(k) || self.configs.contains_key(k),
        }
    }

    fn unindex_pod(&mut self, key: &EntityKey, old: Option<&PodState>) {
        if let Some(old) = old {
            if old.host_network
                && let Some(ip) = &old.ip
                && let Some(v) = self.host_ports.get_mut(ip)
            {
                v.retain(|(_, _, pod)| pod != key);
                if v.is_empty() {
                    self.host_ports.remove(ip);
                }
            } else if let Some(ip) = &old.ip
                && self
                    .ip_index
                    .get(ip)
                    .is_some_and(|w| Some(w) == old.owner.as_ref() || w == key)
            {
                self.ip_index.remove(ip);
            }
            if let Some(o) = &old.owner
                && let Some(set) = self.pods_by_owner.get_mut(o)
            {
                set.remove(key);
                if set.is_empty() {
                    self.pods_by_owner.remove(o);
                }
            }
        }
        if let Some(ns) = &key.namespace
            && let Some(set) = self.pods_by_ns.get_mut(ns)
        {
            set.remove(key);
        }
    }

    fn index_pod(&mut self, key: &EntityKey, st: &PodState) {
        if st.host_network {
            if let Some(ip) = &st.ip
                && (self.host_ports.len() < MAX_OBJECTS || self.host_ports.contains_key(ip))
            {
                let owner = st.owner.clone().unwrap_or_else(|| key.clone());
                let v = self.host_ports.entry(ip.clone()).or_default();
                v.retain(|(_, _, pod)| pod != key);
                for p in st.ports.iter().take(32) {
                    if v.len() < 256 {
                        v.push((*p, owner.clone(), key.clone()));
                    }
                }
            }
        } else if let Some(ip) = &st.ip {
            // A Service endpoint address stays the Service's.
            if self.ip_index.get(ip).is_none_or(|w| w.kind != "Service") {
                self.ip_index
                    .insert(ip.clone(), st.owner.clone().unwrap_or_else(|| key.clone()));
            }
        }
        if let Some(o) = &st.owner {
            self.pods_by_owner
                .entry(o.clone())
                .or_default()
                .insert(key.clone());
        }
        if let Some(ns) = &key.namespace {
            self.pods_by_ns
                .entry(ns.clone())
                .or_default()
                .insert(key.clone());
        }
    }

    /// ConfigMaps and Secrets a workload's pods use.
    pub fn configs_of(&self, workload: &EntityKey) -> BTreeSet<EntityKey> {
        let mut out = BTreeSet::new();
        for pk in self.pods_by_owner.get(workload).into_iter().flatten() {
            if let Some(p) = self.pods.get(pk) {
                out.extend(p.configs.iter().cloned());
            }
        }
        out
    }

    /// The workload a pod belongs to (a ReplicaSet resolves to its Deployment).
    pub fn owner_of(&self, ns: &str, refs: &[Value]) -> Option<EntityKey> {
        let r = refs
            .iter()
            .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            .or_else(|| refs.first())?;
        let kind = r.get("kind")?.as_str()?;
        let name = r.get("name")?.as_str()?;
        let key = EntityKey::ns(kind, ns, name);
        if kind == "ReplicaSet" {
            return Some(self.rs_owner.get(&key).cloned().unwrap_or_else(|| {
                // Not seen yet: a ReplicaSet named <deployment>-<hash> belongs to it.
                match name.rsplit_once('-') {
                    Some((dep, hash))
                        if hash.len() >= 5 && hash.chars().all(|c| c.is_ascii_alphanumeric()) =>
                    {
                        EntityKey::ns("Deployment", ns, dep)
                    }
                    _ => key,
                }
            }));
        }
        if kind == "Node" {
            return None;
        }
        Some(key)
    }

    /// Who an IP address is: a Service by ClusterIP or endpoint, else a pod's owner.
    /// Who answers at `addr:port`: a Service's ClusterIP or endpoint, a pod's owner; on an
    /// address several hostNetwork pods share, the one listening on `port` (none when no
    /// one is known to listen there: never a guess).
    pub fn who_is(&self, addr: &str, port: Option<i64>) -> Option<EntityKey> {
        if let Some(k) = self.ip_index.get(addr) {
            return Some(k.clone());
        }
        let shared = self.host_ports.get(addr)?;
        let port = port?;
        shared
            .iter()
            .find(|(p, _, _)| *p == port)
            .map(|(_, owner, _)| owner.clone())
    }

    /// Services whose selector matches the pods of a workload.
    pub fn services_of(&self, workload: &EntityKey) -> Vec<EntityKey> {
        let Some(ns) = &workload.namespace else {
            return Vec::new();
        };
        let Some(pod) = self
            .pods_by_owner
            .get(workload)
            .and_then(|s| s.iter().next())
            .and_then(|k| self.pods.get(k))
        else {
            return Vec::new();
        };
        self.services_by_ns
            .get(ns)
            .into_iter()
            .flatten()
            .filter(|k| {
                self.services.get(*k).is_some_and(|svc| {
                    !svc.selector.is_empty()
                        && svc
                            .selector
                            .iter()
                            .all(|(sk, sv)| pod.labels.get(sk) == Some(sv))
                })
            })
            .cloned()
            .collect()
    }

    /// Workloads whose pods select into a service.
    pub fn workloads_of(&self, service: &EntityKey) -> Vec<EntityKey> {
        self.svc_workloads
            .get(service)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Ready endpoint count of a service (None: no slice seen).
    pub fn ready_endpoints(&self, service: &EntityKey) -> Option<(usize, usize)> {
        let mut seen = false;
        let (mut ready, mut total) = (0, 0);
        for (svc, addrs, all, _) in self.slices.values() {
            if svc == service {
                seen = true;
                ready += addrs.len();
                total += all;
            }
        }
        seen.then_some((ready, total))
    }

    pub fn pods_on(&self, node: &str) -> impl Iterator<Item = (&EntityKey, &PodState)> {
        self.pods
            .iter()
            .filter(move |(_, p)| p.node.as_deref() == Some(node))
    }

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
                if kind == "Job" && !deleted {
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
                if kind == "Job" {
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
            "Service" => {
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
        let host_network =
            get(obj, &["spec", "hostNetwork"]).and_then(Value::as_bool) == Some(true);
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
            node: node.clone(),
            owner: owner.clone(),
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
                    last_terminated: s(cs, &["lastState", "terminated", "reason"])
                        .map(str::to_owned),
                    last_exit_code: int(cs, &["lastState", "terminated", "exitCode"]),
                    memory_limit: limit,
                    image: image.or_else(|| s(cs, &["image"]).map(str::to_owned)),
                },
            );
        }
        let empty = PodState::default();
        let was = old.as_ref().unwrap_or(&empty);
        st.was_ready = was.was_ready || st.ready == Some(true);
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
                    node.clone(),
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
                    node.clone(),
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
                    node.clone(),
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
                        node.clone(),
                        format!(
                            "container {cname} of pod {name} in CrashLoopBackOff after {} restarts",
                            c.restarts
                        ),
                        true,
                        c.last_terminated.clone().unwrap_or_default(),
                    ),
                    Some(r @ ("ImagePullBackOff" | "ErrImagePull" | "InvalidImageName")) => cx
                        .signal(
                            Symptom::ImagePullFailed,
                            subject.clone(),
                            node.clone(),
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
                        node.clone(),
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
                node.clone(),
                format!(
                    "pod {name} evicted from {}",
                    node.clone().unwrap_or_default()
                ),
                true,
                String::new(),
            );
        }
        if st.ready == Some(true) && was.ready == Some(false) {
            cx.recovery(subject.clone(), Symptom::CrashLoop);
        }
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

    fn event(&mut self, cx: &mut Ctx, obj: &Value) {
        if s(obj, &["type"]) != Some("Warning") {
            return;
        }
        let reason = s(obj, &["reason"]).unwrap_or("");
        let message = s(obj, &["message"])
            .or_else(|| s(obj, &["note"]))
            .unwrap_or("")
            .to_owned();
        let inv = obj.get("involvedObject").or_else(|| obj.get("regarding"));
        let Some(inv) = inv else {
            return;
        };
        let ikind = s(inv, &["kind"]).unwrap_or("");
        let iname = s(inv, &["name"]).unwrap_or("");
        let ins = s(inv, &["namespace"]).unwrap_or("");
        // Resolve the subject: a pod's owner, else the object itself.
        let (subject, node) = match ikind {
            "Pod" => {
                let pk = EntityKey::ns("Pod", ins, iname);
                match self.pods.get(&pk) {
                    Some(p) => (p.owner.clone().unwrap_or(pk), p.node.clone()),
                    None => (self.owner_from_pod_name(ins, iname).unwrap_or(pk), None),
                }
            }
            "Node" => (EntityKey::node(iname), Some(iname.to_owned())),
            "ReplicaSet" => {
                let rk = EntityKey::ns("ReplicaSet", ins, iname);
                (
                    self.rs_owner.get(&rk).cloned().unwrap_or_else(|| {
                        match iname.rsplit_once('-') {
                            Some((d, _)) => EntityKey::ns("Deployment", ins, d),
                            None => rk,
                        }
                    }),
                    None,
                )
            }
            "" => return,
            k => (EntityKey::new(k, Some(ins), iname), None),
        };
        let lower = message.to_ascii_lowercase();
        let detail = format!("{reason} on {ikind}/{iname}: {message}");
        let cut: String = detail.chars().take(300).collect();
        // A failing admission webhook is a cause on its configuration, when the state
        // knows which configuration holds it.
        let webhook = quoted_after(&message, "failed calling webhook")
            .and_then(|w| self.webhooks.get(w))
            .cloned();
        // The workload the event is about: when the cause sits elsewhere (a webhook, a
        // quota, a claim, a node), it is what the cause blocks.
        let involved = subject.clone();
        if lower.contains("x509") && (lower.contains("expired") || lower.contains("not yet valid"))
        {
            let mapped = webhook.is_some();
            cx.signal(
                Symptom::CertExpired,
                webhook.unwrap_or(subject),
                node,
                cut,
                true,
                message,
            );
            if mapped
                && involved.is_workload()
                && let Some(Derived::Signal(s)) = cx.out.last_mut()
            {
                s.target = Some(involved);
            }
            return;
        }
        let subject = match (&webhook, reason) {
            (Some(w), "FailedCreate" | "FailedCreatePodSandBox") => w.clone(),
            _ => subject,
        };
        let pod_key = (ikind == "Pod").then(|| EntityKey::ns("Pod", ins, iname));
        let pod = pod_key.as_ref().and_then(|k| self.pods.get(k));
        let mut subject = subject;
        let (sym, strong) = match reason {
            "FailedScheduling"
                if lower.contains("provisioning failed")
                    || lower.contains("failed to provision") =>
            {
                // The claim's StorageClass cannot provision: that is where the cause sits.
                subject = self
                    .storage_class_subject(&message, pod, ins)
                    .unwrap_or(subject);
                (Symptom::VolumeProvisionFailed, true)
            }
            "FailedScheduling" => (Symptom::Unschedulable, false),
            "ProvisioningFailed" => {
                let claim = (ikind == "PersistentVolumeClaim")
                    .then(|| EntityKey::ns("PersistentVolumeClaim", ins, iname));
                subject = quoted_after(&message, "storageclass")
                    .map(|c| EntityKey::new("StorageClass", None, c))
                    .or_else(|| {
                        claim
                            .as_ref()
                            .and_then(|c| self.claim_classes.get(c))
                            .map(|c| EntityKey::new("StorageClass", None, c))
                    })
                    .unwrap_or(subject);
                (Symptom::VolumeProvisionFailed, true)
            }
            "BackOff" if lower.contains("pulling image") || lower.contains("image") => {
                (Symptom::ImagePullFailed, true)
            }
            "BackOff" => (Symptom::CrashLoop, true),
            "FailedCreatePodSandBox" | "FailedCreatePodSandbox" | "Failed" | "FailedSync"
                if lower.contains("sandbox image")
                    || lower.contains("pause:")
                    || lower.contains("/pause") =>
            {
                // The node cannot get its own sandbox (pause) image: no pod starts there.
                if let Some(n) = &node {
                    subject = EntityKey::node(n);
                }
                (Symptom::ImagePullFailed, true)
            }
            "FailedCreatePodSandBox" | "FailedCreatePodSandbox" | "Failed"
                if RUNTIME_ERRORS.iter().any(|m| lower.contains(m)) =>
            {
                // The container runtime on the node fails: a node problem.
                if let Some(n) = &node {
                    subject = EntityKey::node(n);
                }
                (Symptom::RuntimeFailed, true)
            }
            "FailedCreatePodSandBox" | "FailedCreatePodSandbox" if lower.contains("webhook") => {
                (Symptom::WebhookFailed, true)
            }
            "FailedCreatePodSandBox" | "FailedCreatePodSandbox" | "NetworkNotReady" => {
                // CNI and IPAM: the pod network cannot be set up.
                (Symptom::NetworkSetupFailed, true)
            }
            "Failed" | "ErrImagePull" | "ImagePullBackOff"
                if lower.contains("pull") || lower.contains("image") =>
            {
                (Symptom::ImagePullFailed, true)
            }
            "Failed" => (Symptom::ConfigError, false),
            // Readiness failing while a pod warms up (never ready yet) is start-up, not a
            // failure; liveness failures always count.
            "Unhealthy"
                if lower.starts_with("readiness probe") && pod.is_some_and(|p| !p.was_ready) =>
            {
                return;
            }
            "Unhealthy" => (Symptom::ProbeFailed, false),
            "FailedAttachVolume" | "FailedMount" | "FailedMapVolume"
                if lower.contains("multi-attach")
                    || lower.contains("attachvolume")
                    || lower.contains("unattached volumes")
                    || reason == "FailedAttachVolume" =>
            {
                // An attach that does not happen: the volume (its claim) is the subject.
                subject = self.claim_subject(&message, pod, ins).unwrap_or(subject);
                (Symptom::VolumeAttachFailed, true)
            }
            // A mount failing while the pod starts (a Secret not synced yet) usually clears
            // within seconds: weak until it repeats.
            "FailedMount" | "FailedMapVolume" => (Symptom::MountFailed, false),
            "Evicted" => (Symptom::Evicted, true),
            "NodeNotReady" => (Symptom::NodeNotReady, true),
            "OOMKilling" | "SystemOOM" => (Symptom::OomKilled, true),
            // node-problem-detector's kernel monitor.
            "FilesystemIsReadOnly" | "Ext4Error" | "IOError" | "XFSError" | "BtrfsError" => {
                (Symptom::DiskError, true)
            }
            "TaskHung" | "KernelOops" | "AUFSUmountHung" | "DockerHung" | "KernelDeadlock" => {
                (Symptom::HungTask, true)
            }
            "ContainerdStart" | "DockerStart" | "KubeletStart" | "ContainerGCFailed" => {
                (Symptom::RuntimeFailed, false)
            }
            "FailedCreate" if lower.contains("exceeded quota") => {
                subject = word_after(&message, "exceeded quota:")
                    .map(|q| EntityKey::ns("ResourceQuota", ins, q))
                    .unwrap_or(subject);
                (Symptom::QuotaExceeded, true)
            }
            "FailedCreate" if lower.contains("webhook") => (Symptom::WebhookFailed, true),
            "FailedCreate" => (Symptom::WebhookFailed, false),
            "BackoffLimitExceeded" | "DeadlineExceeded" => {
                subject = self.job_owner(&subject).unwrap_or(subject);
                (Symptom::JobFailed, true)
            }
            "EvictionThresholdMet" if lower.contains("memory") => {
                (Symptom::NodeMemoryPressure, true)
            }
            "EvictionThresholdMet" | "NodeHasDiskPressure" | "FreeDiskSpaceFailed" => {
                (Symptom::NodeDiskPressure, true)
            }
            "NodeHasInsufficientMemory" => (Symptom::NodeMemoryPressure, true),
            "ImageGCFailed" => (Symptom::NodeDiskPressure, false),
            _ => return,
        };
        // A node under planned disruption (cordoned: drained, upgraded, scaled down)
        // going NotReady or evicting is what the plan does: weak evidence.
        let planned = node
            .as_deref()
            .and_then(|n| self.nodes.get(n))
            .is_some_and(|n| n.cordoned);
        let planned = planned && matches!(sym, Symptom::NodeNotReady | Symptom::Evicted);
        let strong = strong && !planned;
        // A node-level event about a node: the node is the subject.
        if sym.is_node_condition() && ikind == "Node" {
            cx.signal(sym, EntityKey::node(iname), node, cut, strong, message);
            return;
        }
        // "Node is not ready" on a pod (the node lifecycle controller): the node's
        // condition, with the pod's workload as what it affects.
        if sym == Symptom::NodeNotReady
            && let Some(n) = node.clone()
        {
            cx.signal_to(sym, EntityKey::node(&n), Some(n), subject, cut);
            if let Some(Derived::Signal(s)) = cx.out.last_mut() {
                s.strong = strong;
                s.message = message;
                s.joins_only = planned;
            }
            return;
        }
        let blocks = (subject != involved && involved.is_workload()).then_some(involved);
        cx.signal(sym, subject, node, cut, strong, message);
        if let Some(Derived::Signal(s)) = cx.out.last_mut() {
            s.joins_only = planned;
            s.target = blocks;
        }
    }

    /// The claim a volume failure is about: the PV the message names (`volume "pvc-…"`),
    /// else the pod's only claim.
    fn claim_subject(&self, msg: &str, pod: Option<&PodState>, _ns: &str) -> Option<EntityKey> {
        if let Some(pv) = quoted_after(msg, "volume")
            && let Some(c) = self.pv_claims.get(pv)
        {
            return Some(c.clone());
        }
        let p = pod?;
        (p.claims.len() == 1).then(|| p.claims.iter().next().cloned())?
    }

    /// The StorageClass a provisioning failure is about: named in the message, else the
    /// class of the claim it names (`for PVC "x"`), else of the pod's only claim.
    fn storage_class_subject(
        &self,
        msg: &str,
        pod: Option<&PodState>,
        ns: &str,
    ) -> Option<EntityKey> {
        if let Some(c) = quoted_after(msg, "storageclass") {
            return Some(EntityKey::new("StorageClass", None, c));
        }
        let claim = quoted_after(msg, "pvc")
            .map(|c| EntityKey::ns("PersistentVolumeClaim", ns, c))
            .or_else(|| {
                let p = pod?;
                (p.claims.len() == 1).then(|| p.claims.iter().next().cloned())?
            })?;
        self.claim_classes
            .get(&claim)
            .map(|c| EntityKey::new("StorageClass", None, c))
    }

    /// A workload's pods.
    pub fn pods_of(&self, workload: &EntityKey) -> impl Iterator<Item = &PodState> {
        self.pods_by_owner
            .get(workload)
            .into_iter()
            .flatten()
            .filter_map(|k| self.pods.get(k))
    }

    /// PVCs mounted by a workload's pods.
    pub fn claims_of(&self, workload: &EntityKey) -> BTreeSet<EntityKey> {
        self.pods_by_owner
            .get(workload)
            .into_iter()
            .flatten()
            .filter_map(|k| self.pods.get(k))
            .flat_map(|p| p.claims.iter().cloned())
            .collect()
    }

    /// The node one of whose addresses is `addr`.
    pub fn node_by_address(&self, addr: &str) -> Option<&str> {
        self.nodes
            .iter()
            .find(|(_, n)| n.addresses.iter().any(|a| a == addr))
            .map(|(k, _)| k.as_str())
    }

    /// The CronJob behind a Job, when known.
    pub fn job_owner(&self, job: &EntityKey) -> Option<EntityKey> {
        self.job_owners.get(job).cloned()
    }

    pub fn owner_from_pod_name(&self, ns: &str, pod: &str) -> Option<EntityKey> {
        // <deployment>-<rs hash>-<pod suffix>
        let mut parts = pod.rsplitn(3, '-');
        let _suffix = parts.next()?;
        let _hash = parts.next()?;
        let dep = parts.next()?;
        Some(EntityKey::ns("Deployment", ns, dep))
    }
}
