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
//!
//! One module per step: [`cgroup`] (path parsing), [`pods`] (the index), [`source`]
//! (keeping it fresh) and [`cache`] (pid and cgroup-id caches); the [`Enricher`] that
//! joins them is here.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tapio_proto::Entity;

use crate::mountinfo;

pub mod cache;
pub mod cgroup;
pub mod pods;
pub mod source;
#[cfg(test)]
mod testutil;

pub use cgroup::*;
pub use pods::*;
pub use source::*;

use cache::{CacheEntry, CgroupInodes, PID_CACHE_TTL, PidCache};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::testutil::*;
    use std::os::unix::fs::MetadataExt;

    use cache::{INODE_REBUILD_INTERVAL, PID_CACHE_ENTRIES};

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
