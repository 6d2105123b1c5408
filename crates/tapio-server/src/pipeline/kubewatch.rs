//! Live Kubernetes state: one kube-rs watcher per kind, feeding the same
//! `kubernetes.watch.added|modified|deleted` evidence path replays and scenarios use
//! (docs/kubernetes.md), so live and replay correlate alike.
//!
//! - **No duplicate evidence across relists.** Each kind keeps an index of what it has
//!   sent (uid → resourceVersion, name, namespace). A relist (start, 410 Gone, a broken
//!   watch) sends only objects that are new or changed, then `deleted` for those the
//!   relist no longer contains. The index holds no object bodies, so it stays small
//!   (figure in docs/kubernetes.md).
//! - **Backoff** on every watch error (throttling 429, 5xx, refused connections): kube-rs'
//!   default exponential backoff with jitter. Bookmarks are asked for, so a resumed watch
//!   rarely needs a relist.
//! - **Trimmed objects, no secrets.** `managedFields` and last-applied annotations are
//!   dropped; ConfigMap values become content hashes; Secrets are watched as metadata only
//!   (the API server never sends their data).
//! - **Bounded.** The sink queue is bounded and applies backpressure to the watchers
//!   (nothing is dropped for lack of room); an object too large for the evidence format
//!   is dropped and counted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use crate::pipeline::ingest::Ingest;

/// Agent id under which the watcher's evidence is stored.
pub const AGENT_ID: &str = "kube-watch";
/// Objects indexed per kind; beyond it new objects are refused and counted.
pub const MAX_OBJECTS_PER_KIND: usize = 200_000;
/// Events waiting for the store; watchers wait when it is full.
const QUEUE: usize = 4096;
/// Events per stored batch.
const BATCH: usize = 500;

/// Where the cluster connection comes from (`--kube`, `--kubeconfig`, `--kube-context`).
#[derive(Debug, Clone, Default)]
pub struct KubeArgs {
    /// `off` disables the watches; `auto` (default) uses a kubeconfig or in-cluster config
    /// when one exists.
    pub mode: String,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Name put in `entity.cluster` (default: the kubeconfig context, or "in-cluster").
    pub cluster_name: Option<String>,
}

/// Watch state of one kind, for `/health` and `tapio check --all`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KindStatus {
    pub objects: usize,
    /// The first list completed.
    pub synced: bool,
    pub relists: u64,
    /// Watches that expired (410 Gone) and were resumed by a relist.
    pub expired: u64,
    pub events_sent: u64,
    pub unchanged_skipped: u64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<chrono::DateTime<Utc>>,
    pub refused_objects: u64,
    pub dropped_too_large: u64,
    /// RBAC does not allow watching this kind; it is not watched.
    pub forbidden: bool,
}

/// The pods of each node, trimmed to what an agent needs to attribute kernel evidence
/// (names, uid, labels, owners, node, container ids), served as a `PodList` at
/// `GET /api/v1/pods?node=NAME`.
#[derive(Debug, Default)]
pub struct PodIndex {
    by_node: HashMap<String, HashMap<String, Value>>,
    node_of: HashMap<String, String>,
}

impl PodIndex {
    fn trim_for_agent(pod: &Value) -> Value {
        let m = &pod["metadata"];
        let mut meta = serde_json::Map::new();
        for k in ["name", "namespace", "uid", "labels", "ownerReferences"] {
            if let Some(v) = m.get(k) {
                meta.insert(k.to_owned(), v.clone());
            }
        }
        if let Some(src) = m["annotations"].get("kubernetes.io/config.source") {
            meta.insert(
                "annotations".into(),
                json!({"kubernetes.io/config.source": src}),
            );
        }
        let mut status = serde_json::Map::new();
        for list in [
            "containerStatuses",
            "initContainerStatuses",
            "ephemeralContainerStatuses",
        ] {
            if let Some(items) = pod["status"][list].as_array() {
                let slim: Vec<Value> = items
                    .iter()
                    .map(|c| json!({"name": c["name"], "containerID": c["containerID"]}))
                    .collect();
                status.insert(list.to_owned(), Value::Array(slim));
            }
        }
        json!({"metadata": meta, "spec": {"nodeName": pod["spec"]["nodeName"]}, "status": status})
    }

    /// Record a pod's latest state (or its deletion).
    pub fn apply(&mut self, verb: &str, pod: &Value) {
        let Some(uid) = pod["metadata"]["uid"].as_str() else {
            return;
        };
        if let Some(old) = self.node_of.remove(uid)
            && let Some(m) = self.by_node.get_mut(&old)
        {
            m.remove(uid);
            if m.is_empty() {
                self.by_node.remove(&old);
            }
        }
        if verb == "deleted" {
            return;
        }
        let Some(node) = pod["spec"]["nodeName"].as_str() else {
            return; // not scheduled yet: no agent has it
        };
        if self.node_of.len() >= MAX_OBJECTS_PER_KIND {
            return;
        }
        self.node_of.insert(uid.to_owned(), node.to_owned());
        self.by_node
            .entry(node.to_owned())
            .or_default()
            .insert(uid.to_owned(), Self::trim_for_agent(pod));
    }

    /// The node's pods as a Kubernetes `PodList`.
    pub fn pod_list(&self, node: &str) -> Value {
        let mut items: Vec<&Value> = self
            .by_node
            .get(node)
            .map(|m| m.values().collect())
            .unwrap_or_default();
        items.sort_by_key(|p| p["metadata"]["uid"].as_str().unwrap_or(""));
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})
    }

    pub fn len(&self) -> usize {
        self.node_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.node_of.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct KubeStatus {
    /// Pods by node for the agents (`GET /api/v1/pods?node=`).
    pub pods: std::sync::RwLock<PodIndex>,
    pub configured: AtomicBool,
    /// "kubeconfig ~/.kube/config, context prod" / "in-cluster" / why not configured.
    pub source: Mutex<String>,
    pub kinds: Mutex<BTreeMap<&'static str, KindStatus>>,
}

impl KubeStatus {
    fn update(&self, kind: &'static str, f: impl FnOnce(&mut KindStatus)) {
        if let Ok(mut k) = self.kinds.lock() {
            f(k.entry(kind).or_default());
        }
    }
}

/// Build the client, or say why there is none. `Err` only for a configuration the user
/// asked for explicitly that cannot be used.
pub async fn connect(args: &KubeArgs) -> Result<Option<(Client, String, String)>, String> {
    if args.mode == "off" {
        return Ok(None);
    }
    let explicit = args.kubeconfig.is_some() || args.context.is_some();
    let path = args
        .kubeconfig
        .clone()
        .or_else(|| std::env::var_os("KUBECONFIG").map(PathBuf::from))
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".kube/config"))
                .filter(|p| p.exists())
        });
    let (config, source, default_name) = if let Some(path) = path {
        let kc = kube::config::Kubeconfig::read_from(&path).map_err(|e| {
            format!(
                "kubeconfig {}: {e} (--kubeconfig / KUBECONFIG; --kube off to run without a cluster)",
                path.display()
            )
        })?;
        let context = args
            .context
            .clone()
            .or_else(|| kc.current_context.clone())
            .unwrap_or_default();
        let opts = kube::config::KubeConfigOptions {
            context: args.context.clone(),
            ..Default::default()
        };
        let cfg = kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|e| {
                format!(
                    "kubeconfig {}, context {context:?}: {e} (--kube-context names a context in the file)",
                    path.display()
                )
            })?;
        (
            cfg,
            format!("kubeconfig {}, context {context}", path.display()),
            context,
        )
    } else if explicit {
        return Err("--kube-context needs a kubeconfig (--kubeconfig or KUBECONFIG)".into());
    } else if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        let cfg =
            kube::Config::incluster().map_err(|e| format!("in-cluster Kubernetes config: {e}"))?;
        (cfg, "in-cluster".to_owned(), "in-cluster".to_owned())
    } else {
        return Ok(None);
    };
    let client = Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))?;
    let name = args.cluster_name.clone().unwrap_or(default_name);
    Ok(Some((client, source, name)))
}

/// The object as evidence carries it: no managed fields, no last-applied copy, ConfigMap
/// values replaced by their hashes.
pub fn trim(kind: &str, mut obj: Value) -> Value {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            ann.remove("kubectl.kubernetes.io/last-applied-configuration");
            ann.remove("deployment.kubernetes.io/desired-replicas");
        }
    }
    if kind == "ConfigMap" {
        for field in ["data", "binaryData"] {
            if let Some(m) = obj.get_mut(field).and_then(Value::as_object_mut) {
                for v in m.values_mut() {
                    let d = Sha256::digest(v.as_str().unwrap_or_default().as_bytes());
                    let hex: String = d[..12].iter().map(|b| format!("{b:02x}")).collect();
                    *v = Value::String(format!("sha256:{hex}"));
                }
            }
        }
    }
    obj
}

/// What the index remembers of a sent object (no body).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    rv: String,
    name: String,
    namespace: Option<String>,
}

/// One kind's index and the decisions it makes: what to send for each watcher event.
pub struct KindIndex {
    kind: &'static str,
    api_version: &'static str,
    seen: HashMap<String, Seen>,
    relisting: Option<HashSet<String>>,
}

/// A `kubernetes.watch.*` event to store: verb and object.
pub type Out = (&'static str, Value);

impl KindIndex {
    pub fn new(kind: &'static str, api_version: &'static str) -> Self {
        Self {
            kind,
            api_version,
            seen: HashMap::new(),
            relisting: None,
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Approximate heap bytes of the index (for the memory figure).
    pub fn heap_bytes(&self) -> usize {
        self.seen
            .iter()
            .map(|(k, v)| {
                k.capacity()
                    + v.rv.capacity()
                    + v.name.capacity()
                    + v.namespace.as_ref().map_or(0, String::capacity)
                    + std::mem::size_of::<(String, Seen)>()
                    + 8
            })
            .sum()
    }

    fn key(obj: &Value) -> Option<(String, Seen)> {
        let m = obj.get("metadata")?;
        let name = m.get("name")?.as_str()?.to_owned();
        let namespace = m
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let uid = m
            .get("uid")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}/{name}", namespace.as_deref().unwrap_or("")));
        let rv = m
            .get("resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Some((
            uid,
            Seen {
                rv,
                name,
                namespace,
            },
        ))
    }

    /// An object was listed or changed: `added`/`modified` unless the index already has
    /// this resourceVersion. `Err(())` when the kind is full.
    fn apply(&mut self, obj: Value, status: &mut KindStatus) -> Option<Out> {
        let (uid, seen) = Self::key(&obj)?;
        if let Some(r) = self.relisting.as_mut() {
            r.insert(uid.clone());
        }
        let verb = match self.seen.get(&uid) {
            Some(old) if old.rv == seen.rv && !seen.rv.is_empty() => {
                status.unchanged_skipped += 1;
                return None;
            }
            Some(_) => "modified",
            None if self.seen.len() >= MAX_OBJECTS_PER_KIND => {
                status.refused_objects += 1;
                return None;
            }
            None => "added",
        };
        self.seen.insert(uid, seen);
        Some((verb, obj))
    }

    fn delete(&mut self, obj: Value) -> Option<Out> {
        let (uid, _) = Self::key(&obj)?;
        self.seen.remove(&uid)?;
        Some(("deleted", obj))
    }

    /// Feed one watcher event; returns what to send.
    pub fn handle(&mut self, ev: WatchEvent<Value>, status: &mut KindStatus) -> Vec<Out> {
        match ev {
            WatchEvent::Init => {
                self.relisting = Some(HashSet::new());
                status.relists += 1;
                Vec::new()
            }
            WatchEvent::InitApply(o) | WatchEvent::Apply(o) => {
                self.apply(o, status).into_iter().collect()
            }
            WatchEvent::Delete(o) => self.delete(o).into_iter().collect(),
            WatchEvent::InitDone => {
                status.synced = true;
                let Some(listed) = self.relisting.take() else {
                    return Vec::new();
                };
                // Gone while we were not watching.
                let gone: Vec<String> = self
                    .seen
                    .keys()
                    .filter(|k| !listed.contains(*k))
                    .cloned()
                    .collect();
                gone.into_iter()
                    .filter_map(|uid| {
                        let s = self.seen.remove(&uid)?;
                        let mut meta = json!({"name": s.name, "uid": uid, "resourceVersion": s.rv});
                        if let Some(ns) = s.namespace {
                            meta["namespace"] = Value::String(ns);
                        }
                        Some((
                            "deleted",
                            json!({"apiVersion": self.api_version, "kind": self.kind, "metadata": meta}),
                        ))
                    })
                    .collect()
            }
        }
    }
}

fn entity(cluster: &str, kind: &str, obj: &Value) -> Value {
    let mut e = json!({"cluster": cluster});
    let meta = &obj["metadata"];
    if let Some(ns) = meta["namespace"].as_str() {
        e["namespace"] = json!(ns);
    }
    match kind {
        "Node" => e["node"] = meta["name"].clone(),
        "Pod" => {
            e["pod"] = meta["name"].clone();
            if let Some(uid) = meta["uid"].as_str() {
                e["pod_uid"] = json!(uid);
            }
            if let Some(n) = obj["spec"]["nodeName"].as_str() {
                e["node"] = json!(n);
            }
        }
        _ => {}
    }
    e
}

/// Watch one kind until shutdown, sending what changed to `tx`.
async fn watch_kind<K>(
    api: Api<K>,
    kind: &'static str,
    api_version: &'static str,
    tx: mpsc::Sender<(&'static str, Out)>,
    status: Arc<KubeStatus>,
    shutdown: watch::Receiver<bool>,
) where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    let to_value = move |o: K| {
        let mut v = serde_json::to_value(&o).unwrap_or(Value::Null);
        // k8s-openapi serializes apiVersion and kind; make sure of it.
        if v.get("kind").is_none() {
            v["kind"] = json!(kind);
            v["apiVersion"] = json!(api_version);
        }
        trim(kind, v)
    };
    watch_loop(api, kind, api_version, to_value, tx, status, shutdown).await;
}

/// Secrets: metadata only (the API server never sends their data to Tapio).
async fn watch_secrets(
    api: Api<kube::core::PartialObjectMeta<Secret>>,
    tx: mpsc::Sender<(&'static str, Out)>,
    status: Arc<KubeStatus>,
    shutdown: watch::Receiver<bool>,
) {
    const KIND: &str = "Secret";
    let to_value = |o: kube::core::PartialObjectMeta<Secret>| {
        let meta = serde_json::to_value(&o.metadata).unwrap_or(Value::Null);
        trim(
            KIND,
            json!({"apiVersion": "v1", "kind": KIND, "metadata": meta}),
        )
    };
    watch_loop(api, KIND, "v1", to_value, tx, status, shutdown).await;
}

/// The watch loop shared by every kind: backoff, index, pod index, send.
async fn watch_loop<K, F>(
    api: Api<K>,
    kind: &'static str,
    api_version: &'static str,
    to_value: F,
    tx: mpsc::Sender<(&'static str, Out)>,
    status: Arc<KubeStatus>,
    mut shutdown: watch::Receiver<bool>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    F: Fn(K) -> Value,
{
    let mut index = KindIndex::new(kind, api_version);
    let cfg = watcher::Config::default().any_semantic();
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = shutdown.changed() => return,
        };
        let Some(item) = next else { return };
        let ev = match item {
            Ok(ev) => map_event(ev, &to_value),
            Err(e) => {
                if watch_error(&status, kind, &e) {
                    continue;
                }
                return;
            }
        };
        let mut out = Vec::new();
        status.update(kind, |s| {
            out = index.handle(ev, s);
            s.objects = index.len();
            s.events_sent += out.len() as u64;
        });
        if kind == "Pod"
            && !out.is_empty()
            && let Ok(mut pods) = status.pods.write()
        {
            for (verb, o) in &out {
                pods.apply(verb, o);
            }
        }
        for o in out {
            if tx.send((kind, o)).await.is_err() {
                return;
            }
        }
    }
}

/// A 410 Gone (the watch's resourceVersion expired) is routine: the watcher relists and
/// the index keeps it from duplicating anything. Anything else is an error (backed off).
///
/// Returns false when the kind cannot be watched at all (RBAC forbids it): the watcher
/// for it stops, and `/health` says so (Secrets are left out of the default RBAC on
/// purpose: Kubernetes cannot grant list/watch on Secret metadata without their data).
fn watch_error(status: &KubeStatus, kind: &'static str, e: &watcher::Error) -> bool {
    let msg = e.to_string();
    let forbidden = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s)) => s.code == 403,
        _ => false,
    };
    if forbidden {
        tracing::warn!(component = "kubernetes", kind, error = %msg,
            "not permitted to watch this kind (RBAC); not watching it");
        status.update(kind, |s| {
            s.forbidden = true;
            s.last_error = Some(msg);
        });
        return false;
    }
    let expired = matches!(e, watcher::Error::WatchError(s) if s.code == 410);
    if expired {
        tracing::info!(
            component = "kubernetes",
            kind,
            "watch expired (410 Gone); relisting"
        );
        status.update(kind, |s| s.expired += 1);
        return true;
    }
    tracing::warn!(component = "kubernetes", kind, error = %msg, "watch failed; backing off");
    status.update(kind, |s| {
        s.errors += 1;
        s.last_error = Some(msg);
        s.last_error_at = Some(Utc::now());
    });
    true
}

fn map_event<K, F: Fn(K) -> Value>(ev: WatchEvent<K>, f: &F) -> WatchEvent<Value> {
    match ev {
        WatchEvent::Apply(o) => WatchEvent::Apply(f(o)),
        WatchEvent::Delete(o) => WatchEvent::Delete(f(o)),
        WatchEvent::Init => WatchEvent::Init,
        WatchEvent::InitApply(o) => WatchEvent::InitApply(f(o)),
        WatchEvent::InitDone => WatchEvent::InitDone,
    }
}

/// Store what the watchers send, in batches, through the same path as agent evidence.
async fn sink(
    ingest: Arc<Ingest>,
    cluster: String,
    mut rx: mpsc::Receiver<(&'static str, Out)>,
    status: Arc<KubeStatus>,
) {
    let mut buf: Vec<(&'static str, Out)> = Vec::with_capacity(BATCH);
    loop {
        let Some(first) = rx.recv().await else { return };
        buf.push(first);
        // Gather what arrives within 100 ms (a relist comes as a burst).
        let until = tokio::time::Instant::now() + Duration::from_millis(100);
        while buf.len() < BATCH {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(x)) => buf.push(x),
                _ => break,
            }
        }
        let now = Utc::now();
        let mut events = Vec::with_capacity(buf.len());
        for (kind, (verb, obj)) in buf.drain(..) {
            let size = serde_json::to_vec(&obj)
                .map(|v| v.len())
                .unwrap_or(usize::MAX);
            if size > tapio_proto::MAX_OBJECT_BYTES {
                status.update(kind, |s| s.dropped_too_large += 1);
                ingest.metrics.dropped("kube_object_too_large", 1);
                tracing::warn!(
                    component = "kubernetes",
                    kind,
                    size,
                    "object larger than evidence allows; dropped"
                );
                continue;
            }
            events.push(json!({
                "id": ulid::Ulid::new().to_string(),
                "time": now.to_rfc3339(),
                "type": format!("kubernetes.watch.{verb}"),
                "severity": "info",
                "entity": entity(&cluster, kind, &obj),
                "object": obj,
            }));
        }
        if events.is_empty() {
            continue;
        }
        let n = events.len();
        let body = json!({"version": 1, "agent_id": AGENT_ID, "node": cluster, "seq": 1, "events": events});
        let bytes = body.to_string().into_bytes();
        let batch = match tapio_proto::decode_batch(&bytes, now, &ingest.limits) {
            Ok(b) => b,
            Err(e) => {
                ingest.metrics.dropped("kube_invalid", n as u64);
                tracing::error!(component = "kubernetes", error = %e, events = n, "watch events refused by the evidence format; dropped");
                continue;
            }
        };
        let mut batch = Some(tapio_store::IngestBatch {
            agent_id: AGENT_ID.to_owned(),
            node: cluster.clone(),
            seq: None,
            first_event_id: None,
            events: batch.events,
            received_at: now,
        });
        // The store may be briefly unavailable: retry, holding the watchers back.
        let mut wait = Duration::from_millis(200);
        while let Some(b) = batch.take() {
            match ingest.store_batch(b.clone()).await {
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(component = "kubernetes", error = %e.message, "storing watch events failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                    batch = Some(b);
                }
            }
        }
    }
}

/// Start the watches (when a cluster is configured) and the sink.
pub fn start(
    ingest: Arc<Ingest>,
    status: Arc<KubeStatus>,
    client: Client,
    cluster: String,
    shutdown: watch::Receiver<bool>,
) {
    status.configured.store(true, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(sink(ingest, cluster, rx, status.clone()));
    macro_rules! spawn_kind {
        ($t:ty, $kind:expr, $av:expr) => {
            tokio::spawn(watch_kind::<$t>(
                Api::all(client.clone()),
                $kind,
                $av,
                tx.clone(),
                status.clone(),
                shutdown.clone(),
            ));
        };
    }
    spawn_kind!(Node, "Node", "v1");
    spawn_kind!(Pod, "Pod", "v1");
    spawn_kind!(Service, "Service", "v1");
    spawn_kind!(ConfigMap, "ConfigMap", "v1");
    spawn_kind!(Deployment, "Deployment", "apps/v1");
    spawn_kind!(ReplicaSet, "ReplicaSet", "apps/v1");
    spawn_kind!(StatefulSet, "StatefulSet", "apps/v1");
    spawn_kind!(DaemonSet, "DaemonSet", "apps/v1");
    spawn_kind!(Job, "Job", "batch/v1");
    spawn_kind!(EndpointSlice, "EndpointSlice", "discovery.k8s.io/v1");
    spawn_kind!(KubeEvent, "Event", "events.k8s.io/v1");
    tokio::spawn(watch_secrets(Api::all(client), tx, status, shutdown));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, rv: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": format!("p-{uid}"), "namespace": "shop", "uid": uid, "resourceVersion": rv}})
    }

    #[test]
    fn a_relist_sends_only_what_changed_and_the_deletions_it_reveals() {
        let mut idx = KindIndex::new("Pod", "v1");
        let mut st = KindStatus::default();
        let verbs = |v: Vec<Out>| {
            v.into_iter()
                .map(|(verb, o)| format!("{verb} {}", o["metadata"]["uid"].as_str().unwrap_or("")))
                .collect::<Vec<_>>()
        };
        assert!(idx.handle(WatchEvent::Init, &mut st).is_empty());
        assert_eq!(
            verbs(idx.handle(WatchEvent::InitApply(pod("a", "1")), &mut st)),
            ["added a"]
        );
        assert_eq!(
            verbs(idx.handle(WatchEvent::InitApply(pod("b", "2")), &mut st)),
            ["added b"]
        );
        assert!(idx.handle(WatchEvent::InitDone, &mut st).is_empty());
        assert!(st.synced);
        assert_eq!(
            verbs(idx.handle(WatchEvent::Apply(pod("a", "3")), &mut st)),
            ["modified a"]
        );
        // The same resourceVersion again (a resumed watch): nothing.
        assert!(
            idx.handle(WatchEvent::Apply(pod("a", "3")), &mut st)
                .is_empty()
        );
        // 410 Gone → relist: a unchanged, b deleted meanwhile, c new.
        idx.handle(WatchEvent::Init, &mut st);
        assert!(
            idx.handle(WatchEvent::InitApply(pod("a", "3")), &mut st)
                .is_empty()
        );
        assert_eq!(
            verbs(idx.handle(WatchEvent::InitApply(pod("c", "7")), &mut st)),
            ["added c"]
        );
        let done = idx.handle(WatchEvent::InitDone, &mut st);
        assert_eq!(verbs(done.clone()), ["deleted b"]);
        assert_eq!(done[0].1["metadata"]["namespace"], "shop");
        assert_eq!(done[0].1["kind"], "Pod");
        assert_eq!(st.relists, 2);
        assert_eq!(st.unchanged_skipped, 2);
        assert_eq!(idx.len(), 2);
    }

    #[test]
    fn the_pod_index_serves_each_node_its_pods_as_a_pod_list() {
        let mut idx = PodIndex::default();
        let p = |uid: &str, node: &str| {
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("web-{uid}"), "namespace": "shop", "uid": uid,
                             "labels": {"pod-template-hash": "7d9f8b6c5"},
                             "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9f8b6c5", "controller": true}],
                             "annotations": {"big": "x"}},
                "spec": {"nodeName": node, "containers": [{"name": "app", "image": "i"}]},
                "status": {"phase": "Running", "containerStatuses": [
                    {"name": "app", "containerID": "containerd://abc", "ready": true, "image": "i"}]}})
        };
        idx.apply("added", &p("a", "node-1"));
        idx.apply("added", &p("b", "node-2"));
        // Rescheduled elsewhere, then deleted.
        idx.apply("modified", &p("b", "node-1"));
        let l = idx.pod_list("node-1");
        assert_eq!(l["kind"], "PodList");
        assert_eq!(l["items"].as_array().map(Vec::len), Some(2));
        assert!(
            idx.pod_list("node-2")["items"]
                .as_array()
                .is_some_and(Vec::is_empty)
        );
        let a = &l["items"][0];
        assert_eq!(a["metadata"]["ownerReferences"][0]["name"], "web-7d9f8b6c5");
        assert_eq!(
            a["status"]["containerStatuses"][0]["containerID"],
            "containerd://abc"
        );
        assert!(a["metadata"].get("annotations").is_none(), "trimmed: {a}");
        idx.apply("deleted", &p("b", "node-1"));
        assert_eq!(idx.len(), 1);
        assert_eq!(
            idx.pod_list("node-1")["items"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn trimming_drops_managed_fields_and_config_values() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "managedFields": [{"manager": "kubectl"}],
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{…}", "team": "shop"}},
            "data": {"password_hint": "hunter2", "LOG_LEVEL": "debug"}});
        let t = trim("ConfigMap", cm);
        assert!(t["metadata"].get("managedFields").is_none());
        assert_eq!(t["metadata"]["annotations"], json!({"team": "shop"}));
        let data = t["data"].to_string();
        assert!(
            !data.contains("hunter2") && !data.contains("debug"),
            "{data}"
        );
        assert!(
            t["data"]["LOG_LEVEL"]
                .as_str()
                .is_some_and(|v| v.starts_with("sha256:"))
        );
        // Same value, same hash; another value, another hash.
        let again = trim(
            "ConfigMap",
            json!({"kind": "ConfigMap", "metadata": {}, "data": {"LOG_LEVEL": "debug"}}),
        );
        let other = trim(
            "ConfigMap",
            json!({"kind": "ConfigMap", "metadata": {}, "data": {"LOG_LEVEL": "info"}}),
        );
        assert_eq!(again["data"]["LOG_LEVEL"], t["data"]["LOG_LEVEL"]);
        assert_ne!(other["data"]["LOG_LEVEL"], t["data"]["LOG_LEVEL"]);
    }

    /// The figure in docs/kubernetes.md: the watcher's index for 10,000 pods with
    /// realistic names. (The correlation engine's own trimmed state is measured by
    /// `tapio-corrbench`.)
    #[test]
    fn the_index_for_10k_pods_stays_small() {
        let mut idx = KindIndex::new("Pod", "v1");
        let mut st = KindStatus::default();
        idx.handle(WatchEvent::Init, &mut st);
        for i in 0..10_000 {
            let uid = format!("{:08x}-1f2e-4d3c-8b7a-{:012x}", i, i * 7919);
            let o = json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("checkout-7d9f8b6c5-{i:05}"), "namespace": "shop-production",
                             "uid": uid, "resourceVersion": format!("{}", 48_000_000 + i)}});
            idx.handle(WatchEvent::InitApply(o), &mut st);
        }
        idx.handle(WatchEvent::InitDone, &mut st);
        assert_eq!(idx.len(), 10_000);
        let bytes = idx.heap_bytes();
        println!(
            "kube-watch index, 10,000 pods: {bytes} bytes ({:.0} per pod)",
            bytes as f64 / 10_000.0
        );
        assert!(bytes < 4 * 1024 * 1024, "{bytes}");
    }
}
