//! The cluster as the evidence stream describes it: Kubernetes objects from
//! `kubernetes.watch.*` events, trimmed to what correlation needs, and the entity graph
//! (container → pod → owner → node; service → ready endpoints → pods; addresses → who).
//!
//! Applying an object returns what its change means (signals, changes, recoveries), so
//! a state transition is observed once, however often the object is re-sent.
//!
//! This file holds the tables and the queries over them; `objects` applies watched
//! objects to the tables, `events` reads Kubernetes `Warning` events as signals.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use ulid::Ulid;

use super::entity::{EntityKey, FastMap};
use super::signal::{Change, Derived, Recovery, Signal, Symptom};

mod events;
mod objects;

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
    // Every call site names each part of a signal; a builder would only rename the list.
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
