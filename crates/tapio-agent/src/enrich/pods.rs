//! The pod index: this node's pods by UID and by container id ([`PodIndex`], [`PodMeta`]),
//! built from a Kubernetes `PodList`, and [`SharedPods`], the index shared between the
//! [`PodSource`](super::PodSource) that refreshes it and its readers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tapio_proto::WorkloadRef;

use super::*;

use super::cgroup::Runtime;

/// At most this many pods are indexed from one `PodList`; the rest are counted as skipped.
pub const MAX_PODS: usize = 10_000;
/// A `PodList` document larger than this is refused (file or HTTP body).
pub const MAX_POD_LIST_BYTES: u64 = 64 << 20;

/// A `PodList` that could not be read; the message names the place (`items[3].metadata.uid`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pod list: {0}")]
pub struct PodListError(String);

/// One pod of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodMeta {
    pub name: String,
    pub namespace: String,
    /// `metadata.uid` (canonical dashed form, or the config hash of a static pod).
    pub uid: String,
    /// `spec.nodeName`.
    pub node: Option<String>,
    /// Container id (64-hex, no scheme) → container name; includes init and ephemeral
    /// containers and the previous instance of restarted containers.
    pub containers: BTreeMap<String, String>,
    /// From the scheme of the pod's container ids.
    pub runtime: Option<Runtime>,
    /// The controlling workload: a ReplicaSet with a `pod-template-hash` label is shown
    /// as its Deployment; StatefulSet, DaemonSet, Job, … as they are; `None` for bare
    /// and static pods.
    pub workload: Option<WorkloadRef>,
}

/// The pods of a node, by UID and by container id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodIndex {
    pods: HashMap<String, PodMeta>,
    /// Other UIDs a pod is known by (a static pod's config hash vs. its mirror's UID).
    aliases: HashMap<String, String>,
    /// Container id → pod UID.
    containers: HashMap<String, String>,
    skipped: usize,
}

impl PodIndex {
    /// Builds the index from a Kubernetes `PodList` JSON document. Unknown fields are
    /// ignored; a document that is not a `PodList`, or a pod without name or UID, or a
    /// field of the wrong type is an error naming the place. At most [`MAX_PODS`] pods
    /// are indexed; the rest count as [`skipped`](Self::skipped).
    pub fn from_json(json: &str) -> Result<Self, PodListError> {
        let doc: Value =
            serde_json::from_str(json).map_err(|e| PodListError(format!("not JSON: {e}")))?;
        let Value::Object(obj) = &doc else {
            return Err(PodListError(format!(
                "expected a PodList object, got {}",
                json_type(&doc)
            )));
        };
        if let Some(kind) = obj.get("kind").and_then(Value::as_str)
            && kind != "PodList"
        {
            let message = obj
                .get("message")
                .and_then(Value::as_str)
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            return Err(PodListError(format!(
                "expected kind PodList, got {kind}{message}"
            )));
        }
        let items: &[Value] = match obj.get("items") {
            None => return Err(PodListError("no `items`: not a PodList".into())),
            Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(PodListError(format!(
                    "items: expected an array, got {}",
                    json_type(other)
                )));
            }
        };
        let mut index = PodIndex::default();
        for (i, item) in items.iter().enumerate() {
            if i >= MAX_PODS {
                index.skipped = items.len() - i;
                break;
            }
            index.insert(parse_pod(item, &format!("items[{i}]"))?);
        }
        Ok(index)
    }

    fn insert(&mut self, parsed: ParsedPod) {
        let ParsedPod { meta, aliases } = parsed;
        for id in meta.containers.keys() {
            self.containers.insert(id.clone(), meta.uid.clone());
        }
        for alias in aliases {
            self.aliases.insert(alias, meta.uid.clone());
        }
        self.pods.insert(meta.uid.clone(), meta);
    }

    /// The pod with this UID (dashed or underscored, any case; or a static pod's config
    /// hash).
    pub fn pod(&self, uid: &str) -> Option<&PodMeta> {
        let key = canonical_pod_uid(uid).unwrap_or_else(|| uid.to_ascii_lowercase());
        self.pods
            .get(&key)
            .or_else(|| self.aliases.get(&key).and_then(|real| self.pods.get(real)))
    }

    /// The pod and container name of a container id (bare, or with its `containerd://`
    /// style scheme).
    pub fn by_container(&self, container_id: &str) -> Option<(&PodMeta, &str)> {
        let id = normalize_container_id(container_id)?.1;
        let pod = self.pods.get(self.containers.get(&id)?)?;
        let name = pod.containers.get(&id)?;
        Some((pod, name))
    }

    /// Pods indexed.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Pods left out because the list had more than [`MAX_PODS`].
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

struct ParsedPod {
    meta: PodMeta,
    aliases: Vec<String>,
}

#[derive(Deserialize)]
struct RawOwner {
    kind: Option<String>,
    name: Option<String>,
    controller: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawContainerStatus {
    name: Option<String>,
    #[serde(rename = "containerID")]
    container_id: Option<String>,
    last_state: Option<RawLastState>,
}

#[derive(Deserialize)]
struct RawLastState {
    terminated: Option<RawTerminated>,
}

#[derive(Deserialize)]
struct RawTerminated {
    #[serde(rename = "containerID")]
    container_id: Option<String>,
}

fn parse_pod(item: &Value, ctx: &str) -> Result<ParsedPod, PodListError> {
    if !item.is_object() {
        return Err(PodListError(format!(
            "{ctx}: expected a pod object, got {}",
            json_type(item)
        )));
    }
    let meta_ctx = format!("{ctx}.metadata");
    let meta = match item.get("metadata") {
        Some(m @ Value::Object(_)) => m,
        Some(other) => {
            return Err(PodListError(format!(
                "{meta_ctx}: expected an object, got {}",
                json_type(other)
            )));
        }
        None => return Err(PodListError(format!("{meta_ctx}: missing"))),
    };
    let name: String = required(meta, "name", &meta_ctx)?;
    let raw_uid: String = required(meta, "uid", &meta_ctx)?;
    let uid = canonical_pod_uid(&raw_uid).unwrap_or_else(|| raw_uid.to_ascii_lowercase());
    let namespace: String =
        field(meta, "namespace", &meta_ctx)?.unwrap_or_else(|| "default".into());
    let labels: HashMap<String, String> = field(meta, "labels", &meta_ctx)?.unwrap_or_default();
    let annotations: HashMap<String, String> =
        field(meta, "annotations", &meta_ctx)?.unwrap_or_default();
    let owners: Vec<RawOwner> = field(meta, "ownerReferences", &meta_ctx)?.unwrap_or_default();

    let node: Option<String> = match item.get("spec") {
        Some(spec @ Value::Object(_)) => field(spec, "nodeName", &format!("{ctx}.spec"))?,
        _ => None,
    };

    let mut containers = BTreeMap::new();
    let mut runtime = None;
    if let Some(status @ Value::Object(_)) = item.get("status") {
        let status_ctx = format!("{ctx}.status");
        for list in [
            "initContainerStatuses",
            "containerStatuses",
            "ephemeralContainerStatuses",
        ] {
            let entries: Vec<Value> = field(status, list, &status_ctx)?.unwrap_or_default();
            for (j, entry) in entries.iter().enumerate() {
                let cs = RawContainerStatus::deserialize(entry)
                    .map_err(|e| PodListError(format!("{status_ctx}.{list}[{j}]: {e}")))?;
                let Some(cname) = cs.name else { continue };
                let previous = cs
                    .last_state
                    .and_then(|s| s.terminated)
                    .and_then(|t| t.container_id);
                // The previous instance first, so the current one wins a (theoretical) tie.
                for raw in [previous, cs.container_id].into_iter().flatten() {
                    if let Some((rt, id)) = normalize_container_id(&raw) {
                        runtime = runtime.or(rt);
                        containers.insert(id, cname.clone());
                    }
                }
            }
        }
    }

    let aliases = ["kubernetes.io/config.hash", "kubernetes.io/config.mirror"]
        .iter()
        .filter_map(|k| annotations.get(*k))
        .filter_map(|h| canonical_pod_uid(h))
        .filter(|h| *h != uid)
        .collect();

    Ok(ParsedPod {
        meta: PodMeta {
            workload: workload(&owners, &labels),
            name,
            namespace,
            uid,
            node,
            containers,
            runtime,
        },
        aliases,
    })
}

/// The controlling owner as a workload. Does not guess beyond what the objects say: a
/// Job stays a Job even when its name looks like `<cronjob>-<digits>`.
fn workload(owners: &[RawOwner], labels: &HashMap<String, String>) -> Option<WorkloadRef> {
    let owner = owners.iter().find(|o| o.controller == Some(true))?;
    let kind = owner.kind.as_deref().filter(|k| !k.is_empty())?;
    let name = owner.name.as_deref().filter(|n| !n.is_empty())?;
    if kind == "Node" {
        // A static pod's mirror: not a workload.
        return None;
    }
    if kind == "ReplicaSet" {
        let deployment = labels
            .get("pod-template-hash")
            .filter(|h| !h.is_empty())
            .and_then(|h| name.strip_suffix(h.as_str()))
            .and_then(|rest| rest.strip_suffix('-'))
            .filter(|d| !d.is_empty());
        if let Some(deployment) = deployment {
            return Some(WorkloadRef {
                kind: "Deployment".into(),
                name: deployment.into(),
            });
        }
    }
    Some(WorkloadRef {
        kind: kind.into(),
        name: name.into(),
    })
}

/// `containerd://<ID>` → (Containerd, `<id>`); a bare id → (None, id). Empty → None.
fn normalize_container_id(raw: &str) -> Option<(Option<Runtime>, String)> {
    let (runtime, id) = match raw.split_once("://") {
        Some((scheme, id)) => (Runtime::from_scheme(scheme), id),
        None => (None, raw),
    };
    let id = id.trim();
    (!id.is_empty()).then(|| (runtime, id.to_ascii_lowercase()))
}

/// `obj[key]` as `T`; missing or `null` is `None`.
fn field<T: DeserializeOwned>(
    obj: &Value,
    key: &str,
    ctx: &str,
) -> Result<Option<T>, PodListError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => T::deserialize(v)
            .map(Some)
            .map_err(|e| PodListError(format!("{ctx}.{key}: {e}"))),
    }
}

/// A non-empty string field that must be there.
fn required(obj: &Value, key: &str, ctx: &str) -> Result<String, PodListError> {
    match field::<String>(obj, key, ctx)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(PodListError(format!("{ctx}.{key}: missing"))),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A [`PodIndex`] shared between its [`PodSource`] (writer) and [`Enricher`]s (readers),
/// with a generation counter that changes whenever the content does.
#[derive(Debug, Clone, Default)]
pub struct SharedPods(Arc<SharedInner>);

#[derive(Debug, Default)]
struct SharedInner {
    index: RwLock<PodIndex>,
    generation: AtomicU64,
}

impl SharedPods {
    pub fn new(index: PodIndex) -> Self {
        Self(Arc::new(SharedInner {
            index: RwLock::new(index),
            generation: AtomicU64::new(0),
        }))
    }

    /// Installs `index`; returns whether the content changed.
    pub fn replace(&self, index: PodIndex) -> bool {
        let mut current = self.0.index.write().unwrap_or_else(|e| e.into_inner());
        if *current == index {
            return false;
        }
        *current = index;
        self.0.generation.fetch_add(1, Ordering::Release);
        true
    }

    /// Read access to the current index.
    pub fn read(&self) -> RwLockReadGuard<'_, PodIndex> {
        self.0.index.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes whenever [`replace`](Self::replace) changes the content.
    pub fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::enrich::testutil::*;

    #[test]
    fn pod_list_fixture() {
        let index = PodIndex::from_json(FIXTURE).expect("fixture parses");
        assert_eq!(index.len(), 3);
        assert_eq!(index.skipped(), 0);

        let checkout = index
            .pod("82b77fd4_702b_43c8_b51c_b72599117113")
            .expect("checkout by underscored uid");
        assert_eq!(checkout.name, "checkout-7d9f8b6c5-x2x7k");
        assert_eq!(checkout.namespace, "shop");
        assert_eq!(checkout.node.as_deref(), Some("worker-1"));
        assert_eq!(checkout.runtime, Some(Runtime::Containerd));
        assert_eq!(
            checkout.workload,
            Some(WorkloadRef {
                kind: "Deployment".into(),
                name: "checkout".into()
            })
        );
        // Two running containers, the init container, and the OOM-killed previous one.
        assert_eq!(checkout.containers.len(), 4);

        let (pod, name) = index
            .by_container(
                "containerd://4246283da53772d9520fb37c388a11f14a5c1953e02e5d27932e9166e7b3672f",
            )
            .expect("by scheme id");
        assert_eq!(
            (pod.name.as_str(), name),
            ("checkout-7d9f8b6c5-x2x7k", "checkout")
        );
        let (_, name) = index
            .by_container("ecec98b967de6eeae77acb2861010a3a42b442c96e5ea5a95192604c0d807e80")
            .expect("previous instance of a restarted container");
        assert_eq!(name, "checkout");
        let (_, name) = index
            .by_container("a7a46d77e8a247996aedbde5688009783c4bf56fc2c14654338a81f2607d841c")
            .expect("init container");
        assert_eq!(name, "migrate");

        let (pg, name) = index
            .by_container("db55109c630a0ef66e48507e0a22d2786ceb58aebdce30d14f19974e37bcf032")
            .expect("ephemeral container");
        assert_eq!((pg.name.as_str(), name), ("postgres-0", "debugger-7xk2q"));
        assert_eq!(
            pg.workload,
            Some(WorkloadRef {
                kind: "StatefulSet".into(),
                name: "postgres".into()
            })
        );

        let static_pod = index
            .pod("9d227d98b7e20562066aa48786ac09ef")
            .expect("static pod by config hash");
        assert_eq!(static_pod.name, "nginx-proxy-worker-1");
        assert_eq!(static_pod.workload, None);

        assert!(index.pod(UID).is_none());
        assert!(index.by_container(CID).is_none());
    }

    fn pod_json(
        name: &str,
        uid: &str,
        owner: &str,
        labels: &str,
        annotations: &str,
        cid: &str,
    ) -> String {
        format!(
            r#"{{"metadata":{{"name":"{name}","namespace":"batch","uid":"{uid}","labels":{{{labels}}},"annotations":{{{annotations}}},"ownerReferences":[{owner}]}},
               "spec":{{"nodeName":"worker-2"}},
               "status":{{"containerStatuses":[{{"name":"main","containerID":"{cid}"}}]}}}}"#
        )
    }

    #[test]
    /// The server's `GET /api/v1/pods?node=` (tapio-server kubewatch::PodIndex): pods
    /// trimmed to metadata, nodeName and container ids, with `metadata: {}` on the list.
    fn reads_the_servers_trimmed_pod_list() {
        let id = format!("{:064x}", 42);
        let list = format!(
            r#"{{"apiVersion":"v1","kind":"PodList","metadata":{{}},"items":[
              {{"metadata":{{"name":"web-7d9f8b6c5-x2x9q","namespace":"shop","uid":"8dbc5577-d0e2-4a9b-9c1a-0123456789ab",
                "labels":{{"pod-template-hash":"7d9f8b6c5"}},
                "ownerReferences":[{{"kind":"ReplicaSet","name":"web-7d9f8b6c5","controller":true}}]}},
               "spec":{{"nodeName":"node-a"}},
               "status":{{"containerStatuses":[{{"name":"app","containerID":"containerd://{id}"}}]}}}}]}}"#
        );
        let idx = PodIndex::from_json(&list).expect("the server's PodList parses");
        let (pod, container) = idx.by_container(&id).expect("by container id");
        assert_eq!(container, "app");
        assert_eq!(pod.name, "web-7d9f8b6c5-x2x9q");
        assert_eq!(
            pod.workload
                .as_ref()
                .map(|w| format!("{}/{}", w.kind, w.name))
                .as_deref(),
            Some("Deployment/web")
        );
    }

    #[test]
    fn workloads_and_runtimes() {
        let c = |n: u8| format!("{:064x}", n);
        let items = [
            pod_json(
                "report-28911220-b7k2x",
                "11111111-1111-4111-8111-111111111111",
                r#"{"kind":"Job","name":"report-28911220","controller":true}"#,
                "",
                "",
                &format!("cri-o://{}", c(1)),
            ),
            pod_json(
                "node-exporter-7xq2p",
                "22222222-2222-4222-8222-222222222222",
                r#"{"kind":"DaemonSet","name":"node-exporter","controller":true}"#,
                r#""controller-revision-hash":"6b5f8d9c7""#,
                "",
                &format!("docker://{}", c(2)),
            ),
            // A ReplicaSet without the hash label stays a ReplicaSet.
            pod_json(
                "legacy-5f9c7-abcde",
                "33333333-3333-4333-8333-333333333333",
                r#"{"kind":"ReplicaSet","name":"legacy-5f9c7","controller":true}"#,
                "",
                "",
                &format!("containerd://{}", c(3)),
            ),
            // Mirror pod from the API server: Node owner, real UID, config hash alias.
            pod_json(
                "kube-apiserver-cp-1",
                "44444444-4444-4444-8444-444444444444",
                r#"{"kind":"Node","name":"cp-1","controller":true}"#,
                "",
                r#""kubernetes.io/config.mirror":"23b5c5a138ffb34cba6fda53690335d5""#,
                &format!("containerd://{}", c(4)),
            ),
            // Non-controller owner only: no workload. Waiting container: no id yet.
            pod_json(
                "bare",
                "55555555-5555-4555-8555-555555555555",
                r#"{"kind":"ConfigMap","name":"x"}"#,
                "",
                "",
                "",
            ),
        ];
        let json = format!(
            r#"{{"kind":"PodList","apiVersion":"v1","items":[{}]}}"#,
            items.join(",")
        );
        let index = PodIndex::from_json(&json).expect("parses");
        let wl = |uid: &str| {
            index
                .pod(uid)
                .and_then(|p| p.workload.clone())
                .map(|w| format!("{}/{}", w.kind, w.name))
        };
        assert_eq!(
            wl("11111111-1111-4111-8111-111111111111").as_deref(),
            Some("Job/report-28911220")
        );
        assert_eq!(
            wl("22222222-2222-4222-8222-222222222222").as_deref(),
            Some("DaemonSet/node-exporter")
        );
        assert_eq!(
            wl("33333333-3333-4333-8333-333333333333").as_deref(),
            Some("ReplicaSet/legacy-5f9c7")
        );
        assert_eq!(wl("44444444-4444-4444-8444-444444444444"), None);
        assert_eq!(wl("55555555-5555-4555-8555-555555555555"), None);
        assert_eq!(
            index
                .pod("23b5c5a138ffb34cba6fda53690335d5")
                .map(|p| p.name.as_str()),
            Some("kube-apiserver-cp-1")
        );
        let rt = |n: u8| index.by_container(&c(n)).and_then(|(p, _)| p.runtime);
        assert_eq!(rt(1), Some(Runtime::CriO));
        assert_eq!(rt(2), Some(Runtime::Docker));
        assert_eq!(rt(3), Some(Runtime::Containerd));
        assert!(
            index
                .pod("55555555-5555-4555-8555-555555555555")
                .is_some_and(|p| p.containers.is_empty())
        );
    }

    #[test]
    fn pod_list_errors_name_the_place() {
        let err = |json: &str| {
            PodIndex::from_json(json)
                .expect_err("must fail")
                .to_string()
        };
        assert!(err("{").contains("not JSON"));
        assert!(err("[]").contains("expected a PodList object"));
        assert!(err(r#"{"kind":"PodList"}"#).contains("no `items`"));
        let status =
            err(r#"{"kind":"Status","status":"Failure","message":"Unauthorized","code":401}"#);
        assert!(status.contains("got Status: Unauthorized"), "{status}");
        let e = err(r#"{"items":[{"metadata":{"name":"a","uid":"u"}},{"metadata":{"name":"b"}}]}"#);
        assert!(e.contains("items[1].metadata.uid: missing"), "{e}");
        let e = err(r#"{"items":[{"metadata":{"name":"a","uid":5}}]}"#);
        assert!(e.contains("items[0].metadata.uid: invalid type"), "{e}");
        let e = err(
            r#"{"items":[{"metadata":{"name":"a","uid":"u"},"status":{"containerStatuses":[{"name":"x"},{"name":3}]}}]}"#,
        );
        assert!(e.contains("items[0].status.containerStatuses[1]"), "{e}");
        assert!(err(r#"{"items":{}}"#).contains("items: expected an array"));
        // Unknown fields, null items and null lists are fine.
        let ok = PodIndex::from_json(r#"{"kind":"PodList","future":1,"items":null}"#).expect("ok");
        assert!(ok.is_empty());
        PodIndex::from_json(
            r#"{"items":[{"metadata":{"name":"a","uid":"u","labels":null},"status":{"containerStatuses":null}}]}"#,
        )
        .expect("nulls tolerated");
    }

    #[test]
    fn pod_list_is_bounded() {
        let items: Vec<String> = (0..MAX_PODS + 5)
            .map(|i| format!(r#"{{"metadata":{{"name":"p{i}","uid":"{i:032x}"}}}}"#))
            .collect();
        let json = format!(r#"{{"items":[{}]}}"#, items.join(","));
        let index = PodIndex::from_json(&json).expect("parses");
        assert_eq!(index.len(), MAX_PODS);
        assert_eq!(index.skipped(), 5);
    }
}
