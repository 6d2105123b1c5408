//! Enrichment: which container, pod and workload — or, on a plain host, which systemd
//! unit — a kernel event concerns.
//!
//! The chain is pid → `/proc/<pid>/cgroup` → cgroup path → pod UID and container id →
//! pod name, namespace, container name and workload from a [`PodIndex`] built from a
//! Kubernetes `PodList` (the kubelet's `/pods`, or `GET /api/v1/pods?fieldSelector=
//! spec.nodeName=<node>`). When the process has already exited, the event's cgroup v2 id
//! (the inode number of its cgroup directory) is mapped back to a path by walking the
//! cgroup2 mount.
//!
//! Public surface:
//! * [`parse_cgroup_path`] and [`parse_proc_cgroup`]: pure parsers, [`CgroupInfo`].
//! * [`PodIndex`] / [`PodMeta`]: the pods of this node by UID and by container id;
//!   [`SharedPods`]: the index shared between its [`PodSource`] and the [`Enricher`].
//! * [`PodSource`]: polls a file or an `http://` URL and keeps the last good index.
//! * [`Enricher::resolve`]: the per-event call, with a bounded cache so a hit touches no
//!   file.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tapio_proto::{Entity, WorkloadRef};

use crate::mountinfo;

/// At most this many pods are indexed from one `PodList`; the rest are counted as skipped.
pub const MAX_PODS: usize = 10_000;
/// A `PodList` document larger than this is refused (file or HTTP body).
pub const MAX_POD_LIST_BYTES: u64 = 64 << 20;

/// Entries in the pid cache of [`Enricher`].
const PID_CACHE_ENTRIES: usize = 4096;
/// How long a resolved pid stays cached.
const PID_CACHE_TTL: Duration = Duration::from_secs(3);
/// The cgroup2 tree is walked again on an unknown cgroup id at most this often.
const INODE_REBUILD_INTERVAL: Duration = Duration::from_secs(1);
/// At most this many cgroup directories are mapped (a node has a few thousand).
const MAX_CGROUP_DIRS: usize = 100_000;
/// Cgroup directories deeper than this below the cgroup2 root are not visited.
const MAX_CGROUP_DEPTH: usize = 32;
/// Timeout of one HTTP fetch of the pod list.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Cgroup paths
// ---------------------------------------------------------------------------------------

/// The container runtime a cgroup or container id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Containerd,
    CriO,
    Docker,
    Podman,
}

impl Runtime {
    /// `containerd`, `cri-o`, `docker`, `podman`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Containerd => "containerd",
            Self::CriO => "cri-o",
            Self::Docker => "docker",
            Self::Podman => "podman",
        }
    }

    /// From the scheme of a Kubernetes `containerID` (`containerd://…`, `cri-o://…`, …).
    fn from_scheme(scheme: &str) -> Option<Self> {
        match scheme {
            "containerd" => Some(Self::Containerd),
            "cri-o" => Some(Self::CriO),
            "docker" => Some(Self::Docker),
            "podman" => Some(Self::Podman),
            _ => None,
        }
    }

    /// From the prefix of a systemd scope (`cri-containerd-<id>.scope`) or of runc's
    /// `slice:prefix:id` form.
    fn from_prefix(prefix: &str) -> Option<Self> {
        match prefix {
            "cri-containerd" => Some(Self::Containerd),
            "crio" => Some(Self::CriO),
            "docker" => Some(Self::Docker),
            "libpod" => Some(Self::Podman),
            _ => None,
        }
    }
}

/// What one cgroup path says about the process in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupInfo {
    /// Pod UID in canonical dashed form (`8dbc5577-d0e2-…`); static pods keep their
    /// 32-hex config hash.
    pub pod_uid: Option<String>,
    /// 64-hex container id, lowercase, without runtime prefix.
    pub container_id: Option<String>,
    /// Known when the path names it (`cri-containerd-`, `crio-`, `docker-`, `libpod-`, or
    /// a bare id under `/docker/`); a cgroupfs-driver pod path does not.
    pub runtime: Option<Runtime>,
    /// `guaranteed`, `burstable` or `besteffort` when the path is below a pod.
    pub qos: Option<String>,
    /// Deepest systemd unit (`nginx.service`, `session-3.scope`) that is not a container
    /// scope and lies below any pod or container found.
    pub systemd_unit: Option<String>,
}

impl CgroupInfo {
    fn names_container(&self) -> bool {
        self.pod_uid.is_some() || self.container_id.is_some()
    }
}

/// Parses one cgroup path (v1 or v2, cgroupfs or systemd driver; containerd, CRI-O,
/// Docker and Podman). Never fails: what is not recognised stays `None`.
///
/// Rules: the deepest pod segment (`pod<uid>` or `…-pod<uid_with_underscores>.slice`)
/// gives the pod; the deepest container segment below it gives the container
/// (`<64-hex>`, `cri-containerd-<hex>.scope`, `crio-<hex>[.scope]`, `docker-<hex>.scope`,
/// `libpod-<hex>.scope`, or runc's `<pod slice>:<prefix>:<hex>`). Conmon scopes
/// (`crio-conmon-`, `libpod-conmon-`) are the runtime's monitor, not the container.
/// `..` components (cgroup namespaces) are ignored.
pub fn parse_cgroup_path(path: &str) -> CgroupInfo {
    let mut info = CgroupInfo::default();
    // Depth of the deepest pod or container match; a unit only counts below it.
    let mut anchor: Option<usize> = None;
    let mut unit: Option<(usize, &str)> = None;
    let mut prev = "";
    let segments = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..");
    for (depth, seg) in segments.enumerate() {
        if let Some((slice, prefix, id)) = colon_form(seg) {
            // runc's systemd path used verbatim as a cgroupfs name, e.g.
            // `kubepods-burstable-pod<uid>.slice:cri-containerd:<id>`.
            if let Some((uid, qos)) = pod_segment(slice, prev) {
                info.pod_uid = Some(uid);
                info.qos = Some(qos.to_owned());
            }
            info.container_id = Some(id.to_ascii_lowercase());
            info.runtime = Runtime::from_prefix(prefix);
            anchor = Some(depth);
        } else if let Some((uid, qos)) = pod_segment(seg, prev) {
            info.pod_uid = Some(uid);
            info.qos = Some(qos.to_owned());
            // A container above the pod (a kind node's own container) is not this one's.
            info.container_id = None;
            info.runtime = None;
            anchor = Some(depth);
        } else if let Some(found) = container_segment(seg, prev) {
            match found {
                ContainerSeg::Id(id, runtime) => {
                    info.container_id = Some(id);
                    info.runtime = runtime;
                }
                ContainerSeg::Monitor(runtime) => {
                    info.container_id = None;
                    info.runtime = Some(runtime);
                }
            }
            anchor = Some(depth);
        } else if is_unit(seg) {
            unit = Some((depth, seg));
        }
        prev = seg;
    }
    if let Some((depth, name)) = unit
        && anchor.is_none_or(|a| depth > a)
    {
        info.systemd_unit = Some(name.to_owned());
    }
    info
}

/// `<slice>:<prefix>:<64-hex>` (runc's systemd cgroup path form).
fn colon_form(seg: &str) -> Option<(&str, &str, &str)> {
    let mut parts = seg.splitn(3, ':');
    let slice = parts.next()?;
    let prefix = parts.next()?;
    let id = parts.next()?;
    (slice.ends_with(".slice") && is_hex64(id)).then_some((slice, prefix, id))
}

/// A pod cgroup: cgroupfs `pod<uid>` (QoS from the parent directory) or systemd
/// `<root>[-<qos>]-pod<uid_with_underscores>.slice`. Returns the canonical UID and QoS.
fn pod_segment(seg: &str, parent: &str) -> Option<(String, &'static str)> {
    if let Some(name) = seg.strip_suffix(".slice") {
        let (head, last) = name.rsplit_once('-')?;
        let uid = canonical_pod_uid(last.strip_prefix("pod")?)?;
        return Some((uid, qos_class(head.rsplit('-').next().unwrap_or(""))));
    }
    let uid = canonical_pod_uid(seg.strip_prefix("pod")?)?;
    Some((uid, qos_class(parent)))
}

fn qos_class(parent: &str) -> &'static str {
    match parent {
        "burstable" => "burstable",
        "besteffort" => "besteffort",
        // Guaranteed pods sit directly under the kubepods root.
        _ => "guaranteed",
    }
}

enum ContainerSeg {
    Id(String, Option<Runtime>),
    /// A runtime monitor (conmon) next to the container, not the container.
    Monitor(Runtime),
}

fn container_segment(seg: &str, parent: &str) -> Option<ContainerSeg> {
    let name = seg.strip_suffix(".scope").unwrap_or(seg);
    for (prefix, runtime) in [
        ("crio-conmon-", Runtime::CriO),
        ("libpod-conmon-", Runtime::Podman),
    ] {
        if name.strip_prefix(prefix).is_some_and(is_hex64) {
            return Some(ContainerSeg::Monitor(runtime));
        }
    }
    for (prefix, runtime) in [
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
        ("docker-", Runtime::Docker),
        ("libpod-", Runtime::Podman),
    ] {
        if let Some(id) = name.strip_prefix(prefix)
            && is_hex64(id)
        {
            return Some(ContainerSeg::Id(id.to_ascii_lowercase(), Some(runtime)));
        }
    }
    if is_hex64(seg) {
        // cgroupfs driver: a bare id. Only plain Docker says who made it (`/docker/<id>`).
        let runtime = (parent == "docker").then_some(Runtime::Docker);
        return Some(ContainerSeg::Id(seg.to_ascii_lowercase(), runtime));
    }
    None
}

/// A systemd unit that can hold processes.
fn is_unit(seg: &str) -> bool {
    [".service", ".scope", ".socket", ".mount", ".swap"]
        .iter()
        .any(|suffix| seg.len() > suffix.len() && seg.ends_with(suffix))
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Canonical pod UID: a UUID with `-` or `_` separators becomes lowercase dashed; a
/// 32-hex static-pod config hash stays as it is (lowercased). Anything else is `None`.
fn canonical_pod_uid(s: &str) -> Option<String> {
    let b = s.as_bytes();
    match b.len() {
        36 => {
            let mut out = String::with_capacity(36);
            for (i, &c) in b.iter().enumerate() {
                if matches!(i, 8 | 13 | 18 | 23) {
                    if c != b'-' && c != b'_' {
                        return None;
                    }
                    out.push('-');
                } else if c.is_ascii_hexdigit() {
                    out.push(c.to_ascii_lowercase() as char);
                } else {
                    return None;
                }
            }
            Some(out)
        }
        32 if b.iter().all(u8::is_ascii_hexdigit) => Some(s.to_ascii_lowercase()),
        _ => None,
    }
}

/// Parses the content of `/proc/<pid>/cgroup`: cgroup v1 lines `N:ctrl[,ctrl]:/path`,
/// the v2 line `0::/path`, or both (hybrid). The first line in the order v2, `memory`,
/// `cpu`, `pids`, `name=systemd`, others that names a pod or container wins; failing
/// that, the first in that order that names a systemd unit.
pub fn parse_proc_cgroup(content: &str) -> CgroupInfo {
    select_proc_cgroup(content)
        .map(|(_, info)| info)
        .unwrap_or_default()
}

/// [`parse_proc_cgroup`] plus the path of the line chosen.
fn select_proc_cgroup(content: &str) -> Option<(&str, CgroupInfo)> {
    let mut lines: Vec<(u8, &str)> = content
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _hierarchy = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?.trim_end();
            let has = |c: &str| controllers.split(',').any(|x| x == c);
            let rank = if controllers.is_empty() {
                0
            } else if has("memory") {
                1
            } else if has("cpu") {
                2
            } else if has("pids") {
                3
            } else if has("name=systemd") {
                4
            } else {
                5
            };
            Some((rank, path))
        })
        .collect();
    lines.sort_by_key(|&(rank, _)| rank);
    let parsed: Vec<(&str, CgroupInfo)> = lines
        .into_iter()
        .map(|(_, path)| (path, parse_cgroup_path(path)))
        .collect();
    let pick = parsed
        .iter()
        .position(|(_, i)| i.names_container())
        .or_else(|| parsed.iter().position(|(_, i)| i.systemd_unit.is_some()))
        .unwrap_or(0);
    parsed.into_iter().nth(pick)
}

// ---------------------------------------------------------------------------------------
// Pod index
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Pod source
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
enum Location {
    File(PathBuf),
    Url(String),
}

/// Polls a `PodList` from a file or an `http://` URL (the kubelet's `/pods`, or a
/// server's pod index for this node) into a [`SharedPods`]. On error the last good index
/// stays in place and the error is remembered for health reporting.
///
/// `https://` URLs are verified against the bundled Mozilla roots unless
/// [`with_client`](Self::with_client) gives a client with the agent's `--ca-file`.
#[derive(Debug)]
pub struct PodSource {
    location: Location,
    interval: Duration,
    token_file: Option<PathBuf>,
    /// A token given directly (the agent's own server token when the pod index is the
    /// server's `/api/v1/pods`).
    token: Option<String>,
    agent: ureq::Agent,
    pods: SharedPods,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl PodSource {
    /// `location` is an `http(s)://` URL or a file path; `interval` is the polling period
    /// for [`poll`](Self::poll).
    pub fn new(location: &str, interval: Duration, pods: SharedPods) -> Self {
        let location = if location.starts_with("http://") || location.starts_with("https://") {
            Location::Url(location.to_owned())
        } else {
            Location::File(PathBuf::from(location))
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(HTTP_TIMEOUT))
            .build()
            .into();
        Self {
            location,
            interval,
            token_file: None,
            token: None,
            agent,
            pods,
            last_attempt: None,
            last_error: None,
        }
    }

    /// Sends `Authorization: Bearer <token>` read from this file on every fetch (so a
    /// rotated service-account token is picked up).
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Fetch with this client (the agent's server client, with its TLS policy).
    pub fn with_client(mut self, agent: ureq::Agent) -> Self {
        self.agent = agent;
        self
    }

    pub fn with_bearer_token_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.token_file = Some(path.into());
        self
    }

    /// Fetches and installs the list now. `Ok(true)` when the index changed.
    pub fn refresh(&mut self) -> Result<bool, String> {
        self.last_attempt = Some(Instant::now());
        let result = self
            .fetch()
            .and_then(|text| PodIndex::from_json(&text).map_err(|e| e.to_string()));
        match result {
            Ok(index) => {
                let skipped = index.skipped();
                let changed = self.pods.replace(index);
                if changed && skipped > 0 {
                    tracing::warn!(
                        skipped,
                        max = MAX_PODS,
                        "pod list over the limit; pods skipped"
                    );
                }
                self.last_error = None;
                Ok(changed)
            }
            Err(e) => {
                self.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// [`refresh`](Self::refresh) if the interval has passed since the last attempt (or
    /// there was none); `None` otherwise.
    pub fn poll(&mut self) -> Option<Result<bool, String>> {
        let due = self
            .last_attempt
            .is_none_or(|t| t.elapsed() >= self.interval);
        due.then(|| self.refresh())
    }

    /// The polling period.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The error of the last attempt, if it failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The index this source fills.
    pub fn pods(&self) -> &SharedPods {
        &self.pods
    }

    fn fetch(&self) -> Result<String, String> {
        match &self.location {
            Location::File(path) => read_limited(path),
            Location::Url(url) => self.fetch_url(url),
        }
    }

    fn fetch_url(&self, url: &str) -> Result<String, String> {
        let mut request = self.agent.get(url).header("accept", "application/json");
        if let Some(token) = self.token.as_deref().filter(|_| self.token_file.is_none()) {
            request = request.header("authorization", format!("Bearer {}", token.trim()));
        }
        if let Some(token_file) = &self.token_file {
            let token = std::fs::read_to_string(token_file)
                .map_err(|e| format!("reading token {}: {e}", token_file.display()))?;
            request = request.header("authorization", format!("Bearer {}", token.trim()));
        }
        let mut response = request.call().map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_POD_LIST_BYTES)
            .read_to_string()
            .map_err(|e| format!("GET {url}: reading the answer: {e}"))?;
        if status != 200 {
            let excerpt: String = body.chars().take(200).collect();
            return Err(format!("GET {url}: HTTP {status}: {}", excerpt.trim()));
        }
        Ok(body)
    }
}

fn read_limited(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_POD_LIST_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > MAX_POD_LIST_BYTES {
        return Err(format!(
            "{}: larger than {MAX_POD_LIST_BYTES} bytes",
            path.display()
        ));
    }
    Ok(text)
}

// ---------------------------------------------------------------------------------------
// Enricher
// ---------------------------------------------------------------------------------------

/// The result of [`Enricher::resolve`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enriched {
    /// `node` always; `pod_uid`/`container_id` from the cgroup; pod, namespace, container
    /// and workload from the [`PodIndex`] when it knows them.
    pub entity: Entity,
    /// Facts about the process: `cgroup` (path), `runtime`, `qos_class`, `systemd_unit`,
    /// `comm`, each only when known.
    pub attrs: Vec<(String, String)>,
}

/// Maps events (pid, cgroup id, comm) to the entity they concern.
///
/// Pids are host pids (as BPF reports them), so `proc_root` must be a procfs of the host
/// pid namespace (`hostPID: true`, or the host's `/proc` mounted at e.g. `/host/proc`).
#[derive(Debug)]
pub struct Enricher {
    proc_root: PathBuf,
    pods: SharedPods,
    node: String,
    cache: PidCache,
    inodes: CgroupInodes,
}

impl Enricher {
    /// Reads `/proc`, and the cgroup2 mount found in `/proc/self/mountinfo`.
    pub fn new(node: impl Into<String>, pods: SharedPods) -> Self {
        let cgroup2_root = std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|m| mountinfo::cgroup2_root(&mountinfo::parse_mountinfo(&m)));
        Self {
            proc_root: PathBuf::from("/proc"),
            pods,
            node: node.into(),
            cache: PidCache::default(),
            inodes: CgroupInodes::new(cgroup2_root),
        }
    }

    /// Another procfs (e.g. `/host/proc`).
    pub fn with_proc_root(mut self, proc_root: impl Into<PathBuf>) -> Self {
        self.proc_root = proc_root.into();
        self.cache = PidCache::default();
        self
    }

    /// Another cgroup2 mount, or none (no cgroup-id fallback).
    pub fn with_cgroup2_root(mut self, root: Option<PathBuf>) -> Self {
        self.inodes = CgroupInodes::new(root);
        self.cache = PidCache::default();
        self
    }

    /// The cgroup2 mount used to map cgroup ids to paths.
    pub fn cgroup2_root(&self) -> Option<&Path> {
        self.inodes.root.as_deref()
    }

    /// Resolves one event. `cgroup_id` is the cgroup v2 id (0 if unknown); it is used
    /// when `/proc/<pid>` is gone, and keys the cache together with the pid so a reused
    /// pid in another cgroup is not confused. A cache hit touches no file.
    pub fn resolve(&mut self, pid: u32, cgroup_id: u64, comm: &str) -> Enriched {
        let now = Instant::now();
        let generation = self.pods.generation();
        let key = (pid, cgroup_id);
        let mut enriched = match self.cache.get_mut(&key) {
            Some(entry) if now.duration_since(entry.at) < PID_CACHE_TTL => {
                if entry.generation != generation {
                    entry.enriched = build(&self.node, &self.pods, entry.found.as_ref());
                    entry.generation = generation;
                }
                entry.enriched.clone()
            }
            _ => {
                let found = self.lookup(pid, cgroup_id, now);
                let enriched = build(&self.node, &self.pods, found.as_ref());
                self.cache.insert(
                    key,
                    CacheEntry {
                        at: now,
                        generation,
                        found,
                        enriched: enriched.clone(),
                    },
                );
                enriched
            }
        };
        if !comm.is_empty() {
            enriched.attrs.push(("comm".into(), comm.to_owned()));
        }
        enriched
    }

    /// The cgroup path and what it says: `/proc/<pid>/cgroup` first, then the cgroup id.
    fn lookup(&mut self, pid: u32, cgroup_id: u64, now: Instant) -> Option<(String, CgroupInfo)> {
        let file = self.proc_root.join(pid.to_string()).join("cgroup");
        if let Ok(content) = std::fs::read_to_string(&file)
            && let Some((path, info)) = select_proc_cgroup(&content)
        {
            return Some((path.to_owned(), info));
        }
        if cgroup_id == 0 {
            return None;
        }
        let path = self.inodes.lookup(cgroup_id, now)?;
        let info = parse_cgroup_path(&path);
        Some((path, info))
    }
}

/// What [`Enricher::resolve`] gives for a process in the cgroup at `path` (relative to the
/// hierarchy root, e.g. `/kubepods.slice/…/cri-containerd-<id>.scope`), for facts that are
/// about a cgroup rather than a process (CPU throttling): the entity from the path and the
/// pod index, and the `cgroup`, `runtime`, `qos_class` and `systemd_unit` attributes.
pub fn enrich_cgroup(node: &str, pods: &SharedPods, path: &str) -> Enriched {
    let info = parse_cgroup_path(path);
    build(node, pods, Some(&(path.to_owned(), info)))
}

fn build(node: &str, pods: &SharedPods, found: Option<&(String, CgroupInfo)>) -> Enriched {
    let mut entity = Entity {
        node: Some(node.to_owned()),
        ..Entity::default()
    };
    let mut attrs = Vec::new();
    let Some((path, info)) = found else {
        return Enriched { entity, attrs };
    };
    attrs.push(("cgroup".to_owned(), path.clone()));
    entity.pod_uid = info.pod_uid.clone();
    entity.container_id = info.container_id.clone();
    let mut runtime = info.runtime;
    if info.names_container() {
        let index = pods.read();
        let by_container = info
            .container_id
            .as_deref()
            .and_then(|id| index.by_container(id));
        let pod = by_container
            .map(|(pod, _)| pod)
            .or_else(|| info.pod_uid.as_deref().and_then(|uid| index.pod(uid)));
        if let Some(pod) = pod {
            entity.pod = Some(pod.name.clone());
            entity.namespace = Some(pod.namespace.clone());
            entity.pod_uid = Some(pod.uid.clone());
            entity.workload = pod.workload.clone();
            runtime = runtime.or(pod.runtime);
        }
        if let Some((_, name)) = by_container {
            entity.container = Some(name.to_owned());
        }
    }
    if let Some(runtime) = runtime {
        attrs.push(("runtime".to_owned(), runtime.as_str().to_owned()));
    }
    if let Some(qos) = &info.qos {
        attrs.push(("qos_class".to_owned(), qos.clone()));
    }
    if let Some(unit) = &info.systemd_unit {
        attrs.push(("systemd_unit".to_owned(), unit.clone()));
    }
    Enriched { entity, attrs }
}

type PidKey = (u32, u64);

#[derive(Debug)]
struct CacheEntry {
    at: Instant,
    generation: u64,
    found: Option<(String, CgroupInfo)>,
    enriched: Enriched,
}

/// Bounded, approximately least-recently-used: entries go to `hot`; when `hot` is half
/// the capacity it becomes `cold` (dropping the old `cold`); a hit in `cold` moves back.
#[derive(Debug, Default)]
struct PidCache {
    hot: HashMap<PidKey, CacheEntry>,
    cold: HashMap<PidKey, CacheEntry>,
}

impl PidCache {
    const HALF: usize = PID_CACHE_ENTRIES / 2;

    fn get_mut(&mut self, key: &PidKey) -> Option<&mut CacheEntry> {
        if !self.hot.contains_key(key) {
            let entry = self.cold.remove(key)?;
            self.insert(*key, entry);
        }
        self.hot.get_mut(key)
    }

    fn insert(&mut self, key: PidKey, entry: CacheEntry) {
        if self.hot.len() >= Self::HALF && !self.hot.contains_key(&key) {
            self.cold = std::mem::take(&mut self.hot);
        }
        self.hot.insert(key, entry);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.hot.len() + self.cold.len()
    }
}

/// Cgroup v2 id (directory inode number) → path below the cgroup2 root.
#[derive(Debug)]
struct CgroupInodes {
    root: Option<PathBuf>,
    map: HashMap<u64, String>,
    built_at: Option<Instant>,
}

impl CgroupInodes {
    fn new(root: Option<PathBuf>) -> Self {
        Self {
            root,
            map: HashMap::new(),
            built_at: None,
        }
    }

    /// The path of `id`, walking the tree again on a miss at most once per
    /// [`INODE_REBUILD_INTERVAL`].
    fn lookup(&mut self, id: u64, now: Instant) -> Option<String> {
        if let Some(path) = self.map.get(&id) {
            return Some(path.clone());
        }
        let stale = self
            .built_at
            .is_none_or(|t| now.duration_since(t) >= INODE_REBUILD_INTERVAL);
        if !stale {
            return None;
        }
        self.rebuild(now);
        self.map.get(&id).cloned()
    }

    fn rebuild(&mut self, now: Instant) {
        self.built_at = Some(now);
        let Some(root) = &self.root else { return };
        let mut map = HashMap::new();
        if let Ok(meta) = std::fs::metadata(root) {
            map.insert(meta.ino(), "/".to_owned());
        }
        let mut stack: Vec<(PathBuf, String, usize)> = vec![(root.clone(), String::new(), 0)];
        'walk: while let Some((dir, rel, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                // Not following symlinks: cgroupfs has none, and a loop must not hang us.
                let Ok(file_type) = entry.file_type() else {
                    continue;
                };
                if !file_type.is_dir() {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                let child_rel = format!("{rel}/{}", entry.file_name().to_string_lossy());
                map.insert(meta.ino(), child_rel.clone());
                if map.len() >= MAX_CGROUP_DIRS {
                    tracing::warn!(
                        max = MAX_CGROUP_DIRS,
                        "cgroup tree larger than the map; truncated"
                    );
                    break 'walk;
                }
                if depth + 1 < MAX_CGROUP_DEPTH {
                    stack.push((entry.path(), child_rel, depth + 1));
                }
            }
        }
        self.map = map;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../tests/fixtures/enrich_kubelet_pods.json");

    const UID: &str = "8dbc5577-d0e2-4706-8787-57d52c03ddf2";
    const UID_: &str = "8dbc5577_d0e2_4706_8787_57d52c03ddf2";
    const CID: &str = "14011c7d92a9e513dfd69211da0413dbf319a5e45a02b354ba6e98e10272542d";

    fn info(
        pod: Option<&str>,
        container: Option<&str>,
        runtime: Option<Runtime>,
        qos: Option<&str>,
        unit: Option<&str>,
    ) -> CgroupInfo {
        CgroupInfo {
            pod_uid: pod.map(str::to_owned),
            container_id: container.map(str::to_owned),
            runtime,
            qos: qos.map(str::to_owned),
            systemd_unit: unit.map(str::to_owned),
        }
    }

    #[test]
    fn cgroup_path_shapes() {
        use Runtime::*;
        let cases: Vec<(&str, String, CgroupInfo)> = vec![
            (
                "containerd (or Docker), cgroup v1, cgroupfs driver, Burstable",
                format!("/kubepods/burstable/pod{UID}/{CID}"),
                info(Some(UID), Some(CID), None, Some("burstable"), None),
            ),
            (
                "containerd, cgroup v1, cgroupfs driver, Guaranteed (pod right under kubepods)",
                format!("/kubepods/pod{UID}/{CID}"),
                info(Some(UID), Some(CID), None, Some("guaranteed"), None),
            ),
            (
                "containerd, cgroup v2, cgroupfs driver (k3s, GKE COS): same path in `0::`",
                format!("/kubepods/besteffort/pod{UID}/{CID}"),
                info(Some(UID), Some(CID), None, Some("besteffort"), None),
            ),
            (
                "CRI-O, cgroup v1/v2, cgroupfs driver",
                format!("/kubepods/besteffort/pod{UID}/crio-{CID}"),
                info(Some(UID), Some(CID), Some(CriO), Some("besteffort"), None),
            ),
            (
                "CRI-O, cgroupfs driver: conmon is the monitor, not the container",
                format!("/kubepods/besteffort/pod{UID}/crio-conmon-{CID}"),
                info(Some(UID), None, Some(CriO), Some("besteffort"), None),
            ),
            (
                "containerd, cgroup v1 or v2, systemd driver, Burstable",
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{CID}.scope"
                ),
                info(Some(UID), Some(CID), Some(Containerd), Some("burstable"), None),
            ),
            (
                "containerd, systemd driver, Guaranteed",
                format!("/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{CID}.scope"),
                info(Some(UID), Some(CID), Some(Containerd), Some("guaranteed"), None),
            ),
            (
                "CRI-O, cgroup v1 or v2, systemd driver (OpenShift)",
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/crio-{CID}.scope"
                ),
                info(Some(UID), Some(CID), Some(CriO), Some("besteffort"), None),
            ),
            (
                "CRI-O, cgroup v2, systemd driver, crun's `container` sub-cgroup",
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-{CID}.scope/container"
                ),
                info(Some(UID), Some(CID), Some(CriO), Some("burstable"), None),
            ),
            (
                "CRI-O, systemd driver: conmon scope is not the container",
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-conmon-{CID}.scope"
                ),
                info(Some(UID), None, Some(CriO), Some("burstable"), None),
            ),
            (
                "Docker (dockershim / cri-dockerd), cgroup v1, systemd driver",
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/docker-{CID}.scope"
                ),
                info(Some(UID), Some(CID), Some(Docker), Some("besteffort"), None),
            ),
            (
                "containerd, cgroup v2, systemd driver, kind/minikube (cgroup root /kubelet)",
                format!(
                    "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{UID_}.slice/cri-containerd-{CID}.scope"
                ),
                info(Some(UID), Some(CID), Some(Containerd), Some("besteffort"), None),
            ),
            (
                "containerd, cgroup v2, kind node seen from the host: the node's own Docker id is not the container",
                format!(
                    "/system.slice/docker-{}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod{UID_}.slice/cri-containerd-{CID}.scope",
                    "3350ade4226f0adcd9e4e9545d7c2a16a5aa362d12315f2a88e2024cea1246cf"
                ),
                info(Some(UID), Some(CID), Some(Containerd), Some("burstable"), None),
            ),
            (
                "containerd, cgroup v2, kubelet systemd driver but containerd SystemdCgroup=false: runc's colon form under containerd.service",
                format!(
                    "/system.slice/containerd.service/kubepods-burstable-pod{UID_}.slice:cri-containerd:{CID}"
                ),
                info(Some(UID), Some(CID), Some(Containerd), Some("burstable"), None),
            ),
            (
                "containerd, systemd driver, static pod (UID is the 32-hex config hash)",
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod23b5c5a138ffb34cba6fda53690335d5.slice/cri-containerd-{CID}.scope"
                ),
                info(
                    Some("23b5c5a138ffb34cba6fda53690335d5"),
                    Some(CID),
                    Some(Containerd),
                    Some("burstable"),
                    None,
                ),
            ),
            (
                "cgroup v2 in a cgroup namespace: path relative to the reader's root",
                format!(
                    "/../../kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{CID}.scope"
                ),
                info(Some(UID), Some(CID), Some(Containerd), Some("besteffort"), None),
            ),
            (
                "pod-level cgroup (no container)",
                format!("/kubepods/burstable/pod{UID}"),
                info(Some(UID), None, None, Some("burstable"), None),
            ),
            (
                "plain Docker, cgroup v1, cgroupfs driver",
                format!("/docker/{CID}"),
                info(None, Some(CID), Some(Docker), None, None),
            ),
            (
                "plain Docker, systemd driver",
                format!("/system.slice/docker-{CID}.scope"),
                info(None, Some(CID), Some(Docker), None, None),
            ),
            (
                "Podman, cgroup v2, systemd driver (rootful)",
                format!("/machine.slice/libpod-{CID}.scope/container"),
                info(None, Some(CID), Some(Podman), None, None),
            ),
            (
                "plain host: a service",
                "/system.slice/nginx.service".to_owned(),
                info(None, None, None, None, Some("nginx.service")),
            ),
            (
                "plain host: a login session",
                "/user.slice/user-1000.slice/session-3.scope".to_owned(),
                info(None, None, None, None, Some("session-3.scope")),
            ),
            (
                "plain host: user manager's app scope (deepest unit wins)",
                "/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-5d1c.scope".to_owned(),
                info(None, None, None, None, Some("vte-spawn-5d1c.scope")),
            ),
            (
                "plain host: service with a sub-cgroup",
                "/system.slice/containerd.service/runtime".to_owned(),
                info(None, None, None, None, Some("containerd.service")),
            ),
            (
                "kubelet itself",
                "/system.slice/kubelet.service".to_owned(),
                info(None, None, None, None, Some("kubelet.service")),
            ),
            ("pid 1", "/init.scope".to_owned(), CgroupInfo::default().with_unit("init.scope")),
            ("root", "/".to_owned(), CgroupInfo::default()),
            ("empty", String::new(), CgroupInfo::default()),
            ("QoS slice, no pod", "/kubepods.slice/kubepods-burstable.slice".to_owned(), CgroupInfo::default()),
            ("QoS dir, no pod", "/kubepods/burstable".to_owned(), CgroupInfo::default()),
            (
                "not a UID",
                "/kubepods/burstable/podnotauid/abc".to_owned(),
                CgroupInfo::default(),
            ),
            (
                "short hex is not a container id",
                "/system.slice/docker-abc123.scope".to_owned(),
                info(None, None, None, None, Some("docker-abc123.scope")),
            ),
        ];
        for (what, path, want) in cases {
            assert_eq!(parse_cgroup_path(&path), want, "{what}: {path}");
        }
    }

    impl CgroupInfo {
        fn with_unit(mut self, unit: &str) -> Self {
            self.systemd_unit = Some(unit.to_owned());
            self
        }
    }

    #[test]
    fn pod_uid_canonical_form() {
        assert_eq!(canonical_pod_uid(UID_).as_deref(), Some(UID));
        assert_eq!(
            canonical_pod_uid("8DBC5577-D0E2-4706-8787-57D52C03DDF2").as_deref(),
            Some(UID)
        );
        assert_eq!(
            canonical_pod_uid("8dbc5577-d0e2-4706-8787-57d52c03ddfz"),
            None
        );
        assert_eq!(
            canonical_pod_uid("8dbc5577d0e2-4706-8787-57d52c03ddf2a"),
            None
        );
        assert_eq!(canonical_pod_uid(""), None);
    }

    #[test]
    fn proc_cgroup_hybrid_prefers_the_line_naming_a_container() {
        // cgroup v1 hybrid (Ubuntu 20.04-style), containerd, cgroupfs driver: the unified
        // `0::` line shows only the runtime's service, the controllers show the pod.
        let content = format!(
            "12:perf_event:/kubepods/burstable/pod{UID}/{CID}\n\
             11:memory:/kubepods/burstable/pod{UID}/{CID}\n\
             10:cpu,cpuacct:/kubepods/burstable/pod{UID}/{CID}\n\
             9:pids:/kubepods/burstable/pod{UID}/{CID}\n\
             8:net_cls,net_prio:/kubepods/burstable/pod{UID}/{CID}\n\
             1:name=systemd:/system.slice/containerd.service\n\
             0::/system.slice/containerd.service\n"
        );
        let got = parse_proc_cgroup(&content);
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
        assert_eq!(got.container_id.as_deref(), Some(CID));
        assert_eq!(got.systemd_unit, None);
        let (path, _) = select_proc_cgroup(&content).expect("a line");
        assert_eq!(path, format!("/kubepods/burstable/pod{UID}/{CID}"));
    }

    #[test]
    fn proc_cgroup_v2_and_plain_host() {
        // cgroup v2, containerd, systemd driver.
        let v2 = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{CID}.scope\n"
        );
        let got = parse_proc_cgroup(&v2);
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
        assert_eq!(got.runtime, Some(Runtime::Containerd));

        // cgroup v1 hybrid, plain host service: the unit comes from name=systemd / `0::`.
        let host = "11:memory:/system.slice/nginx.service\n\
                    4:cpu,cpuacct:/system.slice/nginx.service\n\
                    3:devices:/system.slice/nginx.service\n\
                    1:name=systemd:/system.slice/nginx.service\n\
                    0::/system.slice/nginx.service\n";
        assert_eq!(
            parse_proc_cgroup(host).systemd_unit.as_deref(),
            Some("nginx.service")
        );

        // pure v1 where memory shows only the slice but name=systemd shows the unit.
        let v1 = "5:memory:/user.slice\n2:cpu,cpuacct:/user.slice\n\
                  1:name=systemd:/user.slice/user-1000.slice/session-3.scope\n";
        assert_eq!(
            parse_proc_cgroup(v1).systemd_unit.as_deref(),
            Some("session-3.scope")
        );

        assert_eq!(parse_proc_cgroup(""), CgroupInfo::default());
        assert_eq!(parse_proc_cgroup("garbage\n"), CgroupInfo::default());
    }

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

    #[test]
    fn pod_source_file_keeps_last_good_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pods.json");
        std::fs::write(&file, FIXTURE).expect("write");
        let shared = SharedPods::default();
        let mut source = PodSource::new(
            file.to_str().expect("utf-8 path"),
            Duration::from_secs(3600),
            shared.clone(),
        );
        assert_eq!(source.poll(), Some(Ok(true)));
        assert_eq!(source.poll(), None, "not due yet");
        assert_eq!(shared.read().len(), 3);
        let generation = shared.generation();
        assert_eq!(source.refresh(), Ok(false), "same content: unchanged");
        assert_eq!(shared.generation(), generation);

        std::fs::write(&file, r#"{"items":[{"metadata":{"name":"x"}}]}"#).expect("write");
        let e = source.refresh().expect_err("malformed");
        assert!(e.contains("items[0].metadata.uid"), "{e}");
        assert_eq!(source.last_error(), Some(e.as_str()));
        assert_eq!(shared.read().len(), 3, "last good index kept");

        std::fs::remove_file(&file).expect("rm");
        assert!(source.refresh().is_err());
        assert_eq!(shared.read().len(), 3);

        std::fs::write(&file, r#"{"kind":"PodList","items":[]}"#).expect("write");
        assert_eq!(source.refresh(), Ok(true));
        assert!(shared.read().is_empty());
        assert_eq!(source.last_error(), None);
        assert_ne!(shared.generation(), generation);
    }

    #[test]
    fn pod_source_http_with_token() {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for status in ["200 OK", "401 Unauthorized"] {
                let (stream, _) = listener.accept().expect("accept");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).expect("read") == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                seen.push(head);
                let body = if status.starts_with("200") {
                    FIXTURE
                } else {
                    "Unauthorized"
                };
                let mut stream = stream;
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .expect("write");
            }
            seen
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cr3t\n").expect("write");
        let shared = SharedPods::default();
        let mut source = PodSource::new(
            &format!("http://{addr}/pods"),
            Duration::from_secs(10),
            shared.clone(),
        )
        .with_bearer_token_file(&token);
        assert_eq!(source.refresh(), Ok(true));
        assert_eq!(shared.read().len(), 3);
        let e = source.refresh().expect_err("401");
        assert!(e.contains("HTTP 401"), "{e}");
        assert_eq!(shared.read().len(), 3);
        let seen = server.join().expect("server");
        assert!(seen[0].starts_with("GET /pods "), "{}", seen[0]);
        assert!(
            seen[0]
                .to_ascii_lowercase()
                .contains("authorization: bearer s3cr3t\r\n"),
            "{}",
            seen[0]
        );
    }

    fn fake_proc(pids: &[(u32, String)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (pid, content) in pids {
            let p = dir.path().join(pid.to_string());
            std::fs::create_dir(&p).expect("mkdir");
            std::fs::write(p.join("cgroup"), content).expect("write");
        }
        dir
    }

    fn attr<'a>(e: &'a Enriched, key: &str) -> Option<&'a str> {
        e.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn resolve_from_fake_proc() {
        let checkout_cid = "4246283da53772d9520fb37c388a11f14a5c1953e02e5d27932e9166e7b3672f";
        let checkout_uid = "82b77fd4_702b_43c8_b51c_b72599117113";
        let proc = fake_proc(&[
            // cgroup v2, containerd, systemd driver.
            (
                100,
                format!(
                    "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{checkout_uid}.slice/cri-containerd-{checkout_cid}.scope\n"
                ),
            ),
            // cgroup v1 hybrid, containerd, cgroupfs driver; runtime only from the index.
            (
                200,
                "11:memory:/kubepods/pod83853e6c-b9f8-4277-9f94-26f8bc4bd44b/d3ebcec4f3dfb300123a8e34f071e4efd8f20d30051421045ea8f3303cfb0931\n\
                 1:name=systemd:/system.slice/containerd.service\n0::/system.slice/containerd.service\n"
                    .to_owned(),
            ),
            (300, "0::/system.slice/nginx.service\n".to_owned()),
            // A container the index does not know (yet).
            (400, format!("0::/kubepods/besteffort/pod{UID}/crio-{CID}\n")),
        ]);
        let shared = SharedPods::new(PodIndex::from_json(FIXTURE).expect("fixture"));
        let mut enricher = Enricher::new("worker-1", shared.clone())
            .with_proc_root(proc.path())
            .with_cgroup2_root(None);

        let e = enricher.resolve(100, 0, "java");
        assert_eq!(e.entity.node.as_deref(), Some("worker-1"));
        assert_eq!(e.entity.pod.as_deref(), Some("checkout-7d9f8b6c5-x2x7k"));
        assert_eq!(e.entity.namespace.as_deref(), Some("shop"));
        assert_eq!(
            e.entity.pod_uid.as_deref(),
            Some("82b77fd4-702b-43c8-b51c-b72599117113")
        );
        assert_eq!(e.entity.container.as_deref(), Some("checkout"));
        assert_eq!(e.entity.container_id.as_deref(), Some(checkout_cid));
        assert_eq!(
            e.entity
                .workload
                .as_ref()
                .map(|w| (w.kind.as_str(), w.name.as_str())),
            Some(("Deployment", "checkout"))
        );
        assert_eq!(attr(&e, "runtime"), Some("containerd"));
        assert_eq!(attr(&e, "qos_class"), Some("burstable"));
        assert_eq!(attr(&e, "comm"), Some("java"));
        assert!(attr(&e, "cgroup").is_some_and(|p| p.ends_with(".scope")));

        let e = enricher.resolve(200, 0, "postgres");
        assert_eq!(e.entity.pod.as_deref(), Some("postgres-0"));
        assert_eq!(e.entity.container.as_deref(), Some("postgres"));
        assert_eq!(attr(&e, "runtime"), Some("containerd"));
        assert_eq!(attr(&e, "qos_class"), Some("guaranteed"));

        let e = enricher.resolve(300, 0, "nginx");
        assert_eq!(e.entity.pod, None);
        assert_eq!(e.entity.node.as_deref(), Some("worker-1"));
        assert_eq!(attr(&e, "systemd_unit"), Some("nginx.service"));
        assert_eq!(attr(&e, "comm"), Some("nginx"));

        let e = enricher.resolve(400, 0, "x");
        assert_eq!(e.entity.pod_uid.as_deref(), Some(UID));
        assert_eq!(e.entity.container_id.as_deref(), Some(CID));
        assert_eq!(e.entity.pod, None);
        assert_eq!(attr(&e, "runtime"), Some("cri-o"));

        // Gone, no cgroup id: node only.
        let e = enricher.resolve(999, 0, "");
        assert_eq!(
            e,
            Enriched {
                entity: Entity {
                    node: Some("worker-1".into()),
                    ..Entity::default()
                },
                attrs: vec![]
            }
        );

        // Cache hit touches no file: remove the fake /proc entirely.
        let path = proc.path().to_owned();
        drop(proc);
        assert!(!path.exists());
        let e = enricher.resolve(100, 0, "java2");
        assert_eq!(e.entity.container.as_deref(), Some("checkout"));
        assert_eq!(attr(&e, "comm"), Some("java2"));

        // The index learns about pid 400's pod: the cached cgroup is re-read against it.
        let learned = FIXTURE
            .replace("83853e6c-b9f8-4277-9f94-26f8bc4bd44b", UID)
            .replace(
                "containerd://d3ebcec4f3dfb300123a8e34f071e4efd8f20d30051421045ea8f3303cfb0931",
                &format!("cri-o://{CID}"),
            );
        assert!(shared.replace(PodIndex::from_json(&learned).expect("parses")));
        let e = enricher.resolve(400, 0, "x");
        assert_eq!(e.entity.pod.as_deref(), Some("postgres-0"));
        assert_eq!(e.entity.container.as_deref(), Some("postgres"));
    }

    #[test]
    fn cgroup_id_maps_to_path_when_the_process_is_gone() {
        let root = tempfile::tempdir().expect("tempdir");
        let pod_dir = root
            .path()
            .join("kubepods.slice")
            .join("kubepods-burstable.slice")
            .join(format!("kubepods-burstable-pod{UID_}.slice"));
        let scope = pod_dir.join(format!("cri-containerd-{CID}.scope"));
        std::fs::create_dir_all(&scope).expect("mkdir");
        std::fs::create_dir_all(root.path().join("system.slice/nginx.service")).expect("mkdir");
        std::fs::write(pod_dir.join("cgroup.procs"), "").expect("a file is not a cgroup");
        let ino = |p: &Path| std::fs::metadata(p).expect("stat").ino();

        let mut inodes = CgroupInodes::new(Some(root.path().to_owned()));
        let now = Instant::now();
        assert_eq!(
            inodes.lookup(ino(&scope), now).as_deref(),
            Some(
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{CID}.scope"
                )
                .as_str()
            )
        );
        assert_eq!(inodes.lookup(ino(root.path()), now).as_deref(), Some("/"));
        assert_eq!(
            inodes
                .lookup(ino(&root.path().join("system.slice/nginx.service")), now)
                .as_deref(),
            Some("/system.slice/nginx.service")
        );

        // A directory created after the walk is found on the next rebuild, at most once per
        // second.
        let late = root.path().join("system.slice/late.service");
        std::fs::create_dir(&late).expect("mkdir");
        assert_eq!(inodes.lookup(ino(&late), now), None, "rebuilt too recently");
        assert_eq!(
            inodes
                .lookup(ino(&late), now + INODE_REBUILD_INTERVAL)
                .as_deref(),
            Some("/system.slice/late.service")
        );

        // Through the enricher: no /proc/<pid>, so the cgroup id decides.
        let proc = tempfile::tempdir().expect("tempdir");
        let mut enricher = Enricher::new("worker-1", SharedPods::default())
            .with_proc_root(proc.path())
            .with_cgroup2_root(Some(root.path().to_owned()));
        assert_eq!(enricher.cgroup2_root(), Some(root.path()));
        let e = enricher.resolve(4242, ino(&scope), "oom-victim");
        assert_eq!(e.entity.pod_uid.as_deref(), Some(UID));
        assert_eq!(e.entity.container_id.as_deref(), Some(CID));
        assert_eq!(attr(&e, "runtime"), Some("containerd"));
    }

    #[test]
    fn pid_cache_is_bounded() {
        let proc = tempfile::tempdir().expect("tempdir");
        let mut enricher = Enricher::new("n", SharedPods::default())
            .with_proc_root(proc.path())
            .with_cgroup2_root(None);
        for pid in 0..(PID_CACHE_ENTRIES as u32 * 3) {
            enricher.resolve(pid, 0, "");
            assert!(enricher.cache.len() <= PID_CACHE_ENTRIES);
        }
        assert!(enricher.cache.len() >= PID_CACHE_ENTRIES / 2);
    }
}
